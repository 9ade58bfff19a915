//! Outside lists of C&C servers and bots, read into `feed_entry` records kept apart by source.
//!
//! Formats (docs/feeds.md has an example of each):
//! * `threatfox-csv`: abuse.ch ThreatFox's CSV export; `ip:port` IOCs of threat type `botnet_cc`
//!   (C&C) and `payload_delivery` (download servers).
//! * `feodo-csv`: abuse.ch Feodo Tracker's IP blocklist CSV (C&C servers).
//! * `stix`: a STIX 2.1 bundle; indicators whose pattern compares `ipv4-addr:value`,
//!   `ipv6-addr:value` or `network-traffic:dst_ref.value` (with `dst_port`), and the malware they
//!   indicate (by relationship) as the family.
//! * `plain`: one `ADDRESS[:PORT] [FAMILY]` per line, `#` comments.
//!
//! Every reader is bounded (lines of at most 64 KiB, STIX bundles of at most 256 MiB) and counts
//! what it skips: lines it cannot read, IOC types it does not import.

mod plain;
mod stix;
mod table;

use std::io::BufRead;

use botscope_model::{FeedEntry, FeedRole, Timestamp};
use serde::Serialize;

use crate::CenterError;

/// Longest line read; longer ones are skipped.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest STIX bundle read.
pub const MAX_BUNDLE: u64 = 256 << 20;

/// A feed format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// ThreatFox CSV export.
    ThreatfoxCsv,
    /// Feodo Tracker IP blocklist CSV.
    FeodoCsv,
    /// A STIX 2.1 bundle.
    Stix,
    /// Addresses, one per line.
    Plain,
}

impl std::str::FromStr for FeedFormat {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "threatfox-csv" => Ok(FeedFormat::ThreatfoxCsv),
            "feodo-csv" => Ok(FeedFormat::FeodoCsv),
            "stix" => Ok(FeedFormat::Stix),
            "plain" => Ok(FeedFormat::Plain),
            other => Err(format!("unknown feed format {other:?} (expected threatfox-csv, feodo-csv, stix or plain)")),
        }
    }
}

impl FeedFormat {
    /// The source name entries get when none is given.
    pub fn default_source(self) -> &'static str {
        match self {
            FeedFormat::ThreatfoxCsv => "threatfox",
            FeedFormat::FeodoCsv => "feodo",
            FeedFormat::Stix => "stix",
            FeedFormat::Plain => "plain",
        }
    }
}

/// A line (or object) that could not be read.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FeedProblem {
    /// Line number (or object index for STIX), from 1.
    pub at: usize,
    /// Why.
    pub reason: String,
}

/// What reading a feed gave.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedRead {
    /// The entries.
    #[serde(skip)]
    pub entries: Vec<FeedEntry>,
    /// Entries of a kind not imported (domains, URLs, hashes, other threat types).
    pub not_imported: u64,
    /// Lines or objects that could not be read.
    pub bad: u64,
    /// The first problems.
    pub problems: Vec<FeedProblem>,
}

impl FeedRead {
    pub(crate) fn problem(&mut self, at: usize, reason: impl Into<String>) {
        self.bad += 1;
        if self.problems.len() < 20 {
            self.problems.push(FeedProblem { at, reason: reason.into() });
        }
    }
}

/// How to read a feed.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// The format.
    pub format: FeedFormat,
    /// The source name kept on every entry.
    pub source: String,
    /// Role of plain entries.
    pub plain_role: FeedRole,
    /// First-seen time of plain entries (they carry none).
    pub now: Timestamp,
}

/// Reads a feed from `input`.
pub fn read(input: impl BufRead, options: &FeedOptions) -> Result<FeedRead, CenterError> {
    if options.source.trim().is_empty() || options.source.len() > 64 {
        return Err(CenterError::Invalid("the source name must be 1-64 characters".into()));
    }
    match options.format {
        FeedFormat::ThreatfoxCsv => Ok(table::threatfox(input, &options.source)),
        FeedFormat::FeodoCsv => Ok(table::feodo(input, &options.source)),
        FeedFormat::Stix => stix::read(input, &options.source),
        FeedFormat::Plain => Ok(plain::read(input, options)),
    }
}

/// Lines of a reader, each bounded: `Err(at)` for a line too long or not UTF-8.
pub(crate) fn bounded_lines(mut input: impl BufRead) -> impl Iterator<Item = (usize, Result<String, String>)> {
    let mut number = 0;
    std::iter::from_fn(move || {
        let mut buffer = Vec::new();
        let read = std::io::Read::take(&mut input, MAX_LINE as u64 + 1).read_until(b'\n', &mut buffer);
        match read {
            Ok(0) => None,
            Ok(_) => {
                number += 1;
                if buffer.len() > MAX_LINE && !buffer.ends_with(b"\n") {
                    // Skip the rest of the long line.
                    loop {
                        let mut rest = Vec::new();
                        match std::io::Read::take(&mut input, 1 << 20).read_until(b'\n', &mut rest) {
                            Ok(0) => break,
                            Ok(_) if rest.ends_with(b"\n") => break,
                            Ok(_) => continue,
                            Err(_) => break,
                        }
                    }
                    return Some((number, Err(format!("line longer than {MAX_LINE} bytes"))));
                }
                Some((number, String::from_utf8(buffer).map_err(|_| "not UTF-8".to_string())))
            }
            Err(error) => {
                number += 1;
                Some((number, Err(error.to_string())))
            }
        }
    })
}

/// Calls `row` with each readable line; lines too long or not UTF-8 are counted in `read`.
pub(crate) fn each_line(input: impl BufRead, read: &mut FeedRead, mut row: impl FnMut(&mut FeedRead, usize, &str)) {
    for (at, line) in bounded_lines(input) {
        match line {
            Ok(line) => row(read, at, &line),
            Err(reason) => read.problem(at, reason),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` (abuse.ch, UTC) or RFC 3339.
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc())
        .ok()
        .or_else(|| chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc()))
}

/// A family name as kept: lower case, abuse.ch's `elf.`/`win.` platform prefix dropped.
pub(crate) fn family(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text
        .split_once('.')
        .filter(|(p, _)| matches!(*p, "elf" | "win" | "apk" | "osx" | "py" | "js"))
        .map_or(text, |(_, f)| f);
    let lower = text.to_lowercase();
    (!lower.is_empty() && lower != "none" && lower != "unknown").then_some(lower)
}

#[cfg(test)]
mod tests;

/// How botscope's own C&C findings compare with one feed's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FeedLead {
    /// The feed.
    pub source: String,
    /// C&C servers (with a port) the feed lists.
    pub listed: usize,
    /// Servers both the feed and botscope's flow analysers named.
    pub shared: usize,
    /// Of those, how many botscope found first.
    pub found_first: usize,
    /// Median days botscope was ahead on shared servers (negative: the feed was first).
    pub median_days_ahead: Option<f64>,
    /// Servers botscope found that the feed never listed.
    pub only_botscope: usize,
    /// Servers only the feed listed.
    pub only_feed: usize,
}

/// Per feed: which C&C servers botscope found too, and how many days earlier. Botscope's first
/// sightings come from the per-server roll-up as last refreshed ([`crate::rollup::refresh`]), so
/// they outlive the reports that retention prunes.
pub async fn lead_times(store: &impl botscope_store::Store) -> Result<Vec<FeedLead>, CenterError> {
    use std::collections::BTreeMap;

    use botscope_model::Transport;
    use botscope_store::all_of;

    type Key = (std::net::IpAddr, u16, Transport);
    let mut feeds: BTreeMap<String, BTreeMap<Key, Timestamp>> = BTreeMap::new();
    for f in all_of::<FeedEntry>(store).await? {
        if f.role == FeedRole::Cnc
            && let Some(key) = f.endpoint()
        {
            let slot = feeds.entry(f.source.clone()).or_default().entry(key).or_insert(f.first_seen);
            *slot = (*slot).min(f.first_seen);
        }
    }
    if feeds.is_empty() {
        // Nothing to compare with: the servers need not be read.
        return Ok(Vec::new());
    }
    let ours: BTreeMap<Key, Timestamp> = crate::rollup::servers::read(store, None, None)
        .await?
        .into_iter()
        .map(|(key, s)| (key, s.seen.first_seen))
        .collect();
    Ok(feeds
        .into_iter()
        .map(|(source, listed)| {
            let mut ahead: Vec<f64> = listed
                .iter()
                .filter_map(|(key, feed_first)| {
                    ours.get(key).map(|own| (*feed_first - *own).num_seconds() as f64 / 86_400.0)
                })
                .collect();
            ahead.sort_by(f64::total_cmp);
            let median = (!ahead.is_empty()).then(|| {
                let mid = ahead.len() / 2;
                let m = if ahead.len() % 2 == 1 { ahead[mid] } else { (ahead[mid - 1] + ahead[mid]) / 2.0 };
                (m * 10.0).round() / 10.0
            });
            FeedLead {
                listed: listed.len(),
                shared: ahead.len(),
                found_first: ahead.iter().filter(|d| **d > 0.0).count(),
                median_days_ahead: median,
                only_botscope: ours.keys().filter(|k| !listed.contains_key(*k)).count(),
                only_feed: listed.len() - ahead.len(),
                source,
            }
        })
        .collect())
}
