//! The centre's other duties, each against real peers on loopback: feeds and how far ahead of
//! them botscope is, C&C liveness against real listeners, notification deduplication and
//! suppression over several periods, and sensors that keep their records while the centre is down.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::io::Read;
use std::net::TcpListener;

use botscope_model::{Kind, Record};
use botscope_store::{RecordQuery, Store, all_records};
use common::{Scratch, make_token};

fn cnc_line(ip: &str, port: u16, first_seen: &str) -> String {
    format!(
        r#"{{"kind":"cnc","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-02T01:00:00Z","ip":"{ip}","port":{port},"protocol":"tcp","score":0.9,"rank":1,"methods":["graph"],"seed_clients":5,"total_clients":6,"flows":40,"first_seen":"{first_seen}","last_seen":"2026-11-02T00:59:00Z","sensor":"isp-a"}}"#
    )
}

#[test]
fn feeds_are_imported_once_by_source_and_botscope_says_how_far_ahead_it_was() {
    let scratch = Scratch::new();
    let db = scratch.path("c.db").display().to_string();
    let cnc =
        [cnc_line("127.200.0.10", 6667, "2026-11-02T00:10:00Z"), cnc_line("127.200.0.11", 23, "2026-11-02T00:20:00Z")];
    scratch.write("cnc.jsonl", cnc.join("\n"));
    scratch.run(&["--db", &db, "ingest", "cnc.jsonl"]).ok();
    // ThreatFox lists one of them three days later, plus one server botscope never saw.
    let threatfox = "# \"first_seen_utc\",\"ioc_id\",\"ioc_value\",\"ioc_type\",\"threat_type\",\"fk_malware\",\"malware_alias\",\"malware_printable\",\"last_seen_utc\",\"confidence_level\",\"reference\",\"tags\",\"anonymous\",\"reporter\"\n\
\"2026-11-05 00:10:00\", \"9001\", \"127.200.0.10:6667\", \"ip:port\", \"botnet_cc\", \"elf.mirai\", \"\", \"Mirai\", \"\", \"100\", \"\", \"\", \"0\", \"x\"\n\
\"2026-11-05 00:10:00\", \"9002\", \"127.200.5.5:6667\", \"ip:port\", \"botnet_cc\", \"elf.mirai\", \"\", \"Mirai\", \"\", \"100\", \"\", \"\", \"0\", \"x\"\n\
\"2026-11-05 00:10:00\", \"9003\", \"evil.example\", \"domain\", \"botnet_cc\", \"elf.mirai\", \"\", \"Mirai\", \"\", \"100\", \"\", \"\", \"0\", \"x\"\n\
\"broken line\n";
    scratch.write("threatfox.csv", threatfox);
    let first =
        scratch.run(&["--db", &db, "feeds", "import", "--format", "threatfox-csv", "threatfox.csv", "--json"]).ok();
    let first: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(
        (first["inserted"].as_u64(), first["not_imported"].as_u64(), first["bad"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    assert!(first.to_string().contains("\"at\":5"), "the bad line is named: {first}");
    let again =
        scratch.run(&["--db", &db, "feeds", "import", "--format", "threatfox-csv", "threatfox.csv", "--json"]).ok();
    let again: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!((again["inserted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(2)));
    scratch.write("partner.txt", "127.200.0.11:23 gafgyt\n# a comment\n");
    scratch.run(&["--db", &db, "feeds", "import", "--format", "plain", "--source", "partner-isp", "partner.txt"]).ok();

    let report = scratch.run(&["--db", &db, "report", "feeds", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    let threatfox = report.as_array().unwrap().iter().find(|f| f["source"] == "threatfox").unwrap();
    assert_eq!(threatfox["shared"], 1);
    assert_eq!(threatfox["found_first"], 1);
    assert_eq!(threatfox["median_days_ahead"], 3.0);
    assert_eq!((threatfox["only_botscope"].as_u64(), threatfox["only_feed"].as_u64()), (Some(1), Some(1)));
    let partner = report.as_array().unwrap().iter().find(|f| f["source"] == "partner-isp").unwrap();
    assert_eq!(partner["shared"], 1);

    // Correlation counts a feed naming a reported server as another reporter and takes its family.
    scratch.run(&["--db", &db, "correlate"]).ok();
    let listed = scratch.run(&["--db", &db, "botnets", "list", "--json"]).ok().stdout;
    let mirai = listed.lines().find(|l| l.contains("127.200.0.10")).expect("a botnet with the ThreatFox-listed server");
    assert!(
        mirai.contains("\"family\":\"mirai\"") && mirai.contains("feed:threatfox") && mirai.contains("isp-a"),
        "{mirai}"
    );
    // Bad input: unknown format, missing file, a STIX file that is not a bundle.
    let usage = scratch.run(&["--db", &db, "feeds", "import", "--format", "csv", "threatfox.csv"]);
    assert_eq!(usage.code, Some(2), "a usage error");
    assert!(usage.stderr.contains("threatfox-csv, feodo-csv, stix or plain"));
    scratch.run(&["--db", &db, "feeds", "import", "--format", "plain", "missing.txt"]).fails();
    scratch.write("bad.json", "{\"type\": \"bundle\"}");
    let run = scratch.run(&["--db", &db, "feeds", "import", "--format", "stix", "bad.json"]).fails();
    assert!(run.stderr.contains("objects"), "{}", run.stderr);
}

/// A loopback server that accepts and either keeps connections open (a C&C) or closes them, until
/// the returned flag is set; then it closes its socket and every connection.
fn listener(ip: &str, keep_open: bool) -> (std::sync::Arc<std::sync::atomic::AtomicBool>, u16) {
    use std::sync::atomic::Ordering;
    let socket = TcpListener::bind((ip, 0)).unwrap();
    socket.set_nonblocking(true).unwrap();
    let port = socket.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while !stopped.load(Ordering::Relaxed) {
            match socket.accept() {
                Ok((mut stream, _)) if keep_open => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(50)));
                    let _ = stream.read(&mut [0u8; 8]);
                    held.push(stream);
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
    (stop, port)
}

#[test]
fn liveness_probes_loopback_servers_records_changes_only_and_reports_lifetimes() {
    let scratch = Scratch::new();
    let db = scratch.path("c.db").display().to_string();
    let (alive, alive_port) = listener("127.201.0.1", true);
    let (closing, closing_port) = listener("127.201.0.3", false);
    let dead_port = botscope_testkit::free_loopback_port();
    let lines = [
        cnc_line("127.201.0.1", alive_port, "2026-11-02T00:10:00Z"),
        cnc_line("127.201.0.2", dead_port, "2026-11-02T00:10:00Z"),
        cnc_line("127.201.0.3", closing_port, "2026-11-02T00:10:00Z"),
        // Not loopback: --lab must skip it (and no packet may go there).
        cnc_line("192.0.2.1", 6667, "2026-11-02T00:10:00Z"),
    ];
    scratch.write("cnc.jsonl", lines.join("\n"));
    scratch.run(&["--db", &db, "ingest", "cnc.jsonl"]).ok();
    let round = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["--db", db.as_str(), "liveness", "--once", "--lab", "--json", "--timeout", "1s"];
        args.extend(extra);
        serde_json::from_str(scratch.run(&args).ok().stdout.lines().next().unwrap()).unwrap()
    };
    // A greeted C&C keeps the connection; a service that closes on the hello is not one.
    let first = round(&["--greeting", "00000001"]);
    assert_eq!(
        first["round"],
        serde_json::json!({"probed": 3, "alive": 1, "dead": 2, "changes": 3, "skipped": 1, "outside_scope": 1})
    );
    let connect_only = round(&[]);
    assert_eq!(
        (connect_only["round"]["alive"].as_u64(), connect_only["round"]["changes"].as_u64()),
        (Some(2), Some(1))
    );
    let same = round(&[]);
    assert_eq!(same["round"]["changes"], 0, "an unchanged server writes nothing");
    alive.store(true, std::sync::atomic::Ordering::Relaxed);
    closing.store(true, std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_millis(100));
    // The listening sockets are closed: both are dead now.
    let after = round(&[]);
    assert_eq!((after["round"]["dead"].as_u64(), after["round"]["changes"].as_u64()), (Some(3), Some(2)));
    assert_eq!(after["lifetimes"]["dead"], 3);
    assert_eq!(after["lifetimes"]["share_dead_within_10_days"], 0.0, "they lived weeks, from 2026-11-02 to now");
    let store = futures_lite_block(common::open_sqlite(&scratch.path("c.db")));
    let records =
        futures_lite_block(all_records(&store, RecordQuery { kind: Some(Kind::Liveness), ..Default::default() }))
            .unwrap();
    let outcomes: Vec<String> = records
        .iter()
        .filter_map(|r| if let Record::Liveness(l) = r { Some(format!("{}:{}", l.ip, l.outcome)) } else { None })
        .collect();
    assert_eq!(records.len(), 6, "{outcomes:?}");
    assert!(outcomes.contains(&"127.201.0.1:greeted".to_string()), "{outcomes:?}");
    assert!(
        outcomes.contains(&"127.201.0.3:closed".to_string()) || outcomes.contains(&"127.201.0.3:reset".to_string()),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().all(|o| o.starts_with("127.")), "nothing outside loopback was probed");
    // Bad flags: a greeting that is not hex.
    scratch.run(&["--db", &db, "liveness", "--once", "--lab", "--greeting", "zz"]).fails();
}

#[test]
fn regression_liveness_never_probes_a_server_outside_its_scope() {
    // Issue 16: liveness connected to whatever address a sensor or feed reported. Now a server
    // outside the scope (--scope, minus --exclude-file; loopback only with --lab) is skipped.
    let scratch = Scratch::new();
    let db = scratch.path("c.db").display().to_string();
    let (inside, outside, port) = loop {
        // Not accepting: a probe's connection waits in the queue, so it can be counted.
        let inside = TcpListener::bind(("127.202.0.1", 0)).unwrap();
        let port = inside.local_addr().unwrap().port();
        if let Ok(outside) = TcpListener::bind(("127.203.0.1", port)) {
            inside.set_nonblocking(true).unwrap();
            outside.set_nonblocking(true).unwrap();
            break (inside, outside, port);
        }
    };
    let waiting = |listener: &TcpListener| std::iter::from_fn(|| listener.accept().ok()).count();
    let lines =
        [cnc_line("127.202.0.1", port, "2026-11-02T00:10:00Z"), cnc_line("127.203.0.1", port, "2026-11-02T00:10:00Z")];
    scratch.write("cnc.jsonl", lines.join("\n"));
    scratch.run(&["--db", &db, "ingest", "cnc.jsonl"]).ok();
    let round = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["--db", db.as_str(), "liveness", "--once", "--lab", "--json", "--timeout", "1s"];
        args.extend(extra);
        let run = scratch.run(&args).ok();
        assert!(!run.stderr.contains("127.203.0.1"), "addresses outside the scope are logged at debug level only");
        serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap()
    };
    let scoped = round(&["--scope", "127.202.0.0/24"]);
    assert_eq!(scoped["round"]["probed"], 1, "{scoped}");
    assert_eq!(scoped["round"]["alive"], 1, "{scoped}");
    assert_eq!(scoped["round"]["outside_scope"], 1, "{scoped}");
    assert_eq!(waiting(&outside), 0, "a server outside --scope was probed");
    assert_eq!(waiting(&inside), 1);
    // An opt-out takes the other one out too.
    scratch.write("optout.txt", "127.202.0.1 # asked not to be probed\n");
    let excluded = round(&["--scope", "127.202.0.0/24", "--exclude-file", "optout.txt"]);
    assert_eq!((excluded["round"]["probed"].as_u64(), excluded["round"]["outside_scope"].as_u64()), (Some(0), Some(2)));
    assert_eq!(waiting(&inside) + waiting(&outside), 0, "an excluded server was probed");
    // Outside the lab, loopback is in the built-in blocklist whatever --scope says.
    let field = scratch.run(&["--db", &db, "liveness", "--once", "--json", "--scope", "127.0.0.0/8"]).ok();
    let field: serde_json::Value = serde_json::from_str(field.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(field["round"]["outside_scope"], 2, "{field}");
    assert_eq!(waiting(&inside) + waiting(&outside), 0, "a blocklisted server was probed");
    // A lab scope outside loopback is a usage mistake, said so.
    let run = scratch.run(&["--db", &db, "liveness", "--once", "--lab", "--scope", "192.0.2.0/24"]).fails();
    assert!(run.stderr.contains("loopback"), "{}", run.stderr);
}

fn futures_lite_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

fn finding(ip: &str, port: u16, protocol: &str, at: &str, model: &str) -> String {
    format!(
        r#"{{"kind":"finding","observed_at":"{at}","ip":"{ip}","port":{port},"protocol":"{protocol}","issue":"default_credential","credential_id":3,"device":{{"vendor":"Sakura Netware","model":"{model}","type":"router"}}}}"#
    )
}

#[test]
fn cases_are_notified_once_then_repeated_suppressed_or_reopened_as_isps_answer() {
    let scratch = Scratch::new();
    let db_path = scratch.path("c.db");
    let db = db_path.display().to_string();
    scratch.load_example_isps(&db_path);
    let ids = |out: &str| -> serde_json::Value { serde_json::from_str(out).unwrap() };
    // Three devices of hikari-net (127.16/14) with default passwords in October.
    let october = [
        finding("127.16.0.1", 23, "telnet", "2026-10-05T00:00:00Z", "SR-300"),
        finding("127.16.0.2", 23, "telnet", "2026-10-05T00:00:00Z", "SR-300"),
        finding("127.16.0.3", 80, "http", "2026-10-05T00:00:00Z", "SR-300"),
    ];
    scratch.write("oct.jsonl", october.join("\n"));
    scratch.run(&["--db", &db, "ingest", "oct.jsonl"]).ok();
    let generate = |month: &str, extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "--db",
            db.as_str(),
            "notify",
            "generate",
            "--period",
            "month",
            "--date",
            month,
            "--isp",
            "hikari-net",
        ];
        args.extend(["--out", "reports", "--json"]);
        args.extend(extra);
        ids(&scratch.run(&args).ok().stdout)
    };
    let first = generate("2026-10", &[]);
    assert_eq!((first["new"].as_u64(), first["repeat"].as_u64()), (Some(3), Some(0)));
    let csv = std::fs::read_to_string(scratch.path("reports/hikari-net/2026-10-default_credentials.csv")).unwrap();
    assert!(csv.contains(",sakura-sr300"), "rows link the model's remediation guide: {csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",new,1,")));
    // The same month again: nothing changes.
    assert_eq!(generate("2026-10", &[])["new"], 3);

    // The ISP answers: one false positive, one fixed (its own word); the third it ignores.
    // The same month as JSON lines, to read the case ids.
    scratch
        .run(&[
            "--db",
            &db,
            "notify",
            "generate",
            "--period",
            "month",
            "--date",
            "2026-10",
            "--isp",
            "hikari-net",
            "--out",
            "r2",
            "--format",
            "json",
        ])
        .ok();
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(scratch.path("r2/hikari-net/2026-10-default_credentials.json"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let case_of =
        |ip: &str| rows.iter().find(|r| r["ip"] == ip).unwrap()["notification_id"].as_str().unwrap().to_string();
    scratch
        .run(&["--db", &db, "notify", "status", &case_of("127.16.0.1"), "false_positive", "--note", "our honeypot"])
        .ok();
    scratch.run(&["--db", &db, "notify", "status", &case_of("127.16.0.2"), "fixed"]).ok();
    scratch.run(&["--db", &db, "notify", "status", &case_of("127.16.0.3"), "sent"]).fails();

    // November: all three are seen again, the third with a different model.
    let november = [
        finding("127.16.0.1", 23, "telnet", "2026-11-05T00:00:00Z", "SR-300"),
        finding("127.16.0.2", 23, "telnet", "2026-11-05T00:00:00Z", "SR-300"),
        finding("127.16.0.3", 80, "http", "2026-11-05T00:00:00Z", "SR-550AC"),
    ];
    scratch.write("nov.jsonl", november.join("\n"));
    scratch.run(&["--db", &db, "ingest", "nov.jsonl"]).ok();
    let second = generate("2026-11", &["--new-only"]);
    assert_eq!(second["suppressed_false_positive"], 1);
    assert_eq!(second["reopened"], 1, "the case the ISP called fixed is seen again");
    assert_eq!(
        (second["new"].as_u64(), second["changed"].as_u64(), second["repeat"].as_u64()),
        (Some(0), Some(1), Some(1))
    );
    let csv = std::fs::read_to_string(scratch.path("reports/hikari-net/2026-11-default_credentials.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "--new-only leaves the unchanged repeat out: {csv}");
    assert!(csv.contains("127.16.0.3") && csv.contains(",changed,2,"));
    // December: the ignored case comes back unchanged a third time.
    scratch.write("dec.jsonl", finding("127.16.0.3", 80, "http", "2026-12-05T00:00:00Z", "SR-550AC"));
    scratch.run(&["--db", &db, "ingest", "dec.jsonl"]).ok();
    let third = generate("2026-12", &[]);
    assert_eq!((third["repeat"].as_u64(), third["repeat_without_response"].as_u64()), (Some(1), Some(1)));
    let remediation: serde_json::Value =
        ids(&scratch.run(&["--db", &db, "report", "remediation", "--json"]).ok().stdout);
    assert_eq!(remediation["total"]["false_positive"], 1);
    assert_eq!(remediation["total"]["notified"], 2);
    assert_eq!(remediation["total"]["fixed"], 0, "an ISP's word alone is not a confirmed fix");
    assert_eq!(remediation["total"]["not_fixed"], 1);
    let stubborn = remediation["repeated_without_change"].as_array().unwrap();
    assert_eq!(stubborn[0]["times_notified"], 3);
    // Unknown ISP, or no ISP named: clear errors.
    scratch.run(&["--db", &db, "notify", "generate", "--period", "month", "--isp", "nobody", "--out", "x"]).fails();
    scratch.run(&["--db", &db, "notify", "generate", "--period", "month", "--out", "x"]).fails();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sensor_keeps_its_records_while_the_centre_is_down_and_delivers_them_later() {
    let scratch = Scratch::new();
    let db = scratch.path("c.db").display().to_string();
    let token = make_token(&scratch, &db, "sensor", None, Some("isp-a"));
    scratch
        .run(&[
            "lab",
            "flows",
            "--seed",
            "3",
            "--days",
            "1",
            "--subscribers",
            "200",
            "--out",
            "flows.jsonl",
            "--seeds",
            "seeds.txt",
        ])
        .ok();
    // Nobody listens at this port yet.
    let port = botscope_testkit::free_loopback_port();
    let url = format!("http://127.0.0.1:{port}");
    let analyze = |extra: &[&str]| {
        let mut args = vec!["flow", "analyze", "--input", "flows.jsonl", "--seeds", "seeds.txt", "--out", "cnc.jsonl"];
        args.extend(["--center", &url, "--token", &token, "--spool", "spool"]);
        args.extend(extra);
        scratch.run(&args)
    };
    let nameless = analyze(&[]).fails();
    assert!(nameless.stderr.contains("--center needs --sensor"), "{}", nameless.stderr);
    let offline = analyze(&["--sensor", "isp-a", "--center-wait", "1s"]).ok();
    assert!(offline.stderr.contains("stay in the spool"), "{}", offline.stderr);
    // One folder per centre and token; batches wait in it.
    let waiting = || -> usize {
        let folders: Vec<_> = std::fs::read_dir(scratch.path("spool")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(folders.len(), 1);
        std::fs::read_dir(&folders[0])
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "ndjson"))
            .count()
    };
    assert!(waiting() > 0);
    // Records, not lines: a window scored again is written again under the same ids.
    let written = common::distinct_ids(&scratch.path("cnc.jsonl"));
    assert!(written > 0);

    // The centre comes up on that port; the next run sends the spool first, then its own batch.
    let child = scratch
        .botscope()
        .args(["--db", &db, "serve", "--listen", &format!("127.0.0.1:{port}"), "--correlate-every", "0"])
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let _centre = common::Reaped(child);
    common::wait_for_port(port, "the centre");
    analyze(&["--sensor", "isp-a"]).ok();
    assert_eq!(waiting(), 0, "the spool is empty once delivered");
    let store = common::open_sqlite(&scratch.path("c.db")).await;
    assert_eq!(store.count_records(Some(Kind::Cnc)).await.unwrap(), written, "each record once, none lost");
}
