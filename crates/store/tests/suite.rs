//! One suite, run against both backends: whatever the SQLite store promises, PostgreSQL keeps too.
//!
//! Each case gets a fresh, empty store. The PostgreSQL run starts a real throw-away cluster on
//! 127.0.0.1 (see botscope-testkit) and removes it afterwards.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

use std::future::Future;

use botscope_model::{Isp, Kind, Record, RoutedPrefix, parse_line};
use botscope_store::{
    BotnetSpan, Dims, Lease, LeaseBounds, LeaseKind, PostgresStore, RecordQuery, RollupRow, ServerRollup, SqliteStore,
    Store, StoreError, TokenRow,
};
use botscope_testkit::PgCluster;

const FINDING: &str = r#"{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"127.16.4.21","port":23,"protocol":"telnet","issue":"default_credential","credential_id":17}"#;
const ACTIVITY: &str = r#"{"kind":"activity","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-03T00:00:00Z","src":"2001:db8::7","classification":"infected","packets":10,"mirai_packets":10,"distinct_destinations":9,"first_seen":"2026-11-02T00:03:51Z","last_seen":"2026-11-02T23:58:12Z"}"#;
const CNC: &str = r#"{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"127.64.0.10","port":6667,"protocol":"tcp","score":0.93,"rank":1,"methods":["graph"],"seed_clients":41,"total_clients":50,"flows":1290,"first_seen":"2026-11-02T09:00:03Z","last_seen":"2026-11-02T09:59:41Z"}"#;
const ISP: &str =
    r#"{"kind":"isp","handle":"hikari-net","name":"Hikari Net","asns":[64500,64501],"contact":"abuse@hikari.example"}"#;

fn record(line: &str) -> Record {
    parse_line(line.as_bytes(), None).unwrap().unwrap()
}

fn finding_at(host: u32) -> Record {
    record(&FINDING.replace("127.16.4.21", &std::net::Ipv4Addr::from(0x7f10_0000 + host).to_string()))
}

fn isp(handle: &str, asns: &[u32]) -> Isp {
    let Record::Isp(mut isp) = record(ISP) else { unreachable!() };
    isp.handle = handle.into();
    isp.asns = asns.to_vec();
    isp.id = None;
    isp
}

async fn records_round_trip_exactly(store: impl Store) {
    let batch = vec![record(FINDING), record(ACTIVITY), record(CNC)];
    let summary = store.put_records(&batch).await.unwrap();
    assert_eq!((summary.inserted, summary.duplicates), (3, 0));
    for original in &batch {
        let stored = store.record(original.id().unwrap()).await.unwrap().expect("stored record");
        assert_eq!(&stored, original);
    }
    assert_eq!(store.count_records(None).await.unwrap(), 3);
    assert_eq!(store.count_records(Some(Kind::Activity)).await.unwrap(), 1);
    assert_eq!(store.record(uuid::Uuid::nil()).await.unwrap(), None);
}

async fn writing_the_same_records_again_stores_them_once(store: impl Store) {
    let batch: Vec<Record> = (0..50).map(finding_at).collect();
    store.put_records(&batch).await.unwrap();
    let again = store.put_records(&batch).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 50));
    let mut with_repeats = batch[..10].to_vec();
    with_repeats.extend(batch[..10].iter().cloned());
    with_repeats.push(finding_at(1000));
    let mixed = store.put_records(&with_repeats).await.unwrap();
    assert_eq!((mixed.inserted, mixed.duplicates), (1, 20));
    assert_eq!(store.count_records(Some(Kind::Finding)).await.unwrap(), 51);
}

async fn a_failed_batch_leaves_nothing_behind(store: impl Store) {
    let mut batch: Vec<Record> = (0..20).map(finding_at).collect();
    let mut without_id = finding_at(99);
    if let Record::Finding(f) = &mut without_id {
        f.id = None;
    }
    batch.push(without_id);
    assert!(matches!(store.put_records(&batch).await, Err(StoreError::MissingId { kind: Kind::Finding })));
    assert_eq!(store.count_records(None).await.unwrap(), 0);
}

async fn large_batches_are_split_and_paged_in_id_order(store: impl Store) {
    let batch: Vec<Record> = (0..25_000).map(finding_at).collect();
    assert_eq!(store.put_records(&batch).await.unwrap().inserted, 25_000);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .records(&RecordQuery { kind: Some(Kind::Finding), after, limit: 7_000, ..Default::default() })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().and_then(Record::id);
        seen.extend(page.iter().map(|r| r.id().unwrap()));
    }
    let mut expected: Vec<_> = batch.iter().map(|r| r.id().unwrap()).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

async fn routing_snapshots_replace_each_other(store: impl Store) {
    assert!(store.routing_snapshot().await.unwrap().is_none());
    let first: Vec<RoutedPrefix> =
        ["127.16.0.0\t12\t64500", "2001:db8::\t32\t64501_64502,64503", "127.16.0.0\t12\t64509"]
            .iter()
            .map(|l| botscope_isp::pfx2as::parse_line(l.as_bytes()).unwrap().unwrap())
            .collect();
    store.replace_routed_prefixes(&first, "first.txt").await.unwrap();
    let mut stored = store.routed_prefixes().await.unwrap();
    stored.sort_by_key(|p| p.prefix);
    assert_eq!(stored, vec![first[2].clone(), first[1].clone()], "a repeated prefix keeps its last origin");
    let snapshot = store.routing_snapshot().await.unwrap().unwrap();
    assert_eq!((snapshot.source.as_str(), snapshot.prefixes), ("first.txt", 2));

    let second = vec![botscope_isp::pfx2as::parse_line(b"192.0.2.0\t24\t64510").unwrap().unwrap()];
    store.replace_routed_prefixes(&second, "second.txt").await.unwrap();
    assert_eq!(store.routed_prefixes().await.unwrap(), second);
    assert_eq!(store.routing_snapshot().await.unwrap().unwrap().prefixes, 1);
}

async fn isp_registry_is_replaced_and_ingested_isps_update_it(store: impl Store) {
    store.replace_isps(&[isp("alpha", &[1, 2]), isp("beta", &[3])]).await.unwrap();
    store.replace_isps(&[isp("beta", &[3, 4]), isp("gamma", &[5])]).await.unwrap();
    let handles: Vec<_> = store.isps().await.unwrap().into_iter().map(|i| (i.handle, i.asns)).collect();
    assert_eq!(handles, vec![("beta".into(), vec![3, 4]), ("gamma".into(), vec![5])]);

    let mut renamed = record(&ISP.replace("hikari-net", "gamma").replace("Hikari Net", "Gamma Renamed"));
    renamed.ensure_id();
    store.put_records(&[renamed]).await.unwrap();
    let gamma = store.isps().await.unwrap().into_iter().find(|i| i.handle == "gamma").unwrap();
    assert_eq!((gamma.name.as_str(), gamma.asns.as_slice()), ("Gamma Renamed", &[64500, 64501][..]));
}

async fn concurrent_writers_do_not_lose_records(store: impl Store + Clone + 'static) {
    let mut tasks = Vec::new();
    for worker in 0..4u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..10u32 {
                let batch: Vec<Record> = (0..100).map(|i| finding_at(worker * 100_000 + round * 1_000 + i)).collect();
                store.put_records(&batch).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.count_records(None).await.unwrap(), 4_000);
}

async fn upserts_replace_and_queries_filter_by_time_and_address(store: impl Store) {
    let mut cnc = record(CNC);
    store.put_records(&[cnc.clone(), record(FINDING), record(ACTIVITY)]).await.unwrap();
    let Record::Cnc(candidate) = &mut cnc else { unreachable!() };
    candidate.score = 0.5;
    // put_records keeps the first; upsert_records replaces it.
    store.put_records(std::slice::from_ref(&cnc)).await.unwrap();
    assert_ne!(store.record(cnc.id().unwrap()).await.unwrap().unwrap(), cnc);
    assert_eq!(store.upsert_records(std::slice::from_ref(&cnc)).await.unwrap(), 1);
    assert_eq!(store.record(cnc.id().unwrap()).await.unwrap().unwrap(), cnc);
    assert_eq!(store.count_records(Some(Kind::Cnc)).await.unwrap(), 1);

    let at = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let query = |since: Option<&str>, until: Option<&str>, ip: Option<&str>| RecordQuery {
        limit: 100,
        since: since.map(at),
        until: until.map(at),
        ip: ip.map(|ip| ip.parse().unwrap()),
        ..Default::default()
    };
    // FINDING 04:12:09, ACTIVITY 00:00 (window start), CNC 09:59:41 (last_seen).
    assert_eq!(store.records(&query(Some("2026-11-02T04:00:00Z"), None, None)).await.unwrap().len(), 2);
    assert_eq!(store.records(&query(None, Some("2026-11-02T04:12:09Z"), None)).await.unwrap().len(), 1);
    let by_ip = store.records(&query(None, None, Some("127.16.4.21"))).await.unwrap();
    assert_eq!(by_ip, vec![record(FINDING)]);
}

async fn tokens_are_found_by_hash_listed_and_revoked(store: impl Store) {
    let token = |id: &str, role: &str, isp: Option<&str>| TokenRow {
        id: id.into(),
        hash: format!("hash-of-{id}"),
        role: role.parse().unwrap(),
        isp: isp.map(String::from),
        label: format!("label {id}"),
        sensors: if role == "sensor" { vec![format!("{id}-a"), format!("{id}-b")] } else { Vec::new() },
        created_at: "2026-11-02T00:00:00Z".parse().unwrap(),
        revoked_at: None,
    };
    store.put_token(&token("t1", "sensor", None)).await.unwrap();
    store.put_token(&token("t2", "isp", Some("hikari-net"))).await.unwrap();
    assert!(store.put_token(&token("t2", "admin", None)).await.is_err(), "ids are unique");
    assert_eq!(store.token_by_hash("hash-of-t2").await.unwrap(), Some(token("t2", "isp", Some("hikari-net"))));
    assert_eq!(store.token_by_hash("nothing").await.unwrap(), None);
    assert!(store.revoke_token("t1").await.unwrap());
    assert!(!store.revoke_token("t1").await.unwrap(), "revoking twice says so");
    assert!(!store.revoke_token("none").await.unwrap());
    let all = store.tokens().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().find(|t| t.id == "t1").unwrap().revoked_at.is_some());
}

/// A C&C report whose window took late flows is sent again under the same id: the revision with
/// more flows replaces the stored one, in another batch or in the same; so does a later revision
/// with the same flows (the next window showed its bots back); a re-sent or older revision does
/// not, and no other kind is ever replaced by `put_records`.
async fn a_revised_cnc_report_replaces_the_stored_one_when_it_is_later(store: impl Store) {
    let revised = |flows: u64, score: f64, hours_after: Option<i64>| {
        let Record::Cnc(mut cnc) = record(CNC) else { unreachable!() };
        cnc.flows = flows;
        cnc.score = score;
        cnc.revised_at = hours_after.map(|h| cnc.window_end + chrono::Duration::hours(h));
        cnc.id = None;
        let mut record = Record::Cnc(cnc);
        record.ensure_id();
        record
    };
    let flows_of = |record: Option<Record>| match record {
        Some(Record::Cnc(cnc)) => (cnc.flows, cnc.score),
        other => panic!("not a cnc record: {other:?}"),
    };
    let first = revised(1290, 0.93, None);
    let id = first.id().unwrap();
    store.put_records(&[first]).await.unwrap();
    assert_eq!(store.put_records(&[revised(1400, 0.97, None)]).await.unwrap().inserted, 1);
    assert_eq!(flows_of(store.record(id).await.unwrap()), (1400, 0.97));
    let stale = store.put_records(&[revised(1300, 0.95, None), revised(1400, 0.97, None)]).await.unwrap();
    assert_eq!((stale.inserted, stale.duplicates), (0, 2));
    assert_eq!(flows_of(store.record(id).await.unwrap()), (1400, 0.97));
    // Two revisions in one batch: the one with the most flows stays, whatever the order.
    store.put_records(&[revised(1600, 0.99, None), revised(1500, 0.98, None)]).await.unwrap();
    assert_eq!(flows_of(store.record(id).await.unwrap()), (1600, 0.99));
    // Revised in hindsight: the same flows, a later revision, another score; an earlier
    // revision re-sent after it changes nothing.
    assert_eq!(store.put_records(&[revised(1600, 0.61, Some(2))]).await.unwrap().inserted, 1);
    assert_eq!(flows_of(store.record(id).await.unwrap()), (1600, 0.61));
    store.put_records(&[revised(1700, 0.99, Some(1)), revised(1600, 0.99, None)]).await.unwrap();
    assert_eq!(flows_of(store.record(id).await.unwrap()), (1600, 0.61));
    store.put_records(&[revised(1600, 0.7, Some(3)), revised(1650, 0.8, Some(3))]).await.unwrap();
    assert_eq!(flows_of(store.record(id).await.unwrap()), (1650, 0.8));
    assert_eq!(store.count_records(Some(Kind::Cnc)).await.unwrap(), 1);
    // Other kinds keep the first record with an id.
    let finding = record(FINDING);
    store.put_records(std::slice::from_ref(&finding)).await.unwrap();
    let Record::Finding(mut changed) = finding.clone() else { unreachable!() };
    changed.credential_id = Some(99);
    store.put_records(&[Record::Finding(changed)]).await.unwrap();
    assert_eq!(store.record(finding.id().unwrap()).await.unwrap(), Some(finding));
}

/// A store opened by this build has every migration this build carries: what `/api/v1/ready`
/// asks.
async fn an_opened_store_has_the_schema_this_build_expects(store: impl Store) {
    let schema = store.schema().await.unwrap();
    assert!(schema.expected > 0 && schema.is_current(), "{schema:?}");
    assert_eq!(schema.applied, schema.expected);
}

fn lease(kind: LeaseKind, key: &str, owner: &str, expires_ms: i64) -> Lease {
    Lease { kind, key: key.into(), owner: owner.into(), body: format!("body of {key}"), expires_ms }
}

async fn live_keys(store: &impl Store, kind: LeaseKind, keys: &[&str], now_ms: i64) -> Vec<String> {
    let mut live = Vec::new();
    for key in keys {
        if let Some(found) = store.lease(kind, key, now_ms).await.unwrap() {
            live.push(found.key);
        }
    }
    live
}

/// Leases (sessions, TAXII statuses) are what replicas share: each is answered until it expires,
/// kinds do not mix, and past either bound the ones expiring first make room, so one owner cannot
/// push everyone else's out.
async fn leases_expire_are_bounded_per_owner_and_in_all(store: impl Store) {
    let t0 = 1_800_000_000_000;
    let bounds = LeaseBounds { max: 4, per_owner: 2 };
    let session = LeaseKind::Session;
    store.put_lease(&lease(session, "a1", "alice", t0 + 100), bounds, t0).await.unwrap();
    let found = store.lease(session, "a1", t0 + 99).await.unwrap().unwrap();
    assert_eq!(found, lease(session, "a1", "alice", t0 + 100));
    assert_eq!(store.lease(session, "a1", t0 + 100).await.unwrap(), None, "expired at its time");
    assert_eq!(store.lease(LeaseKind::TaxiiStatus, "a1", t0).await.unwrap(), None, "kinds do not mix");

    // Per owner: alice's third pushes out her earliest-expiring, never bob's.
    store.put_lease(&lease(session, "b1", "bob", t0 + 500), bounds, t0 + 1).await.unwrap();
    store.put_lease(&lease(session, "a2", "alice", t0 + 200), bounds, t0 + 2).await.unwrap();
    store.put_lease(&lease(session, "a3", "alice", t0 + 300), bounds, t0 + 3).await.unwrap();
    let keys = ["a1", "a2", "a3", "b1"];
    assert_eq!(live_keys(&store, session, &keys, t0 + 4).await, ["a2", "a3", "b1"]);
    // In all: at the bound, the earliest-expiring of anyone's goes.
    store.put_lease(&lease(session, "c1", "carol", t0 + 600), bounds, t0 + 5).await.unwrap();
    store.put_lease(&lease(session, "d1", "dave", t0 + 700), bounds, t0 + 6).await.unwrap();
    let keys = ["a2", "a3", "b1", "c1", "d1"];
    assert_eq!(live_keys(&store, session, &keys, t0 + 7).await, ["a3", "b1", "c1", "d1"]);
    // The same key again replaces its lease; dropping ends it; expired ones are not kept.
    store.put_lease(&lease(session, "b1", "bob", t0 + 900), bounds, t0 + 8).await.unwrap();
    assert_eq!(store.lease(session, "b1", t0 + 800).await.unwrap().unwrap().expires_ms, t0 + 900);
    assert!(store.drop_lease(session, "b1").await.unwrap());
    assert!(!store.drop_lease(session, "b1").await.unwrap());
    store.put_lease(&lease(session, "old", "erin", t0), bounds, t0 + 9).await.unwrap();
    assert_eq!(store.lease(session, "old", t0 - 1).await.unwrap(), None);
    store.put_lease(&lease(session, "none", "erin", t0 + 999), LeaseBounds { max: 0, per_owner: 1 }, t0).await.unwrap();
    assert_eq!(store.lease(session, "none", t0).await.unwrap(), None);
}

/// A rate count is per key and per window: the window starts at a key's first hit, and a hit
/// after it ends starts again from one.
async fn hits_are_counted_per_key_in_windows(store: impl Store) {
    let t0 = 1_800_000_000_000;
    let minute = 60_000;
    for expected in 1..=3 {
        assert_eq!(store.count_hit("127.0.0.1", minute, t0 + expected).await.unwrap(), expected as u64);
    }
    assert_eq!(store.count_hit("127.0.0.2", minute, t0 + 10).await.unwrap(), 1);
    assert_eq!(
        store.count_hit("127.0.0.1", minute, t0 + minute).await.unwrap(),
        4,
        "the window runs from the first hit"
    );
    assert_eq!(store.count_hit("127.0.0.1", minute, t0 + minute + 1).await.unwrap(), 1, "a new window");
    // Ended windows are swept as hits arrive: many keys counted long ago leave little behind.
    for n in 0..100 {
        store.count_hit(&format!("old-{n}"), minute, t0).await.unwrap();
    }
    for n in 0..10 {
        assert_eq!(store.count_hit(&format!("new-{n}"), minute, t0 + 10 * minute).await.unwrap(), 1);
    }
    assert_eq!(store.count_hit("old-99", minute, t0 + 10 * minute).await.unwrap(), 1);
}

/// A revision that moves a C&C report to another day marks the day it left as well as the day it
/// reaches, so neither day's roll-up keeps counting what is no longer there.
async fn a_revision_that_moves_a_report_to_another_day_marks_both_days(store: impl Store) {
    let report = |flows: u64, last_seen: &str| {
        let Record::Cnc(mut cnc) = record(CNC) else { unreachable!() };
        cnc.window_start = "2026-11-02T23:00:00Z".parse().unwrap();
        cnc.window_end = "2026-11-03T01:00:00Z".parse().unwrap();
        cnc.first_seen = "2026-11-02T23:00:10Z".parse().unwrap();
        cnc.last_seen = last_seen.parse().unwrap();
        cnc.flows = flows;
        cnc.id = None;
        let mut record = Record::Cnc(cnc);
        record.ensure_id();
        record
    };
    store.put_records(&[report(100, "2026-11-02T23:50:00Z")]).await.unwrap();
    for day in store.dirty_rollups(None, 10).await.unwrap() {
        assert!(store.replace_rollups(&day, &[], &[]).await.unwrap());
    }
    assert_eq!(store.put_records(&[report(200, "2026-11-03T00:40:00Z")]).await.unwrap().inserted, 1);
    let marks: Vec<(Kind, String)> =
        store.dirty_rollups(None, 10).await.unwrap().into_iter().map(|d| (d.kind, d.day.to_string())).collect();
    assert_eq!(marks, [(Kind::Cnc, "2026-11-02".to_string()), (Kind::Cnc, "2026-11-03".to_string())]);
}

/// An outcome changes how its case counts, so writing one marks its case's day (not its own),
/// even when the case was written long before; and a case's outcomes are found by the case.
async fn an_outcome_marks_its_cases_day_and_is_found_by_its_case(store: impl Store) {
    let case = |ip: &str| {
        let mut case = record(&format!(
            r#"{{"kind":"notification","isp":"hikari-net","ip":"{ip}","port":23,"reason":"default_credential","created_at":"2026-11-03T01:00:00Z","status":"sent","language":"ja"}}"#
        ));
        case.ensure_id();
        case
    };
    let (first, second) = (case("127.16.0.1"), case("127.16.0.2"));
    store.put_records(&[first.clone(), second.clone()]).await.unwrap();
    for day in store.dirty_rollups(None, 10).await.unwrap() {
        assert!(store.replace_rollups(&day, &[], &[]).await.unwrap());
    }
    let outcome = |case: &Record, status: &str, at: &str| {
        let mut outcome = record(&format!(
            r#"{{"kind":"outcome","notification":"{}","isp":"hikari-net","status":"{status}","at":"{at}","source":"recheck"}}"#,
            case.id().unwrap()
        ));
        outcome.ensure_id();
        outcome
    };
    let outcomes =
        [outcome(&first, "fixed", "2026-11-20T00:00:00Z"), outcome(&first, "not_fixed", "2026-12-01T00:00:00Z")];
    store.put_records(&outcomes).await.unwrap();
    let marks: Vec<(Kind, String)> =
        store.dirty_rollups(None, 10).await.unwrap().into_iter().map(|d| (d.kind, d.day.to_string())).collect();
    assert_eq!(marks, [(Kind::Notification, "2026-11-03".to_string())]);
    let found = botscope_store::outcomes_of(&store, &[first.id().unwrap()]).await.unwrap();
    let mut ids: Vec<_> = found.iter().filter_map(Record::id).collect();
    ids.sort();
    let mut expected: Vec<_> = outcomes.iter().filter_map(Record::id).collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(botscope_store::outcomes_of(&store, &[second.id().unwrap()]).await.unwrap().is_empty());
    assert!(botscope_store::outcomes_of(&store, &[]).await.unwrap().is_empty());
}

/// Pruning deletes a kind's records of days before the cut, in batches, and nothing else; those
/// days keep their roll-ups as counted, and a record written later for one of them marks nothing.
async fn pruning_deletes_old_days_and_leaves_their_roll_ups_as_counted(store: impl Store) {
    let activity_on = |day: u32, hour: u32| {
        let Record::Activity(mut a) = record(ACTIVITY) else { unreachable!() };
        a.window_start = format!("2026-11-{day:02}T{hour:02}:00:00Z").parse().unwrap();
        a.window_end = a.window_start + chrono::Duration::hours(1);
        a.id = None;
        let mut record = Record::Activity(a);
        record.ensure_id();
        record
    };
    let batch: Vec<Record> = (1..=4).flat_map(|day| (0..3).map(move |hour| activity_on(day, hour))).collect();
    store.put_records(&batch).await.unwrap();
    let mut finding = record(FINDING);
    finding.ensure_id();
    store.put_records(&[finding]).await.unwrap();
    let row = botscope_store::RollupRow { metric: "infected".into(), dim: String::new(), count: 3, hosts: None };
    for day in store.dirty_rollups(None, 10).await.unwrap() {
        assert!(store.replace_rollups(&day, std::slice::from_ref(&row), &[]).await.unwrap());
    }
    store.put_records(&[activity_on(1, 9)]).await.unwrap();
    let cut: chrono::NaiveDate = "2026-11-03".parse().unwrap();
    assert_eq!(store.count_before(Kind::Activity, cut).await.unwrap(), 7);
    // In batches of 4: 4, then 3.
    assert_eq!(store.prune(Kind::Activity, cut, 4).await.unwrap(), 4);
    assert_eq!(store.prune(Kind::Activity, cut, 4).await.unwrap(), 3);
    assert_eq!(store.prune(Kind::Activity, cut, 4).await.unwrap(), 0);
    assert_eq!(store.count_before(Kind::Activity, cut).await.unwrap(), 0);
    assert_eq!(store.count_records(Some(Kind::Activity)).await.unwrap(), 6, "days 3 and 4 are kept");
    assert_eq!(store.count_records(Some(Kind::Finding)).await.unwrap(), 1, "other kinds are kept");
    assert!(store.dirty_rollups(None, 10).await.unwrap().is_empty(), "the mark of day 1's late record is dropped");
    store.put_records(&[activity_on(2, 10), activity_on(4, 10)]).await.unwrap();
    let marks: Vec<String> = store.dirty_rollups(None, 10).await.unwrap().iter().map(|d| d.day.to_string()).collect();
    assert_eq!(marks, ["2026-11-04"], "a pruned day is not marked again");
    let kept = store.rollups(Kind::Activity, "infected", None, None, &Dims::All).await.unwrap();
    let days: Vec<String> = kept.iter().map(|(day, _)| day.to_string()).collect();
    assert_eq!(days, ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"], "roll-ups outlive their records");
    // An earlier cut does not move it back; a later one moves on.
    store.prune(Kind::Activity, "2026-11-01".parse().unwrap(), 100).await.unwrap();
    store.put_records(&[activity_on(2, 11)]).await.unwrap();
    let marks: Vec<String> = store.dirty_rollups(None, 10).await.unwrap().iter().map(|d| d.day.to_string()).collect();
    assert_eq!(marks, ["2026-11-04"]);
    store.prune(Kind::Activity, "2026-11-05".parse().unwrap(), 100).await.unwrap();
    store.put_records(&[activity_on(3, 12), activity_on(4, 12)]).await.unwrap();
    assert!(store.dirty_rollups(None, 10).await.unwrap().is_empty(), "days 3 and 4 are now before the cut");
}

/// An AS's prefixes come from the routing table, whatever the origin's form (alone, one of several
/// origins, in an AS set), and a search within them finds the records in any of them.
async fn records_are_found_by_the_prefixes_an_as_originates(store: impl Store) {
    let routed: Vec<RoutedPrefix> = [
        "127.16.4.0\t24\t64500",
        "127.16.5.0\t24\t64501_64500",
        "127.17.0.0\t16\t6450",
        "2001:db8::\t32\t64502,64500",
        "127.18.0.0\t16\t64500",
    ]
    .iter()
    .map(|l| botscope_isp::pfx2as::parse_line(l.as_bytes()).unwrap().unwrap())
    .collect();
    store.replace_routed_prefixes(&routed, "test.txt").await.unwrap();
    let store = &store;
    let of = |asn| async move {
        store.prefixes_originated_by(asn).await.unwrap().iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    assert_eq!(of(64500).await, ["127.16.4.0/24", "127.16.5.0/24", "127.18.0.0/16", "2001:db8::/32"]);
    assert_eq!(of(6450).await, ["127.17.0.0/16"], "6450 is not 64500");
    assert!(of(650).await.is_empty());
    let mut batch: Vec<Record> = [0x0415, 0x0416, 0x0501, 0x0601, 0x1_0001].into_iter().map(finding_at).collect();
    for r in &mut batch {
        r.ensure_id();
    }
    store.put_records(&batch).await.unwrap();
    let within =
        |prefixes: Vec<ipnet::IpNet>| RecordQuery { within_any: Some(prefixes), limit: 100, ..Default::default() };
    let found = store.records(&within(store.prefixes_originated_by(64500).await.unwrap())).await.unwrap();
    let mut addresses: Vec<String> = found.iter().map(|r| r.address().unwrap().to_string()).collect();
    addresses.sort();
    assert_eq!(addresses, ["127.16.4.21", "127.16.4.22", "127.16.5.1"]);
    assert_eq!(store.records(&within(store.prefixes_originated_by(6450).await.unwrap())).await.unwrap().len(), 1);
    assert!(store.records(&within(Vec::new())).await.unwrap().is_empty(), "an AS with no prefixes holds nothing");
    let many = vec!["127.16.4.0/24".parse().unwrap(); botscope_store::MAX_PREFIXES_ANY + 1];
    assert!(matches!(store.records(&within(many)).await, Err(StoreError::TooManyPrefixes { .. })));
}

/// Writes mark their kind's day for a roll-up refresh; replaced rows read back by range; a mark
/// a later write renewed survives the refresh that started before it.
async fn writes_mark_days_for_roll_ups_and_rows_read_back_by_range(store: impl Store) {
    let mut batch = vec![finding_at(1), finding_at(2), record(ACTIVITY), record(CNC)];
    let mut next_day = finding_at(3);
    if let Record::Finding(f) = &mut next_day {
        f.observed_at = "2026-11-03T00:00:00Z".parse().unwrap();
    }
    batch.push(next_day);
    for r in &mut batch {
        r.ensure_id();
    }
    store.put_records(&batch).await.unwrap();
    let marks: Vec<(Kind, String, i64)> = store
        .dirty_rollups(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.kind, d.day.to_string(), d.generation))
        .collect();
    assert_eq!(
        marks,
        [
            (Kind::Activity, "2026-11-02".to_string(), 1),
            (Kind::Cnc, "2026-11-02".to_string(), 1),
            (Kind::Finding, "2026-11-02".to_string(), 1),
            (Kind::Finding, "2026-11-03".to_string(), 1),
        ],
        "one mark per kind and day"
    );
    let day = store.dirty_rollups(None, 10).await.unwrap().remove(2);
    let row = |dim: &str, count: u64| RollupRow {
        metric: "vulnerable".into(),
        dim: dim.into(),
        count,
        hosts: Some(vec![1, 2, 3]),
    };
    assert!(store.replace_rollups(&day, &[row("", 2), row("hikari-net", 1)], &[]).await.unwrap());
    // Replacing again replaces: no duplicate rows.
    assert!(!store.replace_rollups(&day, &[row("", 2), row("hikari-net", 1)], &[]).await.unwrap(), "already cleared");
    let date = |d: &str| Some(d.parse::<chrono::NaiveDate>().unwrap());
    let rows =
        store.rollups(Kind::Finding, "vulnerable", date("2026-11-01"), date("2026-11-02"), &Dims::All).await.unwrap();
    assert_eq!(
        rows.iter().map(|(d, r)| (d.to_string(), r.clone())).collect::<Vec<_>>(),
        [("2026-11-02".to_string(), row("", 2)), ("2026-11-02".to_string(), row("hikari-net", 1))]
    );
    assert!(store.rollups(Kind::Finding, "vulnerable", date("2026-11-03"), None, &Dims::All).await.unwrap().is_empty());
    assert!(store.rollups(Kind::Activity, "vulnerable", None, None, &Dims::All).await.unwrap().is_empty());
    // A write between reading a mark and replacing its rows renews the mark: it stays.
    let marks = store.dirty_rollups(None, 10).await.unwrap();
    let finding_day = marks.iter().find(|d| d.kind == Kind::Finding).unwrap();
    assert_eq!(finding_day.day.to_string(), "2026-11-03");
    let mut renewing = finding_at(4);
    if let Record::Finding(f) = &mut renewing {
        f.observed_at = "2026-11-03T12:00:00Z".parse().unwrap();
    }
    renewing.ensure_id();
    store.put_records(&[renewing]).await.unwrap();
    assert!(!store.replace_rollups(finding_day, &[], &[]).await.unwrap());
    let left = store.dirty_rollups(None, 10).await.unwrap();
    let renewed = left.iter().find(|d| d.kind == Kind::Finding && d.day == finding_day.day).cloned();
    assert_eq!(renewed.as_ref().map(|d| d.generation), Some(2), "{left:?}");
    // Two refreshers: the slow one read generation 2, a write made it 3, the fast one counted 3.
    // The slow one's older rows must not replace the newer ones, nor its claim clear anything.
    let slow = renewed.unwrap();
    let mut again = finding_at(5);
    if let Record::Finding(f) = &mut again {
        f.observed_at = "2026-11-03T13:00:00Z".parse().unwrap();
    }
    again.ensure_id();
    store.put_records(&[again]).await.unwrap();
    let fast = store.dirty_rollups(None, 10).await.unwrap().into_iter().find(|d| d.day == slow.day).unwrap();
    assert_eq!(fast.generation, 3);
    let newer = RollupRow { metric: "vulnerable".into(), dim: String::new(), count: 3, hosts: None };
    assert!(store.replace_rollups(&fast, std::slice::from_ref(&newer), &[]).await.unwrap());
    assert!(!store.replace_rollups(&slow, &[row("", 1)], &[]).await.unwrap(), "a stale refresh writes nothing");
    let day = Some(slow.day);
    let kept = store.rollups(Kind::Finding, "vulnerable", day, day, &Dims::All).await.unwrap();
    assert_eq!(kept, [(slow.day, newer)]);
    assert!(!store.dirty_rollups(None, 10).await.unwrap().iter().any(|d| d.day == slow.day && d.kind == Kind::Finding));
    // The cursor pages through the marks in (day, kind) order.
    let all = store.dirty_rollups(None, 10).await.unwrap();
    let first = &all[0];
    let rest = store.dirty_rollups(Some((first.day, first.kind)), 10).await.unwrap();
    assert_eq!(rest, all[1..]);
}

async fn cnc_servers_are_kept_per_day_and_summed_over_a_range(store: impl Store) {
    let mut reports: Vec<Record> =
        ["2026-11-02", "2026-11-03"].iter().map(|day| record(&CNC.replace("2026-11-02", day))).collect();
    for r in &mut reports {
        r.ensure_id();
    }
    store.put_records(&reports).await.unwrap();
    let days: Vec<_> = store.dirty_rollups(None, 10).await.unwrap();
    assert_eq!(days.len(), 2, "{days:?}");
    let server = |ip: &str, sensor: Option<&str>, reports: u64, first: i64, last: i64, score: f64| ServerRollup {
        ip: ip.parse().unwrap(),
        port: 6667,
        protocol: "tcp".into(),
        sensor: sensor.map(String::from),
        reports,
        first_seen: first,
        last_seen: last,
        best_score: score,
        family: (score > 0.9).then(|| "mirai".to_string()),
    };
    let (first, second) = (&days[0], &days[1]);
    // The version of a range moves exactly when what `server_rollups` reads of it does.
    let version = |from: Option<chrono::NaiveDate>, to: Option<chrono::NaiveDate>| {
        let store = &store;
        async move { store.server_rollup_version(from, to).await.unwrap() }
    };
    let nothing_counted = version(None, None).await;
    assert_eq!(nothing_counted, (0, 0));
    let v6 = server("2001:db8::64", None, 1, 500, 600, 0.5);
    assert!(
        store
            .replace_rollups(first, &[], &[server("127.64.0.10", Some("isp-a"), 3, 100, 200, 0.93), v6.clone()])
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_rollups(second, &[], &[server("127.64.0.10", Some("isp-a"), 2, 90_000, 90_100, 0.7)])
            .await
            .unwrap()
    );
    let first_day_counted = version(Some(first.day), Some(first.day)).await;
    let both_counted = version(None, None).await;
    assert_eq!(first_day_counted.0, 1);
    assert_eq!(both_counted.0, 2);
    assert_ne!(version(Some(second.day), None).await, (0, 0));
    let mut all = store.server_rollups(None, None).await.unwrap();
    all.sort_by_key(|s| s.ip);
    assert_eq!(all, [server("127.64.0.10", Some("isp-a"), 5, 100, 90_100, 0.93), v6.clone()], "days summed per server");
    let only_second = store.server_rollups(Some(second.day), None).await.unwrap();
    assert_eq!(only_second, [server("127.64.0.10", Some("isp-a"), 2, 90_000, 90_100, 0.7)]);
    // Another kind's day leaves the servers alone; the C&C day's next count replaces its own.
    let mut finding = finding_at(9);
    if let Record::Finding(f) = &mut finding {
        f.observed_at = first.day.and_hms_opt(1, 0, 0).unwrap().and_utc();
    }
    finding.ensure_id();
    store.put_records(&[finding]).await.unwrap();
    let finding_day =
        store.dirty_rollups(None, 10).await.unwrap().into_iter().find(|d| d.kind == Kind::Finding).unwrap();
    assert!(store.replace_rollups(&finding_day, &[], &[]).await.unwrap());
    assert_eq!(store.server_rollups(Some(first.day), Some(first.day)).await.unwrap().len(), 2);
    assert_eq!(version(None, None).await, both_counted, "another kind's count leaves the servers' version");
    let mut again = reports[0].clone();
    if let Record::Cnc(c) = &mut again {
        c.score = 0.95;
    }
    store.upsert_records(&[again]).await.unwrap();
    let recount = store.dirty_rollups(None, 10).await.unwrap().into_iter().find(|d| d.kind == Kind::Cnc).unwrap();
    assert!(store.replace_rollups(&recount, &[], std::slice::from_ref(&v6)).await.unwrap());
    assert_eq!(store.server_rollups(Some(first.day), Some(first.day)).await.unwrap(), [v6]);
    let first_day_recounted = version(Some(first.day), Some(first.day)).await;
    assert_eq!(first_day_recounted.0, 1);
    assert!(first_day_recounted.1 > first_day_counted.1, "{first_day_recounted:?} after {first_day_counted:?}");
    let second_day_counted = version(Some(second.day), Some(second.day)).await;
    // A busy day's servers are written many to a statement: every one arrives.
    let many: Vec<ServerRollup> = (0..1_203u32)
        .map(|n| server(&std::net::Ipv4Addr::from(0x7f40_0000 + n).to_string(), Some("isp-b"), 1, 10, 20, 0.6))
        .collect();
    store.upsert_records(&reports[1..]).await.unwrap();
    let busy = store.dirty_rollups(None, 10).await.unwrap().into_iter().find(|d| d.kind == Kind::Cnc).unwrap();
    assert!(store.replace_rollups(&busy, &[], &many).await.unwrap());
    let mut read = store.server_rollups(Some(busy.day), Some(busy.day)).await.unwrap();
    read.sort_by_key(|s| s.ip);
    assert_eq!(read, many);
    assert_ne!(version(Some(second.day), Some(second.day)).await, second_day_counted);
    assert_eq!(version(Some(first.day), Some(first.day)).await, first_day_recounted, "the other day's stays");
}

async fn roll_up_rows_are_read_by_the_dimensions_asked_for(store: impl Store) {
    let mut finding = finding_at(1);
    finding.ensure_id();
    store.put_records(&[finding]).await.unwrap();
    let day = store.dirty_rollups(None, 10).await.unwrap().remove(0);
    let dims = ["", "hikari-net", "router", "hikari-net/router", "hikari-net/camera", "sakura-bb/camera", "50%_off/x"];
    let rows: Vec<RollupRow> = dims
        .iter()
        .map(|dim| RollupRow { metric: "vulnerable_type".into(), dim: dim.to_string(), count: 1, hosts: None })
        .collect();
    assert!(store.replace_rollups(&day, &rows, &[]).await.unwrap());
    let read = |dims: Dims| {
        let store = &store;
        async move {
            let rows = store.rollups(Kind::Finding, "vulnerable_type", None, None, &dims).await.unwrap();
            rows.into_iter().map(|(_, row)| row.dim).collect::<Vec<_>>()
        }
    };
    assert_eq!(read(Dims::All).await.len(), dims.len());
    assert_eq!(read(Dims::Exactly(vec![String::new()])).await, [""]);
    assert_eq!(read(Dims::Exactly(vec!["hikari-net".into(), "router".into()])).await, ["hikari-net", "router"]);
    assert!(read(Dims::Exactly(Vec::new())).await.is_empty());
    assert_eq!(read(Dims::Within(String::new())).await, ["", "hikari-net", "router"]);
    assert_eq!(read(Dims::Within("hikari-net".into())).await, ["hikari-net/camera", "hikari-net/router"]);
    // A part is matched as text, never as a pattern.
    assert_eq!(read(Dims::Within("50%_off".into())).await, ["50%_off/x"]);
    assert!(read(Dims::Within("hikari".into())).await.is_empty());
}

fn typed(line: String) -> Record {
    parse_line(line.as_bytes(), None).unwrap().unwrap()
}

fn finding_of(ip: &str, port: u16, sensor: &str, isp: &str) -> Record {
    typed(format!(
        r#"{{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"{ip}","port":{port},"protocol":"telnet","issue":"no_authentication","sensor":"{sensor}","isp":"{isp}"}}"#
    ))
}

/// The typed columns (migration 0005) answer searches by ISP, port, serial, status, sensor and
/// address prefix, alone and together, paged by id like every query.
async fn typed_filters_find_records_by_isp_port_serial_status_sensor_and_prefix(store: impl Store) {
    let notification = |ip: &str, status: &str| {
        typed(format!(
            r#"{{"kind":"notification","isp":"hikari-net","ip":"{ip}","port":23,"reason":"default_credential","created_at":"2026-11-03T01:00:00Z","status":"{status}","language":"ja"}}"#
        ))
    };
    let records = vec![
        finding_of("127.16.4.21", 23, "survey-1", "hikari-net"),
        finding_of("127.16.5.9", 2323, "survey-2", "sakura-bb"),
        finding_of("2001:db8::7", 23, "survey-1", "sakura-bb"),
        // A host of a prefix two ISPs share is each one's.
        finding_of("127.18.0.1", 8080, "survey-3", "hikari-net,sakura-bb"),
        notification("127.16.4.21", "sent"),
        notification("127.16.4.22", "fixed"),
        typed(r#"{"kind":"botnet","serial":"BN-2026-0007","family":"mirai","status":"active","first_seen":"2026-10-20T00:00:00Z","last_seen":"2026-11-02T21:40:00Z","members":388}"#.into()),
        typed(r#"{"kind":"taxii_object","collection":"2a6f0b8e-3c1d-4e5f-9a7b-6c5d4e3f2a1b","date_added":"2026-11-05T00:00:00.123Z","added_by":"centre","object":{"type":"malware","spec_version":"2.1","id":"malware--2d7d4a61-7f0b-4b1e-9c2a-5e6f7a8b9c0d","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"mirai","is_family":true}}"#.into()),
    ];
    store.put_records(&records).await.unwrap();
    let count = |query: RecordQuery| {
        let store = &store;
        async move { store.records(&RecordQuery { limit: 100, ..query }).await.unwrap().len() }
    };
    let finding = Some(Kind::Finding);
    assert_eq!(count(RecordQuery { kind: finding, port: Some(23), ..Default::default() }).await, 2);
    assert_eq!(count(RecordQuery { isp: Some("hikari-net".into()), ..Default::default() }).await, 4);
    assert_eq!(count(RecordQuery { kind: finding, isp: Some("hikari-net".into()), ..Default::default() }).await, 2);
    assert_eq!(count(RecordQuery { kind: finding, isp: Some("sakura-bb".into()), ..Default::default() }).await, 3);
    assert_eq!(count(RecordQuery { kind: finding, isp: Some("sakura".into()), ..Default::default() }).await, 0);
    assert_eq!(count(RecordQuery { kind: finding, isp: Some("%".into()), ..Default::default() }).await, 0);
    assert_eq!(count(RecordQuery { serial: Some("BN-2026-0007".into()), ..Default::default() }).await, 1);
    assert_eq!(count(RecordQuery { status: Some("fixed".into()), ..Default::default() }).await, 1);
    assert_eq!(count(RecordQuery { sensor: Some("survey-2".into()), ..Default::default() }).await, 1);
    let collection = |id: &str| RecordQuery { collection: Some(id.into()), ..Default::default() };
    assert_eq!(count(collection("2a6f0b8e-3c1d-4e5f-9a7b-6c5d4e3f2a1b")).await, 1);
    assert_eq!(count(collection("another")).await, 0);
    assert_eq!(count(RecordQuery { port: Some(2323), sensor: Some("survey-1".into()), ..Default::default() }).await, 0);
    let prefix = |text: &str| Some(text.parse::<ipnet::IpNet>().unwrap());
    assert_eq!(count(RecordQuery { prefix: prefix("127.16.4.0/24"), ..Default::default() }).await, 3);
    assert_eq!(count(RecordQuery { prefix: prefix("127.16.4.22/32"), ..Default::default() }).await, 1);
    assert_eq!(count(RecordQuery { prefix: prefix("2001:db8::/32"), ..Default::default() }).await, 1);
    assert_eq!(count(RecordQuery { prefix: prefix("127.0.0.0/8"), kind: finding, ..Default::default() }).await, 3);
    // A page of none is none, whatever else is asked.
    let none =
        RecordQuery { limit: 0, after: Some(uuid::Uuid::nil()), prefix: prefix("127.0.0.0/8"), ..Default::default() };
    assert!(store.records(&none).await.unwrap().is_empty());
    assert_eq!(count(RecordQuery { prefix: prefix("10.0.0.0/8"), ..Default::default() }).await, 0);
    // A prefix search pages like any other: one at a time, each page after the last.
    let mut query = RecordQuery { prefix: prefix("127.16.0.0/16"), limit: 1, ..Default::default() };
    let mut seen = Vec::new();
    loop {
        let page = store.records(&query).await.unwrap();
        let Some(last) = page.last().and_then(Record::id) else { break };
        assert_eq!(page.len(), 1);
        seen.push(last);
        query.after = Some(last);
    }
    assert_eq!(seen.len(), 4, "three on 127.16.4.0/24 and one on 127.16.5.0/24");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in id order");
}

/// Counts by kind, time and status agree with the records a query returns.
async fn records_are_counted_by_kind_time_and_status(store: impl Store) {
    let botnet = |serial: &str, status: &str, last_seen: &str| {
        let serial_tail = &serial[serial.len() - 1..];
        record(&format!(
            r#"{{"kind":"botnet","serial":"{serial}","family":"mirai","status":"{status}","first_seen":"2026-10-01T00:00:00Z","last_seen":"{last_seen}","members":3,"cnc":[{{"ip":"127.64.0.9","port":6667,"transport":"tcp","first_seen":"2026-10-01T00:00:00Z","last_seen":"{last_seen}"}},{{"ip":"2001:db8::{serial_tail}","port":23,"transport":"tcp","first_seen":"2026-10-01T00:00:00Z","last_seen":"{last_seen}"}}]}}"#
        ))
    };
    let mut batch = vec![
        botnet("BN-2026-0001", "active", "2026-11-02T10:00:00Z"),
        botnet("BN-2026-0002", "dormant", "2026-11-02T09:59:59Z"),
        botnet("BN-2026-0003", "active", "2026-10-20T00:00:00Z"),
        botnet("BN-2026-0004", "active", "2026-11-05T00:00:00Z"),
        record(FINDING),
    ];
    for r in &mut batch {
        r.ensure_id();
    }
    store.put_records(&batch).await.unwrap();
    let at = |text: &str| Some(text.parse().unwrap());
    assert_eq!(store.count_since(Kind::Botnet, None, None).await.unwrap(), 4);
    assert_eq!(store.count_since(Kind::Botnet, None, Some("active")).await.unwrap(), 3);
    assert_eq!(store.count_since(Kind::Botnet, at("2026-11-02T10:00:00Z"), None).await.unwrap(), 2, "at or after");
    assert_eq!(store.count_since(Kind::Botnet, at("2026-11-02T00:00:00Z"), Some("active")).await.unwrap(), 2);
    assert_eq!(store.count_since(Kind::Botnet, None, Some("gone")).await.unwrap(), 0);
    assert_eq!(store.count_since(Kind::Finding, None, None).await.unwrap(), 1);
    // Their servers, in record id order and each botnet's own.
    let listed = store.botnet_servers(None).await.unwrap();
    let mut expected: Vec<(String, std::net::IpAddr, u16)> = Vec::new();
    let mut botnets: Vec<&Record> = batch.iter().filter(|r| r.kind() == Kind::Botnet).collect();
    botnets.sort_by_key(|r| r.id());
    for r in botnets {
        let Record::Botnet(b) = r else { unreachable!() };
        expected.extend(b.cnc.iter().map(|c| (b.serial.clone(), c.ip, c.port)));
    }
    assert_eq!(listed, expected);
    assert_eq!(listed.len(), 8, "two servers each");
    assert_eq!(store.botnet_servers(at("2026-11-02T10:00:00Z")).await.unwrap().len(), 4, "filed at or after");
    // The same as reading them.
    let query = RecordQuery {
        kind: Some(Kind::Botnet),
        since: at("2026-11-02T00:00:00Z"),
        status: Some("active".into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.records(&query).await.unwrap().len(), 2);
}

/// A page of botnets sorted by any column in the store is the page of the whole list sorted in
/// Rust: serials in number order (a fifth digit comes after four), ties by serial, no family and
/// no confidence first, fractional and whole-second times in time order.
async fn botnet_pages_are_sorted_by_each_column_in_the_store(store: impl Store) {
    use botscope_store::BotnetColumn;
    let mut batch = Vec::new();
    for n in [7u32, 10_000, 9_999, 3, 12, 10_001, 5, 44, 8, 1] {
        let family = match n % 3 {
            0 => String::new(),
            1 => r#","family":"Mirai""#.to_string(),
            _ => r#","family":"gafgyt""#.to_string(),
        };
        let confidence =
            if n % 4 == 0 { String::new() } else { format!(r#","confidence":{}"#, f64::from(n % 5) / 5.0) };
        let status = ["active", "dormant", "dead"][(n % 3) as usize];
        // Sub-second and whole-second first sightings in one minute, and a member count with ties.
        // Around the midnights an end date falls on: a hair before one (more fraction digits than
        // a millisecond), one exactly at it, and later days with half seconds.
        let first = match n % 3 {
            0 => "2026-09-30T23:59:59.9999Z".to_string(),
            1 => "2026-10-01T00:00:00Z".to_string(),
            _ => format!("2026-10-{:02}T00:00:{:02}.5Z", 2 + n % 5, n % 60),
        };
        let last = format!("2026-11-{:02}T00:00:00Z", 1 + n % 9);
        // None, one, and two in either order: the list shows them in the botnet's order.
        let reporters = [
            "",
            r#","reporters":["isp-b"]"#,
            r#","reporters":["isp-a","isp-b"]"#,
            r#","reporters":["isp-b","isp-a"]"#,
            r#","reporters":["isp-a"]"#,
        ][(n % 5) as usize];
        let mut r = record(&format!(
            r#"{{"kind":"botnet","serial":"BN-2026-{n:04}","status":"{status}","first_seen":"{first}","last_seen":"{last}","members":{}{family}{confidence}{reporters},"cnc":[]}}"#,
            n % 4
        ));
        r.ensure_id();
        batch.push(r);
    }
    store.put_records(&batch).await.unwrap();
    let botnets: Vec<botscope_model::Botnet> = batch
        .iter()
        .map(|r| match r {
            Record::Botnet(b) => b.clone(),
            _ => unreachable!(),
        })
        .collect();
    let serial_order = |b: &botscope_model::Botnet| (b.serial.len(), b.serial.clone());
    let columns = [
        BotnetColumn::Serial,
        BotnetColumn::Family,
        BotnetColumn::Status,
        BotnetColumn::Members,
        BotnetColumn::FirstSeen,
        BotnetColumn::LastSeen,
        BotnetColumn::Confidence,
        BotnetColumn::Reporters,
    ];
    let since: Option<botscope_model::Timestamp> = Some("2026-11-03T00:00:00Z".parse().unwrap());
    let day = |text: &str| Some(text.parse::<chrono::NaiveDate>().unwrap());
    let spans = [
        BotnetSpan::default(),
        BotnetSpan { since, first_seen_before: None },
        BotnetSpan { since: None, first_seen_before: day("2026-10-01") },
        BotnetSpan { since, first_seen_before: day("2026-10-04") },
    ];
    for span in spans {
        let first_seen_before = span.first_seen_before.map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
        let held = botnets
            .iter()
            .filter(|b| span.since.is_none_or(|s| b.last_seen >= s))
            .filter(|b| first_seen_before.is_none_or(|before| b.first_seen < before))
            .count();
        assert_eq!(store.count_botnets(span).await.unwrap(), held as u64, "{span:?}");
        assert!(held > 0 && held < botnets.len() || span == BotnetSpan::default(), "{span:?} holds {held}");
    }
    for column in columns {
        for descending in [false, true] {
            for span in spans {
                let first_seen_before = span.first_seen_before.map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
                let mut expected: Vec<&botscope_model::Botnet> = botnets
                    .iter()
                    .filter(|b| span.since.is_none_or(|s| b.last_seen >= s))
                    .filter(|b| first_seen_before.is_none_or(|before| b.first_seen < before))
                    .collect();
                expected.sort_by_key(|b| serial_order(b));
                let ordering = |a: &&botscope_model::Botnet, b: &&botscope_model::Botnet| {
                    let by = match column {
                        BotnetColumn::Serial => serial_order(a).cmp(&serial_order(b)),
                        BotnetColumn::Family => {
                            a.family.clone().unwrap_or_default().cmp(&b.family.clone().unwrap_or_default())
                        }
                        BotnetColumn::Status => {
                            format!("{:?}", a.status).to_lowercase().cmp(&format!("{:?}", b.status).to_lowercase())
                        }
                        BotnetColumn::Members => a.members.cmp(&b.members),
                        BotnetColumn::FirstSeen => a.first_seen.cmp(&b.first_seen),
                        BotnetColumn::LastSeen => a.last_seen.cmp(&b.last_seen),
                        BotnetColumn::Confidence => {
                            a.confidence.unwrap_or(-1.0).total_cmp(&b.confidence.unwrap_or(-1.0))
                        }
                        BotnetColumn::Reporters => a.reporters.join(" ").cmp(&b.reporters.join(" ")),
                    };
                    if descending { by.reverse() } else { by }
                };
                // Stable: ties keep serial order, also when descending (the serial itself excepted).
                expected.sort_by(ordering);
                let expected: Vec<&str> = expected.iter().map(|b| b.serial.as_str()).collect();
                let mut got = Vec::new();
                for offset in (0..12).step_by(3) {
                    let page = store.botnets_page(span, column, descending, offset, 3).await.unwrap();
                    assert!(page.len() <= 3);
                    got.extend(page.into_iter().map(|r| match r {
                        Record::Botnet(b) => b.serial,
                        _ => unreachable!(),
                    }));
                }
                assert_eq!(got, expected, "{column:?}, descending {descending}, {span:?}");
            }
        }
    }
}

/// Each botnet's current server is the one it used last, as the model picks it: of equal last
/// sightings the later listed, a half second after a whole one later (not as text), none for a
/// botnet without servers; every botnet filed in range listed once, in record id order. Botnets
/// read back by id; their generation rises with every write and prune of them.
async fn each_botnet_s_current_server_is_the_one_it_used_last_and_botnets_read_back_by_id(store: impl Store) {
    let server = |ip: &str, port: u16, last: &str| {
        format!(
            r#"{{"ip":"{ip}","port":{port},"transport":"tcp","first_seen":"2026-10-01T00:00:00Z","last_seen":"{last}"}}"#
        )
    };
    let servers = [
        String::new(),
        server("127.64.0.1", 23, "2026-11-02T10:00:00Z"),
        [server("127.64.0.1", 23, "2026-11-02T10:00:00Z"), server("2001:db8::7", 6667, "2026-11-02T10:00:00Z")]
            .join(","),
        [server("127.64.0.2", 23, "2026-11-02T10:00:00.5Z"), server("127.64.0.3", 23, "2026-11-02T10:00:00Z")]
            .join(","),
        [
            server("127.64.0.4", 2323, "2026-10-20T00:00:00Z"),
            server("::ffff:127.64.0.5", 23, "2026-11-02T10:00:00.25Z"),
            server("127.64.0.6", 23, "2026-11-02T10:00:00.125Z"),
        ]
        .join(","),
    ];
    assert_eq!(store.record_version(Kind::Botnet).await.unwrap(), 0, "nothing written yet");
    let mut batch = Vec::new();
    for (n, cnc) in servers.iter().enumerate() {
        for filed in ["2026-11-02T10:00:01Z", "2026-11-09T00:00:00Z"] {
            let mut r = record(&format!(
                r#"{{"kind":"botnet","serial":"BN-2026-{n}{}","status":"active","first_seen":"2026-10-01T00:00:00Z","last_seen":"{filed}","members":1,"cnc":[{cnc}]}}"#,
                &filed[9..10]
            ));
            r.ensure_id();
            batch.push(r);
        }
    }
    store.put_records(&batch).await.unwrap();
    // Every write of botnets raises their generation, in its transaction; other kinds' do not.
    let written = store.record_version(Kind::Botnet).await.unwrap();
    assert!(written > 0);
    store.put_records(&[record(FINDING)]).await.unwrap();
    assert_eq!(store.record_version(Kind::Botnet).await.unwrap(), written, "a finding is no botnet");
    assert_eq!(store.record_version(Kind::Finding).await.unwrap(), 0, "findings are not versioned");
    store.upsert_records(&batch[..1]).await.unwrap();
    let upserted = store.record_version(Kind::Botnet).await.unwrap();
    assert!(upserted > written, "a botnet rewritten");
    let since: Option<botscope_model::Timestamp> = Some("2026-11-05T00:00:00Z".parse().unwrap());
    for since in [None, since] {
        let mut expected: Vec<botscope_store::BotnetCurrentServer> = batch
            .iter()
            .filter_map(|r| match r {
                Record::Botnet(b) if since.is_none_or(|s| b.last_seen >= s) => {
                    Some(botscope_store::BotnetCurrentServer {
                        id: r.id().unwrap(),
                        serial: b.serial.clone(),
                        server: b.cnc.iter().max_by_key(|c| c.last_seen).map(|c| (c.ip, c.port)),
                        first_seen: b.first_seen,
                    })
                }
                _ => None,
            })
            .collect();
        expected.sort_by_key(|b| b.id);
        let got = store.botnet_current_servers(since).await.unwrap();
        assert_eq!(got, expected, "since {since:?}");
        assert_eq!(got.len(), if since.is_some() { 5 } else { 10 });
        let of = |n: usize| got.iter().find(|b| b.serial.starts_with(&format!("BN-2026-{n}"))).unwrap().server;
        assert_eq!(of(0), None, "no servers");
        assert_eq!(of(2), Some(("2001:db8::7".parse().unwrap(), 6667)), "the later listed of a tie");
        assert_eq!(of(3), Some(("127.64.0.2".parse().unwrap(), 23)), "half a second later");
        assert_eq!(of(4), Some(("::ffff:127.64.0.5".parse().unwrap(), 23)));
    }
    // Read back by id, in one query per thousand ids: those stored, whatever else is asked.
    let mut ids: Vec<uuid::Uuid> = (0..1_500).map(|_| uuid::Uuid::new_v4()).collect();
    ids.extend(batch.iter().filter_map(Record::id));
    let mut read = store.records_by_id(&ids).await.unwrap();
    read.sort_by_key(|r| r.id());
    let mut expected = batch.clone();
    expected.sort_by_key(|r| r.id());
    assert_eq!(read, expected);
    assert!(store.records_by_id(&[]).await.unwrap().is_empty());
    // Pruning raises it when it deletes botnets, and only then.
    let day = |text: &str| text.parse::<chrono::NaiveDate>().unwrap();
    assert_eq!(store.prune(Kind::Botnet, day("2026-11-01"), 100).await.unwrap(), 0);
    assert_eq!(store.record_version(Kind::Botnet).await.unwrap(), upserted, "nothing pruned");
    assert_eq!(store.prune(Kind::Botnet, day("2026-11-05"), 100).await.unwrap(), 5);
    assert!(store.record_version(Kind::Botnet).await.unwrap() > upserted, "five botnets pruned");
    assert_eq!(store.botnet_current_servers(None).await.unwrap().len(), 5);
}

/// Runs every case, each on a fresh store made by `open(case_name)`.
async fn run_suite<S, F, Fut>(open: F)
where
    S: Store + Clone + 'static,
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = S>,
{
    records_round_trip_exactly(open("round_trip").await).await;
    writing_the_same_records_again_stores_them_once(open("dedup").await).await;
    a_failed_batch_leaves_nothing_behind(open("atomic").await).await;
    large_batches_are_split_and_paged_in_id_order(open("paging").await).await;
    routing_snapshots_replace_each_other(open("routing").await).await;
    isp_registry_is_replaced_and_ingested_isps_update_it(open("registry").await).await;
    concurrent_writers_do_not_lose_records(open("concurrent").await).await;
    upserts_replace_and_queries_filter_by_time_and_address(open("upsert").await).await;
    tokens_are_found_by_hash_listed_and_revoked(open("tokens").await).await;
    a_revised_cnc_report_replaces_the_stored_one_when_it_is_later(open("revised").await).await;
    an_opened_store_has_the_schema_this_build_expects(open("schema").await).await;
    leases_expire_are_bounded_per_owner_and_in_all(open("leases").await).await;
    hits_are_counted_per_key_in_windows(open("hits").await).await;
    typed_filters_find_records_by_isp_port_serial_status_sensor_and_prefix(open("typed").await).await;
    writes_mark_days_for_roll_ups_and_rows_read_back_by_range(open("rollups").await).await;
    records_are_found_by_the_prefixes_an_as_originates(open("asn").await).await;
    a_revision_that_moves_a_report_to_another_day_marks_both_days(open("moved").await).await;
    an_outcome_marks_its_cases_day_and_is_found_by_its_case(open("outcomes").await).await;
    pruning_deletes_old_days_and_leaves_their_roll_ups_as_counted(open("prune").await).await;
    cnc_servers_are_kept_per_day_and_summed_over_a_range(open("servers").await).await;
    roll_up_rows_are_read_by_the_dimensions_asked_for(open("dims").await).await;
    records_are_counted_by_kind_time_and_status(open("counts").await).await;
    botnet_pages_are_sorted_by_each_column_in_the_store(open("botnet_pages").await).await;
    each_botnet_s_current_server_is_the_one_it_used_last_and_botnets_read_back_by_id(open("current_servers").await)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    run_suite(|name| {
        let path = root.join(format!("{name}.db"));
        async move { SqliteStore::open(&path, 4).await.unwrap() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_postgres() {
    let cluster = PgCluster::start();
    let cluster = &cluster;
    run_suite(|name| async move { PostgresStore::open(&cluster.create_database(name), 4).await.unwrap() }).await;
}

#[tokio::test]
async fn sqlite_file_reopens_with_its_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reopen.db");
    let store = SqliteStore::open(&path, 1).await.unwrap();
    store.put_records(&[record(CNC)]).await.unwrap();
    drop(store);
    let again = SqliteStore::open(&path, 1).await.unwrap();
    assert_eq!(again.count_records(None).await.unwrap(), 1);
}

/// A store a newer build migrated still opens in this one (migrations only add), so replicas can
/// be upgraded one at a time; its schema then reads as current.
#[tokio::test]
async fn a_store_a_newer_build_migrated_opens_in_this_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    let store = SqliteStore::open(&path, 1).await.unwrap();
    store.put_records(&[record(CNC)]).await.unwrap();
    drop(store);
    {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from a newer build', TRUE, X'00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let again = SqliteStore::open(&path, 1).await.unwrap();
    assert_eq!(again.count_records(None).await.unwrap(), 1);
    let schema = again.schema().await.unwrap();
    assert!(schema.is_current() && schema.applied == 9999, "{schema:?}");
}

/// An activity record of window `start` (an hour), with its derived id.
fn activity_from(start: chrono::DateTime<chrono::Utc>) -> Record {
    let Record::Activity(mut a) = record(ACTIVITY) else { unreachable!() };
    a.window_start = start;
    a.window_end = start + chrono::Duration::hours(1);
    a.id = None;
    let mut record = Record::Activity(a);
    record.ensure_id();
    record
}

/// How many records each partition of `records` holds, by table name.
async fn rows_per_partition(pool: &sqlx::PgPool) -> std::collections::BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>("SELECT tableoid::regclass::text, COUNT(*) FROM records GROUP BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// PostgreSQL keeps activity, services and findings in monthly partitions (migration 0015): a
/// month near now gets its own as records arrive, a month far off goes to the default one and
/// moves out when its partition is made, a record whose id is not the derived one replaces every
/// row of its id, and retention drops a month wholly before the cut at once and deletes the rest
/// row by row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_kinds_live_in_month_partitions_and_retention_drops_whole_months() {
    use chrono::{Datelike, TimeZone};
    let cluster = PgCluster::start();
    let url = cluster.create_database("months");
    let store = PostgresStore::open(&url, 4).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let month_start = |back: i32| {
        let now = chrono::Utc::now();
        let ordinal = now.year() * 12 + now.month0() as i32 - back;
        chrono::Utc.with_ymd_and_hms(ordinal.div_euclid(12), ordinal.rem_euclid(12) as u32 + 1, 1, 0, 0, 0).unwrap()
    };
    let table = |at: chrono::DateTime<chrono::Utc>| format!("records_activity_{}", at.format("%Y_%m"));
    let this_month = month_start(0);
    let three_back = month_start(3);
    let far_ahead = month_start(-4);
    let far_back = month_start(7 * 12);
    let mut batch: Vec<Record> = (0..5).map(|h| activity_from(this_month + chrono::Duration::hours(h))).collect();
    batch.extend((0..4).map(|h| activity_from(three_back + chrono::Duration::hours(h))));
    batch.push(activity_from(far_ahead));
    batch.push(activity_from(far_back));
    batch.push(record(CNC));
    assert_eq!(store.put_records(&batch).await.unwrap().inserted, 12);
    let held = rows_per_partition(&pool).await;
    assert_eq!(held.get(&table(this_month)), Some(&5), "{held:?}");
    assert_eq!(held.get(&table(three_back)), Some(&4), "{held:?}");
    assert_eq!(held.get("records_activity_default"), Some(&2), "a month far off has no partition: {held:?}");
    assert_eq!(held.get("records_other"), Some(&1), "{held:?}");
    assert_eq!(store.put_records(&batch).await.unwrap().duplicates, 12, "written again, stored once");

    // A month's partition made later takes what the default one held of it.
    assert!(store.make_month_partition(Kind::Activity, far_ahead.date_naive()).await.unwrap());
    assert!(!store.make_month_partition(Kind::Activity, far_ahead.date_naive()).await.unwrap(), "made once");
    let held = rows_per_partition(&pool).await;
    assert_eq!((held.get(&table(far_ahead)), held.get("records_activity_default")), (Some(&1), Some(&1)), "{held:?}");
    let ahead = &batch[9];
    assert_eq!(store.record(ahead.id().unwrap()).await.unwrap().as_ref(), Some(ahead));

    // A record whose id is not the derived one is keyed by id and time when written only if new
    // (as documented: ids botscope derives hold the time), and replaces every row of its id.
    let foreign_id = uuid::Uuid::from_u128(0x0015);
    let foreign = |at: chrono::DateTime<chrono::Utc>| {
        let Record::Activity(mut a) = activity_from(at) else { unreachable!() };
        a.id = Some(foreign_id);
        Record::Activity(a)
    };
    assert_eq!(store.put_records(&[foreign(this_month)]).await.unwrap().inserted, 1);
    assert_eq!(store.put_records(&[foreign(this_month)]).await.unwrap().duplicates, 1, "same id and time");
    assert_eq!(store.put_records(&[foreign(three_back)]).await.unwrap().inserted, 1, "same id, another time");
    assert_eq!(store.records_by_id(&[foreign_id]).await.unwrap().len(), 2);
    assert_eq!(store.upsert_records(&[foreign(three_back)]).await.unwrap(), 1);
    let stored = store.records_by_id(&[foreign_id]).await.unwrap();
    assert_eq!(stored, [foreign(three_back)], "replaced, in its month, and only one");

    // Retention: the month three back goes whole; the record seven years back, in the default
    // partition, goes row by row; this month's stay.
    let cut = month_start(1).date_naive();
    assert_eq!(store.count_before(Kind::Activity, cut).await.unwrap(), 6);
    let mut deleted = Vec::new();
    loop {
        let batch = store.prune(Kind::Activity, cut, 1).await.unwrap();
        deleted.push(batch);
        if batch < 1 {
            break;
        }
    }
    assert_eq!(deleted.iter().sum::<u64>(), 6, "{deleted:?}");
    assert!(deleted[0] >= 5, "the month went in the first call: {deleted:?}");
    let gone: Option<String> =
        sqlx::query_scalar("SELECT to_regclass($1)::text").bind(table(three_back)).fetch_one(&pool).await.unwrap();
    assert_eq!(gone, None, "the month's partition is dropped");
    assert_eq!(store.count_before(Kind::Activity, cut).await.unwrap(), 0);
    assert_eq!(store.count_records(Some(Kind::Activity)).await.unwrap(), 6, "this month's five and the one ahead");
    assert_eq!(store.count_records(Some(Kind::Cnc)).await.unwrap(), 1, "other kinds are kept");
    // A late record for the dropped month is stored again (in a partition made anew).
    assert_eq!(store.put_records(&[batch[6].clone()]).await.unwrap().inserted, 1);
    assert_eq!(rows_per_partition(&pool).await.get(&table(three_back)), Some(&1));
}
