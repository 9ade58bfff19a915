//! One window of correlation on plain data: servers sharing their bots become one botnet, and each
//! botnet takes the serial number of the earlier botnet it continues.
//!
//! The rules, as docs/center.md states them:
//! * Two C&C servers of a window belong to one botnet when the Jaccard similarity of their bot sets
//!   is at least [`SAME_BOTNET`] (a botnet using two servers at once, or moving within the window).
//! * A botnet's *signature* is its bots plus its servers. It continues an earlier botnet when their
//!   signatures overlap by at least [`CONTINUES`] of the smaller one: so a botnet keeps its serial
//!   when its C&C moves (same bots, new server) and when it grows or shrinks.
//! * Pairs are matched greedily, largest overlap first. An earlier botnet matched by two or more
//!   current ones has *split*: the best match keeps the serial, the others get new ones. A current
//!   botnet matching two or more earlier ones is a *merge*: it keeps the best match's serial.

use std::net::IpAddr;

use botscope_model::{BotnetEvent, BotnetWindow, CncEndpoint, Lifecycle, Timestamp, Transport};
use rustc_hash::{FxHashMap, FxHashSet};

/// Bot-set Jaccard similarity from which two servers of one window are one botnet.
pub const SAME_BOTNET: f64 = 0.5;
/// Signature overlap (shared share of the smaller signature) from which a botnet continues another.
pub const CONTINUES: f64 = 0.5;
/// Growth or shrinkage of the bot count, as a fraction, that is worth an event.
pub const SIZE_CHANGE: f64 = 0.25;
/// A bot talking to more servers than this says nothing about which of them belong together.
const MAX_SERVERS_PER_BOT: usize = 64;

/// A server's address, port and transport.
pub type ServerKey = (IpAddr, u16, Transport);

/// One C&C server as the window's reports describe it.
#[derive(Debug, Clone)]
pub struct ServerInput {
    /// The server.
    pub key: ServerKey,
    /// Its known bots, as indexes into [`WindowInput::bots`].
    pub bots: Vec<u32>,
    /// Who reported it, with the best score each gave.
    pub reporters: Vec<(String, f64)>,
    /// Malware family, when a report named one.
    pub family: Option<String>,
    /// First and last use in the window.
    pub first_seen: Timestamp,
    /// Last use in the window.
    pub last_seen: Timestamp,
}

/// Everything one window's correlation needs.
#[derive(Debug, Clone, Default)]
pub struct WindowInput {
    /// Window start.
    pub start: Timestamp,
    /// Window end.
    pub end: Timestamp,
    /// The bots the servers refer to.
    pub bots: Vec<IpAddr>,
    /// The window's C&C servers.
    pub servers: Vec<ServerInput>,
}

/// An earlier botnet the window may continue (its most recent window).
#[derive(Debug, Clone)]
pub struct Earlier {
    /// Its serial.
    pub serial: String,
    /// Its bots.
    pub bots: Vec<IpAddr>,
    /// Its servers.
    pub servers: Vec<ServerKey>,
}

impl From<&BotnetWindow> for Earlier {
    fn from(window: &BotnetWindow) -> Self {
        Earlier {
            serial: window.serial.clone(),
            bots: window.bots.clone(),
            servers: window.cnc.iter().map(|c| (c.ip, c.port, c.transport)).collect(),
        }
    }
}

/// Hands out serial numbers `BN-YYYY-NNNN`, never one that was given before.
#[derive(Debug, Clone, Default)]
pub struct Serials {
    last: FxHashMap<i32, u32>,
}

impl Serials {
    /// A counter that continues after every serial in `taken`.
    pub fn after<'a>(taken: impl IntoIterator<Item = &'a str>) -> Self {
        let mut serials = Serials::default();
        for serial in taken {
            if let Some((year, number)) = parse_serial(serial) {
                let last = serials.last.entry(year).or_default();
                *last = (*last).max(number);
            }
        }
        serials
    }

    /// The next serial of `year`.
    pub fn next(&mut self, year: i32) -> String {
        let last = self.last.entry(year).or_default();
        *last += 1;
        format!("BN-{year:04}-{:04}", *last)
    }
}

fn parse_serial(serial: &str) -> Option<(i32, u32)> {
    let rest = serial.strip_prefix("BN-")?;
    let (year, number) = rest.split_once('-')?;
    Some((year.parse().ok()?, number.parse().ok()?))
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Token {
    Bot(IpAddr),
    Server(IpAddr, u16, Transport),
}

fn signature(bots: &[IpAddr], servers: &[ServerKey]) -> FxHashSet<Token> {
    bots.iter()
        .map(|b| Token::Bot(*b))
        .chain(servers.iter().map(|(ip, port, t)| Token::Server(*ip, *port, *t)))
        .collect()
}

struct UnionFind(Vec<u32>);

impl UnionFind {
    fn find(&mut self, mut x: u32) -> u32 {
        while self.0[x as usize] != x {
            let parent = self.0[x as usize];
            self.0[x as usize] = self.0[parent as usize];
            x = parent;
        }
        x
    }
    fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.0[a.max(b) as usize] = a.min(b);
        }
    }
}

/// Groups the window's servers into botnets (lists of server indexes, in first-server order).
pub fn cluster(input: &WindowInput) -> Vec<Vec<usize>> {
    let mut servers_of_bot: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for (s, server) in input.servers.iter().enumerate() {
        let mut seen = FxHashSet::default();
        for bot in &server.bots {
            if seen.insert(*bot) {
                servers_of_bot.entry(*bot).or_default().push(s as u32);
            }
        }
    }
    let sizes: Vec<usize> = input.servers.iter().map(|s| s.bots.iter().collect::<FxHashSet<_>>().len()).collect();
    let mut shared: FxHashMap<(u32, u32), u32> = FxHashMap::default();
    for servers in servers_of_bot.values() {
        if servers.len() > MAX_SERVERS_PER_BOT {
            continue;
        }
        for (i, a) in servers.iter().enumerate() {
            for b in &servers[i + 1..] {
                *shared.entry((*a, *b)).or_default() += 1;
            }
        }
    }
    let mut sets = UnionFind((0..input.servers.len() as u32).collect());
    let mut pairs: Vec<_> = shared.into_iter().collect();
    pairs.sort_unstable();
    for ((a, b), common) in pairs {
        let union = sizes[a as usize] + sizes[b as usize] - common as usize;
        if union > 0 && common as f64 / union as f64 >= SAME_BOTNET {
            sets.union(a, b);
        }
    }
    let mut groups: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
    for s in 0..input.servers.len() {
        groups.entry(sets.find(s as u32)).or_default().push(s);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort_unstable_by_key(|g| g[0]);
    groups
}

/// A botnet of this window before it has a serial.
struct Formed {
    bots: Vec<IpAddr>,
    servers: Vec<usize>,
    signature: FxHashSet<Token>,
}

/// Correlates one window: clusters its servers, matches each botnet to the `earlier` ones and
/// gives it a serial (continued or new).
pub fn correlate_window(input: &WindowInput, earlier: &[Earlier], serials: &mut Serials) -> Vec<BotnetWindow> {
    let formed: Vec<Formed> = cluster(input)
        .into_iter()
        .map(|servers| {
            let mut bots: Vec<IpAddr> =
                servers.iter().flat_map(|s| input.servers[*s].bots.iter().map(|b| input.bots[*b as usize])).collect();
            bots.sort_unstable();
            bots.dedup();
            let keys: Vec<ServerKey> = servers.iter().map(|s| input.servers[*s].key).collect();
            let signature = signature(&bots, &keys);
            Formed { bots, servers, signature }
        })
        .collect();
    let earlier_signatures: Vec<FxHashSet<Token>> = earlier.iter().map(|e| signature(&e.bots, &e.servers)).collect();

    // Overlaps through an inverted index: only pairs sharing something are ever compared.
    let mut holders: FxHashMap<Token, Vec<u32>> = FxHashMap::default();
    for (e, sig) in earlier_signatures.iter().enumerate() {
        for token in sig {
            holders.entry(*token).or_default().push(e as u32);
        }
    }
    let mut pairs: Vec<(f64, usize, usize, usize)> = Vec::new();
    for (c, now) in formed.iter().enumerate() {
        let mut common: FxHashMap<u32, usize> = FxHashMap::default();
        for token in &now.signature {
            for e in holders.get(token).into_iter().flatten() {
                *common.entry(*e).or_default() += 1;
            }
        }
        for (e, shared) in common {
            let smaller = now.signature.len().min(earlier_signatures[e as usize].len()).max(1);
            let overlap = shared as f64 / smaller as f64;
            if overlap >= CONTINUES {
                pairs.push((overlap, shared, c, e as usize));
            }
        }
    }
    // Largest overlap first; ties by more shared, then by order (older serial first).
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3)));
    let mut continues: Vec<Option<usize>> = vec![None; formed.len()];
    let mut taken = vec![false; earlier.len()];
    for (_, _, c, e) in &pairs {
        if continues[*c].is_none() && !taken[*e] {
            continues[*c] = Some(*e);
            taken[*e] = true;
        }
    }

    let year = input.start.format("%Y").to_string().parse().unwrap_or(1970);
    let mut out = Vec::with_capacity(formed.len());
    for (c, botnet) in formed.iter().enumerate() {
        let predecessors: Vec<usize> = pairs.iter().filter(|p| p.2 == c).map(|p| p.3).collect();
        let mut events = Vec::new();
        let event =
            |event, serials: Vec<String>, detail: String| BotnetEvent { at: input.start, event, serials, detail };
        let serial = match continues[c] {
            Some(e) => {
                let before = &earlier[e];
                let (was, now) = (before.bots.len() as f64, botnet.bots.len() as f64);
                if now > was * (1.0 + SIZE_CHANGE) && now > was {
                    events.push(event(Lifecycle::Grew, vec![], format!("{} -> {} bots", was, now)));
                } else if now < was * (1.0 - SIZE_CHANGE) {
                    events.push(event(Lifecycle::Shrank, vec![], format!("{} -> {} bots", was, now)));
                }
                let mut old: Vec<ServerKey> = before.servers.clone();
                let mut new: Vec<ServerKey> = botnet.servers.iter().map(|s| input.servers[*s].key).collect();
                old.sort_unstable();
                new.sort_unstable();
                if old != new {
                    events.push(event(
                        Lifecycle::CncChanged,
                        vec![],
                        format!("{} -> {}", endpoints(&old), endpoints(&new)),
                    ));
                }
                // Other earlier botnets that continue only in this one were merged into it.
                let merged: Vec<String> = predecessors
                    .iter()
                    .filter(|p| **p != e && !continues.contains(&Some(**p)))
                    .map(|p| earlier[*p].serial.clone())
                    .collect();
                if !merged.is_empty() {
                    events.push(event(Lifecycle::Merged, merged.clone(), format!("absorbed {}", merged.join(", "))));
                }
                before.serial.clone()
            }
            None => {
                let serial = serials.next(year);
                match predecessors.first() {
                    Some(p) => events.push(event(
                        Lifecycle::Split,
                        vec![earlier[*p].serial.clone()],
                        format!("split from {}", earlier[*p].serial),
                    )),
                    None => events.push(event(Lifecycle::Emerged, vec![], String::new())),
                }
                serial
            }
        };
        out.push(window_record(input, botnet, serial, events));
    }
    out
}

fn endpoints(keys: &[ServerKey]) -> String {
    let shown: Vec<String> = keys.iter().take(5).map(|(ip, port, t)| format!("{ip}:{port}/{}", t.as_str())).collect();
    let more = keys.len().saturating_sub(5);
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

fn window_record(input: &WindowInput, botnet: &Formed, serial: String, events: Vec<BotnetEvent>) -> BotnetWindow {
    let servers: Vec<&ServerInput> = botnet.servers.iter().map(|s| &input.servers[*s]).collect();
    // Independent reporters raise confidence: 1 - product of (1 - best score of each reporter).
    let mut best: FxHashMap<&str, f64> = FxHashMap::default();
    for server in &servers {
        for (reporter, score) in &server.reporters {
            let slot = best.entry(reporter.as_str()).or_default();
            *slot = slot.max(score.clamp(0.0, 1.0));
        }
    }
    let confidence = 1.0 - best.values().map(|s| 1.0 - s).product::<f64>();
    let mut reporters: Vec<String> = best.keys().map(|r| r.to_string()).collect();
    reporters.sort_unstable();
    let mut families: FxHashMap<&str, usize> = FxHashMap::default();
    for family in servers.iter().filter_map(|s| s.family.as_deref()) {
        *families.entry(family).or_default() += 1;
    }
    let family = families.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0))).map(|(f, _)| f.to_string());
    let mut cnc: Vec<CncEndpoint> = servers
        .iter()
        .map(|s| CncEndpoint {
            ip: s.key.0,
            port: s.key.1,
            transport: s.key.2,
            first_seen: s.first_seen,
            last_seen: s.last_seen,
        })
        .collect();
    cnc.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then((a.ip, a.port).cmp(&(b.ip, b.port))));
    BotnetWindow {
        id: None,
        serial,
        window_start: input.start,
        window_end: input.end,
        family,
        bots: botnet.bots.clone(),
        cnc,
        events,
        reporters,
        confidence: (confidence * 10_000.0).round() / 10_000.0,
    }
}

#[cfg(test)]
mod tests;
