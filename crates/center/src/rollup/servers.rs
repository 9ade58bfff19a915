//! C&C servers as the pages show them, from the per-server roll-up rather than every report.
//!
//! A national year holds tens of thousands of C&C reports, and the overview, `/cnc` and the feed
//! lead times want only each server's reporters, best score, family and first and last sighting.
//! The refresh keeps one row per server, reporter and day ([`day_servers`]); [`read`] sums a range
//! of days in the store. [`of_reports`] gives the same from reports already read (a filtered view),
//! so both paths agree to the second.

use std::collections::{BTreeMap, BTreeSet};

use botscope_model::{CncCandidate, Timestamp, Transport};
use botscope_store::{ServerRollup, Store, StoreError};
use chrono::NaiveDate;

use crate::CenterError;
use crate::correlate::ServerKey;

/// One C&C server over a range of days.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSummary {
    /// Who reported it (`None` for reports without a sensor name).
    pub reporters: BTreeSet<Option<String>>,
    /// Reports.
    pub reports: u64,
    /// First sighting, to the second.
    pub first_seen: Timestamp,
    /// Last sighting, to the second.
    pub last_seen: Timestamp,
    /// The best score any report gave it.
    pub best_score: f64,
    /// A family its reports named (the greatest by name, if they named several).
    pub family: Option<String>,
}

/// Servers by (address, port, transport).
pub type Servers = BTreeMap<ServerKey, ServerSummary>;

/// The servers reported on the days from `from` to `to` (of their last sighting, inclusive; open
/// where `None`), as the roll-ups last counted them.
pub async fn read(store: &impl Store, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Servers, CenterError> {
    let mut servers = Servers::new();
    for row in store.server_rollups(from, to).await? {
        let corrupt = |reason: String| {
            CenterError::Store(StoreError::Corrupt { what: format!("the C&C server roll-up of {}", row.ip), reason })
        };
        let protocol =
            transport(&row.protocol).ok_or_else(|| corrupt(format!("unknown transport {:?}", row.protocol)))?;
        let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).ok_or_else(|| corrupt(format!("time {secs}")));
        let sighting = Sighting {
            reporter: row.sensor.clone(),
            reports: row.reports,
            first_seen: at(row.first_seen)?,
            last_seen: at(row.last_seen)?,
            best_score: row.best_score,
            family: row.family.clone(),
        };
        sighting.add_to(servers.entry((row.ip, row.port, protocol)));
    }
    Ok(servers)
}

/// The same summaries from reports already read (and filtered by the caller).
pub fn of_reports<'a>(reports: impl IntoIterator<Item = &'a CncCandidate>) -> Servers {
    let mut servers = Servers::new();
    for c in reports {
        Sighting::of(c).add_to(servers.entry((c.ip, c.port, c.protocol)));
    }
    servers
}

/// One day's rows for the store: per server and reporter.
pub(super) fn day_servers(reports: &[CncCandidate]) -> Vec<ServerRollup> {
    let mut rows: BTreeMap<(ServerKey, Option<&str>), Sighting> = BTreeMap::new();
    for c in reports {
        let sighting = Sighting::of(c);
        match rows.entry(((c.ip, c.port, c.protocol), c.sensor.as_deref())) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(sighting);
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => slot.get_mut().merge(sighting),
        }
    }
    rows.into_iter()
        .map(|(((ip, port, protocol), _), s)| ServerRollup {
            ip,
            port,
            protocol: protocol.as_str().to_string(),
            sensor: s.reporter,
            reports: s.reports,
            first_seen: s.first_seen.timestamp(),
            last_seen: s.last_seen.timestamp(),
            best_score: s.best_score,
            family: s.family,
        })
        .collect()
}

/// Reports of one server by one reporter, summed.
struct Sighting {
    reporter: Option<String>,
    reports: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
    best_score: f64,
    family: Option<String>,
}

impl Sighting {
    fn of(c: &CncCandidate) -> Sighting {
        Sighting {
            // As the store keeps it: no name and an empty one are the same reporter.
            reporter: c.sensor.clone().filter(|name| !name.is_empty()),
            reports: 1,
            first_seen: to_the_second(c.first_seen),
            last_seen: to_the_second(c.last_seen),
            best_score: c.score,
            family: c.family.clone(),
        }
    }

    fn merge(&mut self, other: Sighting) {
        self.reports += other.reports;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.best_score = self.best_score.max(other.best_score);
        // The greatest by name, as the store's MAX picks among the named: the order reports
        // arrive in must not change what a page shows.
        self.family = greatest_name(self.family.take(), other.family);
    }

    fn add_to(self, slot: std::collections::btree_map::Entry<'_, ServerKey, ServerSummary>) {
        let summary = slot.or_insert_with(|| ServerSummary {
            reporters: BTreeSet::new(),
            reports: 0,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            best_score: self.best_score,
            family: None,
        });
        summary.reporters.insert(self.reporter);
        summary.reports += self.reports;
        summary.first_seen = summary.first_seen.min(self.first_seen);
        summary.last_seen = summary.last_seen.max(self.last_seen);
        summary.best_score = summary.best_score.max(self.best_score);
        summary.family = greatest_name(summary.family.take(), self.family);
    }
}

fn greatest_name(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn to_the_second(at: Timestamp) -> Timestamp {
    chrono::DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

fn transport(name: &str) -> Option<Transport> {
    [Transport::Tcp, Transport::Udp, Transport::Icmp].into_iter().find(|t| t.as_str() == name)
}
