//! What the pages read from the store, and the filters a view applies to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use botscope_center::rollup::servers::{self, Servers};
use botscope_model::{
    Botnet, BotnetWindow, CncCandidate, DarknetDay, Device, FeedEntry, Finding, Isp, Kind, Liveness, Notification,
    Outcome, ServiceObservation, SourceActivity, Timestamp, payloads,
};
use botscope_store::{RecordQuery, Store, all_records, records_about_within};
use chrono::NaiveDate;

use super::{Lang, ViewState};
use crate::AppState;
use crate::error::ApiError;

/// The query keys that make up a view; anything else in a query string is ignored.
const VIEW_KEYS: [&str; 10] =
    ["lang", "from", "to", "isp", "device_type", "botnet", "status", "reason", "sort", "page"];

/// A view's filters and language, read from its query string.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The language.
    pub lang: Option<Lang>,
    /// The state written back into links.
    pub state: ViewState,
    /// First day shown (UTC), inclusive.
    pub from: Option<NaiveDate>,
    /// Last day shown (UTC), inclusive.
    pub to: Option<NaiveDate>,
    /// Only this ISP.
    pub isp: Option<String>,
    /// Only this device type (`router`, `camera`, ...).
    pub device_type: Option<String>,
    /// Only this botnet (serial).
    pub botnet: Option<String>,
    /// `format=csv` with `table=ID`.
    pub csv: Option<(String, String)>,
    /// When the page was asked for: the reads it makes at once share one roll-up refresh that
    /// began after it (see [`AppState::refresh_rollups_for`]).
    pub asked: Option<std::time::Instant>,
}

impl View {
    /// Reads the query; a malformed filter is an error the page shows.
    pub fn parse(query: &HashMap<String, String>, headers: &HeaderMap) -> Result<View, String> {
        let mut view = View { asked: Some(std::time::Instant::now()), ..View::default() };
        for key in VIEW_KEYS {
            if let Some(value) = query.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                if value.len() > 200 {
                    return Err(format!("{key}: too long"));
                }
                view.state.pairs.insert(key.to_string(), value.to_string());
            }
        }
        let lang = Lang::choose(query.get("lang").map(String::as_str), headers);
        view.lang = Some(lang);
        let date = |key: &str| -> Result<Option<NaiveDate>, String> {
            view_value(&view.state, key)
                .map(|v| {
                    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| format!("{key} {v:?}: expected YYYY-MM-DD"))
                })
                .transpose()
        };
        let (from, to) = (date("from")?, date("to")?);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err("from is after to".into());
        }
        view.from = from;
        view.to = to;
        view.isp = view_value(&view.state, "isp").map(String::from);
        view.device_type = view_value(&view.state, "device_type").map(String::from);
        view.botnet = view_value(&view.state, "botnet").map(String::from);
        if let Some(format) = query.get("format") {
            view.csv = Some((format.clone(), query.get("table").cloned().unwrap_or_default()));
        }
        Ok(view)
    }

    /// The view's language.
    pub fn lang(&self) -> Lang {
        self.lang.unwrap_or(Lang::En)
    }

    /// `format` and `table` for [`super::Page::respond`].
    pub fn csv(&self) -> Option<(&str, &str)> {
        self.csv.as_ref().map(|(f, t)| (f.as_str(), t.as_str()))
    }

    pub(crate) fn start(&self) -> Option<Timestamp> {
        self.from.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
    }

    pub(crate) fn end(&self) -> Option<Timestamp> {
        self.end_day().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
    }

    /// The day after the view's last: its end is that day's midnight (UTC).
    pub(crate) fn end_day(&self) -> Option<chrono::NaiveDate> {
        self.to.and_then(|d| d.succ_opt())
    }

    /// Whether a moment is inside the time range.
    pub fn in_range(&self, at: Timestamp) -> bool {
        self.start().is_none_or(|s| at >= s) && self.end().is_none_or(|e| at < e)
    }

    /// Whether a span overlaps the time range.
    pub fn overlaps(&self, from: Timestamp, to: Timestamp) -> bool {
        self.start().is_none_or(|s| to >= s) && self.end().is_none_or(|e| from < e)
    }
}

fn view_value<'a>(state: &'a ViewState, key: &str) -> Option<&'a str> {
    state.pairs.get(key).map(String::as_str)
}

/// A device type's record name (`router`, `camera`, ...).
pub fn device_type(device: Option<&Device>) -> Option<String> {
    let kind = device?.device_type?;
    serde_json::to_value(kind).ok()?.as_str().map(String::from)
}

/// A server as people write it.
pub fn endpoint(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
        IpAddr::V4(_) => format!("{ip}:{port}"),
    }
}

/// A time as the pages show it (UTC, to the minute).
pub fn when(at: Timestamp) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// Everything a page may show, already filtered to the view.
#[derive(Debug, Default)]
pub struct Data {
    /// Telescope source activity.
    pub activity: Vec<SourceActivity>,
    /// Survey findings.
    pub findings: Vec<Finding>,
    /// Survey service observations.
    pub services: Vec<ServiceObservation>,
    /// Flow analysers' C&C reports.
    pub cnc: Vec<CncCandidate>,
    /// The C&C servers in view, summed over their reports (see [`Data::load_with_servers`]);
    /// shared with the process's cache of the roll-up when read from it.
    pub servers: Arc<Servers>,
    /// Botnets.
    pub botnets: Vec<Botnet>,
    /// Botnets per correlation window.
    pub windows: Vec<BotnetWindow>,
    /// Darknet days.
    pub days: Vec<DarknetDay>,
    /// Notification cases.
    pub notifications: Vec<Notification>,
    /// Outcomes of cases.
    pub outcomes: Vec<Outcome>,
    /// C&C liveness changes (never filtered: the latest state matters whatever the range).
    pub liveness: Vec<Liveness>,
    /// Feed entries.
    pub feeds: Vec<FeedEntry>,
    /// The ISP registry.
    pub isps: Vec<Isp>,
    /// Activity and findings about the bots of the view's botnet windows, read when a page that
    /// shows botnets or their servers did not read those kinds itself (its counts come from the
    /// roll-ups) and an ISP or device-type filter must still decide which botnets have a bot among
    /// the view's hosts.
    members: Option<Box<Data>>,
}

impl Data {
    /// Reads the kinds asked for and applies the view's filters.
    pub async fn load(state: &AppState, kinds: &[Kind], view: &View) -> Result<Data, ApiError> {
        let store = &state.store;
        let mut data = Data::default();
        for kind in kinds {
            let records = all_records(store, Self::query(*kind, view)).await?;
            match kind {
                Kind::Activity => data.activity = payloads(records),
                Kind::Finding => data.findings = payloads(records),
                Kind::Service => data.services = payloads(records),
                Kind::Cnc => data.cnc = payloads(records),
                Kind::Botnet => data.botnets = payloads(records),
                Kind::BotnetWindow => data.windows = payloads(records),
                Kind::DarknetDay => data.days = payloads(records),
                Kind::Notification => data.notifications = payloads(records),
                Kind::Outcome => data.outcomes = payloads(records),
                Kind::Liveness => data.liveness = payloads(records),
                Kind::FeedEntry => data.feeds = payloads(records),
                _ => {}
            }
        }
        if kinds.contains(&Kind::Isp) {
            data.isps = store.isps().await?;
        }
        // The filters decide which botnets and bots a view shows through the correlation windows:
        // a botnet filter for every kind, an ISP or device type for the botnets and their servers.
        let shows_botnets = kinds.iter().any(|k| matches!(k, Kind::Botnet | Kind::Cnc | Kind::FeedEntry));
        let narrows = Self::narrows_botnets(view) && shows_botnets;
        if (view.botnet.is_some() || narrows) && !kinds.contains(&Kind::BotnetWindow) {
            let query = RecordQuery { serial: view.botnet.clone(), ..Self::query(Kind::BotnetWindow, view) };
            data.windows = payloads(all_records(store, query).await?);
        }
        let reads_hosts = kinds.contains(&Kind::Activity) && kinds.contains(&Kind::Finding);
        if narrows && !reads_hosts {
            // The bots of the windows in view, and their own records of the view's days only.
            let bots: BTreeSet<IpAddr> = data
                .windows
                .iter()
                .filter(|w| view.overlaps(w.window_start, w.window_end))
                .flat_map(|w| w.bots.iter().copied())
                .collect();
            let about = |kind: Kind| records_about_within(store, Self::query(kind, view), &bots);
            let activity = if kinds.contains(&Kind::Activity) {
                data.activity.clone()
            } else {
                payloads(about(Kind::Activity).await?)
            };
            let findings = if kinds.contains(&Kind::Finding) {
                data.findings.clone()
            } else {
                payloads(about(Kind::Finding).await?)
            };
            data.members = Some(Box::new(Data { activity, findings, ..Data::default() }));
        }
        data.filter(view);
        Ok(data)
    }

    /// [`Data::load`], and the C&C servers in view summed into [`Data::servers`]: from the per-server
    /// roll-up when the view is a time range only (a year's reports are not read), else from the
    /// reports the filters leave. `kinds` need not name [`Kind::Cnc`].
    pub async fn load_with_servers(state: &AppState, kinds: &[Kind], view: &View) -> Result<Data, ApiError> {
        let rolled_up = |error: botscope_center::CenterError| {
            ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("C&C server roll-up: {error}"))
        };
        if Self::filtered(view) {
            let mut kinds = kinds.to_vec();
            if !kinds.contains(&Kind::Cnc) {
                kinds.push(Kind::Cnc);
            }
            let mut data = Data::load(state, &kinds, view).await?;
            data.servers = Arc::new(servers::of_reports(&data.cnc));
            return Ok(data);
        }
        let kinds: Vec<Kind> = kinds.iter().copied().filter(|k| *k != Kind::Cnc).collect();
        let mut data = Data::load(state, &kinds, view).await?;
        state.refresh_rollups_for(view).await.map_err(rolled_up)?;
        data.servers = state.rolled_up_servers(view.from, view.to).await.map_err(rolled_up)?;
        Ok(data)
    }

    /// Whether the view keeps only the botnets with a bot among the hosts it shows.
    fn narrows_botnets(view: &View) -> bool {
        view.isp.is_some() || view.device_type.is_some()
    }

    /// What the store is asked for one kind: the view's time range and ISP wherever they map onto
    /// the store's indexed columns (each kind's [`botscope_model::Record::time`] and `isp`), so
    /// that a narrow view reads only its rows. [`Data::filter`] then applies the whole view.
    fn query(kind: Kind, view: &View) -> RecordQuery {
        let (start, end) = (view.start(), view.end());
        let (since, until) = match kind {
            // Filtered by the very time the store indexes.
            Kind::Activity
            | Kind::Finding
            | Kind::Service
            | Kind::DarknetDay
            | Kind::Notification
            | Kind::FeedEntry => (start, end),
            // A report counts on its last sighting (the store's time for it), as the per-server
            // roll-up counts it.
            Kind::Cnc => (start, end),
            // Stored under their last sighting: one that overlaps the range was last seen in or
            // after its start.
            Kind::Botnet => (start, None),
            // Stored under their window's start: one that overlaps the range started before its end.
            Kind::BotnetWindow => (None, end),
            _ => (None, None),
        };
        // A case names one ISP; hosts name every ISP of a shared prefix, so only cases are narrowed.
        let isp = if kind == Kind::Notification { view.isp.clone() } else { None };
        // One botnet's records through the serial index, not every botnet's (the filter would
        // keep only these).
        let serial = if matches!(kind, Kind::Botnet | Kind::BotnetWindow) { view.botnet.clone() } else { None };
        RecordQuery { kind: Some(kind), since, until, isp, serial, ..Default::default() }
    }

    fn filter(&mut self, view: &View) {
        self.keep_in_view(view);
        if Self::narrows_botnets(view) {
            // Botnets (and their servers) with a bot among the hosts left.
            let members = match self.members.as_deref_mut() {
                Some(members) => {
                    members.keep_in_view(view);
                    members.hosts()
                }
                None => self.hosts(),
            };
            self.windows.retain(|w| w.bots.iter().any(|b| members.contains(b)));
            let serials: BTreeSet<&str> = self.windows.iter().map(|w| w.serial.as_str()).collect();
            self.botnets.retain(|b| serials.contains(b.serial.as_str()));
            self.keep_servers_of_botnets();
        }
        if let Some(serial) = &view.botnet {
            self.botnets.retain(|b| &b.serial == serial);
            self.windows.retain(|w| &w.serial == serial);
            let bots: BTreeSet<IpAddr> = self.windows.iter().flat_map(|w| w.bots.iter().copied()).collect();
            self.activity.retain(|a| bots.contains(&a.src));
            self.findings.retain(|f| bots.contains(&f.ip));
            self.services.retain(|s| bots.contains(&s.ip));
            self.notifications.retain(|n| n.botnet.as_deref() == Some(serial) || bots.contains(&n.ip));
            self.keep_servers_of_botnets();
        }
    }

    /// The hosts the view shows: infected sources and surveyed devices.
    fn hosts(&self) -> BTreeSet<IpAddr> {
        self.activity.iter().map(|a| a.src).chain(self.findings.iter().map(|f| f.ip)).collect()
    }

    /// The view's time range, ISP and device type, applied to every kind that has them.
    fn keep_in_view(&mut self, view: &View) {
        self.activity.retain(|a| view.in_range(a.window_start));
        self.findings.retain(|f| view.in_range(f.observed_at));
        self.services.retain(|s| view.in_range(s.observed_at));
        self.cnc.retain(|c| view.in_range(c.last_seen));
        self.botnets.retain(|b| view.overlaps(b.first_seen, b.last_seen));
        self.windows.retain(|w| view.overlaps(w.window_start, w.window_end));
        self.days.retain(|d| d.midnight().is_some_and(|m| view.in_range(m)));
        self.notifications.retain(|n| view.in_range(n.created_at));
        self.feeds.retain(|f| view.in_range(f.first_seen));
        if let Some(isp) = &view.isp {
            self.activity.retain(|a| a.isp.as_ref().is_some_and(|h| h.contains(isp)));
            self.findings.retain(|f| f.isp.as_ref().is_some_and(|h| h.contains(isp)));
            self.notifications.retain(|n| &n.isp == isp);
            self.outcomes.retain(|o| &o.isp == isp);
            let addresses: BTreeSet<IpAddr> = self.findings.iter().map(|f| f.ip).collect();
            self.services.retain(|s| addresses.contains(&s.ip));
        }
        if let Some(kind) = &view.device_type {
            let is = |d: Option<&Device>| device_type(d).as_deref() == Some(kind.as_str());
            self.findings.retain(|f| is(f.device.as_ref()));
            self.services.retain(|s| is(s.device.as_ref()));
            self.notifications.retain(|n| is(n.device.as_ref()));
            // Infected hosts of that type: those the survey identified as one.
            let addresses: BTreeSet<IpAddr> = self.findings.iter().map(|f| f.ip).collect();
            self.activity.retain(|a| addresses.contains(&a.src));
        }
    }

    fn keep_servers_of_botnets(&mut self) {
        let servers: BTreeSet<(IpAddr, u16)> =
            self.botnets.iter().flat_map(|b| b.cnc.iter().map(|c| (c.ip, c.port))).collect();
        self.cnc.retain(|c| servers.contains(&(c.ip, c.port)));
        self.feeds.retain(|f| f.port.is_some_and(|port| servers.contains(&(f.ip, port))));
    }

    /// Whether a page may take what it needs of the botnets (how many, which servers each lists)
    /// from the store instead of reading them: the view is a start date at most. A botnet is filed
    /// under its last sighting, so the store's time bound is the view's; an end date needs each
    /// botnet's first sighting, and a filter its members.
    pub fn botnets_answered_in_store(view: &View) -> bool {
        !Self::filtered(view) && view.to.is_none()
    }

    /// Whether a filter is set that darknet-wide counts cannot follow.
    pub fn filtered(view: &View) -> bool {
        view.isp.is_some() || view.device_type.is_some() || view.botnet.is_some()
    }

    /// The latest liveness verdict per server.
    pub fn latest_liveness(&self) -> HashMap<(IpAddr, u16), &Liveness> {
        let mut latest: HashMap<(IpAddr, u16), &Liveness> = HashMap::new();
        for probe in &self.liveness {
            let slot = latest.entry((probe.ip, probe.port)).or_insert(probe);
            if probe.checked_at > slot.checked_at {
                *slot = probe;
            }
        }
        latest
    }

    /// Which botnet each server belongs to.
    pub fn botnet_of_server(&self) -> HashMap<(IpAddr, u16), &str> {
        let mut of = HashMap::new();
        for botnet in &self.botnets {
            for cnc in &botnet.cnc {
                of.insert((cnc.ip, cnc.port), botnet.serial.as_str());
            }
        }
        of
    }

    /// Distinct infected sources.
    pub fn infected_hosts(&self) -> BTreeSet<IpAddr> {
        self.activity
            .iter()
            .filter(|a| a.classification == botscope_model::ActivityClass::Infected)
            .map(|a| a.src)
            .collect()
    }
}

/// Counts by key, in key order.
pub fn count_by<K: Ord, T>(items: impl IntoIterator<Item = T>, key: impl Fn(&T) -> Option<K>) -> BTreeMap<K, u64> {
    let mut counts = BTreeMap::new();
    for item in items {
        if let Some(k) = key(&item) {
            *counts.entry(k).or_insert(0) += 1;
        }
    }
    counts
}

/// Every day from the first key to the last (`YYYY-MM-DD`), missing ones as the default: a
/// chart must show a quiet day as zero, not draw a line across it.
pub fn every_day<T: Default>(mut by_day: BTreeMap<String, T>) -> BTreeMap<String, T> {
    let parse = |d: &String| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let (Some(first), Some(last)) = (by_day.keys().next().and_then(parse), by_day.keys().last().and_then(parse)) else {
        return by_day;
    };
    // Ten years of days at most: a stray date must not make a chart of millions of points.
    for day in first.iter_days().take_while(|d| *d <= last).take(3660) {
        by_day.entry(day.to_string()).or_default();
    }
    by_day
}

/// ISP handles for filter menus.
pub async fn isp_handles(state: &AppState) -> Result<Vec<String>, ApiError> {
    Ok(state.store.isps().await?.into_iter().map(|i| i.handle).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store is asked only for what a view can show: for every view, reading with the view's
    /// bounds gives what reading everything and filtering gave.
    #[tokio::test]
    async fn a_view_reads_through_the_indexes_what_filtering_everything_would_keep() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("view.db"), 1).await.unwrap();
        let examples = include_str!("../../../../data/examples/records.jsonl");
        let records: Vec<_> =
            examples.lines().map(|l| botscope_model::parse_line(l.as_bytes(), None).unwrap().unwrap()).collect();
        store.put_records(&records).await.unwrap();
        let state = AppState::new(botscope_store::AnyStore::Sqlite(store), crate::Limits::default());
        let kinds: Vec<Kind> = Kind::ALL.to_vec();
        let everything = Data::load(&state, &kinds, &View::default()).await.unwrap();
        let days = ["2026-10-19", "2026-10-20", "2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03", "2026-11-10"];
        let mut narrowed = 0;
        for (n, from) in days.iter().enumerate() {
            for to in &days[n..] {
                for (isp, botnet) in [
                    ("", ""),
                    ("hikari-net", ""),
                    ("sakura-bb", ""),
                    ("", "BN-2026-0007"),
                    ("hikari-net", "BN-2026-0007"),
                    ("", "BN-1999-0001"),
                ] {
                    let query = [("from", *from), ("to", *to), ("isp", isp), ("botnet", botnet)]
                        .iter()
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    let view = View::parse(&query, &HeaderMap::new()).unwrap();
                    let read = Data::load(&state, &kinds, &view).await.unwrap();
                    let mut filtered = Data::load(&state, &kinds, &View::default()).await.unwrap();
                    filtered.filter(&view);
                    assert_eq!(format!("{read:?}"), format!("{filtered:?}"), "{from}..{to} {isp} {botnet}");
                    narrowed += usize::from(format!("{read:?}") != format!("{everything:?}"));
                }
            }
        }
        assert!(narrowed > 50, "the views must narrow what is shown for the comparison to mean anything");
    }

    /// The overview counts botnets in the store for a view with a start date at most: the counts
    /// are those of the botnets reading them would keep.
    #[tokio::test]
    async fn botnets_counted_in_the_store_are_those_a_view_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("count.db"), 1).await.unwrap();
        let examples = include_str!("../../../../data/examples/records.jsonl");
        let mut records: Vec<_> =
            examples.lines().map(|l| botscope_model::parse_line(l.as_bytes(), None).unwrap().unwrap()).collect();
        for (n, (status, last_seen)) in
            [("active", "2026-11-03T01:00:00Z"), ("dormant", "2026-10-31T23:59:59Z"), ("dead", "2026-10-20T00:00:00Z")]
                .iter()
                .enumerate()
        {
            let line = format!(
                r#"{{"kind":"botnet","serial":"BN-2026-010{n}","status":"{status}","first_seen":"2026-10-01T00:00:00Z","last_seen":"{last_seen}","members":2,"cnc":[{{"ip":"127.64.0.{n}","port":23,"transport":"tcp","first_seen":"2026-10-01T00:00:00Z","last_seen":"{last_seen}"}},{{"ip":"127.64.0.10","port":6667,"transport":"tcp","first_seen":"2026-10-01T00:00:00Z","last_seen":"{last_seen}"}},{{"ip":"::1","port":8{n},"transport":"udp","first_seen":"2026-10-01T00:00:00Z","last_seen":"{last_seen}"}}]}}"#
            );
            records.push(botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap());
        }
        store.put_records(&records).await.unwrap();
        let state = AppState::new(botscope_store::AnyStore::Sqlite(store), crate::Limits::default());
        for from in ["", "2026-10-20", "2026-10-21", "2026-11-01", "2026-11-03", "2026-11-04"] {
            let query = [("from".to_string(), from.to_string())].into_iter().filter(|(_, v)| !v.is_empty()).collect();
            let view = View::parse(&query, &HeaderMap::new()).unwrap();
            let read = Data::load(&state, &[Kind::Botnet], &view).await.unwrap().botnets;
            let active = read.iter().filter(|b| b.status == botscope_model::BotnetStatus::Active).count();
            let store = &state.store;
            let counted = botscope_store::Store::count_since(store, Kind::Botnet, view.start(), None).await.unwrap();
            let counted_active =
                botscope_store::Store::count_since(store, Kind::Botnet, view.start(), Some("active")).await.unwrap();
            assert_eq!((counted as usize, counted_active as usize), (read.len(), active), "from {from:?}");
            // And the servers' botnets, as /cnc reads them in the store.
            let data = Data::load(&state, &[Kind::Botnet], &view).await.unwrap();
            let listed = botscope_store::Store::botnet_servers(store, view.start()).await.unwrap();
            let of: HashMap<(IpAddr, u16), &str> =
                listed.iter().map(|(serial, ip, port)| ((*ip, *port), serial.as_str())).collect();
            assert_eq!(of, data.botnet_of_server(), "from {from:?}");
        }
    }

    /// Pages that count hosts from the roll-ups (the overview, /cnc) read no activity or findings
    /// and no correlation windows, so an ISP, device-type or botnet filter kept no botnet and no
    /// C&C server at all. With the windows and the bots' own records read for the filter, such a
    /// page keeps what reading everything and filtering keeps.
    /// The servers a process keeps per day range are those the roll-up holds now: read once while
    /// nothing changes, read again as soon as a report, a revision or another range asks for it.
    #[tokio::test]
    async fn kept_servers_are_read_again_when_the_roll_up_changes() {
        use std::sync::atomic::Ordering::Relaxed;
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("kept.db"), 1).await.unwrap();
        let state = AppState::new(botscope_store::AnyStore::Sqlite(store), crate::Limits::default());
        let report = |server: &str, day: &str, score: f64| {
            let line = format!(
                r#"{{"kind":"cnc","window_start":"{day}T09:00:00Z","window_end":"{day}T10:00:00Z","ip":"{server}","port":6667,"protocol":"tcp","score":{score},"rank":1,"methods":["graph"],"seed_clients":2,"total_clients":5,"flows":40,"first_seen":"{day}T09:00:03Z","last_seen":"{day}T09:59:41Z","sensor":"isp-x"}}"#
            );
            botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap()
        };
        let servers = |view: &'static [(&'static str, &'static str)]| {
            let state = state.clone();
            async move {
                let query = view.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                let view = View::parse(&query, &HeaderMap::new()).unwrap();
                let data = Data::load_with_servers(&state, &[Kind::Liveness], &view).await.unwrap();
                let shown: Vec<(String, f64)> =
                    data.servers.iter().map(|((ip, _, _), s)| (ip.to_string(), s.seen.best_score)).collect();
                shown
            }
        };
        let reads = || state.metrics.server_cache_reads.load(Relaxed);
        botscope_store::Store::put_records(&state.store, &[report("127.200.0.1", "2026-11-02", 0.6)]).await.unwrap();
        assert_eq!(servers(&[]).await, [("127.200.0.1".to_string(), 0.6)]);
        assert_eq!(servers(&[]).await, [("127.200.0.1".to_string(), 0.6)]);
        assert_eq!(reads(), 1, "unchanged, the servers are read once");
        // A new server on another day.
        botscope_store::Store::put_records(&state.store, &[report("127.200.0.2", "2026-11-03", 0.7)]).await.unwrap();
        assert_eq!(servers(&[]).await, [("127.200.0.1".to_string(), 0.6), ("127.200.0.2".to_string(), 0.7)]);
        assert_eq!(reads(), 2);
        // A revised report of a day already counted: the same id, later, a better score.
        let mut better = botscope_model::parse_line(
            r#"{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"127.200.0.1","port":6667,"protocol":"tcp","score":0.95,"rank":1,"methods":["graph"],"seed_clients":2,"total_clients":5,"flows":40,"first_seen":"2026-11-02T09:00:03Z","last_seen":"2026-11-02T09:59:41Z","sensor":"isp-x","revised_at":"2026-11-02T12:00:00Z"}"#.as_bytes(),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(better.ensure_id(), report("127.200.0.1", "2026-11-02", 0.6).ensure_id());
        botscope_store::Store::upsert_records(&state.store, &[better]).await.unwrap();
        assert_eq!(servers(&[]).await, [("127.200.0.1".to_string(), 0.95), ("127.200.0.2".to_string(), 0.7)]);
        // Another range is its own.
        assert_eq!(servers(&[("from", "2026-11-03")]).await, [("127.200.0.2".to_string(), 0.7)]);
        assert_eq!(servers(&[]).await, [("127.200.0.1".to_string(), 0.95), ("127.200.0.2".to_string(), 0.7)]);
        assert_eq!(reads(), 4, "three changes and one other range, each read once");
    }

    #[tokio::test]
    async fn a_filter_on_a_page_without_hosts_keeps_the_botnets_with_a_bot_in_view() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("filters.db"), 1).await.unwrap();
        let day = "2026-11-02";
        let mut lines = Vec::new();
        // Two botnets: A's bots are in hikari-net (one a surveyed router), B's in sakura-bb.
        for (serial, server, bots, isp) in [
            ("BN-A", "127.200.0.1", ["127.16.0.1", "127.16.0.2"], "hikari-net"),
            ("BN-B", "127.200.0.2", ["127.17.0.1", "127.17.0.2"], "sakura-bb"),
        ] {
            let endpoint = format!(
                r#"{{"ip":"{server}","port":6667,"transport":"tcp","first_seen":"{day}T00:00:00Z","last_seen":"{day}T23:00:00Z"}}"#
            );
            lines.push(format!(
                r#"{{"kind":"botnet","serial":"{serial}","status":"active","first_seen":"{day}T00:00:00Z","last_seen":"{day}T23:00:00Z","members":2,"cnc":[{endpoint}]}}"#
            ));
            lines.push(format!(
                r#"{{"kind":"botnet_window","serial":"{serial}","window_start":"{day}T00:00:00Z","window_end":"2026-11-03T00:00:00Z","bots":["{}","{}"],"cnc":[{endpoint}],"events":[],"reporters":["isp-x"],"confidence":0.9}}"#,
                bots[0], bots[1]
            ));
            lines.push(format!(
                r#"{{"kind":"cnc","window_start":"{day}T09:00:00Z","window_end":"{day}T10:00:00Z","ip":"{server}","port":6667,"protocol":"tcp","score":0.9,"rank":1,"methods":["graph"],"seed_clients":2,"total_clients":5,"flows":40,"first_seen":"{day}T09:00:03Z","last_seen":"{day}T09:59:41Z","sensor":"isp-x"}}"#
            ));
            for bot in bots {
                lines.push(format!(
                    r#"{{"kind":"activity","window_start":"{day}T09:00:00Z","window_end":"{day}T09:59:59Z","src":"{bot}","classification":"infected","packets":4,"bytes":160,"distinct_destinations":4,"top_ports":[],"first_seen":"{day}T09:01:00Z","last_seen":"{day}T09:58:00Z","isp":"{isp}"}}"#
                ));
            }
        }
        lines.push(format!(
            r#"{{"kind":"finding","observed_at":"{day}T04:12:09Z","ip":"127.16.0.1","port":23,"protocol":"telnet","issue":"default_credential","credential_id":1,"device":{{"vendor":"Example","type":"router"}},"isp":"hikari-net"}}"#
        ));
        let records: Vec<_> =
            lines.iter().map(|l| botscope_model::parse_line(l.as_bytes(), None).unwrap().unwrap()).collect();
        store.put_records(&records).await.unwrap();
        let state = AppState::new(botscope_store::AnyStore::Sqlite(store), crate::Limits::default());
        let shown = |data: &Data| {
            let botnets: Vec<String> = data.botnets.iter().map(|b| b.serial.clone()).collect();
            let servers: Vec<String> = data.cnc.iter().map(|c| c.ip.to_string()).collect();
            (botnets, servers)
        };
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let views: [(Pairs, &[&str]); 5] = [
            (&[], &["BN-A", "BN-B"]),
            (&[("isp", "hikari-net")], &["BN-A"]),
            (&[("isp", "sakura-bb")], &["BN-B"]),
            (&[("device_type", "camera")], &[]),
            (&[("botnet", "BN-B")], &["BN-B"]),
        ];
        let router: Pairs = &[("device_type", "router"), ("from", day), ("to", day)];
        for (pairs, botnets) in views.iter().copied().chain([(router, &["BN-A"][..])]) {
            let query = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let view = View::parse(&query, &HeaderMap::new()).unwrap();
            let mut everything = Data::load(&state, &Kind::ALL, &View::default()).await.unwrap();
            everything.filter(&view);
            assert_eq!(shown(&everything).0, *botnets, "{pairs:?}: filtering everything");
            for kinds in [
                &[Kind::Cnc, Kind::Botnet, Kind::DarknetDay, Kind::Liveness][..],
                &[Kind::Cnc, Kind::Botnet, Kind::Activity],
            ] {
                let read = Data::load(&state, kinds, &view).await.unwrap();
                assert_eq!(shown(&read), shown(&everything), "{pairs:?} reading {kinds:?}");
            }
            // The overview and /cnc read the servers from the per-server roll-up when they can.
            for kinds in [
                &[Kind::Botnet, Kind::DarknetDay, Kind::Liveness][..],
                &[Kind::Botnet, Kind::Liveness, Kind::FeedEntry],
            ] {
                let read = Data::load_with_servers(&state, kinds, &view).await.unwrap();
                let servers: Vec<String> = read.servers.keys().map(|(ip, _, _)| ip.to_string()).collect();
                let mut expected = shown(&everything).1;
                expected.sort();
                assert_eq!(servers, expected, "{pairs:?}: servers with {kinds:?}");
            }
        }
    }

    #[test]
    fn a_bad_date_or_an_inverted_range_is_a_clear_error() {
        let query = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let headers = HeaderMap::new();
        let error = View::parse(&query(&[("from", "2026-02-30")]), &headers).unwrap_err();
        assert!(error.contains("expected YYYY-MM-DD"), "{error}");
        let error = View::parse(&query(&[("from", "2026-11-05"), ("to", "2026-11-01")]), &headers).unwrap_err();
        assert_eq!(error, "from is after to");
        let view =
            View::parse(&query(&[("from", "2026-11-01"), ("to", "2026-11-01"), ("junk", "x")]), &headers).unwrap();
        assert!(view.in_range("2026-11-01T23:59:59Z".parse().unwrap()));
        assert!(!view.in_range("2026-11-02T00:00:00Z".parse().unwrap()));
        assert!(!view.state.pairs.contains_key("junk"), "unknown keys are not carried into links");
    }

    /// Issue 18: a host of a prefix two ISPs share carries `"isp":"hikari-net,sakura-bb"`; each
    /// ISP's view compared the whole string with its own handle and so lost the host.
    #[test]
    fn a_shared_prefix_host_appears_in_each_of_its_isps_views() {
        let finding = r#"{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"127.16.4.21","port":23,"protocol":"telnet","issue":"default_credential","credential_id":1,"isp":"hikari-net,sakura-bb"}"#;
        let activity = r#"{"kind":"activity","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-02T01:00:00Z","src":"127.16.4.21","classification":"infected","packets":3,"bytes":180,"distinct_destinations":3,"top_ports":[],"first_seen":"2026-11-02T00:01:00Z","last_seen":"2026-11-02T00:02:00Z","isp":"hikari-net,sakura-bb"}"#;
        let view_of = |isp: &str| {
            let query = [("isp".to_string(), isp.to_string())].into_iter().collect();
            let mut data = Data::default();
            let record = |line: &str| botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap();
            data.findings.push(record(finding).into_payload().unwrap());
            data.activity.push(record(activity).into_payload().unwrap());
            data.filter(&View::parse(&query, &HeaderMap::new()).unwrap());
            (data.findings.len(), data.activity.len())
        };
        assert_eq!(view_of("hikari-net"), (1, 1));
        assert_eq!(view_of("sakura-bb"), (1, 1));
        assert_eq!(view_of("hikari"), (0, 0));
    }

    #[test]
    fn quiet_days_are_filled_with_zeros() {
        let days: BTreeMap<String, u64> = [("2026-11-01".to_string(), 3), ("2026-11-04".to_string(), 1)].into();
        let filled = every_day(days);
        assert_eq!(filled.values().copied().collect::<Vec<_>>(), [3, 0, 0, 1]);
    }

    proptest::proptest! {
        #[test]
        fn any_query_gives_a_view_or_an_error_and_links_stay_on_this_site(
            pairs in proptest::collection::vec(("(lang|from|to|isp|device_type|botnet|format|table|[a-z]{1,5})", ".{0,300}"), 0..8)
        ) {
            let query: HashMap<String, String> = pairs.into_iter().collect();
            if let Ok(view) = View::parse(&query, &HeaderMap::new()) {
                let href = view.state.href("/cnc", &[("table", "cnc")]);
                proptest::prop_assert!(href.starts_with("/cnc"));
                proptest::prop_assert!(!href.contains(['"', '<', '>', ' ', '\'', '#']), "{}", href);
            }
        }
    }
}
