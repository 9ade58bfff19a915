//! `botscope correlate`: bots, C&C reports from every ISP and feeds, tied into botnets per window.
//!
//! Bots are the telescope's infected hosts. A flow analyser's C&C record cites, by record id, the
//! seed records whose hosts talked to the server (`seed_refs`); that is how the centre learns
//! which bots belong to which server without the ISP ever sending an address. Feeds that name a
//! reported server add themselves as reporters (raising confidence) and its family.
//!
//! A window is correlated once, when it has ended at least `settle` ago; its botnets are then
//! final, and later windows are matched against them.

pub mod cluster;
pub mod overlap;
pub mod reporters;
pub mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use botscope_model::{BotnetWindow, CncCandidate, FeedEntry, FeedRole, Kind, Record, Timestamp};
use botscope_store::{RecordQuery, Store, all_records};
use rustc_hash::FxHashMap;
use serde::Serialize;
use uuid::Uuid;

use crate::CenterError;
pub use cluster::ServerKey;
use cluster::{Earlier, Serials, ServerInput, WindowInput};
pub use overlap::{ReporterFigure, ReporterOverlap, TOP_REPORTERS, reporter_overlap, reporter_overlap_of};
use reporters::Reporters;

/// The score a feed's listing counts as when combining reporters' confidence.
pub const FEED_SCORE: f64 = 0.9;

/// How correlation runs.
#[derive(Debug, Clone)]
pub struct CorrelateConfig {
    /// Window length, seconds (windows are aligned to the Unix epoch, so days start at 00:00 UTC).
    pub window_secs: i64,
    /// Earlier windows a botnet may be matched across (a botnet quiet for longer gets a new serial).
    pub lookback: usize,
    /// How long after its end a window is correlated, seconds: time for late reports to arrive.
    pub settle_secs: i64,
    /// The current time.
    pub now: Timestamp,
}

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CorrelateReport {
    /// Windows correlated in this run.
    pub windows: usize,
    /// Windows already correlated before (left as they were).
    pub windows_already_done: usize,
    /// Windows not yet settled.
    pub windows_waiting: usize,
    /// Botnet-windows written.
    pub botnet_windows: usize,
    /// New serial numbers given.
    pub new_serials: Vec<String>,
    /// Serials carried into a new window.
    pub continued: usize,
    /// Botnets known in all (after this run).
    pub botnets: usize,
    /// C&C seed references that named no stored record (skipped).
    pub unknown_refs: u64,
    /// Per reporter (flow analyser), the distinct C&C servers it reported: the
    /// [`TOP_REPORTERS`] with the most.
    pub per_reporter: BTreeMap<String, usize>,
    /// Per pair of those reporters, the C&C servers both reported.
    pub reporter_overlap: Vec<ReporterOverlap>,
    /// Reporters left out of `per_reporter` and `reporter_overlap`.
    pub other_reporters: usize,
    /// Distinct C&C servers the reporters left out reported.
    pub other_reporters_servers: usize,
}

fn align(time: Timestamp, window_secs: i64) -> i64 {
    time.timestamp().div_euclid(window_secs) * window_secs
}

fn at(secs: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// Loads everything correlation needs, correlates every settled window not yet done, and stores
/// the new windows and every botnet's summary.
pub async fn run(store: &impl Store, config: &CorrelateConfig) -> Result<CorrelateReport, CenterError> {
    if config.window_secs <= 0 {
        return Err(CenterError::Invalid("the window must be at least one second".into()));
    }
    let of_kind = |kind| RecordQuery { kind: Some(kind), ..Default::default() };
    // Reporters are counted by token: every name a token writes under stands for that token.
    let reporters = Reporters::load(store).await?;
    let candidates: Vec<CncCandidate> = all_records(store, of_kind(Kind::Cnc))
        .await?
        .into_iter()
        .filter_map(Record::into_payload::<CncCandidate>)
        .map(|mut c| {
            c.sensor = Some(reporters.of_sensor(c.sensor.as_deref()));
            c
        })
        .collect();
    let mut stored: Vec<BotnetWindow> = all_records(store, of_kind(Kind::BotnetWindow))
        .await?
        .into_iter()
        .filter_map(Record::into_payload::<BotnetWindow>)
        .collect();
    let w = config.window_secs;
    let settled_before = config.now.timestamp() - config.settle_secs;
    let done: BTreeSet<i64> = stored.iter().map(|s| align(s.window_start, w)).collect();
    let to_do = candidates
        .iter()
        .map(|c| align(c.window_start, w))
        .any(|start| !done.contains(&start) && start + w <= settled_before);
    // The bots are read only when a window needs them: by id and address, no record bodies.
    let mut seed_ip: FxHashMap<Uuid, IpAddr> = FxHashMap::default();
    if to_do {
        for kind in [Kind::Activity, Kind::Finding] {
            seed_ip.extend(store.record_addresses(kind).await?);
        }
    }
    let feeds: Vec<FeedEntry> = all_records(store, of_kind(Kind::FeedEntry))
        .await?
        .into_iter()
        .filter_map(Record::into_payload::<FeedEntry>)
        .filter(|f| f.role == FeedRole::Cnc)
        .collect();
    let botnet_serials: Vec<String> =
        botscope_store::all_of::<botscope_model::Botnet>(store).await?.into_iter().map(|b| b.serial).collect();

    let figure = reporter_overlap(&candidates, TOP_REPORTERS);
    let mut report = CorrelateReport {
        per_reporter: figure.per_reporter,
        reporter_overlap: figure.overlap,
        other_reporters: figure.others,
        other_reporters_servers: figure.others_servers,
        ..Default::default()
    };
    let mut by_window: BTreeMap<i64, Vec<&CncCandidate>> = BTreeMap::new();
    for candidate in &candidates {
        by_window.entry(align(candidate.window_start, w)).or_default().push(candidate);
    }
    let mut serials =
        Serials::after(botnet_serials.iter().map(String::as_str).chain(stored.iter().map(|s| s.serial.as_str())));
    let mut fresh: Vec<BotnetWindow> = Vec::new();
    for (start, reports) in &by_window {
        if done.contains(start) {
            report.windows_already_done += 1;
            continue;
        }
        if start + w > settled_before {
            report.windows_waiting += 1;
            continue;
        }
        let input = window_input(*start, w, reports, &feeds, &reporters, &seed_ip, &mut report.unknown_refs);
        let earlier = earlier_botnets(stored.iter().chain(&fresh), *start, w, config.lookback);
        let formed = cluster::correlate_window(&input, &earlier, &mut serials);
        report.windows += 1;
        for window in &formed {
            if window
                .events
                .iter()
                .any(|e| matches!(e.event, botscope_model::Lifecycle::Emerged | botscope_model::Lifecycle::Split))
            {
                report.new_serials.push(window.serial.clone());
            } else {
                report.continued += 1;
            }
        }
        fresh.extend(formed);
    }
    report.botnet_windows = fresh.len();
    if fresh.is_empty() {
        report.botnets = botnet_serials.len();
        return Ok(report);
    }
    let fresh_records: Vec<Record> = fresh
        .iter()
        .cloned()
        .map(|w| {
            let mut record = Record::BotnetWindow(w);
            record.ensure_id();
            record
        })
        .collect();
    store.upsert_records(&fresh_records).await?;
    stored.extend(fresh);
    let mut processed: Vec<Timestamp> = stored.iter().map(|s| s.window_start).collect();
    // Windows with reports but no botnet still count as seen (for "gone").
    processed.extend(by_window.keys().filter(|s| **s + w <= settled_before).map(|s| at(*s)));
    let botnets = summary::summarize(&stored, &processed, config.lookback);
    report.botnets = botnets.len();
    let records: Vec<Record> = botnets
        .into_iter()
        .map(|b| {
            let mut record = Record::Botnet(b);
            record.ensure_id();
            record
        })
        .collect();
    store.upsert_records(&records).await?;
    Ok(report)
}

fn window_input(
    start: i64,
    w: i64,
    reports: &[&CncCandidate],
    feeds: &[FeedEntry],
    reporters: &Reporters,
    seed_ip: &FxHashMap<Uuid, IpAddr>,
    unknown_refs: &mut u64,
) -> WindowInput {
    let (start_at, end_at) = (at(start), at(start + w));
    let mut input = WindowInput { start: start_at, end: end_at, ..Default::default() };
    let mut bot_index: FxHashMap<IpAddr, u32> = FxHashMap::default();
    let mut server_index: FxHashMap<ServerKey, usize> = FxHashMap::default();
    for report in reports {
        let key = (report.ip, report.port, report.protocol);
        let s = *server_index.entry(key).or_insert_with(|| {
            input.servers.push(ServerInput {
                key,
                bots: Vec::new(),
                reporters: Vec::new(),
                family: None,
                first_seen: report.first_seen,
                last_seen: report.last_seen,
            });
            input.servers.len() - 1
        });
        let server = &mut input.servers[s];
        server.first_seen = server.first_seen.min(report.first_seen);
        server.last_seen = server.last_seen.max(report.last_seen);
        if server.family.is_none() {
            server.family = report.family.clone();
        }
        let reporter = report.sensor.clone().unwrap_or_else(|| "unnamed".into());
        match server.reporters.iter_mut().find(|(name, _)| *name == reporter) {
            Some((_, score)) => *score = score.max(report.score),
            None => server.reporters.push((reporter, report.score)),
        }
        for reference in &report.seed_refs {
            let Some(ip) = seed_ip.get(reference) else {
                *unknown_refs += 1;
                continue;
            };
            let b = *bot_index.entry(*ip).or_insert_with(|| {
                input.bots.push(*ip);
                input.bots.len() as u32 - 1
            });
            server.bots.push(b);
        }
    }
    for feed in feeds {
        let Some(key) = feed.endpoint() else { continue };
        // A feed naming the server at any time confirms it; when it named it is what
        // `report feeds` compares.
        if let Some(s) = server_index.get(&key) {
            let server = &mut input.servers[*s];
            let reporter = reporters.of_feed(&feed.source);
            match server.reporters.iter_mut().find(|(name, _)| *name == reporter) {
                Some((_, score)) => *score = score.max(FEED_SCORE),
                None => server.reporters.push((reporter, FEED_SCORE)),
            }
            if server.family.is_none() {
                server.family = feed.family.clone();
            }
        }
    }
    input
}

/// The latest window of each serial within `lookback` windows before `start`.
fn earlier_botnets<'a>(
    windows: impl Iterator<Item = &'a BotnetWindow>,
    start: i64,
    w: i64,
    lookback: usize,
) -> Vec<Earlier> {
    let from = start - w * lookback as i64;
    let mut latest: BTreeMap<&str, &BotnetWindow> = BTreeMap::new();
    for window in windows {
        let s = window.window_start.timestamp();
        if s < from || s >= start {
            continue;
        }
        let slot = latest.entry(window.serial.as_str()).or_insert(window);
        if window.window_start > slot.window_start {
            *slot = window;
        }
    }
    latest.into_values().map(Earlier::from).collect()
}
