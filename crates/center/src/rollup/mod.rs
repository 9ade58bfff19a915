//! Daily roll-ups: the counts the dashboard's charts and cards show, kept per day in the store
//! so that a page over months reads a few rows per day instead of every record.
//!
//! A write marks its days dirty (see [`botscope_store::Store::dirty_rollups`]); [`refresh`]
//! recomputes each dirty day from that day's records. A day's row per metric and dimension holds
//! a count and, for distinct hosts, a [`HostSet`] so that days merge into a range without
//! counting a host twice.
//!
//! | kind | metric | dimensions | counts |
//! |---|---|---|---|
//! | activity | `infected` | all, each ISP | distinct infected sources |
//! | finding | `vulnerable` | all, each ISP | distinct vulnerable hosts |
//! | finding | `vulnerable_type` | device type, `ISP/type` | distinct hosts identified as that type |
//! | finding | `vulnerable_year` | release year, `ISP/year` | distinct hosts of a model released that year |
//! | notification | `notified`, `fixed`, `weak`, `infected` | all, each ISP | cases made that day (all; now fixed; for a weak or missing password; for an infection) |
//! | notification | `cases_notified`, `cases_fixed`, `cases_reported_fixed`, `cases_not_fixed` | all, each ISP | the day's cases by their outcomes so far, as [`crate::remediation`] counts them (false positives left out; fixed when a re-survey confirmed it) |
//! | finding | `findings_by_service` | service | findings |
//! | service | `service_records`, `service_hosts` | protocol | service records; distinct hosts |
//! | activity, finding, service, cnc | `sensor_records`, `sensor_latest` | sensor (`unnamed` if none) | records; the latest record's time (Unix seconds: the range's figure is the largest, not a sum) |
//!
//! C&C reports are also kept per server, reporter and day, in their own typed rows (see
//! [`servers`]).
//!
//! A kind's day is its records' [`botscope_model::Record::time`] (a C&C report's last sighting).
//! An outcome marks its case's day, so a case's figures follow its outcomes.

mod hosts;
pub mod servers;

use std::collections::BTreeMap;
use std::net::IpAddr;

use botscope_model::{
    ActivityClass, CncCandidate, Device, Finding, Kind, Notification, NotificationReason, NotificationStatus, Outcome,
    ServiceObservation, SourceActivity,
};
use botscope_store::{Dims, RecordQuery, RollupRow, ServerRollup, Store, all_records};
use chrono::NaiveDate;

pub use hosts::{EXACT_LIMIT, HostCount, HostSet};

use crate::CenterError;
use crate::remediation::GroupBy;

/// Dirty days read per round of [`refresh`].
const DIRTY_PER_ROUND: u32 = 64;

/// What a refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshSummary {
    /// (kind, day) pairs recomputed.
    pub days: u64,
    /// Records read to do it.
    pub records: u64,
    /// Days left marked because a record of theirs does not read back.
    pub skipped: u64,
}

/// Recomputes every day marked dirty when it started (each at most once, so a steady stream of
/// writes cannot keep it going for ever).
pub async fn refresh(store: &impl Store) -> Result<RefreshSummary, CenterError> {
    refresh_reporting(store, |_| {}).await
}

/// [`refresh`], telling `progress` what was done after each day.
pub async fn refresh_reporting(
    store: &impl Store,
    mut progress: impl FnMut(RefreshSummary),
) -> Result<RefreshSummary, CenterError> {
    let mut summary = RefreshSummary::default();
    // Days a replica of an older build counted without their C&C servers are counted again.
    let uncounted = store.mark_servers_uncounted().await?;
    if uncounted > 0 {
        tracing::info!(days = uncounted, "C&C days counted without their servers are counted again");
    }
    // A cursor through the marks, so that each day is counted at most once per call: days
    // marked again meanwhile wait for the next.
    let mut after = None;
    loop {
        let dirty = store.dirty_rollups(after, DIRTY_PER_ROUND).await?;
        let Some(last) = dirty.last() else { return Ok(summary) };
        after = Some((last.day, last.kind));
        for day in dirty {
            let (rows, servers) = match day_rows(store, day.kind, day.day, &mut summary).await {
                Ok(counted) => counted,
                // A record that does not read back must not keep every page from its figures:
                // the day is left marked and said, and the rest counted.
                Err(CenterError::Store(error @ botscope_store::StoreError::Corrupt { .. })) => {
                    tracing::warn!(kind = %day.kind, day = %day.day, %error, "a day's roll-ups cannot be counted; skipped");
                    summary.skipped += 1;
                    continue;
                }
                Err(error) => return Err(error),
            };
            store.replace_rollups(&day, &rows, &servers).await?;
            summary.days += 1;
            progress(summary);
        }
    }
}

/// Days still waiting for a refresh (up to `limit`).
pub async fn pending(store: &impl Store, limit: u32) -> Result<usize, CenterError> {
    Ok(store.dirty_rollups(None, limit).await?.len())
}

async fn day_rows(
    store: &impl Store,
    kind: Kind,
    day: NaiveDate,
    summary: &mut RefreshSummary,
) -> Result<(Vec<RollupRow>, Vec<ServerRollup>), CenterError> {
    let start = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let end = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
    let query = RecordQuery { kind: Some(kind), since: start, until: end, ..Default::default() };
    let records = all_records(store, query).await?;
    summary.records += records.len() as u64;
    if kind == Kind::Cnc {
        let reports: Vec<CncCandidate> = botscope_model::payloads(records);
        return Ok((cnc_rows(&reports), servers::day_servers(&reports)));
    }
    let rows = match kind {
        Kind::Activity => activity_rows(&botscope_model::payloads(records)),
        Kind::Finding => finding_rows(&botscope_model::payloads(records)),
        Kind::Notification => {
            let cases: Vec<Notification> = botscope_model::payloads(records);
            let ids: Vec<uuid::Uuid> = cases.iter().filter_map(|c| c.id).collect();
            let outcomes = botscope_store::outcomes_of(store, &ids).await?;
            summary.records += outcomes.len() as u64;
            notification_rows(&cases, &botscope_model::payloads(outcomes))
        }
        Kind::Service => service_rows(&botscope_model::payloads(records)),
        _ => Vec::new(),
    };
    Ok((rows, Vec::new()))
}

#[derive(Default)]
struct Rows(BTreeMap<(&'static str, String), Tally>);

/// A row being counted: records, or distinct hosts.
#[derive(Default)]
struct Tally(u64, Option<std::collections::BTreeSet<IpAddr>>);

impl Rows {
    /// Hosts are gathered exactly, so that a day's count is exact even when its stored set is a sketch.
    fn host(&mut self, metric: &'static str, dim: &str, ip: IpAddr) {
        let slot = self.0.entry((metric, dim.to_string())).or_default();
        slot.1.get_or_insert_with(Default::default).insert(ip);
    }

    fn add(&mut self, metric: &'static str, dim: &str) {
        self.0.entry((metric, dim.to_string())).or_default().0 += 1;
    }

    /// A record of a sensor, and when it was seen.
    fn sensor(&mut self, sensor: Option<&str>, at: botscope_model::Timestamp) {
        let name = sensor.unwrap_or(UNNAMED_SENSOR);
        self.add("sensor_records", name);
        let latest = &mut self.0.entry(("sensor_latest", name.to_string())).or_default().0;
        *latest = (*latest).max(at.timestamp().max(0) as u64);
    }

    fn finish(self) -> Vec<RollupRow> {
        self.0
            .into_iter()
            .map(|((metric, dim), Tally(count, hosts))| RollupRow {
                metric: metric.to_string(),
                dim,
                count: hosts.as_ref().map_or(count, |h| h.len() as u64),
                hosts: hosts.map(|h| {
                    let mut set = HostSet::default();
                    for ip in h {
                        set.insert(ip);
                    }
                    set.encode()
                }),
            })
            .collect()
    }
}

/// What the sensor roll-ups call records without a sensor name.
pub const UNNAMED_SENSOR: &str = "unnamed";

/// A device type's record name (`router`, `camera`, ...).
pub fn device_type_name(device: Option<&Device>) -> Option<String> {
    let kind = device?.device_type?;
    serde_json::to_value(kind).ok()?.as_str().map(String::from)
}

fn activity_rows(activity: &[SourceActivity]) -> Vec<RollupRow> {
    let mut rows = Rows::default();
    for a in activity {
        rows.sensor(a.sensor.as_deref(), a.window_end);
    }
    for a in activity.iter().filter(|a| a.classification == ActivityClass::Infected) {
        rows.host("infected", "", a.src);
        for isp in a.isp.iter().flat_map(|h| h.iter()) {
            rows.host("infected", isp, a.src);
        }
    }
    rows.finish()
}

fn finding_rows(findings: &[Finding]) -> Vec<RollupRow> {
    let mut rows = Rows::default();
    for f in findings {
        rows.sensor(f.sensor.as_deref(), f.observed_at);
        rows.add("findings_by_service", f.service.as_str());
        rows.host("vulnerable", "", f.ip);
        for isp in f.isp.iter().flat_map(|h| h.iter()) {
            rows.host("vulnerable", isp, f.ip);
        }
        // Types and years for the whole (`router`) and within each ISP (`hikari-net/router`).
        let kind = device_type_name(f.device.as_ref());
        let year = f.device.as_ref().and_then(|d| d.release_year).map(|y| y.to_string());
        for isp in std::iter::once("").chain(f.isp.iter().flat_map(|h| h.iter())) {
            let within = |dim: &str| if isp.is_empty() { dim.to_string() } else { format!("{isp}/{dim}") };
            if let Some(kind) = &kind {
                rows.host("vulnerable_type", &within(kind), f.ip);
            }
            if let Some(year) = &year {
                rows.host("vulnerable_year", &within(year), f.ip);
            }
        }
    }
    rows.finish()
}

fn service_rows(services: &[ServiceObservation]) -> Vec<RollupRow> {
    let mut rows = Rows::default();
    for s in services {
        rows.sensor(s.sensor.as_deref(), s.observed_at);
        rows.add("service_records", s.protocol.as_str());
        rows.host("service_hosts", s.protocol.as_str(), s.ip);
    }
    rows.finish()
}

fn cnc_rows(reports: &[CncCandidate]) -> Vec<RollupRow> {
    let mut rows = Rows::default();
    for c in reports {
        rows.sensor(c.sensor.as_deref(), c.window_end);
    }
    rows.finish()
}

fn notification_rows(notifications: &[Notification], outcomes: &[Outcome]) -> Vec<RollupRow> {
    let mut rows = Rows::default();
    // What the day's cases came to, by their outcomes so far (see [`crate::remediation`]).
    let remediation = crate::remediation::of_cases(notifications, outcomes, GroupBy::Isp, chrono::Utc::now());
    let groups =
        std::iter::once(("", &remediation.total)).chain(remediation.groups.iter().map(|g| (g.key.as_str(), g)));
    for (dim, group) in groups {
        for (metric, count) in [
            ("cases_notified", group.notified),
            ("cases_fixed", group.fixed),
            ("cases_reported_fixed", group.reported_fixed),
            ("cases_not_fixed", group.not_fixed),
        ] {
            rows.0.entry((metric, dim.to_string())).or_default().0 += count;
        }
    }
    for n in notifications {
        for dim in ["", n.isp.as_str()] {
            rows.add("notified", dim);
            if n.status == NotificationStatus::Fixed {
                rows.add("fixed", dim);
            }
            if matches!(n.reason, NotificationReason::DefaultCredential | NotificationReason::NoAuthentication) {
                rows.add("weak", dim);
            }
            if n.reason == NotificationReason::Infected {
                rows.add("infected", dim);
            }
        }
    }
    rows.finish()
}

/// One metric over a range of days: per day and dimension, the day's row.
#[derive(Debug, Default)]
pub struct Series {
    /// Day, then dimension, to (count, hosts).
    pub days: BTreeMap<NaiveDate, BTreeMap<String, (u64, Option<HostSet>)>>,
}

impl Series {
    /// Reads one metric from `from` to `to` (inclusive, open where `None`).
    pub async fn read(
        store: &impl Store,
        kind: Kind,
        metric: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Series, CenterError> {
        Self::read_dims(store, kind, metric, from, to, &Dims::All).await
    }

    /// [`Series::read`], of these dimensions only.
    pub async fn read_dims(
        store: &impl Store,
        kind: Kind,
        metric: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        dims: &Dims,
    ) -> Result<Series, CenterError> {
        let mut series = Series::default();
        for (day, row) in store.rollups(kind, metric, from, to, dims).await? {
            let hosts = row.hosts.as_deref().map(HostSet::decode).transpose().map_err(|reason| {
                CenterError::Store(botscope_store::StoreError::Corrupt {
                    what: format!("roll-up {metric} of {day}"),
                    reason,
                })
            })?;
            series.days.entry(day).or_default().insert(row.dim, (row.count, hosts));
        }
        Ok(series)
    }

    /// Per day, the count of one dimension.
    pub fn per_day(&self, dim: &str) -> BTreeMap<NaiveDate, u64> {
        self.days.iter().filter_map(|(day, dims)| Some((*day, dims.get(dim)?.0))).collect()
    }

    /// The count of one dimension over every day.
    pub fn total(&self, dim: &str) -> u64 {
        self.per_day(dim).values().sum()
    }

    /// The largest count of one dimension on any day (for figures such as a latest time).
    pub fn largest(&self, dim: &str) -> Option<u64> {
        self.per_day(dim).values().copied().max()
    }

    /// The distinct hosts of one dimension over every day.
    pub fn hosts(&self, dim: &str) -> HostSet {
        let mut union = HostSet::default();
        for hosts in self.days.values().filter_map(|dims| dims.get(dim)?.1.as_ref()) {
            union.merge(hosts);
        }
        union
    }

    /// Every dimension named on any day.
    pub fn dims(&self) -> std::collections::BTreeSet<&str> {
        self.days.values().flat_map(|dims| dims.keys().map(String::as_str)).collect()
    }
}

#[cfg(test)]
mod tests;
