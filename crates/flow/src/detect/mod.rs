//! C&C detection: graph scores and behaviour features per server, one learned score.
//!
//! For each window: [`graph`] scores every server by the bot share of its clients (seeds, plus
//! bots inferred through shared servers); [`features`] describes its behaviour; the [`model`]
//! (logistic regression, which takes the graph score as one input) gives the combined score.
//! Servers with too few known bots among their clients are not scored at all: without a seed
//! there is nothing to propagate, and that keeps the output small.

mod features;
mod graph;
pub mod model;

use botscope_model::{CncCandidate, DetectionMethod, Transport};
use botscope_net::packet::Addr;
use rustc_hash::FxHashSet;
use uuid::Uuid;

pub use features::NAMES as FEATURE_NAMES;
pub use model::{Model, ModelError};

use crate::flow::protocol;
use crate::seeds::Seeds;
use crate::window::{ServerKey, Window};

/// Detection settings.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// Report servers scoring at least this.
    pub min_score: f64,
    /// Score only servers with at least this many distinct seed clients, counted over this
    /// window and the `seed_memory_ms` before it (a C&C polled every hour or two rarely sees two
    /// known bots in one window); the server must have one in this window.
    pub min_seed_clients: u64,
    /// How far back seed clients count towards `min_seed_clients`, and how far back a seed's
    /// earlier contact makes it a returning client (0: this window only).
    pub seed_memory_ms: i64,
    /// Sensor name written into candidates.
    pub sensor: Option<String>,
    /// Also score servers at private, shared (CGNAT), link-local and multicast addresses. Off by
    /// default: seen from an ISP those are its own infrastructure or a home's LAN (a capture
    /// taken inside a home shows the router as a "server" for DHCP and DNS).
    pub include_private: bool,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            min_score: 0.5,
            min_seed_clients: 2,
            seed_memory_ms: DEFAULT_SEED_MEMORY_MS,
            sensor: None,
            include_private: false,
        }
    }
}

/// Seed clients count towards `min_seed_clients` for a day by default.
pub const DEFAULT_SEED_MEMORY_MS: i64 = 24 * 3_600_000;

/// Servers remembered with their recent seed clients at most; beyond it no new one is added until
/// others are forgotten.
const MAX_SEED_MEMORY: usize = 1_000_000;

/// Server and seed pairs remembered with their recent answered windows at most (24 bytes each in
/// the table, about 200 MB when full). When full, pairs not answered in the last two windows are
/// forgotten early to make room. Only pairs the server answered are remembered, so the
/// unanswered scanning that fills most of a bot's flow records costs nothing.
const MAX_CONTACT_MEMORY: usize = 4_000_000;

/// Pairs of a watched server and a client that is no known bot remembered at most (the
/// `others_returning_share` feature), apart from the seed pairs so that a popular site's many
/// visitors cannot push the bots out.
const MAX_OTHERS_MEMORY: usize = 4_000_000;

/// The windows in which a server answered a seed bot: the end of the latest, and one bit per
/// window before it (bit k: the window ending k window lengths earlier), so that a window scored
/// again for late flows still sees the answers before it.
#[derive(Debug, Clone, Copy)]
struct Answered {
    last_end_ms: i64,
    windows: u32,
}

impl Answered {
    /// Whether a window ending after `since` and at most at `until` is among them.
    fn any_between(&self, since: i64, until: i64, span: i64) -> bool {
        (0..32).any(|k| {
            let end = self.last_end_ms - i64::from(k) * span;
            self.windows & (1 << k) != 0 && end > since && end <= until
        })
    }

    /// Adds the window ending at `end`.
    fn add(&mut self, end: i64, span: i64) {
        if end >= self.last_end_ms {
            let shift = (end - self.last_end_ms) / span;
            self.windows = if shift >= 32 { 1 } else { (self.windows << shift) | 1 };
            self.last_end_ms = end;
        } else {
            let k = (self.last_end_ms - end) / span;
            if k < 32 {
                self.windows |= 1 << k;
            }
        }
    }
}

/// The memory key of a server and client pair: a 64-bit SipHash, so that an entry costs 24 bytes
/// rather than 64. Two pairs colliding among four million is a one-in-a-million event, and would
/// only make one bot count as returning.
fn pair_key(server: &ServerKey, client: Addr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    server.hash(&mut hasher);
    client.hash(&mut hasher);
    hasher.finish()
}

/// Server and client pairs with the windows in which the server answered the client, bounded.
#[derive(Debug)]
struct AnswerMemory {
    pairs: rustc_hash::FxHashMap<u64, Answered>,
    limit: usize,
    /// The window (its end) in which making room last freed too little: until the next window,
    /// new pairs are refused without another pass over the whole memory.
    full_in: Option<i64>,
    /// Pairs forgotten before `--seed-memory` to make room.
    forgotten_early: u64,
    /// Pairs not remembered because the memory was full of recent ones.
    refused: u64,
}

impl AnswerMemory {
    fn new(limit: usize) -> Self {
        AnswerMemory { pairs: Default::default(), limit, full_in: None, forgotten_early: 0, refused: 0 }
    }

    /// Remembers that the server answered the pair's client in this window. When full, what the
    /// last two windows did not refresh is forgotten; if that frees less than a tenth, new pairs
    /// wait until the next window (counted), so that a full memory costs one pass per window and
    /// not one per pair.
    fn remember(&mut self, pair: u64, window: &Window, span: i64) {
        if let Some(answered) = self.pairs.get_mut(&pair) {
            answered.add(window.end_ms, span);
            return;
        }
        if self.pairs.len() >= self.limit {
            if self.full_in == Some(window.end_ms) {
                self.refused += 1;
                return;
            }
            let before = self.pairs.len();
            self.pairs.retain(|_, a| a.last_end_ms >= window.start_ms);
            self.forgotten_early += (before - self.pairs.len()) as u64;
            if self.pairs.len() >= self.limit - self.limit / 10 {
                self.full_in = Some(window.end_ms);
            }
            if self.pairs.len() >= self.limit {
                self.refused += 1;
                return;
            }
        }
        self.pairs.insert(pair, Answered { last_end_ms: window.end_ms, windows: 1 });
    }

    /// Whether the server answered the pair's client in a window ending in `(since, until]`.
    fn answered_between(&self, pair: u64, since: i64, until: i64, span: i64) -> bool {
        self.pairs.get(&pair).is_some_and(|a| a.any_between(since, until, span))
    }

    fn forget_before(&mut self, cutoff: i64) {
        if !self.pairs.is_empty() {
            self.pairs.retain(|_, a| a.last_end_ms > cutoff);
        }
    }
}

/// Private, shared, link-local, multicast and broadcast addresses.
fn is_private(addr: Addr) -> bool {
    match addr.to_ip() {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        std::net::IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_multicast() || v6.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// One scored server, before it becomes a candidate record.
#[derive(Debug, Clone)]
pub struct ScoredServer {
    /// The server.
    pub key: ServerKey,
    /// Feature vector ([`FEATURE_NAMES`] order).
    pub features: Vec<f64>,
    /// Combined score.
    pub score: f64,
    /// Distinct seed clients.
    pub seed_clients: u64,
    /// Distinct clients of any kind.
    pub total_clients: u64,
}

/// What scoring did over a run, so that an empty result can say why.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DetectStats {
    /// Windows scored.
    pub windows: u64,
    /// Windows in which some seed appeared as a client.
    pub windows_with_seeds: u64,
    /// Servers scored (enough seed clients, eligible address and protocol).
    pub servers_scored: u64,
    /// Servers with some seed clients, but fewer than `min_seed_clients`: not scored.
    pub servers_below_min_seed_clients: u64,
    /// The most seed clients such a server had.
    pub most_seed_clients_below_min: u64,
    /// The best score of any server.
    pub best_score: Option<f64>,
    /// Candidates reported (at or above `min_score`).
    pub reported: u64,
    /// Remembered server-and-bot answers forgotten before `--seed-memory` because the memory was
    /// full (it holds four million).
    pub contact_memory_forgotten_early: u64,
    /// Answers not remembered at all because the memory was full of recent ones.
    pub contact_memory_refused: u64,
    /// The same for the other clients of servers known bots reach (`others_returning_share`):
    /// forgotten early.
    pub others_memory_forgotten_early: u64,
    /// The same: not remembered.
    pub others_memory_refused: u64,
    /// Servers a known bot reached that were not watched for their other clients because a
    /// million already were.
    pub watch_refused: u64,
    /// Bots answered once in a window and not followed into the next, because a window had more
    /// than a million of them: their return does not revise the window.
    pub hindsight_untracked: u64,
}

impl DetectStats {
    /// Why nothing was reported, when nothing was.
    pub fn why_nothing(&self, config: &DetectConfig) -> Option<String> {
        if self.reported > 0 {
            return None;
        }
        Some(if self.windows == 0 {
            "no window closed: the input held no usable flow".to_string()
        } else if self.windows_with_seeds == 0 {
            "none of the seeds appears as a client in the flows: check that seeds and flows cover the same \
             hosts (addresses as the flows see them, e.g. before or after NAT) and the same time"
                .to_string()
        } else if self.servers_scored == 0 && self.servers_below_min_seed_clients > 0 {
            format!(
                "no server had --min-seed-clients {} distinct seed clients (in a window and the --seed-memory \
                 before it); {} servers had fewer \
                 (at most {}). With one known bot, run with --min-seed-clients 1",
                config.min_seed_clients, self.servers_below_min_seed_clients, self.most_seed_clients_below_min
            )
        } else if self.servers_scored == 0 {
            "the seeds' servers were all ineligible (private or subscriber addresses, or not TCP/UDP)".to_string()
        } else {
            format!(
                "{} servers were scored and none reached --min-score {} (the best scored {:.3})",
                self.servers_scored,
                config.min_score,
                self.best_score.unwrap_or(0.0)
            )
        })
    }
}

/// Scores windows one after another.
pub struct Detector {
    model: Model,
    config: DetectConfig,
    /// What scoring did so far.
    pub stats: DetectStats,
    /// Recently reported servers with their seed bots, for shared-bot similarity.
    recent: std::collections::VecDeque<(ServerKey, FxHashSet<Addr>)>,
    /// Per server: seed clients seen in recent windows (at most `min_seed_clients`, each with the
    /// ends of the first and last windows it was seen in).
    seed_memory: rustc_hash::FxHashMap<ServerKey, Vec<SeenSeed>>,
    /// Per server and seed client (`pair_key`): the recent windows in which the server answered it.
    contact_memory: AnswerMemory,
    /// Servers with a seed client within `seed_memory_ms`: the ends of the first and the latest
    /// window in which they had one. Only their other clients are remembered.
    watched: rustc_hash::FxHashMap<ServerKey, (i64, i64)>,
    /// Per watched server and other client (`pair_key`): the recent windows it answered it.
    others_memory: AnswerMemory,
    /// Bots that the newest windows showed answered once, followed into the next window.
    hindsight: Hindsight,
}

/// Server and seed pairs a window showed answered but not (yet) returning, followed into the
/// next [`HINDSIGHT_WINDOWS`] windows: a bot that polls its C&C once an hour or two is one
/// contact in its first window, like a visit to a web site, until a later window shows it back.
/// Then that first window is scored again (`Detector::score_again`), its returning clients
/// counted with what came after.
#[derive(Debug, Default)]
struct Hindsight {
    /// The newest windows scored (oldest first, the newest last), each with its such pairs.
    followed: std::collections::VecDeque<(i64, FxHashSet<u64>)>,
    /// Pairs in `followed`, all windows together.
    pairs: usize,
    /// The earliest window whose pairs the newest showed again.
    score_again: Option<i64>,
}

/// Windows after its own in which a bot's return revises a window: two, for polls up to two
/// windows apart (Torii checks in every 40 to 110 minutes).
pub const HINDSIGHT_WINDOWS: i64 = 2;

/// Pairs followed into later windows at most (about 20 MB).
const MAX_HINDSIGHT_PAIRS: usize = 1_000_000;

/// A seed bot remembered as a server's client: the ends of the first and the last window it was
/// seen in. Both, so that a window scored again after later ones still counts a bot it counted
/// the first time (seen before it and again after it), and never one first seen after it.
#[derive(Debug, Clone, Copy)]
struct SeenSeed {
    addr: Addr,
    first_end_ms: i64,
    last_end_ms: i64,
}

/// A server's clients that come back (see `Detector::returning_clients`).
#[derive(Debug, Default, Clone, Copy)]
struct Returning {
    /// Seed clients that come back.
    seeds: u64,
    /// Other clients counted (on a watched server only; else 0).
    others: u64,
    /// Of those, the ones that come back.
    others_returning: u64,
}

/// Seed records a candidate cites at most, so one huge botnet cannot make a huge record.
pub const MAX_SEED_REFS: usize = 10_000;

/// Reported servers remembered for shared-bot similarity.
const RECENT: usize = 512;
/// Jaccard similarity of seed-bot sets from which two servers are said to share their bots.
const SHARED_BOTS: f64 = 0.3;

/// The Jaccard similarity of two seed-bot sets, 0 when they share fewer than two bots: with one
/// known bot every server it uses "shares all its bots" with every other, which says nothing.
fn jaccard(a: &FxHashSet<Addr>, b: &FxHashSet<Addr>) -> f64 {
    let common = a.iter().filter(|x| b.contains(*x)).count();
    let union = a.len() + b.len() - common;
    if union == 0 || common < 2 { 0.0 } else { common as f64 / union as f64 }
}

fn millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Detector {
    /// A detector with a model.
    pub fn new(model: Model, config: DetectConfig) -> Self {
        Detector {
            model,
            config,
            stats: DetectStats::default(),
            recent: Default::default(),
            seed_memory: Default::default(),
            contact_memory: AnswerMemory::new(MAX_CONTACT_MEMORY),
            watched: Default::default(),
            others_memory: AnswerMemory::new(MAX_OTHERS_MEMORY),
            hindsight: Hindsight::default(),
        }
    }

    /// The start of the earliest window whose scores the window just scored changed (its bots
    /// came back), to be scored again with those after it; taken once. Only a window scored for
    /// the first time can ask.
    pub fn score_again(&mut self) -> Option<i64> {
        self.hindsight.score_again.take()
    }

    /// Scores every eligible server of the window (for training and evaluation).
    pub fn score(&mut self, window: &Window, seeds: &Seeds) -> Vec<ScoredServer> {
        self.scored(window, seeds).into_iter().map(|(_, s, _)| s).collect()
    }

    fn scored(&mut self, window: &Window, seeds: &Seeds) -> Vec<(usize, ScoredServer, Option<f64>)> {
        let graph = graph::propagate(window, seeds);
        let whole = features::WindowContext::new(window);
        let mut out = Vec::new();
        self.stats.windows += 1;
        if graph.seed_clients.iter().any(|n| *n > 0) {
            self.stats.windows_with_seeds += 1;
        }
        // Both memories reach back the same time from the window's start: with `--seed-memory`
        // equal to the window length, the window before counts.
        let cutoff = window.start_ms.saturating_sub(self.config.seed_memory_ms);
        self.forget_seeds_before(cutoff);
        self.forget_contacts_before(cutoff);
        self.watched.retain(|_, (_, last)| *last > cutoff);
        let first_scoring = self.hindsight.followed.back().is_none_or(|(newest, _)| window.start_ms > *newest);
        if first_scoring {
            let h = &mut self.hindsight;
            let span = (window.end_ms - window.start_ms).max(1);
            let reach = window.start_ms.saturating_sub(HINDSIGHT_WINDOWS * span);
            while h.followed.front().is_some_and(|(start, _)| *start < reach) {
                let (_, gone) = h.followed.pop_front().expect("not empty");
                h.pairs -= gone.len();
            }
            h.followed.push_back((window.start_ms, FxHashSet::default()));
            h.score_again = None;
        }
        for (i, server) in window.servers.iter().enumerate() {
            // Eligibility first, so that the seed memory holds only servers that could be scored.
            // A server that is itself a known bot or a subscriber is a subscriber address: it
            // never becomes a candidate, so it can never be shared.
            if seeds.is_bot(server.key.addr) || window.is_subscriber(server.key.addr) {
                continue;
            }
            if !matches!(server.key.protocol, protocol::TCP | protocol::UDP) {
                continue;
            }
            if !self.config.include_private && is_private(server.key.addr) {
                continue;
            }
            let watched = self.watch(server.key, graph.seed_clients[i] > 0, window.end_ms);
            let returning = self.returning_clients(window, i, first_scoring, watched);
            let known_cnc = seeds.is_cnc(server.key.addr, server.key.port);
            let seed_clients = self.recent_seed_clients(window, i, graph.seed_clients[i]);
            if seed_clients < self.config.min_seed_clients && !known_cnc {
                if graph.seed_clients[i] > 0 {
                    self.stats.servers_below_min_seed_clients += 1;
                    self.stats.most_seed_clients_below_min =
                        self.stats.most_seed_clients_below_min.max(graph.seed_clients[i]);
                }
                continue;
            }
            let context = features::Context {
                graph_score: graph.server[i],
                seed_clients: graph.seed_clients[i],
                total_clients: graph::total_clients(window, i),
                returning_seed_clients: returning.seeds,
                other_clients: returning.others,
                returning_other_clients: returning.others_returning,
            };
            let (regularity, period) = features::periodicity(window, i);
            let features = features::vector(window, i, &context, &whole, regularity);
            let score = self.model.score(&features);
            self.stats.servers_scored += 1;
            self.stats.best_score = Some(self.stats.best_score.map_or(score, |best| best.max(score)));
            out.push((
                i,
                ScoredServer {
                    key: server.key,
                    features,
                    score,
                    seed_clients: context.seed_clients,
                    total_clients: context.total_clients,
                },
                period,
            ));
        }
        self.stats.contact_memory_forgotten_early = self.contact_memory.forgotten_early;
        self.stats.contact_memory_refused = self.contact_memory.refused;
        self.stats.others_memory_forgotten_early = self.others_memory.forgotten_early;
        self.stats.others_memory_refused = self.others_memory.refused;
        out
    }

    /// Drops remembered contacts last seen before `cutoff`.
    fn forget_contacts_before(&mut self, cutoff: i64) {
        self.contact_memory.forget_before(cutoff);
        self.others_memory.forget_before(cutoff);
    }

    /// Drops remembered seed clients last seen before `cutoff`.
    fn forget_seeds_before(&mut self, cutoff: i64) {
        if self.config.seed_memory_ms <= 0 {
            return;
        }
        self.seed_memory.retain(|_, seen| {
            seen.retain(|s| s.last_end_ms > cutoff);
            !seen.is_empty()
        });
    }

    /// Whether the server's other clients are followed: it has a seed client in this window
    /// (`has_seed`, which starts or refreshes the watch) or had one within `seed_memory_ms` before
    /// (and, when the window is scored again, not only after it). A C&C with a single known bot
    /// still has its other clients counted in the hours that bot does not poll; servers no known
    /// bot reaches (most of an ISP's) cost nothing.
    fn watch(&mut self, key: ServerKey, has_seed: bool, end_ms: i64) -> bool {
        if self.config.seed_memory_ms <= 0 {
            return has_seed;
        }
        if has_seed {
            if let Some((first, last)) = self.watched.get_mut(&key) {
                *first = (*first).min(end_ms);
                *last = (*last).max(end_ms);
            } else if self.watched.len() < MAX_SEED_MEMORY {
                self.watched.insert(key, (end_ms, end_ms));
            } else {
                self.stats.watch_refused += 1;
            }
            return true;
        }
        self.watched.get(&key).is_some_and(|(first, _)| *first <= end_ms)
    }

    /// Clients of server `i` that keep coming back: contacts at least twice in this window, a
    /// session that stays open for half of it, or an answered contact in another window within
    /// `seed_memory_ms` (before it; after it too when it is scored again). Polls an hour or more
    /// apart (Torii) and sessions Zeek logs once an hour are one record per bot per window; only
    /// the windows around show that they recur. Counted for the seed clients and, on a watched
    /// server, for the others: a botnet's unknown bots come back like its known ones, a web
    /// site's other visitors mostly do not. Remembers this window's answered contacts for the
    /// windows after, and, on a first scoring, follows the seeds that did not return into the
    /// next window (`Hindsight`).
    fn returning_clients(&mut self, window: &Window, i: usize, first_scoring: bool, watched: bool) -> Returning {
        let server = &window.servers[i];
        let span = (window.end_ms - window.start_ms).max(1);
        let memory = self.config.seed_memory_ms;
        let since = window.start_ms.saturating_sub(memory);
        let after = window.end_ms.saturating_add(memory);
        let mut counted = Returning::default();
        for e in &server.edges {
            let edge = &window.edges[*e as usize];
            let (addr, bot) = window.clients[edge.client as usize];
            if !bot && !watched {
                continue;
            }
            let pair = pair_key(&server.key, addr);
            let remembered = if bot { &self.contact_memory } else { &self.others_memory };
            // Windows after this one are remembered only when it is scored again.
            let elsewhere = remembered.answered_between(pair, since, window.start_ms, span)
                || remembered.answered_between(pair, window.end_ms, after, span);
            // In contact for half of this window, counted inside it (a session Zeek logs once
            // may have begun before the window and end after it).
            let stayed = edge.last_end_ms.min(window.end_ms) - edge.first_ms.max(window.start_ms) >= span / 2;
            let returns = edge.contacts >= 2 || stayed || elsewhere;
            if bot {
                counted.seeds += u64::from(returns);
            } else {
                counted.others += 1;
                counted.others_returning += u64::from(returns);
            }
            if edge.answered() && memory > 0 {
                if bot && first_scoring {
                    self.follow(pair, returns);
                }
                let memory = if bot { &mut self.contact_memory } else { &mut self.others_memory };
                memory.remember(pair, window, span);
            }
        }
        counted
    }

    /// On the newest window's first scoring: asks for the earlier windows that answered this
    /// pair without the bot returning there to be scored again (once: the pair is then no longer
    /// followed there), and follows the pair from this window when it does not return here
    /// either.
    fn follow(&mut self, pair: u64, returns: bool) {
        let h = &mut self.hindsight;
        let Some(((_, newest), earlier)) = h.followed.make_contiguous().split_last_mut() else { return };
        for (start, pairs) in earlier.iter_mut() {
            if pairs.remove(&pair) {
                h.pairs -= 1;
                h.score_again = Some(h.score_again.map_or(*start, |s| s.min(*start)));
            }
        }
        if returns {
            return;
        }
        if h.pairs >= MAX_HINDSIGHT_PAIRS {
            self.stats.hindsight_untracked += 1;
        } else if newest.insert(pair) {
            h.pairs += 1;
        }
    }

    /// Distinct seed clients of server `i` in this window and, when it has one here, in the
    /// remembered windows before (counted up to `min_seed_clients`, which is all that matters).
    fn recent_seed_clients(&mut self, window: &Window, i: usize, in_window: u64) -> u64 {
        let wanted = self.config.min_seed_clients as usize;
        if in_window == 0 || in_window >= self.config.min_seed_clients || self.config.seed_memory_ms <= 0 {
            return in_window;
        }
        let server = &window.servers[i];
        // Full: servers already remembered keep counting; new ones wait until some are forgotten.
        if self.seed_memory.len() >= MAX_SEED_MEMORY && !self.seed_memory.contains_key(&server.key) {
            return in_window;
        }
        let seen = self.seed_memory.entry(server.key).or_insert_with(|| Vec::with_capacity(wanted));
        for e in &server.edges {
            let (addr, bot) = window.clients[window.edges[*e as usize].client as usize];
            if !bot {
                continue;
            }
            if let Some(entry) = seen.iter_mut().find(|s| s.addr == addr) {
                entry.first_end_ms = entry.first_end_ms.min(window.end_ms);
                entry.last_end_ms = entry.last_end_ms.max(window.end_ms);
            } else if seen.len() < wanted {
                seen.push(SeenSeed { addr, first_end_ms: window.end_ms, last_end_ms: window.end_ms });
            }
        }
        // A window scored again after later ones counts what was seen up to its end (within the
        // memory), whether or not the bot was seen again since.
        let since = window.start_ms.saturating_sub(self.config.seed_memory_ms);
        let counted = seen.iter().filter(|s| s.first_end_ms <= window.end_ms && s.last_end_ms > since).count();
        (counted as u64).max(in_window)
    }

    /// The window's C&C candidates, best first.
    pub fn candidates(&mut self, window: &Window, seeds: &Seeds) -> Vec<CncCandidate> {
        let mut scored = self.scored(window, seeds);
        scored.retain(|(_, s, _)| s.score >= self.config.min_score);
        self.stats.reported += scored.len() as u64;
        scored.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.1.key.cmp(&b.1.key)));
        // The seed bots of each reported server: servers sharing most of them belong to one
        // botnet (a C&C and its replacement, or its victims); said in the evidence.
        let bot_sets: Vec<FxHashSet<Addr>> = scored
            .iter()
            .map(|(i, _, _)| {
                window.servers[*i]
                    .edges
                    .iter()
                    .map(|e| &window.clients[window.edges[*e as usize].client as usize])
                    .filter(|(_, bot)| *bot)
                    .map(|(addr, _)| *addr)
                    .collect()
            })
            .collect();
        let shared: Vec<Option<(ServerKey, f64, bool)>> = scored
            .iter()
            .enumerate()
            .map(|(n, (_, s, _))| {
                let now = scored
                    .iter()
                    .zip(&bot_sets)
                    .filter(|((_, other, _), _)| other.key != s.key)
                    .map(|((_, other, _), set)| (other.key, jaccard(&bot_sets[n], set), true));
                let before = self
                    .recent
                    .iter()
                    .filter(|(key, _)| *key != s.key)
                    .map(|(key, set)| (*key, jaccard(&bot_sets[n], set), false));
                now.chain(before).filter(|(_, j, _)| *j >= SHARED_BOTS).max_by(|a, b| a.1.total_cmp(&b.1))
            })
            .collect();
        for ((_, s, _), set) in scored.iter().zip(&bot_sets) {
            self.recent.retain(|(key, _)| *key != s.key);
            if self.recent.len() >= RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back((s.key, set.clone()));
        }
        scored
            .into_iter()
            .zip(shared)
            .enumerate()
            .map(|(rank, ((i, s, period), shared))| {
                let server = &window.servers[i];
                let f = &s.features;
                let (seed_clients, total_clients) = (s.seed_clients, s.total_clients);
                let mut methods = Vec::new();
                if f[features::GRAPH_SCORE] >= 0.5 {
                    methods.push(DetectionMethod::Graph);
                }
                // The model's own verdict, whatever --min-score lets through.
                if s.score >= 0.5 {
                    methods.push(DetectionMethod::Model);
                }
                if seeds.is_cnc(s.key.addr, s.key.port) {
                    methods.push(DetectionMethod::Feed);
                }
                let mut seed_refs: Vec<Uuid> = bot_sets[rank].iter().filter_map(|a| seeds.reference(*a)).collect();
                seed_refs.sort_unstable();
                seed_refs.truncate(MAX_SEED_REFS);
                let mut evidence = vec![
                    format!("{seed_clients} of {total_clients} clients are known bots"),
                    format!("graph score {:.2}", f[features::GRAPH_SCORE]),
                ];
                if let Some(p) = period {
                    evidence.push(format!("contacts recur every {p:.0} s (regularity {:.2})", f[features::REGULARITY]));
                }
                if let Some((other, similarity, same_window)) = shared {
                    evidence.push(format!(
                        "shares {:.0} % of its known bots with {}:{} ({})",
                        similarity * 100.0,
                        other.addr.to_ip(),
                        other.port,
                        if same_window {
                            "also a candidate in this window"
                        } else {
                            "a candidate in an earlier window"
                        }
                    ));
                }
                for (name, weight) in self.model.top_contributions(f, 3) {
                    if weight > 0.0 {
                        evidence.push(format!("{name} raises the score by {weight:.2}"));
                    }
                }
                // What held it back most, so a low score can be read too.
                if let Some((name, weight)) = self.model.bottom_contribution(f)
                    && weight < 0.0
                {
                    evidence.push(format!("{name} lowers the score by {:.2}", -weight));
                }
                CncCandidate {
                    id: None,
                    window_start: millis(window.start_ms),
                    window_end: millis(window.end_ms),
                    ip: s.key.addr.to_ip(),
                    port: s.key.port,
                    protocol: if s.key.protocol == protocol::UDP { Transport::Udp } else { Transport::Tcp },
                    // Five decimals, and never printed as certainty: a calibrated model reaches
                    // 0.999995 only on overwhelming evidence, and "1.0" would tie such servers.
                    // (Four were too few once a botnet's unknown bots counted too: a Mirai C&C
                    // whose bots all stay connected scores 0.99995.)
                    score: ((s.score * 100_000.0).round() / 100_000.0).min(0.99999),
                    rank: rank as u32 + 1,
                    methods,
                    seed_clients,
                    total_clients: total_clients.max(seed_clients),
                    seed_refs,
                    flows: server.contacts,
                    first_seen: millis(server.first_ms.max(window.start_ms)),
                    last_seen: millis(server.last_ms.min(window.end_ms - 1).max(server.first_ms.max(window.start_ms))),
                    periodicity: period.map(|p| (p * 10.0).round() / 10.0),
                    evidence,
                    family: None,
                    sensor: self.config.sensor.clone(),
                    revised_at: window.revised_at_ms.map(millis),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
