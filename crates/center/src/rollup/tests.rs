use std::collections::{BTreeMap, BTreeSet};

use botscope_model::{Record, Transport, parse_line};
use botscope_store::{SqliteStore, Store};
use serde_json::{Value, json};

use super::*;

const ACTIVITY: &str = r#"{"kind":"activity","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-02T01:00:00Z","src":"127.17.9.3","classification":"infected","tags":["mirai"],"packets":41,"bytes":1648,"distinct_destinations":39,"top_ports":[],"first_seen":"2026-11-02T00:03:51Z","last_seen":"2026-11-02T00:58:12Z","isp":"hikari-net","sensor":"darknet-a"}"#;

fn record(template: &str, edit: impl FnOnce(&mut Value)) -> Record {
    let mut value: Value = serde_json::from_str(template).unwrap();
    edit(&mut value);
    let mut record = parse_line(value.to_string().as_bytes(), None).unwrap().unwrap();
    record.ensure_id();
    record
}

/// An activity window of one hour.
fn hour(v: &mut Value, day: u32, hour: u64) {
    v["window_start"] = json!(format!("2026-11-{day:02}T{hour:02}:00:00Z"));
    v["window_end"] = json!(format!("2026-11-{day:02}T{hour:02}:59:59Z"));
    v["first_seen"] = json!(format!("2026-11-{day:02}T{hour:02}:01:00Z"));
    v["last_seen"] = json!(format!("2026-11-{day:02}T{hour:02}:58:00Z"));
}

/// The seeded week of records both ways of counting are compared on.
fn world(seed: u64, per_day: usize) -> Vec<Record> {
    botscope_testkit::records::week(seed, per_day)
        .iter()
        .map(|line| {
            let mut record = parse_line(line.as_bytes(), None).unwrap().unwrap();
            record.ensure_id();
            record
        })
        .collect()
}

async fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("rollup.db"), 1).await.unwrap();
    (dir, store)
}

/// Distinct infected sources per ISP (and over all) from the records themselves.
fn infected_truth(records: &[Record], days: std::ops::RangeInclusive<u32>) -> BTreeMap<String, BTreeSet<IpAddr>> {
    let mut truth: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for a in botscope_model::payloads::<SourceActivity>(records.to_vec()) {
        let day = a.window_start.format("%d").to_string().parse::<u32>().unwrap();
        if a.classification != ActivityClass::Infected || !days.contains(&day) {
            continue;
        }
        truth.entry(String::new()).or_default().insert(a.src);
        for isp in a.isp.iter().flat_map(|h| h.iter()) {
            truth.entry(isp.to_string()).or_default().insert(a.src);
        }
    }
    truth
}

#[tokio::test]
async fn roll_ups_count_what_the_records_hold_over_any_range_of_days() {
    let (_dir, store) = store().await;
    let records = world(7, 150);
    store.put_records(&records).await.unwrap();
    let summary = refresh(&store).await.unwrap();
    assert_eq!(summary.days, 35, "seven days of five kinds");
    assert_eq!(summary.records, store.count_records(None).await.unwrap(), "every record read once");
    assert_eq!(pending(&store, 10).await.unwrap(), 0);
    // The truth is what the store kept: of two records with one id (the same host, window and
    // sensor), the first.
    let records = all_records(&store, RecordQuery::default()).await.unwrap();
    for (first, last) in [(1, 7), (2, 2), (3, 5)] {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d);
        let series = Series::read(&store, Kind::Activity, "infected", day(first), day(last)).await.unwrap();
        let truth = infected_truth(&records, first..=last);
        for (dim, hosts) in &truth {
            assert_eq!(series.hosts(dim).count(), HostCount { value: hosts.len() as u64, exact: true }, "{dim:?}");
        }
        assert_eq!(series.dims().len(), truth.len(), "one dimension per ISP and the whole");
        let notified = Series::read(&store, Kind::Notification, "weak", day(first), day(last)).await.unwrap();
        let expected = botscope_model::payloads::<Notification>(records.clone())
            .iter()
            .filter(|n| {
                matches!(n.reason, NotificationReason::DefaultCredential | NotificationReason::NoAuthentication)
            })
            .filter(|n| (first..=last).contains(&n.created_at.format("%d").to_string().parse::<u32>().unwrap()))
            .count() as u64;
        assert_eq!(notified.total(""), expected);
    }
}

#[tokio::test]
async fn a_write_after_a_refresh_dirties_its_day_again_and_a_racing_write_keeps_the_mark() {
    let (_dir, store) = store().await;
    let records = world(8, 20);
    store.put_records(&records).await.unwrap();
    refresh(&store).await.unwrap();
    let late = record(ACTIVITY, |v| {
        v["src"] = json!("127.99.0.1");
        hour(v, 3, 5);
    });
    store.put_records(std::slice::from_ref(&late)).await.unwrap();
    let dirty = store.dirty_rollups(None, 10).await.unwrap();
    assert_eq!(dirty.len(), 1);
    assert_eq!((dirty[0].kind, dirty[0].day.to_string()), (Kind::Activity, "2026-11-03".to_string()));
    // Another write lands between reading the mark and replacing the rows: the mark stays.
    let racing = record(ACTIVITY, |v| {
        v["src"] = json!("127.99.0.2");
        hour(v, 3, 7);
    });
    store.put_records(std::slice::from_ref(&racing)).await.unwrap();
    assert!(!store.replace_rollups(&dirty[0], &[], &[]).await.unwrap());
    assert_eq!(pending(&store, 10).await.unwrap(), 1);
    refresh(&store).await.unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 11, 3);
    let series = Series::read(&store, Kind::Activity, "infected", day, day).await.unwrap();
    let all = all_records(&store, RecordQuery::default()).await.unwrap();
    assert!(all.contains(&late) && all.contains(&racing));
    assert_eq!(series.hosts("").count().value, infected_truth(&all, 3..=3)[""].len() as u64);
}

/// Past [`EXACT_LIMIT`] hosts a day the counts are estimates, within a few per cent over a week.
#[tokio::test]
async fn busy_days_are_estimated_closely() {
    let (_dir, store) = store().await;
    let records: Vec<Record> = (0..7u32)
        .flat_map(|day| {
            (0..3_000u32).map(move |i| {
                let host = std::net::Ipv4Addr::from(0x7f00_0000 + (i + day * 500));
                record(ACTIVITY, |v| {
                    v["src"] = json!(host.to_string());
                    hour(v, day + 1, 1);
                })
            })
        })
        .collect();
    store.put_records(&records).await.unwrap();
    refresh(&store).await.unwrap();
    let series = Series::read(&store, Kind::Activity, "infected", None, None).await.unwrap();
    let truth = infected_truth(&records, 1..=7)[""].len() as f64;
    let count = series.hosts("").count();
    assert!(!count.exact);
    assert!((count.value as f64 - truth).abs() / truth < 0.05, "{truth} estimated as {}", count.value);
    // A single day's count is exact: it was counted before the sketch.
    assert_eq!(series.per_day("").values().copied().collect::<Vec<_>>(), vec![3_000; 7]);
}

/// C&C reports that vary everything the server roll-up keeps: several families per server and
/// reporter (in mixed case, so a collation that does not compare bytes would pick another),
/// reports without a family or a sensor, IPv4 and IPv6 servers, TCP and UDP, scores, and
/// sightings with fractions of a second.
fn varied_reports(seed: u64) -> Vec<Record> {
    let mut state = seed;
    let mut next = |n: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    // Even servers' reports name Mirai or gafgyt: byte by byte the greatest is gafgyt, where a
    // linguistic collation would pick Mirai.
    let families = [[None, Some("Mirai"), Some("gafgyt"), None], [None, Some("mozi"), Some("Gafgyt"), Some("Mirai")]];
    let sensors = [None, Some("isp-a"), Some("isp-b")];
    let mut records = Vec::new();
    for day in 1..=7u32 {
        for hour in 0..24u32 {
            for _ in 0..next(3) {
                let server = next(10);
                let ip = if server % 3 == 0 { format!("2001:db8::{server}") } else { format!("127.200.0.{server}") };
                let (port, protocol) = if server % 4 == 1 { (53, "udp") } else { (6667, "tcp") };
                let mut report = json!({
                    "kind": "cnc",
                    "window_start": format!("2026-11-{day:02}T{hour:02}:00:00Z"),
                    "window_end": format!("2026-11-{day:02}T{hour:02}:59:59Z"),
                    "ip": ip, "port": port, "protocol": protocol,
                    "score": next(1000) as f64 / 1000.0, "rank": 1, "methods": ["graph"],
                    "seed_clients": 2, "total_clients": 5, "flows": 1 + next(100),
                    "first_seen": format!("2026-11-{day:02}T{hour:02}:{:02}:03.{:03}Z", next(30), next(1000)),
                    "last_seen": format!("2026-11-{day:02}T{hour:02}:{:02}:41.{:03}Z", 30 + next(29), next(1000)),
                });
                if let Some(family) = families[(server % 2) as usize][next(4) as usize] {
                    report["family"] = json!(family);
                }
                if let Some(sensor) = sensors[next(3) as usize] {
                    report["sensor"] = json!(sensor);
                }
                records.push(record(&report.to_string(), |_| {}));
            }
        }
    }
    records
}

/// The overview and /cnc read C&C servers from the per-server roll-up; a filtered view sums the
/// reports it read. Both must show the same servers, reporters, sightings, scores and families
/// over any range of days, on either backend.
async fn the_server_roll_up_sums_what_the_reports_hold(store: impl Store) {
    store.put_records(&varied_reports(11)).await.unwrap();
    refresh(&store).await.unwrap();
    let reports: Vec<CncCandidate> = botscope_model::payloads(
        all_records(&store, RecordQuery { kind: Some(Kind::Cnc), ..Default::default() }).await.unwrap(),
    );
    assert!(reports.len() > 100, "the week must hold reports for the comparison to mean anything");
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d);
    for (first, last) in [(None, None), (day(1), day(7)), (day(2), day(2)), (day(3), day(5)), (day(8), None)] {
        let within = reports.iter().filter(|c| {
            let on = c.last_seen.date_naive();
            first.is_none_or(|f| on >= f) && last.is_none_or(|l| on <= l)
        });
        let truth = servers::of_reports(within);
        let rolled = servers::read(&store, first, last).await.unwrap();
        assert_eq!(rolled, truth, "{first:?}..{last:?}");
    }
    let all = servers::read(&store, None, None).await.unwrap();
    assert!(all.keys().any(|(ip, _, _)| ip.is_ipv6()) && all.keys().any(|(_, _, t)| *t == Transport::Udp));
    assert!(all.values().any(|s| s.reporters.contains(&None) && s.reporters.len() > 2));
    for ((ip, _, _), server) in &all {
        let even = match ip {
            IpAddr::V4(v4) => v4.octets()[3] % 2 == 0,
            IpAddr::V6(v6) => v6.segments()[7] % 2 == 0,
        };
        if even {
            assert_eq!(server.seen.family.as_deref(), Some("gafgyt"), "{ip}: the greatest byte by byte");
        }
    }
}

#[tokio::test]
async fn the_server_roll_up_sums_what_the_reports_hold_on_sqlite() {
    let (_dir, store) = store().await;
    the_server_roll_up_sums_what_the_reports_hold(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_roll_up_sums_what_the_reports_hold_on_postgres() {
    let cluster = botscope_testkit::PgCluster::start();
    let store = botscope_store::PostgresStore::open(&cluster.create_database("servers"), 2).await.unwrap();
    the_server_roll_up_sums_what_the_reports_hold(store).await;
}
