//! Upgrading a store that an older botscope made: `botscope db status` and `db upgrade
//! --dry-run` say what will change and change nothing, `db upgrade` applies it, and every record
//! the older version stored is still there and found through the new indexes.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use botscope_store::{RecordQuery, Store};
use common::Scratch;

/// The migrations the store had before this build's (shared state, typed columns, roll-ups, the
/// kind and id index).
const OLDER_MIGRATIONS: usize = 3;

/// The example records, as `botscope ingest` parses them.
fn example_records() -> Vec<botscope_model::Record> {
    let examples = include_str!("../../../data/examples/records.jsonl");
    examples.lines().map(|line| botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap()).collect()
}

/// The older migrations' files, copied as they are (so their checksums are the ones an older
/// build recorded).
fn older_migrations(scratch: &Scratch, backend: &str) -> std::path::PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../store/migrations").join(backend);
    let mut files: Vec<_> = std::fs::read_dir(&source).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let target = scratch.path(&format!("older-{backend}"));
    std::fs::create_dir_all(&target).unwrap();
    for file in files.iter().take(OLDER_MIGRATIONS) {
        std::fs::copy(file, target.join(file.file_name().unwrap())).unwrap();
    }
    target
}

/// One row of the records table as the older build wrote it: id, kind, time, address, JSON body.
type OlderRow = (String, String, Option<String>, Option<String>, String);

fn older_rows() -> Vec<OlderRow> {
    example_records()
        .iter()
        .map(|r| {
            let time = r.time().map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
            (
                r.id().unwrap().to_string(),
                r.kind().as_str().to_string(),
                time,
                r.address().map(|a| a.to_string()),
                r.to_json_line(),
            )
        })
        .collect()
}

fn botscope_db(scratch: &Scratch, db: &str, args: &[&str]) -> String {
    let mut all = vec!["--db", db, "db"];
    all.extend(args);
    scratch.run(&all).ok().stdout
}

/// Runs the upgrade on a store an older build made at `db`, and checks what it finds.
async fn upgrade_and_check(scratch: &Scratch, db: &str) {
    let status = botscope_db(scratch, db, &["status"]);
    assert!(status.contains("0004 shared state") && status.contains("pending"), "{status}");
    assert!(status.contains("0005 typed columns") && status.contains("12 pending"), "{status}");
    assert!(
        status.contains("0006 rollups")
            && status.contains("0007 kind id index")
            && status.contains("0008 outcome cases")
            && status.contains("0009 retention")
            && status.contains("0010 lean indexes")
            && status.contains("0011 cnc servers")
            && status.contains("0012 address btree")
            && status.contains("0013 analyze by rows")
            && status.contains("0014 record versions")
            && status.contains("0015 monthly partitions"),
        "{status}"
    );
    let dry = botscope_db(scratch, db, &["upgrade", "--dry-run"]);
    assert!(dry.contains("would apply 12 migration(s)") && dry.contains("nothing changed"), "{dry}");
    assert!(botscope_db(scratch, db, &["status"]).contains("12 pending"), "a dry run changed the store");
    let done = botscope_db(scratch, db, &["upgrade"]);
    assert!(done.contains("applying 12 migration(s)") && done.contains("done"), "{done}");
    let status = botscope_db(scratch, db, &["status"]);
    // The older records' days (activity, finding, service and C&C report on 2 November, a case on
    // 3 November) wait to be counted.
    assert!(status.contains("up to date") && status.contains("daily roll-ups: 5 day(s)"), "{status}");
    assert!(botscope_db(scratch, db, &["upgrade"]).contains("nothing to apply"));
    let counted = botscope_db(scratch, db, &["rollups"]);
    // Five records, and the case's outcome read with it.
    assert!(counted.contains("5 day(s) counted from 6 record(s)"), "{counted}");
    assert!(!botscope_db(scratch, db, &["status"]).contains("daily roll-ups"), "nothing left to count");

    let url = botscope_store::StoreUrl::parse(db).unwrap();
    let store = botscope_store::AnyStore::open(&url, 2).await.unwrap();
    let before = example_records();
    let after = botscope_store::all_records(&store, RecordQuery::default()).await.unwrap();
    assert_eq!(after.len(), before.len());
    for record in &before {
        assert_eq!(store.record(record.id().unwrap()).await.unwrap().as_ref(), Some(record), "kept as it was");
    }
    // The older rows are found through the typed columns.
    let query = RecordQuery { isp: Some("hikari-net".into()), limit: 100, ..Default::default() };
    let by_isp = store.records(&query).await.unwrap();
    let expected = before.iter().filter(|r| r.to_json_line().contains("\"isp\":\"hikari-net\"")).count();
    assert!(expected >= 2 && by_isp.len() == expected, "{} of {expected}", by_isp.len());
    let query = RecordQuery { serial: Some("BN-2026-0007".into()), limit: 100, ..Default::default() };
    assert_eq!(store.records(&query).await.unwrap().len(), 2, "the botnet and its window");
    let query = RecordQuery { prefix: "127.16.0.0/16".parse().ok(), limit: 100, ..Default::default() };
    assert!(!store.records(&query).await.unwrap().is_empty());
    // The roll-ups built from the older records count them.
    let infected =
        botscope_center::rollup::Series::read(&store, botscope_model::Kind::Activity, "infected", None, None)
            .await
            .unwrap();
    assert_eq!(infected.hosts("hikari-net").count().value, 1);
    let reported: Vec<botscope_model::CncCandidate> = before.iter().filter_map(|r| r.clone().into_payload()).collect();
    let servers = botscope_center::rollup::servers::read(&store, None, None).await.unwrap();
    assert!(!reported.is_empty() && servers == botscope_center::rollup::servers::of_reports(&reported));

    // Retention: refused without a setting; a dry run counts; the prune deletes the raw
    // observations of the older days (every example is from October or November 2026) and keeps
    // everything else and the roll-ups.
    let refused = scratch.run(&["--db", db, "db", "prune"]).fails();
    assert!(
        refused.stderr.contains("--keep-days") && refused.stderr.contains("store.retention_days"),
        "{}",
        refused.stderr
    );
    let first_kept = chrono::Utc::now().date_naive() - chrono::Days::new(29);
    let observations = before
        .iter()
        .filter(|r| botscope_center::retention::PRUNED_KINDS.contains(&r.kind()))
        .filter(|r| r.time().is_some_and(|t| t.date_naive() < first_kept))
        .count();
    assert!(observations >= 4, "activity, service, finding and C&C report");
    let dry = botscope_db(scratch, db, &["prune", "--keep-days", "30", "--dry-run"]);
    assert!(dry.contains(&format!("from {first_kept} on")) && dry.contains("nothing changed"), "{dry}");
    assert_eq!(botscope_store::all_records(&store, RecordQuery::default()).await.unwrap().len(), before.len());
    let done = botscope_db(scratch, db, &["prune", "--keep-days", "30"]);
    assert!(done.contains(&format!("done: {observations} record(s) deleted")), "{done}");
    let left = botscope_store::all_records(&store, RecordQuery::default()).await.unwrap();
    assert_eq!(left.len(), before.len() - observations, "only the old observations went");
    let infected =
        botscope_center::rollup::Series::read(&store, botscope_model::Kind::Activity, "infected", None, None)
            .await
            .unwrap();
    assert_eq!(infected.hosts("hikari-net").count().value, 1, "the pruned day keeps its roll-up");
    let kept = botscope_center::rollup::servers::read(&store, None, None).await.unwrap();
    assert_eq!(kept, servers, "the pruned day keeps its C&C servers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_an_older_build_made_upgrades_with_a_dry_run_first_and_keeps_its_records() {
    let scratch = Scratch::new();
    let path = scratch.path("older.db");
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let migrator = sqlx::migrate::Migrator::new(older_migrations(&scratch, "sqlite")).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for (id, kind, time, ip, body) in older_rows() {
            sqlx::query("INSERT INTO records (id, kind, time, ip, body, ingested_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id)
                .bind(kind)
                .bind(time)
                .bind(ip)
                .bind(body)
                .bind("2026-11-01T00:00:00.000000Z")
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.close().await;
    }
    upgrade_and_check(&scratch, &path.display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_an_older_build_made_upgrades_with_a_dry_run_first_and_keeps_its_records() {
    let scratch = Scratch::new();
    let cluster = botscope_testkit::PgCluster::start();
    let url = cluster.create_database("older");
    {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let migrator = sqlx::migrate::Migrator::new(older_migrations(&scratch, "postgres")).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for (id, kind, time, ip, body) in older_rows() {
            let time: Option<chrono::DateTime<chrono::Utc>> = time.map(|t| t.parse().unwrap());
            sqlx::query(
                "INSERT INTO records (id, kind, time, ip, body, ingested_at) VALUES ($1::uuid, $2, $3, $4, $5::jsonb, now())",
            )
            .bind(id)
            .bind(kind)
            .bind(time)
            .bind(ip)
            .bind(body)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    upgrade_and_check(&scratch, &url).await;
    // Migration 0015 moved every row into the partitioned table and left no copy behind.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT relname::text, relkind::text FROM pg_class WHERE relname IN ('records', 'records_unpartitioned')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(tables, [("records".to_string(), "p".to_string())], "records is partitioned");
}

/// A store that applied a migration from another file than this build's (a released migration
/// edited since) is named as such: `db status` lists it and fails, `db upgrade` refuses, and
/// nothing is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_an_edited_migration_is_reported_and_not_upgraded() {
    let scratch = Scratch::new();
    let path = scratch.path("edited.db");
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let migrator = sqlx::migrate::Migrator::new(older_migrations(&scratch, "sqlite")).await.unwrap();
        migrator.run(&pool).await.unwrap();
        sqlx::query("UPDATE _sqlx_migrations SET checksum = x'0102' WHERE version = 2").execute(&pool).await.unwrap();
        pool.close().await;
    }
    let db = path.display().to_string();
    let status = scratch.run(&["--db", &db, "db", "status"]).fails();
    assert!(status.stdout.contains("0002") && status.stdout.contains("CHANGED"), "{}", status.stdout);
    assert!(status.stderr.contains("migration(s) 0002 were applied from other files"), "{}", status.stderr);
    let upgrade = scratch.run(&["--db", &db, "db", "upgrade"]).fails();
    assert!(upgrade.stderr.contains("0002"), "{}", upgrade.stderr);
    let after = scratch.run(&["--db", &db, "db", "status"]).fails();
    assert!(after.stdout.contains("pending"), "the upgrade applied nothing: {}", after.stdout);
}

/// Replicas are upgraded one at a time. A replica of a build before the per-server C&C roll-up
/// claims a C&C day's mark and counts the day's figures without its servers; that day must be
/// counted again by the next refresh of this build, not left without (or with stale) servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cnc_day_an_older_replica_counted_is_counted_again_with_its_servers() {
    let scratch = Scratch::new();
    let path = scratch.path("mixed.db");
    let store = botscope_store::SqliteStore::open(&path, 2).await.unwrap();
    let report = |server: &str| {
        let line = format!(
            r#"{{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"{server}","port":6667,"protocol":"tcp","score":0.9,"rank":1,"methods":["graph"],"seed_clients":2,"total_clients":5,"flows":40,"first_seen":"2026-11-02T09:00:03Z","last_seen":"2026-11-02T09:59:41Z","sensor":"isp-x"}}"#
        );
        let mut record = botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap();
        record.ensure_id();
        record
    };
    store.put_records(&[report("127.200.0.1")]).await.unwrap();
    botscope_center::rollup::refresh(&store).await.unwrap();
    let servers = || async { botscope_center::rollup::servers::read(&store, None, None).await.unwrap().len() };
    assert_eq!(servers().await, 1);
    // A second server that day, then the older replica's refresh: it claims the mark (its figures
    // are left out here: only the claim matters) and writes no servers.
    store.put_records(&[report("127.200.0.2")]).await.unwrap();
    let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path)).await.unwrap();
    let claimed =
        sqlx::query("UPDATE rollup_dirty SET counted = generation WHERE kind = 'cnc' AND counted < generation")
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
    assert_eq!(claimed, 1);
    assert_eq!(servers().await, 1, "the older replica counted the day without its second server");
    let summary = botscope_center::rollup::refresh(&store).await.unwrap();
    assert_eq!(summary.days, 1, "the day is counted again");
    assert_eq!(servers().await, 2);
    // Counted by this build, it is not marked again.
    assert_eq!(botscope_center::rollup::refresh(&store).await.unwrap().days, 0);
}
