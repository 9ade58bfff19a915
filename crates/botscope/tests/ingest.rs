//! `botscope ingest` against real stores: bad lines, strictness, re-runs, and a kill -9 mid-run.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use botscope_model::{Kind, parse_line};
use botscope_store::Store;
use common::{Scratch, finding_line};

const EXAMPLES: &str = include_str!("../../../data/examples/records.jsonl");

#[tokio::test]
async fn malformed_lines_are_reported_by_file_and_line_and_the_rest_is_stored() {
    let scratch = Scratch::new();
    let mut text = String::new();
    text.push_str(&finding_line(1));
    text.push_str("\n{not json\n");
    text.push_str(&finding_line(2));
    text.push_str("\n\n");
    text.push_str(&finding_line(3).replace("\"port\":23", "\"port\":0"));
    text.push('\n');
    text.push_str(&finding_line(4).replace("\"kind\":\"finding\",", ""));
    text.push('\n');
    text.push_str(&format!("{}\n", "x".repeat(2_000_000)));
    text.push_str(&finding_line(5));
    let file = scratch.write("mixed.jsonl", &text);

    let out = scratch.run(&["ingest", file.to_str().unwrap()]).ok();
    for (line, why) in [(2, "column 2"), (5, "port"), (6, "kind"), (7, "exceeds ingest.max_line_bytes")] {
        let needle = format!("mixed.jsonl:{line}:");
        let reported = out
            .stderr
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("line {line} not reported:\n{}", out.stderr));
        assert!(reported.contains(why), "{reported}");
    }
    assert!(out.stdout.contains("8 lines, 3 records (3 new, 0 already stored), 4 skipped"), "{}", out.stdout);
    let store = common::open_sqlite(&scratch.db()).await;
    assert_eq!(store.count_records(None).await.unwrap(), 3);
}

#[tokio::test]
async fn strict_mode_writes_nothing_when_any_line_is_bad() {
    let scratch = Scratch::new();
    let good = scratch.write("good.jsonl", EXAMPLES);
    let bad = scratch.write("bad.jsonl", format!("{}\n{}\n", finding_line(1), r#"{"kind":"finding"}"#));
    let out = scratch.run(&["ingest", "--strict", good.to_str().unwrap(), bad.to_str().unwrap()]).fails();
    assert!(out.stderr.contains("bad.jsonl:2:") && out.stderr.contains("nothing was written"), "{}", out.stderr);
    let store = common::open_sqlite(&scratch.db()).await;
    assert_eq!(store.count_records(None).await.unwrap(), 0);

    // The same data through a pipe: strict mode must still check everything before writing.
    let piped = format!("{EXAMPLES}{{broken\n");
    let out = scratch.run_with_stdin(&["ingest", "--strict", "-"], piped.as_bytes()).fails();
    assert!(out.stderr.contains(&format!("<stdin>:{}:", Kind::ALL.len() + 1)), "{}", out.stderr);
    assert_eq!(store.count_records(None).await.unwrap(), 0);

    scratch.run_with_stdin(&["ingest", "--strict", "-"], EXAMPLES.as_bytes()).ok();
    assert_eq!(store.count_records(None).await.unwrap(), Kind::ALL.len() as u64);
}

#[tokio::test]
async fn every_kind_is_detected_and_a_rerun_adds_nothing() {
    let scratch = Scratch::new();
    let file = scratch.write("examples.jsonl", EXAMPLES);
    let first = scratch.run(&["ingest", "--json", file.to_str().unwrap()]).ok();
    let report: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(report["totals"]["inserted"], Kind::ALL.len());
    let again = scratch.run(&["ingest", "--json", file.to_str().unwrap()]).ok();
    let report: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(
        (report["totals"]["inserted"].as_u64(), report["totals"]["duplicates"].as_u64()),
        (Some(0), Some(Kind::ALL.len() as u64))
    );

    let store = common::open_sqlite(&scratch.db()).await;
    for kind in Kind::ALL {
        assert_eq!(store.count_records(Some(kind)).await.unwrap(), 1, "{kind}");
    }
    for line in EXAMPLES.lines() {
        let expected = parse_line(line.as_bytes(), None).unwrap().unwrap();
        assert_eq!(store.record(expected.id().unwrap()).await.unwrap(), Some(expected));
    }
    assert_eq!(store.isps().await.unwrap()[0].handle, "hikari-net", "ingested ISPs reach the registry");
}

#[tokio::test]
async fn kind_flag_reads_kindless_files_and_rejects_other_kinds() {
    let scratch = Scratch::new();
    let cnc = EXAMPLES.lines().nth(2).unwrap();
    let kindless = cnc.replace(r#""kind":"cnc","#, "");
    let file = scratch.write("cnc.jsonl", format!("{kindless}\n{}\n", EXAMPLES.lines().next().unwrap()));
    let out = scratch.run(&["ingest", "--kind", "cnc", file.to_str().unwrap()]).ok();
    assert!(
        out.stderr.contains("cnc.jsonl:2:") && out.stderr.contains("record is kind finding but cnc was required"),
        "{}",
        out.stderr
    );
    let store = common::open_sqlite(&scratch.db()).await;
    assert_eq!(store.count_records(Some(Kind::Cnc)).await.unwrap(), 1);
    let bad_kind = scratch.run(&["ingest", "--kind", "bogus", file.to_str().unwrap()]);
    assert_eq!(bad_kind.code, Some(2), "{}", bad_kind.stderr);
}

#[tokio::test]
async fn gzip_and_stdin_are_read() {
    let scratch = Scratch::new();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for n in 0..100 {
        writeln!(encoder, "{}", finding_line(n)).unwrap();
    }
    let gz = scratch.write("findings.jsonl.gz", encoder.finish().unwrap());
    scratch.run(&["ingest", gz.to_str().unwrap()]).ok();
    let out = scratch
        .run_with_stdin(&["ingest", "-"], format!("{}\n{}\n", finding_line(100), finding_line(0)).as_bytes())
        .ok();
    assert!(out.stdout.contains("<stdin>: 2 lines, 2 records (1 new, 1 already stored)"), "{}", out.stdout);
    let store = common::open_sqlite(&scratch.db()).await;
    assert_eq!(store.count_records(None).await.unwrap(), 101);
}

#[tokio::test]
async fn unreadable_files_fail_without_losing_the_others() {
    let scratch = Scratch::new();
    let good = scratch.write("good.jsonl", EXAMPLES);
    let mut broken_gzip = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    broken_gzip.extend_from_slice(b"this is not deflate data");
    let broken = scratch.write("broken.jsonl.gz", broken_gzip);
    let out = scratch.run(&["ingest", "missing.jsonl", broken.to_str().unwrap(), good.to_str().unwrap()]).fails();
    assert!(out.stdout.contains("missing.jsonl: 0 lines") && out.stdout.contains("FAILED"), "{}", out.stdout);
    let n = Kind::ALL.len();
    assert!(out.stdout.contains(&format!("good.jsonl: {n} lines, {n} records ({n} new")), "{}", out.stdout);
    let store = common::open_sqlite(&scratch.db()).await;
    assert_eq!(store.count_records(None).await.unwrap(), Kind::ALL.len() as u64);
}

/// The promise: a batch whose commit was logged survives kill -9, and re-running the same file
/// afterwards completes the load without duplicating anything.
#[tokio::test]
async fn kill_dash_nine_mid_ingest_loses_nothing_acknowledged() {
    let scratch = Scratch::new();
    let db = scratch.db().display().to_string();
    kill_mid_ingest_and_rerun(&scratch, &db, &[]).await;
}

/// The same with PostgreSQL committing four batches side by side: a batch is acknowledged only
/// once every batch before it has committed, whichever finished first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_parallel_ingest_into_postgres_loses_nothing_acknowledged() {
    let cluster = botscope_testkit::PgCluster::start();
    let url = cluster.create_database("killed");
    kill_mid_ingest_and_rerun(&Scratch::new(), &url, &["--parallel", "4"]).await;
}

async fn kill_mid_ingest_and_rerun(scratch: &Scratch, db: &str, flags: &[&str]) {
    const TOTAL: u32 = 300_000;
    let mut text = String::with_capacity(TOTAL as usize * 170);
    for n in 0..TOTAL {
        text.push_str(&finding_line(n));
        text.push('\n');
    }
    let file = scratch.write("big.jsonl", &text);
    let open = || async {
        let url = botscope_store::StoreUrl::parse(db).unwrap();
        botscope_store::AnyStore::open(&url, 1).await.unwrap()
    };

    let mut child = scratch
        .botscope()
        .args(["--db", db, "-v", "--log-format", "json", "ingest", "--batch-size", "500"])
        .args(flags)
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (events, acks) = std::sync::mpsc::channel::<serde_json::Value>();
    let reader = std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "committed batch"
            {
                let _ = events.send(event);
            }
        }
    });
    let mut last_ack = serde_json::Value::Null;
    for _ in 0..5 {
        last_ack = acks.recv_timeout(std::time::Duration::from_secs(120)).expect("ingest acknowledged too few batches");
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.signal(), Some(9), "ingest finished before it could be killed; the test proves nothing");

    // Acknowledgements logged between the fifth and the kill count too.
    let last_ack = acks.try_iter().last().unwrap_or(last_ack);
    let acked_records = last_ack["committed"].as_u64().unwrap();
    let acked_through = last_ack["through_line"].as_u64().unwrap();
    assert_eq!(acked_records, acked_through, "every line is a new record: acknowledged lines and records agree");
    let store = open().await;
    let stored = store.count_records(None).await.unwrap();
    assert!(stored >= acked_records, "acknowledged {acked_records}, found only {stored}");
    assert!(stored < u64::from(TOTAL), "everything was stored: the kill came too late to mean anything");
    // Every acknowledged line, not a sample: with batches committing side by side, a gap would
    // be one whole batch.
    let acknowledged: Vec<uuid::Uuid> = text
        .lines()
        .take(acked_through as usize)
        .map(|line| parse_line(line.as_bytes(), None).unwrap().unwrap().id().unwrap())
        .collect();
    for ids in acknowledged.chunks(500) {
        let first = ids[0];
        assert!(store.record(first).await.unwrap().is_some(), "acknowledged record {first} lost");
        let last = ids[ids.len() - 1];
        assert!(store.record(last).await.unwrap().is_some(), "acknowledged record {last} lost");
    }
    drop(store);

    let rerun = scratch.run(&["--db", db, "ingest", "--json", file.to_str().unwrap()]).ok();
    let report: serde_json::Value = serde_json::from_str(&rerun.stdout).unwrap();
    assert_eq!(report["totals"]["duplicates"].as_u64(), Some(stored));
    assert_eq!(report["totals"]["inserted"].as_u64(), Some(u64::from(TOTAL) - stored));
    let store = open().await;
    assert_eq!(store.count_records(None).await.unwrap(), u64::from(TOTAL));
}

/// Batches committing side by side that hold the same records in opposite orders (a file
/// loaded twice, once backwards) would each wait for the rows the other inserted first: the
/// batches take their locks in id order, and what conflicts anyway is tried again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_parallel_batches_with_the_same_records_in_opposite_orders_store_each_once() {
    const DISTINCT: u32 = 20_000;
    let cluster = botscope_testkit::PgCluster::start();
    let url = cluster.create_database("crossing");
    let scratch = Scratch::new();
    // Each run of 100 records, forwards and then backwards: every second batch of 100 holds
    // the records of the one before it, in the other order.
    let mut text = String::new();
    for run in (0..DISTINCT).collect::<Vec<u32>>().chunks(100) {
        for n in run.iter().chain(run.iter().rev()) {
            text.push_str(&finding_line(*n));
            text.push('\n');
        }
    }
    let file = scratch.write("crossing.jsonl", &text);
    let run = scratch
        .run(&["--db", &url, "ingest", "--json", "--batch-size", "100", "--parallel", "8", file.to_str().unwrap()])
        .ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["totals"]["inserted"].as_u64(), Some(u64::from(DISTINCT)), "{}", run.stdout);
    assert_eq!(report["totals"]["duplicates"].as_u64(), Some(u64::from(DISTINCT)), "{}", run.stdout);
    let store = botscope_store::PostgresStore::open(&url, 1).await.unwrap();
    assert_eq!(store.count_records(None).await.unwrap(), u64::from(DISTINCT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_into_postgres_dedups_across_runs() {
    let cluster = botscope_testkit::PgCluster::start();
    let url = cluster.create_database("ingest");
    let scratch = Scratch::new();
    let file = scratch.write("examples.jsonl", EXAMPLES);
    let first = scratch.run(&["--db", &url, "ingest", file.to_str().unwrap()]).ok();
    assert!(first.stdout.contains(&format!("{} new", Kind::ALL.len())), "{}", first.stdout);
    let again = scratch.botscope().args(["ingest", file.to_str().unwrap()]).env("BOTSCOPE_DB", &url).output().unwrap();
    let again = common::Run::from(again).ok();
    assert!(again.stdout.contains(&format!("0 new, {} already stored", Kind::ALL.len())), "{}", again.stdout);
    let store = botscope_store::PostgresStore::open(&url, 1).await.unwrap();
    assert_eq!(store.count_records(None).await.unwrap(), Kind::ALL.len() as u64);
    assert!(!scratch.db().exists(), "nothing may go to the default SQLite file when --db names PostgreSQL");
}
