//! The survey against the lab fleet: every finding in the truth is found with the right
//! credential id and model, nothing false is reported, hostile devices cost bounded time and
//! memory, and the safety rules (scope, blocklist, lab mode, dry run) hold.
//!
//! Every test owns its loopback subnet and ports, so tests run side by side.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use common::{Rng, Scratch};
use serde_json::Value;

/// A running `botscope lab devices`, stopped when dropped.
struct Fleet {
    child: Child,
    ports: String,
}

impl Fleet {
    fn start(scratch: &Scratch, count: usize, seed: u64, subnet: &str, base: u16, misbehaving: f64) -> Fleet {
        let ports = format!(
            "telnet={},ssh={},http={},https={},cwmp={},adb={}",
            base + 23,
            base + 22,
            base + 80,
            base + 43,
            base + 47,
            base + 55
        );
        let mut child = scratch
            .botscope()
            .args(["lab", "devices", "--count", &count.to_string(), "--seed", &seed.to_string(), "--subnet", subnet])
            .args([
                "--ports",
                &ports,
                "--truth",
                "truth.jsonl",
                "--misbehaving",
                &misbehaving.to_string(),
                "--duration",
                "900",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
        assert!(first.starts_with("ready:"), "lab did not start: {first:?}");
        let survey_ports = first.split(" on ports ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        Fleet { child, ports: survey_ports }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// (ip, kind, port for service findings, credential id)
type Key = (String, String, Option<u64>, Option<u64>);

fn expected_findings(truth: &[Value]) -> BTreeSet<Key> {
    let mut out = BTreeSet::new();
    for device in truth {
        for finding in device["findings"].as_array().unwrap() {
            out.insert((
                device["ip"].as_str().unwrap().to_string(),
                finding["kind"].as_str().unwrap().to_string(),
                finding["port"].as_u64(),
                finding["credential_id"].as_u64(),
            ));
        }
    }
    out
}

fn reported_findings(records: &[Value]) -> BTreeSet<Key> {
    let mut out = BTreeSet::new();
    for record in records.iter().filter(|r| r["kind"] == "finding") {
        let issue = record["issue"].as_str().unwrap().to_string();
        let device_level = issue == "eol_device" || issue == "outdated_firmware";
        out.insert((
            record["ip"].as_str().unwrap().to_string(),
            issue,
            if device_level { None } else { record["port"].as_u64() },
            record["credential_id"].as_u64(),
        ));
    }
    out
}

/// `botscope survey` over a lab subnet, fast and patient enough for misbehaving devices, writing
/// out.jsonl, audit.jsonl and summary.json.
fn lab_survey_args(subnet: &str, ports: &str, concurrency: usize, extra: &[&str]) -> Vec<String> {
    let concurrency = concurrency.to_string();
    let mut args: Vec<String> = [
        "survey",
        "--lab",
        "--scope",
        subnet,
        "--ports",
        ports,
        "--rate",
        "20000",
        "--concurrency",
        &concurrency,
        "--per-subnet-concurrency",
        "64",
        "--max-attempts-per-host",
        "2000",
        "--read-timeout",
        "3",
        "--conversation-timeout",
        "20",
        "--out",
        "out.jsonl",
        "--audit",
        "audit.jsonl",
        "--summary",
        "summary.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn survey_lab(scratch: &Scratch, subnet: &str, ports: &str, extra: &[&str]) -> common::Run {
    common::Run::from(scratch.botscope().args(lab_survey_args(subnet, ports, 800, extra)).output().unwrap())
}

fn check_against_truth(scratch: &Scratch) {
    let truth = lines(&scratch.path("truth.jsonl"));
    let records = lines(&scratch.path("out.jsonl"));
    let expected = expected_findings(&truth);
    let reported = reported_findings(&records);
    let missed: Vec<_> = expected.difference(&reported).collect();
    let false_ones: Vec<_> = reported.difference(&expected).collect();
    assert!(missed.is_empty() && false_ones.is_empty(), "missed {missed:#?}\nfalse {false_ones:#?}");
    assert!(expected.iter().any(|k| k.1 == "default_credential"), "the fleet should hold weak devices");

    // Every finding names the device's true vendor and model.
    let models: HashMap<&str, (&str, &str)> = truth
        .iter()
        .map(|d| (d["ip"].as_str().unwrap(), (d["vendor"].as_str().unwrap(), d["model"].as_str().unwrap())))
        .collect();
    for record in records.iter().filter(|r| r["kind"] == "finding") {
        let (vendor, model) = models[record["ip"].as_str().unwrap()];
        assert_eq!(
            (record["device"]["vendor"].as_str(), record["device"]["model"].as_str()),
            (Some(vendor), Some(model)),
            "{record}"
        );
    }

    // The audit trail names dictionary ids, never passwords, and agrees with the findings.
    let audit = lines(&scratch.path("audit.jsonl"));
    let allowed: BTreeSet<&str> = ["time", "ip", "port", "protocol", "credential_id", "outcome"].into();
    for entry in &audit {
        let keys: BTreeSet<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, allowed, "{entry}");
    }
    for record in records.iter().filter(|r| r["issue"] == "default_credential") {
        assert!(
            audit.iter().any(|a| a["ip"] == record["ip"]
                && a["port"] == record["port"]
                && a["credential_id"] == record["credential_id"]
                && a["outcome"] == "success"),
            "no audited success for {record}"
        );
    }
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["logins_tried"].as_u64().unwrap(), audit.len() as u64);
}

#[test]
fn survey_finds_every_true_finding_and_nothing_false_seed_3() {
    let scratch = Scratch::new();
    let fleet = Fleet::start(&scratch, 120, 3, "127.31.0.0/18", 20000, 0.15);
    survey_lab(&scratch, "127.31.0.0/18", &fleet.ports, &[]).ok();
    check_against_truth(&scratch);
}

#[test]
fn survey_finds_every_true_finding_and_nothing_false_random_seed_many_misbehaving() {
    let seed = Rng::from_clock("random-seed survey").next() % 1_000_000;
    let scratch = Scratch::new();
    let fleet = Fleet::start(&scratch, 80, seed, "127.32.0.0/18", 20100, 0.4);
    survey_lab(&scratch, "127.32.0.0/18", &fleet.ports, &[]).ok();
    check_against_truth(&scratch);
}

/// Found by the random-seed test (seed 1795628212926393740 gives fleet seed 833012): a camera
/// that locks every service after 5 failures took 3 failures on https before its pair worked, then
/// 3 more on http before reaching the same pair there, and locked. A pair that worked on one
/// service now goes first on the host's other services.
#[test]
fn regression_a_pair_found_on_one_service_goes_first_on_the_next_so_a_lockout_cannot_hide_it() {
    let scratch = Scratch::new();
    let fleet = Fleet::start(&scratch, 80, 833_012, "127.32.0.0/18", 20700, 0.4);
    survey_lab(&scratch, "127.32.0.0/18", &fleet.ports, &[]).ok();
    check_against_truth(&scratch);
}

#[test]
fn hostile_devices_cost_bounded_time_and_memory() {
    // Every device misbehaves: tarpits, resets, 16 MiB of garbage, endless negotiation, ...
    let scratch = Scratch::new();
    let fleet = Fleet::start(&scratch, 40, 5, "127.33.0.0/24", 20200, 1.0);
    let child = scratch
        .botscope()
        .args(["survey", "--lab", "--scope", "127.33.0.0/24", "--ports", &fleet.ports, "--rate", "5000"])
        .args(["--read-timeout", "2", "--conversation-timeout", "6", "--max-attempts-per-host", "2000"])
        .args(["--out", "out.jsonl", "--audit", "audit.jsonl", "--summary", "summary.json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let peak = peak_memory_until_exit(child);
    // Per conversation the survey keeps at most its byte budget (256 KiB); 40 garbage devices
    // sending 16 MiB each must not add up to anything like 640 MiB.
    assert!(peak < 150 * 1024, "peak resident memory {peak} KiB");
    check_against_truth(&scratch);
}

/// Peak resident set (VmHWM, KiB) of a child, read from /proc until it exits; asserts success.
fn peak_memory_until_exit(mut child: Child) -> u64 {
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak = peak.max(line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap());
        }
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "survey failed: {exit}");
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn fleet_of_20000_devices_is_served_and_every_telnet_port_answers() {
    let scratch = Scratch::new();
    let fleet = Fleet::start(&scratch, 20_000, 8, "127.40.0.0/16", 20300, 0.0);
    let truth = lines(&scratch.path("truth.jsonl"));
    assert_eq!(truth.len(), 20_000);
    let telnet: Vec<&str> = fleet.ports.split(',').filter(|p| p.ends_with("/telnet")).collect();
    let with_telnet =
        truth.iter().filter(|d| d["ports"].as_array().unwrap().iter().any(|p| p["protocol"] == "telnet")).count();
    // The port stage alone (an empty dictionary file is refused, so one pair nobody uses).
    let tiny = scratch
        .write("one.toml", "[[credential]]\nid = 1\nusername = \"nobody\"\npassword = \"no-such-pass\"\nweight = 1\n");
    let run = scratch
        .botscope()
        .args(["survey", "--lab", "--scope", "127.40.0.0/16", "--ports", telnet[0], "--credentials"])
        .arg(&tiny)
        .args([
            "--rate",
            "50000",
            "--concurrency",
            "1000",
            "--per-subnet-concurrency",
            "64",
            "--summary",
            "summary.json",
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["open"].as_u64().unwrap(), with_telnet as u64);
    assert_eq!(summary["probes"].as_u64().unwrap(), 65536);
    drop(fleet);
}

#[test]
fn survey_refuses_to_run_without_a_scope() {
    let scratch = Scratch::new();
    let out = scratch.run(&["survey", "--ports", "23"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--scope"), "{}", out.stderr);
}

#[test]
fn lab_mode_refuses_anything_outside_loopback() {
    let scratch = Scratch::new();
    let out =
        scratch.run(&["survey", "--lab", "--scope", "127.16.0.0/24", "--scope", "192.0.2.0/24", "--dry-run"]).fails();
    assert!(out.stderr.contains("loopback"), "{}", out.stderr);
}

#[test]
fn dry_run_reports_exclusions_and_sends_nothing() {
    let scratch = Scratch::new();
    let scope = scratch.write("scope.txt", "# authorised\n100.64.0.0/10\n203.0.112.0/23 # partner ISP\n");
    let optout = scratch.write("optout.txt", "203.0.112.128/25 # customer opted out\n");
    let out = scratch
        .run(&[
            "survey",
            "--scope-file",
            scope.to_str().unwrap(),
            "--exclude-file",
            optout.to_str().unwrap(),
            "--dry-run",
            "--port-set",
            "quick",
        ])
        .ok();
    // 100.64.0.0/10 is all carrier-grade NAT (blocklisted); of 203.0.112.0/23, 203.0.113.0/24 is
    // documentation space and the opt-out takes half of what is left.
    assert!(out.stdout.contains("4194816 addresses requested, 128 in scope"), "{}", out.stdout);
    assert!(out.stdout.contains("RFC 6598"), "{}", out.stdout);
    assert!(out.stdout.contains("customer opted out"), "{}", out.stdout);
    assert!(out.stdout.contains("nothing was sent"), "{}", out.stdout);
}

#[test]
fn a_scope_left_empty_by_exclusions_fails_and_says_so() {
    let scratch = Scratch::new();
    let out = scratch.run(&["survey", "--scope", "10.1.0.0/16"]).fails();
    assert!(out.stderr.contains("nothing to survey"), "{}", out.stderr);
}

#[test]
fn shards_split_the_run_without_overlap() {
    let scratch = Scratch::new();
    let fleet = Fleet::start(&scratch, 30, 12, "127.34.0.0/22", 20400, 0.0);
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for shard in ["1/3", "2/3", "3/3"] {
        let name = format!("s{}.jsonl", &shard[..1]);
        scratch
            .run(&[
                "survey",
                "--lab",
                "--scope",
                "127.34.0.0/22",
                "--ports",
                &fleet.ports,
                "--shard",
                shard,
                "--rate",
                "20000",
                "--max-attempts-per-host",
                "0",
                "--out",
                &name,
            ])
            .ok();
        for record in lines(&scratch.path(&name)).iter().filter(|r| r["kind"] == "service") {
            total += 1;
            seen.insert((record["ip"].as_str().unwrap().to_string(), record["port"].as_u64().unwrap()));
        }
    }
    let truth = lines(&scratch.path("truth.jsonl"));
    let open: usize = truth.iter().map(|d| d["ports"].as_array().unwrap().len()).sum();
    assert_eq!(total, seen.len(), "a service was surveyed by two shards");
    assert_eq!(seen.len(), open, "the shards together missed a service");
}

#[test]
fn findings_are_stored_with_db_and_attributed_to_their_isp() {
    let scratch = Scratch::new();
    let fleet = Fleet::start(&scratch, 25, 21, "127.17.0.0/22", 20500, 0.0);
    let db = scratch.db();
    scratch.load_example_isps(&db);
    let out = scratch
        .botscope()
        .args(["--db", db.to_str().unwrap(), "survey", "--lab", "--scope", "127.17.0.0/22", "--ports", &fleet.ports])
        .args(["--rate", "20000", "--max-attempts-per-host", "2000", "--out", "out.jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = lines(&scratch.path("out.jsonl"));
    let findings = records.iter().filter(|r| r["kind"] == "finding").count();
    assert!(findings > 0);
    // 127.16.0.0/14 is AS64500, which the example registry gives to hikari-net.
    for finding in records.iter().filter(|r| r["kind"] == "finding") {
        assert_eq!(finding["isp"], "hikari-net", "{finding}");
    }
    // Loading the same file again adds nothing: the survey stored exactly its findings.
    let report = scratch.run(&["--db", db.to_str().unwrap(), "ingest", "--json", "out.jsonl"]).ok();
    let report: Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(report["totals"]["duplicates"].as_u64().unwrap(), findings as u64, "{report}");
}

#[test]
fn an_interrupted_survey_resumes_from_its_checkpoint_without_repeating_a_host() {
    let scratch = Scratch::new();
    let fleet = Fleet::start(&scratch, 60, 17, "127.36.0.0/20", 20600, 0.2);
    let args = |extra: &[&str]| lab_survey_args("127.36.0.0/20", &fleet.ports, 4, extra);
    let mut first = scratch
        .botscope()
        .args(args(&["--checkpoint", "run.ckpt"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once the service stage has written its first hosts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let done = std::fs::read_to_string(scratch.path("run.ckpt")).unwrap_or_default().matches("\"done\"").count();
        if done >= 3 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill").args(["-INT", &first.id().to_string()]).status().unwrap();
    assert!(first.wait().unwrap().success());
    let checkpoint = std::fs::read_to_string(scratch.path("run.ckpt")).unwrap();
    let done_before = checkpoint.matches("\"done\"").count();
    let truth = lines(&scratch.path("truth.jsonl"));
    assert!(done_before >= 3 && done_before < truth.len(), "interrupted after {done_before} of {} hosts", truth.len());

    // Run the same command again: it finishes the rest.
    let second = scratch.botscope().args(args(&["--checkpoint", "run.ckpt"])).output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let records = lines(&scratch.path("out.jsonl"));
    let mut services = BTreeSet::new();
    for record in records.iter().filter(|r| r["kind"] == "service") {
        let key = (record["ip"].as_str().unwrap().to_string(), record["port"].as_u64().unwrap());
        assert!(services.insert(key.clone()), "{key:?} surveyed twice");
    }
    let expected = expected_findings(&truth);
    let reported = reported_findings(&records);
    assert_eq!(reported, expected);
    // The second run skipped the port stage.
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["probes"].as_u64(), Some(0), "{summary}");

    // A checkpoint of another run is refused.
    let other = scratch
        .run(&["survey", "--lab", "--scope", "127.36.0.0/24", "--ports", &fleet.ports, "--checkpoint", "run.ckpt"])
        .fails();
    assert!(other.stderr.contains("another run"), "{}", other.stderr);
}

/// Two listeners on one free port at two loopback addresses, not accepting: a connection to one
/// waits in its queue, so the test can tell afterwards whether anything connected.
fn listeners_at(first: &str, second: &str) -> (std::net::TcpListener, std::net::TcpListener, u16) {
    for _ in 0..50 {
        let one = std::net::TcpListener::bind((first, 0)).unwrap();
        let port = one.local_addr().unwrap().port();
        if let Ok(two) = std::net::TcpListener::bind((second, port)) {
            one.set_nonblocking(true).unwrap();
            two.set_nonblocking(true).unwrap();
            return (one, two, port);
        }
    }
    panic!("no port free on both {first} and {second}");
}

/// How many connections wait in `listener`'s queue.
fn connections(listener: &std::net::TcpListener) -> usize {
    std::iter::from_fn(|| listener.accept().ok()).count()
}

fn case_line(ip: &str, port: u16) -> String {
    format!(
        r#"{{"kind":"notification","isp":"hikari-net","ip":"{ip}","port":{port},"protocol":"telnet","reason":"default_credential","created_at":"2026-11-03T01:00:00Z","status":"sent","language":"ja"}}"#
    )
}

#[test]
fn regression_a_recheck_case_outside_the_scope_is_never_connected_to() {
    // Issue 16, finding 2: a sensor posted a finding for an address nobody authorised, the centre
    // offered it for re-survey, and `survey --recheck` added it to the scope. The cases are now
    // intersected with the operator's --scope.
    let scratch = Scratch::new();
    let (outside, inside, port) = listeners_at("127.44.0.9", "127.45.0.9");
    let cases =
        scratch.write("cases.jsonl", format!("{}\n{}\n", case_line("127.44.0.9", port), case_line("127.45.0.9", port)));
    let cases = cases.to_str().unwrap();
    let timeouts = ["--read-timeout", "1", "--conversation-timeout", "2", "--rate", "2000"];
    let run = scratch
        .botscope()
        .args(["survey", "--recheck", cases, "--lab", "--scope", "127.45.0.0/24", "--summary", "summary.json"])
        .args(["--out", "out.jsonl"])
        .args(timeouts)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(connections(&outside), 0, "the case outside --scope was connected to");
    assert!(connections(&inside) >= 1, "the case inside --scope was not re-surveyed");
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["cases_outside_scope"], 1, "{summary}");
    assert_eq!(summary["connects_refused"], 0, "{summary}");
    assert_eq!(summary["probes"], 1, "{summary}");
    assert!(stderr.contains("outside --scope skipped"), "{stderr}");
    assert!(!stderr.contains("127.44.0.9"), "addresses are logged at debug level only: {stderr}");

    // Only cases outside: refused, nothing probed.
    let lone = scratch.write("outside.jsonl", case_line("127.44.0.9", port) + "\n");
    let run =
        scratch.run(&["survey", "--recheck", lone.to_str().unwrap(), "--lab", "--scope", "127.45.0.0/24"]).fails();
    assert!(run.stderr.contains("none of the cases is inside --scope"), "{}", run.stderr);
    // No --scope at all: refused, in the lab too.
    let run = scratch.run(&["survey", "--recheck", cases, "--lab"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--scope"), "{}", run.stderr);
    assert_eq!(connections(&outside), 0, "the case outside --scope was connected to");
}

#[test]
fn regression_a_checkpoint_pair_outside_the_scope_is_dropped_on_resume() {
    // A checkpoint is a file: an open pair outside the scope (edited in, or left from another
    // scope with the same key) must not be surveyed when the run resumes.
    let scratch = Scratch::new();
    let (outside, inside, port) = listeners_at("127.47.0.9", "127.46.0.9");
    let key = format!("scope=127.46.0.0-127.46.0.255;ports={port}/telnet;seed=2019;shard=1/1");
    let checkpoint = format!(
        "{}\n{}\n",
        serde_json::json!({ "run": key }),
        serde_json::json!({ "open": [format!("127.47.0.9:{port}"), format!("127.46.0.9:{port}")] })
    );
    scratch.write("run.ckpt", checkpoint);
    let ports = format!("{port}/telnet");
    let run = scratch
        .botscope()
        .args(["survey", "--lab", "--scope", "127.46.0.0/24", "--ports", &ports, "--checkpoint", "run.ckpt"])
        .args(["--read-timeout", "1", "--conversation-timeout", "2", "--summary", "summary.json", "--out", "out.jsonl"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(connections(&outside), 0, "a checkpoint pair outside the scope was connected to");
    assert!(connections(&inside) >= 1, "the checkpoint's pair inside the scope was not surveyed");
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["checkpoint_outside_scope"], 1, "{summary}");
    assert_eq!(summary["probes"], 0, "the port stage came from the checkpoint: {summary}");
    assert_eq!(summary["connects_refused"], 0, "{summary}");
    assert!(stderr.contains("checkpoint entries outside the scope"), "{stderr}");
}
