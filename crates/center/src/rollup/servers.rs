//! C&C servers as the pages show them, from the per-server roll-up rather than every report.
//!
//! A national year holds tens of thousands of C&C reports, and the overview, `/cnc` and the feed
//! lead times want only each server's reporters, best score, family and first and last sighting.
//! The refresh keeps one row per server, reporter and day ([`day_servers`]); [`read`] sums a range
//! of days in the store. [`of_reports`] gives the same from reports already read (a filtered view),
//! so both paths agree to the second.

use std::collections::btree_map::Entry;
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
    /// Its reports, summed.
    pub seen: Sightings,
}

/// Reports of a server, summed.
#[derive(Debug, Clone, PartialEq)]
pub struct Sightings {
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

impl Sightings {
    fn of(c: &CncCandidate) -> Sightings {
        Sightings {
            reports: 1,
            first_seen: to_the_second(c.first_seen),
            last_seen: to_the_second(c.last_seen),
            best_score: c.score,
            family: c.family.clone(),
        }
    }

    fn merge(&mut self, other: Sightings) {
        self.reports += other.reports;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.best_score = self.best_score.max(other.best_score);
        // The greatest by name, as the store's MAX picks among the named: the order reports
        // arrive in must not change what a page shows.
        self.family = match (self.family.take(), other.family) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
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
        let seen = Sightings {
            reports: row.reports,
            first_seen: at(row.first_seen)?,
            last_seen: at(row.last_seen)?,
            best_score: row.best_score,
            family: row.family.clone(),
        };
        add(&mut servers, (row.ip, row.port, protocol), row.sensor.clone(), seen);
    }
    Ok(servers)
}

/// The same summaries from reports already read (and filtered by the caller).
pub fn of_reports<'a>(reports: impl IntoIterator<Item = &'a CncCandidate>) -> Servers {
    let mut servers = Servers::new();
    for c in reports {
        add(&mut servers, (c.ip, c.port, c.protocol), reporter(c), Sightings::of(c));
    }
    servers
}

/// One day's rows for the store: per server and reporter.
pub(super) fn day_servers(reports: &[CncCandidate]) -> Vec<ServerRollup> {
    let mut rows: BTreeMap<(ServerKey, Option<String>), Sightings> = BTreeMap::new();
    for c in reports {
        let seen = Sightings::of(c);
        match rows.entry(((c.ip, c.port, c.protocol), reporter(c))) {
            Entry::Vacant(slot) => {
                slot.insert(seen);
            }
            Entry::Occupied(mut slot) => slot.get_mut().merge(seen),
        }
    }
    rows.into_iter()
        .map(|(((ip, port, protocol), sensor), s)| ServerRollup {
            ip,
            port,
            protocol: protocol.as_str().to_string(),
            sensor,
            reports: s.reports,
            first_seen: s.first_seen.timestamp(),
            last_seen: s.last_seen.timestamp(),
            best_score: s.best_score,
            family: s.family,
        })
        .collect()
}

fn add(servers: &mut Servers, key: ServerKey, reporter: Option<String>, seen: Sightings) {
    match servers.entry(key) {
        Entry::Vacant(slot) => {
            slot.insert(ServerSummary { reporters: BTreeSet::from([reporter]), seen });
        }
        Entry::Occupied(mut slot) => {
            let summary = slot.get_mut();
            summary.reporters.insert(reporter);
            summary.seen.merge(seen);
        }
    }
}

/// As the store keeps it: no name and an empty one are the same reporter.
fn reporter(c: &CncCandidate) -> Option<String> {
    c.sensor.clone().filter(|name| !name.is_empty())
}

fn to_the_second(at: Timestamp) -> Timestamp {
    chrono::DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

fn transport(name: &str) -> Option<Transport> {
    [Transport::Tcp, Transport::Udp, Transport::Icmp].into_iter().find(|t| t.as_str() == name)
}
