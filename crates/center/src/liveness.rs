//! Whether C&C servers still answer: a TCP connect (and, when asked, a greeting the server must
//! not refuse), recorded only when a server's state changes, and the lifetimes that follow.
//!
//! What may be probed is a [`Scope`] the caller builds (`botscope liveness`: every public address
//! by default, `--scope` to narrow it, `--exclude-file` for opt-outs, loopback only with `--lab`).
//! Every probe connects through the scope-checked [`botscope_scope::connect`], so a server a sensor
//! reported outside the scope is counted and skipped, never contacted. Probes run at a bounded
//! rate and concurrency, each bounded in time.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use botscope_model::{FeedEntry, FeedRole, Liveness, Record, Timestamp, Transport};
use botscope_scope::{ConnectError, OutOfScope, Scope};
use botscope_store::{Store, all_of};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::CenterError;

/// A server to probe.
pub type Target = (IpAddr, u16, Transport);

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Connect timeout, and how long a greeted server must keep the connection.
    pub timeout: Duration,
    /// Bytes to send after connecting (e.g. Mirai's bot hello `00000001`); none = connect only.
    pub greeting: Option<Vec<u8>>,
    /// Probes started per second at most.
    pub rate: u32,
    /// Probes in flight at most.
    pub concurrency: usize,
    /// Name written as the records' `sensor`.
    pub sensor: Option<String>,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Whether it answered.
    pub alive: bool,
    /// What was seen.
    pub outcome: &'static str,
    /// Connect time, when it connected.
    pub rtt_ms: Option<f64>,
}

/// Probes one TCP server, if `scope` allows its address (else nothing is sent).
pub async fn probe(scope: &Scope, target: SocketAddr, config: &ProbeConfig) -> Result<Probe, OutOfScope> {
    let started = Instant::now();
    let stream = match botscope_scope::connect(scope, target, config.timeout).await {
        Err(ConnectError::OutOfScope(refused)) => return Err(refused),
        Err(ConnectError::Timeout { .. }) => return Ok(Probe { alive: false, outcome: "timeout", rtt_ms: None }),
        Err(ConnectError::Io { source, .. }) => {
            let outcome = match source.kind() {
                std::io::ErrorKind::ConnectionRefused => "refused",
                std::io::ErrorKind::ConnectionReset => "reset",
                _ => "unreachable",
            };
            return Ok(Probe { alive: false, outcome, rtt_ms: None });
        }
        Ok(stream) => stream,
    };
    let rtt_ms = Some((started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0);
    Ok(greet(stream, config, rtt_ms).await)
}

async fn greet(stream: tokio::net::TcpStream, config: &ProbeConfig, rtt_ms: Option<f64>) -> Probe {
    let Some(greeting) = &config.greeting else {
        return Probe { alive: true, outcome: "connected", rtt_ms };
    };
    let mut stream = stream;
    if stream.write_all(greeting).await.is_err() {
        return Probe { alive: false, outcome: "reset", rtt_ms };
    }
    // A C&C keeps a greeted bot connected (it may say nothing); a dead service closes or resets.
    let mut buffer = [0u8; 256];
    match tokio::time::timeout(config.timeout, stream.read(&mut buffer)).await {
        Err(_) | Ok(Ok(1..)) => Probe { alive: true, outcome: "greeted", rtt_ms },
        Ok(Ok(0)) => Probe { alive: false, outcome: "closed", rtt_ms },
        Ok(Err(_)) => Probe { alive: false, outcome: "reset", rtt_ms },
    }
}

/// The servers worth probing: every reported C&C and every feed-listed C&C with a port. The
/// reported ones come from the per-server roll-up, brought up to date first: a national year's
/// reports are tens of thousands per server list, and the roll-up outlives the reports retention
/// prunes.
pub async fn targets(store: &impl Store) -> Result<Vec<Target>, CenterError> {
    let counted = crate::rollup::refresh(store).await?;
    if counted.skipped > 0 {
        tracing::warn!(
            days = counted.skipped,
            "days of records could not be counted; their C&C servers are not probed"
        );
    }
    let mut found: Vec<Target> = crate::rollup::servers::read(store, None, None).await?.into_keys().collect();
    for f in all_of::<FeedEntry>(store).await? {
        if f.role == FeedRole::Cnc
            && let Some(target) = f.endpoint()
        {
            found.push(target);
        }
    }
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

/// The latest recorded state of each server.
async fn last_states(store: &impl Store) -> Result<BTreeMap<Target, Liveness>, CenterError> {
    let mut last: BTreeMap<Target, Liveness> = BTreeMap::new();
    for l in all_of::<Liveness>(store).await? {
        let key = (l.ip, l.port, l.protocol);
        if last.get(&key).is_none_or(|seen| seen.checked_at <= l.checked_at) {
            last.insert(key, l);
        }
    }
    Ok(last)
}

/// What one round did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoundReport {
    /// Servers probed.
    pub probed: usize,
    /// Alive now.
    pub alive: usize,
    /// Dead now.
    pub dead: usize,
    /// State changes recorded (including first probes).
    pub changes: usize,
    /// Servers not probed (UDP, or outside the scope).
    pub skipped: usize,
    /// Of the skipped, those outside the scope.
    pub outside_scope: usize,
}

/// Probes every target inside `scope` once (at most `config.rate` per second) and stores a
/// liveness record for each first probe and each change of state. Targets outside the scope are
/// counted (addresses logged at debug level only) and never contacted.
pub async fn round(
    store: &impl Store,
    targets: &[Target],
    config: &ProbeConfig,
    scope: &Scope,
) -> Result<RoundReport, CenterError> {
    let last = last_states(store).await?;
    let mut report = RoundReport::default();
    let gate = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(config.rate.max(1))));
    let mut tasks = tokio::task::JoinSet::new();
    let scope = Arc::new(scope.clone());
    for (n, target) in targets.iter().enumerate() {
        if target.2 != Transport::Tcp {
            report.skipped += 1;
            continue;
        }
        if let Err(refused) = scope.check(target.0) {
            report.skipped += 1;
            report.outside_scope += 1;
            tracing::debug!(%refused, port = target.1, "liveness target outside the scope skipped");
            continue;
        }
        tick.tick().await;
        let permit =
            gate.clone().acquire_owned().await.map_err(|_| CenterError::Invalid("probe gate closed".into()))?;
        let config = config.clone();
        let target = *target;
        let scope = scope.clone();
        tasks.spawn(async move {
            let result = probe(&scope, SocketAddr::new(target.0, target.1), &config).await;
            drop(permit);
            (n, target, chrono::Utc::now(), result)
        });
    }
    let mut changes = Vec::new();
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        results.push(done.map_err(|e| CenterError::Invalid(format!("a probe failed: {e}")))?);
    }
    results.sort_by_key(|(n, ..)| *n);
    if results.iter().any(|(.., result)| result.is_err()) {
        tracing::warn!("a liveness probe outside the scope was refused before any packet");
    }
    for (_, target, at, result) in results {
        // Checked above, so a refusal here cannot happen; it is still not a probe.
        let Ok(result) = result else {
            report.skipped += 1;
            report.outside_scope += 1;
            continue;
        };
        report.probed += 1;
        if result.alive {
            report.alive += 1;
        } else {
            report.dead += 1;
        }
        if last.get(&target).is_none_or(|before| before.alive != result.alive) {
            let mut record = Record::Liveness(Liveness {
                id: None,
                ip: target.0,
                port: target.1,
                protocol: target.2,
                checked_at: at,
                alive: result.alive,
                outcome: result.outcome.into(),
                rtt_ms: result.rtt_ms,
                sensor: config.sensor.clone(),
            });
            record.ensure_id();
            changes.push(record);
        }
    }
    report.changes = changes.len();
    store.put_records(&changes).await?;
    Ok(report)
}

/// How long C&C servers lived, from first report to the probe that found them dead for good.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Lifetimes {
    /// Servers with at least one probe.
    pub servers: usize,
    /// Dead at their last probe.
    pub dead: usize,
    /// Dead, and within 10 days of their first report.
    pub dead_within_10_days: usize,
    /// `dead_within_10_days / servers`.
    pub share_dead_within_10_days: f64,
    /// Median lifetime of the dead, hours.
    pub median_lifetime_hours: Option<f64>,
    /// Per server: first report, death (when dead), and lifetime in hours.
    pub per_server: Vec<ServerLife>,
}

/// One server's life.
#[derive(Debug, Clone, Serialize)]
pub struct ServerLife {
    /// `ADDRESS:PORT/PROTOCOL`.
    pub server: String,
    /// First report (flow analyser or feed).
    pub first_reported: Timestamp,
    /// Whether its last probe found it alive.
    pub alive: bool,
    /// When it went dead for good (the last transition to dead).
    pub died: Option<Timestamp>,
    /// Hours from first report to death, or to now while alive.
    pub hours: f64,
}

/// Lifetimes from the reports (their per-server roll-up as last refreshed, see [`targets`]) and
/// the liveness records.
pub async fn lifetimes(store: &impl Store, now: Timestamp) -> Result<Lifetimes, CenterError> {
    let mut first: BTreeMap<Target, Timestamp> = crate::rollup::servers::read(store, None, None)
        .await?
        .into_iter()
        .map(|(key, server)| (key, server.seen.first_seen))
        .collect();
    let mut note = |key: Target, at: Timestamp| {
        let slot = first.entry(key).or_insert(at);
        *slot = (*slot).min(at);
    };
    for f in all_of::<FeedEntry>(store).await? {
        if f.role == FeedRole::Cnc
            && let Some(key) = f.endpoint()
        {
            note(key, f.first_seen);
        }
    }
    let last = last_states(store).await?;
    let mut out = Lifetimes::default();
    let mut dead_hours = Vec::new();
    for (key, state) in &last {
        let born = first.get(key).copied().unwrap_or(state.checked_at).min(state.checked_at);
        let end = if state.alive { now } else { state.checked_at };
        let hours = (end - born).num_seconds().max(0) as f64 / 3600.0;
        out.servers += 1;
        if !state.alive {
            out.dead += 1;
            dead_hours.push(hours);
            if hours <= 240.0 {
                out.dead_within_10_days += 1;
            }
        }
        out.per_server.push(ServerLife {
            server: format!("{}:{}/{}", key.0, key.1, key.2.as_str()),
            first_reported: born,
            alive: state.alive,
            died: (!state.alive).then_some(state.checked_at),
            hours: (hours * 10.0).round() / 10.0,
        });
    }
    if out.servers > 0 {
        out.share_dead_within_10_days = out.dead_within_10_days as f64 / out.servers as f64;
    }
    dead_hours.sort_by(f64::total_cmp);
    if !dead_hours.is_empty() {
        let mid = dead_hours.len() / 2;
        let median =
            if dead_hours.len() % 2 == 1 { dead_hours[mid] } else { (dead_hours[mid - 1] + dead_hours[mid]) / 2.0 };
        out.median_lifetime_hours = Some((median * 10.0).round() / 10.0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_probe_outside_the_scope_is_refused_and_sends_nothing() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let config =
            ProbeConfig { timeout: Duration::from_secs(2), greeting: None, rate: 10, concurrency: 1, sensor: None };
        // Outside the lab loopback is blocklisted, whatever the operator's ranges say.
        for scope in [
            Scope::public(&[], false),
            Scope::build_any(&["127.0.0.0/8".parse().unwrap()], &[], false).unwrap(),
            Scope::build_any(&["127.0.0.2/32".parse().unwrap()], &[], true).unwrap(),
        ] {
            let refused = probe(&scope, target, &config).await.unwrap_err();
            assert_eq!(refused.addr, target.ip());
        }
        let waiting = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
        assert!(waiting.is_err(), "a refused probe reached the listener");
        let reached = probe(&Scope::public(&[], true), target, &config).await.unwrap();
        assert!(reached.alive, "{reached:?}");
        assert!(tokio::time::timeout(Duration::from_secs(1), listener.accept()).await.is_ok());
    }

    /// The servers to probe and their first report come from the per-server roll-up, which
    /// outlives the reports: a server whose reports retention pruned is still probed, and its
    /// lifetime still counts from its first report.
    #[tokio::test]
    async fn servers_whose_reports_were_pruned_are_still_probed_from_their_first_report() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("live.db"), 1).await.unwrap();
        let report = |ip: &str, day: u32| {
            let line = format!(
                r#"{{"kind":"cnc","window_start":"2026-11-{day:02}T09:00:00Z","window_end":"2026-11-{day:02}T10:00:00Z","ip":"{ip}","port":6667,"protocol":"tcp","score":0.9,"rank":1,"methods":["graph"],"seed_clients":2,"total_clients":5,"flows":40,"first_seen":"2026-11-{day:02}T09:00:03.250Z","last_seen":"2026-11-{day:02}T09:59:41Z","sensor":"isp-x"}}"#
            );
            let mut record = botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap();
            record.ensure_id();
            record
        };
        store
            .put_records(&[report("127.200.0.1", 1), report("127.200.0.1", 9), report("127.200.0.2", 9)])
            .await
            .unwrap();
        let today: chrono::NaiveDate = "2026-11-10".parse().unwrap();
        let pruned = crate::retention::prune(&store, 3, today, false, |_, _| {}).await.unwrap();
        assert_eq!(pruned.total(), 1, "the first report of 127.200.0.1 is pruned");

        let probed = targets(&store).await.unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(probed, vec![(ip("127.200.0.1"), 6667, Transport::Tcp), (ip("127.200.0.2"), 6667, Transport::Tcp)]);
        let dead = |server: &str, at: &str| {
            Record::Liveness(Liveness {
                id: None,
                checked_at: at.parse().unwrap(),
                ip: ip(server),
                port: 6667,
                protocol: Transport::Tcp,
                alive: false,
                outcome: "refused".into(),
                rtt_ms: None,
                sensor: None,
            })
        };
        let mut deaths = vec![dead("127.200.0.1", "2026-11-10T09:00:03Z")];
        for record in &mut deaths {
            record.ensure_id();
        }
        store.put_records(&deaths).await.unwrap();
        let lives = lifetimes(&store, "2026-11-10T12:00:00Z".parse().unwrap()).await.unwrap();
        let first = &lives.per_server[0];
        assert_eq!(
            first.first_reported.to_rfc3339(),
            "2026-11-01T09:00:03+00:00",
            "to the second, from the pruned report"
        );
        assert_eq!(first.hours, 216.0, "nine days, from the first report to the probe that found it dead");
    }
}
