//! The overview's and the ISP table's counts of hosts and cases, computed either from the daily
//! roll-ups (a few rows per day, whatever the traffic) or, for filters the roll-ups do not split
//! by (device type, botnet), from the records themselves. Both give the same figures: a test
//! compares them on every view.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use botscope_center::rollup::{HostCount, HostSet, Series, device_type_name};
use botscope_model::{ActivityClass, Kind, NotificationReason, NotificationStatus, Timestamp};
use botscope_store::Dims;

use super::data::{Data, View};
use crate::AppState;
use crate::error::ApiError;

/// A roll-up the store could not read or bring up to date: the page cannot be counted now.
fn failed(error: botscope_center::CenterError) -> ApiError {
    ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("daily roll-ups: {error}"))
}

/// One metric's rows of these dimensions over the view's days.
async fn series(state: &AppState, view: &View, kind: Kind, metric: &str, dims: &Dims) -> Result<Series, ApiError> {
    Series::read_dims(&state.store, kind, metric, view.from, view.to, dims).await.map_err(failed)
}

/// Counts of hosts and cases over a view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Figures {
    /// Distinct infected hosts the telescope saw.
    pub bots: HostCount,
    /// Distinct hosts the survey found vulnerable.
    pub vulnerable: HostCount,
    /// Notification cases made.
    pub notified: u64,
    /// Of them, confirmed fixed.
    pub fixed: u64,
    /// Per day (`YYYY-MM-DD`): distinct infected hosts, distinct vulnerable hosts (days with either).
    pub trend: BTreeMap<String, (u64, u64)>,
    /// Per month (`YYYY-MM`): cases for a weak or missing password.
    pub weak_monthly: BTreeMap<String, u64>,
    /// Per day: cases for an infection.
    pub infected_daily: BTreeMap<String, u64>,
    /// Vulnerable hosts by device type (a host counts under each type it was identified as;
    /// `unknown` for those never identified), largest first.
    pub device_types: Vec<(String, HostCount)>,
    /// Vulnerable hosts by their model's release year.
    pub years: BTreeMap<u16, HostCount>,
    /// Per ISP handle: distinct infected and vulnerable hosts.
    pub per_isp: BTreeMap<String, (HostCount, HostCount)>,
    /// Per ISP handle: what its cases came to, as [`botscope_center::remediation`] counts them.
    pub cases_per_isp: BTreeMap<String, Cases>,
}

/// What an ISP's cases came to by their outcomes (false positives left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cases {
    /// Cases notified.
    pub notified: u64,
    /// Confirmed fixed by a re-survey.
    pub fixed: u64,
    /// Said fixed by the ISP, not yet confirmed.
    pub reported_fixed: u64,
    /// Found not fixed.
    pub not_fixed: u64,
}

impl Cases {
    /// The share confirmed fixed, to four decimals (as the remediation report rounds it).
    pub fn remediation_rate(&self) -> f64 {
        if self.notified == 0 { 0.0 } else { (self.fixed as f64 / self.notified as f64 * 10_000.0).round() / 10_000.0 }
    }
}

impl Figures {
    /// Whether the roll-ups can answer this view (they are split by day and ISP only).
    pub fn rolled_up(view: &View) -> bool {
        view.device_type.is_none() && view.botnet.is_none()
    }

    /// Whether any figure is an estimate.
    pub fn estimated(&self) -> bool {
        !self.bots.exact
            || !self.vulnerable.exact
            || self.device_types.iter().any(|(_, c)| !c.exact)
            || self.years.values().any(|c| !c.exact)
            || self.per_isp.values().any(|(a, b)| !a.exact || !b.exact)
    }

    /// From records already read and filtered to the view.
    pub fn of_data(data: &Data, isps: &[String]) -> Figures {
        let mut figures = Figures::default();
        let exact = |set: &BTreeSet<IpAddr>| HostCount { value: set.len() as u64, exact: true };
        let infected: Vec<_> = data.activity.iter().filter(|a| a.classification == ActivityClass::Infected).collect();
        figures.bots = exact(&infected.iter().map(|a| a.src).collect());
        figures.vulnerable = exact(&data.findings.iter().map(|f| f.ip).collect());
        figures.notified = data.notifications.len() as u64;
        figures.fixed = data.notifications.iter().filter(|n| n.status == NotificationStatus::Fixed).count() as u64;
        let mut per_day: BTreeMap<String, (BTreeSet<IpAddr>, BTreeSet<IpAddr>)> = BTreeMap::new();
        for a in &infected {
            per_day.entry(a.window_start.format("%Y-%m-%d").to_string()).or_default().0.insert(a.src);
        }
        for f in &data.findings {
            per_day.entry(f.observed_at.format("%Y-%m-%d").to_string()).or_default().1.insert(f.ip);
        }
        figures.trend = per_day.into_iter().map(|(d, (i, v))| (d, (i.len() as u64, v.len() as u64))).collect();
        for n in &data.notifications {
            if matches!(n.reason, NotificationReason::DefaultCredential | NotificationReason::NoAuthentication) {
                *figures.weak_monthly.entry(n.created_at.format("%Y-%m").to_string()).or_default() += 1;
            }
            if n.reason == NotificationReason::Infected {
                *figures.infected_daily.entry(n.created_at.format("%Y-%m-%d").to_string()).or_default() += 1;
            }
        }
        let mut types: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
        let mut years: BTreeMap<u16, BTreeSet<IpAddr>> = BTreeMap::new();
        for f in &data.findings {
            if let Some(kind) = device_type_name(f.device.as_ref()) {
                types.entry(kind).or_default().insert(f.ip);
            }
            if let Some(year) = f.device.as_ref().and_then(|d| d.release_year) {
                years.entry(year).or_default().insert(f.ip);
            }
        }
        let typed: BTreeSet<IpAddr> = types.values().flatten().copied().collect();
        let unknown: BTreeSet<IpAddr> = data.findings.iter().map(|f| f.ip).filter(|ip| !typed.contains(ip)).collect();
        let mut device_types: Vec<(String, HostCount)> = types.iter().map(|(k, v)| (k.clone(), exact(v))).collect();
        if !unknown.is_empty() {
            device_types.push(("unknown".into(), exact(&unknown)));
        }
        figures.device_types = largest_first(device_types);
        figures.years = years.iter().map(|(y, v)| (*y, exact(v))).collect();
        for isp in isps {
            let infected: BTreeSet<IpAddr> =
                infected.iter().filter(|a| a.isp.as_ref().is_some_and(|h| h.contains(isp))).map(|a| a.src).collect();
            let vulnerable: BTreeSet<IpAddr> = data
                .findings
                .iter()
                .filter(|f| f.isp.as_ref().is_some_and(|h| h.contains(isp)))
                .map(|f| f.ip)
                .collect();
            figures.per_isp.insert(isp.clone(), (exact(&infected), exact(&vulnerable)));
        }
        let remediation = botscope_center::remediation::of_cases(
            &data.notifications,
            &data.outcomes,
            botscope_center::remediation::GroupBy::Isp,
            chrono::Utc::now(),
        );
        for group in remediation.groups.iter().filter(|g| g.notified > 0 && isps.contains(&g.key)) {
            let cases = Cases {
                notified: group.notified,
                fixed: group.fixed,
                reported_fixed: group.reported_fixed,
                not_fixed: group.not_fixed,
            };
            figures.cases_per_isp.insert(group.key.clone(), cases);
        }
        figures
    }

    /// From the daily roll-ups, brought up to date first. Only for views [`Figures::rolled_up`] accepts.
    pub async fn of_rollups(state: &AppState, view: &View, isps: &[String]) -> Result<Figures, ApiError> {
        state.refresh_rollups_for(view).await.map_err(failed)?;
        // The whole, or one ISP's part of it: only the dimensions shown are read (a centre with
        // many ISPs keeps rows for each, and the overview shows none of them).
        let part = view.isp.clone().unwrap_or_default();
        let the_part = Dims::Exactly(vec![part.clone()]);
        let part_and_isps = Dims::Exactly(std::iter::once(part.clone()).chain(isps.iter().cloned()).collect());
        let breakdown = Dims::Within(part.clone());
        // Asked at once: one after another, a busy centre made each wait its turn for a core.
        let (infected, vulnerable, types, years, notified, fixed, weak, infected_cases) = tokio::try_join!(
            series(state, view, Kind::Activity, "infected", &part_and_isps),
            series(state, view, Kind::Finding, "vulnerable", &part_and_isps),
            series(state, view, Kind::Finding, "vulnerable_type", &breakdown),
            series(state, view, Kind::Finding, "vulnerable_year", &breakdown),
            series(state, view, Kind::Notification, "notified", &the_part),
            series(state, view, Kind::Notification, "fixed", &the_part),
            series(state, view, Kind::Notification, "weak", &the_part),
            series(state, view, Kind::Notification, "infected", &the_part),
        )?;
        let within = |dim: &str| if part.is_empty() { dim.to_string() } else { format!("{part}/{dim}") };
        let all_vulnerable = vulnerable.hosts(&part);
        let mut figures = Figures {
            bots: infected.hosts(&part).count(),
            vulnerable: all_vulnerable.count(),
            notified: notified.total(&part),
            fixed: fixed.total(&part),
            ..Figures::default()
        };
        for (day, n) in infected.per_day(&part) {
            figures.trend.entry(day.to_string()).or_default().0 = n;
        }
        for (day, n) in vulnerable.per_day(&part) {
            figures.trend.entry(day.to_string()).or_default().1 = n;
        }
        for (day, n) in weak.per_day(&part) {
            *figures.weak_monthly.entry(day.format("%Y-%m").to_string()).or_default() += n;
        }
        figures.infected_daily = infected_cases.per_day(&part).into_iter().map(|(d, n)| (d.to_string(), n)).collect();
        let prefix = within("");
        let mut typed = HostSet::default();
        let mut device_types = Vec::new();
        for dim in types.dims().into_iter().filter_map(|d| d.strip_prefix(prefix.as_str())).filter(|d| !d.contains('/'))
        {
            let hosts = types.hosts(&within(dim));
            device_types.push((dim.to_string(), hosts.count()));
            typed.merge(&hosts);
        }
        let unknown = all_vulnerable.count_without(&typed);
        if unknown.value > 0 {
            device_types.push(("unknown".into(), unknown));
        }
        figures.device_types = largest_first(device_types);
        for dim in years.dims().into_iter().filter_map(|d| d.strip_prefix(prefix.as_str())).filter(|d| !d.contains('/'))
        {
            if let Ok(year) = dim.parse::<u16>() {
                figures.years.insert(year, years.hosts(&within(dim)).count());
            }
        }
        for isp in isps {
            figures.per_isp.insert(isp.clone(), (infected.hosts(isp).count(), vulnerable.hosts(isp).count()));
        }
        let of_isps = Dims::Exactly(isps.to_vec());
        let cases = [
            series(state, view, Kind::Notification, "cases_notified", &of_isps).await?,
            series(state, view, Kind::Notification, "cases_fixed", &of_isps).await?,
            series(state, view, Kind::Notification, "cases_reported_fixed", &of_isps).await?,
            series(state, view, Kind::Notification, "cases_not_fixed", &of_isps).await?,
        ];
        for isp in isps.iter().filter(|isp| cases[0].total(isp) > 0) {
            let [notified, fixed, reported_fixed, not_fixed] = cases.each_ref().map(|series| series.total(isp));
            figures.cases_per_isp.insert(isp.clone(), Cases { notified, fixed, reported_fixed, not_fixed });
        }
        Ok(figures)
    }
}

/// The coverage page's survey and sensor figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Coverage {
    /// Per protocol: service records, distinct hosts answering, findings.
    pub protocols: BTreeMap<String, (u64, HostCount, u64)>,
    /// Per (sensor, kind): records and the latest record's time.
    pub sensors: BTreeMap<(String, &'static str), (u64, Option<Timestamp>)>,
}

/// The kinds the sensor table counts, as the page names them.
const SENSOR_KINDS: [(Kind, &str); 4] =
    [(Kind::Service, "service"), (Kind::Finding, "finding"), (Kind::Activity, "activity"), (Kind::Cnc, "cnc")];

impl Coverage {
    /// Whether the roll-ups can answer this view: a time range only (the page's ISP and device
    /// filters follow hosts across kinds, which the roll-ups do not split by).
    pub fn rolled_up(view: &View) -> bool {
        !Data::filtered(view)
    }

    /// From records already read and filtered to the view. A C&C report counts on its last
    /// sighting's day (as the roll-ups count it), not whenever its span overlaps the view.
    pub fn of_data(data: &Data, view: &View) -> Coverage {
        let mut coverage = Coverage::default();
        let mut hosts: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
        for s in &data.services {
            coverage.protocols.entry(s.protocol.as_str().to_string()).or_default().0 += 1;
            hosts.entry(s.protocol.as_str()).or_default().insert(s.ip);
        }
        for (protocol, set) in hosts {
            coverage.protocols.entry(protocol.to_string()).or_default().1 =
                HostCount { value: set.len() as u64, exact: true };
        }
        for f in &data.findings {
            coverage.protocols.entry(f.service.as_str().to_string()).or_default().2 += 1;
        }
        for slot in coverage.protocols.values_mut() {
            slot.1.exact = true;
        }
        let mut note = |sensor: &Option<String>, kind: &'static str, at: Timestamp| {
            let name = sensor.clone().unwrap_or_else(|| botscope_center::rollup::UNNAMED_SENSOR.into());
            let slot = coverage.sensors.entry((name, kind)).or_default();
            slot.0 += 1;
            // To the second, as the roll-ups keep it.
            let at = chrono::DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at);
            slot.1 = Some(slot.1.map_or(at, |t| t.max(at)));
        };
        for s in &data.services {
            note(&s.sensor, "service", s.observed_at);
        }
        for f in &data.findings {
            note(&f.sensor, "finding", f.observed_at);
        }
        for a in &data.activity {
            note(&a.sensor, "activity", a.window_end);
        }
        for c in data.cnc.iter().filter(|c| view.in_range(c.last_seen)) {
            note(&c.sensor, "cnc", c.window_end);
        }
        coverage
    }

    /// From the daily roll-ups, brought up to date first. Only for views [`Coverage::rolled_up`] accepts.
    pub async fn of_rollups(state: &AppState, view: &View) -> Result<Coverage, ApiError> {
        state.refresh_rollups_for(view).await.map_err(failed)?;
        let store = &state.store;
        let read = |kind: Kind, metric: &'static str| Series::read(store, kind, metric, view.from, view.to);
        let mut coverage = Coverage::default();
        // Asked at once, as the overview's (see `Figures::of_rollups`).
        let sensor = |(kind, _): (Kind, &str)| async move {
            tokio::try_join!(read(kind, "sensor_records"), read(kind, "sensor_latest"))
        };
        let (records, hosts, findings, first, second, third, fourth) = tokio::try_join!(
            read(Kind::Service, "service_records"),
            read(Kind::Service, "service_hosts"),
            read(Kind::Finding, "findings_by_service"),
            sensor(SENSOR_KINDS[0]),
            sensor(SENSOR_KINDS[1]),
            sensor(SENSOR_KINDS[2]),
            sensor(SENSOR_KINDS[3]),
        )
        .map_err(failed)?;
        let sensors: [_; SENSOR_KINDS.len()] = [first, second, third, fourth];
        for protocol in records.dims() {
            let slot = coverage.protocols.entry(protocol.to_string()).or_default();
            slot.0 = records.total(protocol);
            slot.1 = hosts.hosts(protocol).count();
        }
        for service in findings.dims() {
            coverage.protocols.entry(service.to_string()).or_default().2 = findings.total(service);
        }
        for ((_, name), (counts, latest)) in SENSOR_KINDS.into_iter().zip(sensors) {
            for sensor in counts.dims() {
                let at = latest.largest(sensor).and_then(|secs| chrono::DateTime::from_timestamp(secs as i64, 0));
                coverage.sensors.insert((sensor.to_string(), name), (counts.total(sensor), at));
            }
        }
        Ok(coverage)
    }
}

fn largest_first(mut counts: Vec<(String, HostCount)>) -> Vec<(String, HostCount)> {
    counts.sort_by(|a, b| b.1.value.cmp(&a.1.value).then(a.0.cmp(&b.0)));
    counts
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::http::HeaderMap;
    use botscope_store::Store;

    use super::*;

    /// Pages asked while a refresh runs share the next one instead of each recounting; a call made
    /// after a refresh began still gets a refresh of its own (it may have written since).
    #[tokio::test]
    async fn pages_waiting_behind_a_refresh_share_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("shared.db"), 1).await.unwrap();
        let records: Vec<_> = botscope_testkit::records::week(5, 40)
            .iter()
            .map(|line| {
                let mut r = botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap();
                r.ensure_id();
                r
            })
            .collect();
        let (first, second) = records.split_at(records.len() / 2);
        store.put_records(first).await.unwrap();
        let state = AppState::new(botscope_store::AnyStore::Sqlite(store), crate::Limits::default());
        // A refresh "in progress": eight pages ask meanwhile, and a write lands before it ends.
        let held = state.rollups.clone();
        let guard = held.lock().await;
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let state = state.clone();
                tokio::spawn(async move { state.refresh_rollups().await.unwrap() })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        state.store.put_records(second).await.unwrap();
        drop(guard);
        let mut ran = 0;
        for task in waiting {
            ran += usize::from(task.await.unwrap().days > 0);
        }
        assert_eq!(ran, 1, "one refresh for the eight pages that waited");
        // It counted everything, the write made while they waited included.
        assert_eq!(botscope_center::rollup::pending(&state.store, 10_000).await.unwrap(), 0);
        // A page asked after that refresh began gets its own: a new write is counted.
        let mut later =
            botscope_model::parse_line(botscope_testkit::records::week(6, 1)[0].as_bytes(), None).unwrap().unwrap();
        later.ensure_id();
        state.store.put_records(&[later]).await.unwrap();
        assert!(state.refresh_rollups().await.unwrap().days > 0);
    }

    /// The reads of one page (the overview's servers and its figures, asked at once) share one
    /// refresh: the second finds one that began after the page was asked for. A page asked later
    /// still gets its own.
    #[tokio::test]
    async fn the_reads_of_one_page_share_one_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("one.db"), 1).await.unwrap();
        let write = |seed: u64| {
            let store = store.clone();
            async move {
                let mut record =
                    botscope_model::parse_line(botscope_testkit::records::week(seed, 1)[0].as_bytes(), None)
                        .unwrap()
                        .unwrap();
                record.ensure_id();
                store.put_records(&[record]).await.unwrap();
            }
        };
        write(7).await;
        let state = AppState::new(botscope_store::AnyStore::Sqlite(store.clone()), crate::Limits::default());
        let page = View::parse(&HashMap::new(), &HeaderMap::new()).unwrap();
        assert!(page.asked.is_some());
        assert!(state.refresh_rollups_for(&page).await.unwrap().days > 0, "the page's first read recounts");
        write(8).await;
        assert_eq!(state.refresh_rollups_for(&page).await.unwrap().days, 0, "its next read shares that refresh");
        let later = View::parse(&HashMap::new(), &HeaderMap::new()).unwrap();
        assert!(state.refresh_rollups_for(&later).await.unwrap().days > 0, "a later page counts the new write");
    }

    /// The roll-ups give the figures reading every record gives, for every range of days and ISP.
    #[tokio::test]
    async fn roll_ups_and_records_give_the_same_figures_for_every_view() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("figures.db"), 1).await.unwrap();
        let mut records: Vec<_> = botscope_testkit::records::week(11, 120)
            .iter()
            .map(|line| botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap())
            .collect();
        for record in &mut records {
            record.ensure_id();
        }
        // Written in two batches, with a refresh between: the second dirties days already rolled up.
        let (first, second) = records.split_at(records.len() / 2);
        store.put_records(first).await.unwrap();
        let state = AppState::new(botscope_store::AnyStore::Sqlite(store), crate::Limits::default());
        state.refresh_rollups().await.unwrap();
        state.store.put_records(second).await.unwrap();
        // Outcomes after that refresh, many about cases of days already rolled up: each must have
        // its case's day counted again. Fixed by a re-survey, said fixed by the ISP, found not
        // fixed, and a fix refuted by a later re-survey.
        let cases: Vec<botscope_model::Notification> = botscope_model::payloads(records.clone());
        let mut outcomes = Vec::new();
        for (n, case) in cases.iter().enumerate() {
            let steps: &[(&str, &str, i64)] = match n % 6 {
                0 => &[("fixed", "recheck", 2)],
                1 => &[("fixed", "isp", 1)],
                2 => &[("not_fixed", "recheck", 3)],
                3 => &[("fixed", "recheck", 1), ("not_fixed", "recheck", 9)],
                _ => &[],
            };
            for (status, source, days) in steps {
                let at = (case.created_at + chrono::Duration::days(*days)).to_rfc3339();
                let line = format!(
                    r#"{{"kind":"outcome","notification":"{}","isp":"{}","status":"{status}","at":"{at}","source":"{source}"}}"#,
                    case.id.unwrap(),
                    case.isp
                );
                outcomes.push(botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap());
            }
        }
        assert!(outcomes.len() > 50);
        state.store.put_records(&outcomes).await.unwrap();
        let isps = ["hikari-net", "sakura-bb"];
        let days = ["", "2026-10-31", "2026-11-01", "2026-11-03", "2026-11-07", "2026-11-09"];
        let (mut compared, mut fixed) = (0, 0);
        for (n, from) in days.iter().enumerate() {
            for to in days[n..].iter().chain([&""]) {
                for isp in ["", isps[0], isps[1]] {
                    let query: HashMap<String, String> = [("from", *from), ("to", *to), ("isp", isp)]
                        .iter()
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    let Ok(view) = View::parse(&query, &HeaderMap::new()) else { continue };
                    assert!(Figures::rolled_up(&view));
                    let shown: Vec<String> =
                        isps.iter().filter(|h| isp.is_empty() || **h == isp).map(|h| h.to_string()).collect();
                    let rolled = Figures::of_rollups(&state, &view, &shown).await.unwrap();
                    let kinds = [Kind::Activity, Kind::Finding, Kind::Notification, Kind::Outcome];
                    let read = Figures::of_data(&Data::load(&state, &kinds, &view).await.unwrap(), &shown);
                    assert_eq!(rolled, read, "from {from:?} to {to:?} isp {isp:?}");
                    compared += usize::from(read.bots.value > 0);
                    fixed += usize::from(read.cases_per_isp.values().any(|c| c.fixed > 0 && c.not_fixed > 0));
                }
            }
        }
        assert!(compared > 30, "most views must hold hosts for the comparison to mean anything");
        assert!(fixed > 20, "most views must hold fixed and unfixed cases");
        // The coverage page's figures likewise, for every range of days.
        for (n, from) in days.iter().enumerate() {
            for to in days[n..].iter().chain([&""]) {
                let query: HashMap<String, String> = [("from", *from), ("to", *to)]
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let Ok(view) = View::parse(&query, &HeaderMap::new()) else { continue };
                let rolled = Coverage::of_rollups(&state, &view).await.unwrap();
                let kinds = [Kind::Service, Kind::Finding, Kind::Activity, Kind::Cnc];
                let read = Coverage::of_data(&Data::load(&state, &kinds, &view).await.unwrap(), &view);
                assert_eq!(rolled, read, "coverage from {from:?} to {to:?}");
            }
        }
        let everything = Figures::of_rollups(&state, &View::default(), &[]).await.unwrap();
        assert!(everything.device_types.iter().any(|(t, _)| t == "unknown"), "{:?}", everything.device_types);
        assert!(!everything.estimated(), "a small world is counted exactly");
        let query = [("device_type".to_string(), "router".to_string())].into_iter().collect();
        assert!(!Figures::rolled_up(&View::parse(&query, &HeaderMap::new()).unwrap()));
    }
}
