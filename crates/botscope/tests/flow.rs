//! Flow analysis end to end: the lab's synthetic ISP (file and UDP export in every format) against
//! its truth, the privacy rule, a real IoT-23 capture, the file formats, and bad input.
//!
//! Every datagram goes to 127.0.0.1.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{Reaped, Scratch, free_udp_port, start_flow_collector, terminate};
use serde_json::Value;

fn lines(text: &str) -> Vec<Value> {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn file_lines(path: &std::path::Path) -> Vec<Value> {
    lines(&std::fs::read_to_string(path).unwrap())
}

/// Generates a small ISP; returns (flows file, truth lines, seeds file).
fn lab_isp(scratch: &Scratch, seed: u64, withhold: f64) -> (String, Vec<Value>, String) {
    let (flows, truth, seeds) = (format!("isp{seed}.jsonl"), format!("truth{seed}.jsonl"), format!("seeds{seed}.txt"));
    scratch
        .run(&[
            "lab",
            "flows",
            "--seed",
            &seed.to_string(),
            "--subscribers",
            "200",
            "--days",
            "1",
            "--botnets",
            "3",
            "--out",
            &flows,
            "--truth",
            &truth,
            "--seeds",
            &seeds,
            "--withhold",
            &withhold.to_string(),
        ])
        .ok();
    (flows, file_lines(&scratch.path(&truth)), seeds)
}

/// (address, port) -> active periods of every C&C in the truth.
fn truth_cnc(truth: &[Value]) -> HashMap<(String, u64), Vec<(String, String)>> {
    let mut cnc: HashMap<(String, u64), Vec<(String, String)>> = HashMap::new();
    for t in truth.iter().filter(|t| t["kind"] == "cnc") {
        cnc.entry((t["ip"].as_str().unwrap().to_string(), t["port"].as_u64().unwrap()))
            .or_default()
            .push((t["from"].as_str().unwrap().to_string(), t["until"].as_str().unwrap().to_string()));
    }
    cnc
}

fn in_subscriber_prefix(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if (u32::from(*v4) & 0xfff0_0000) == 0x7f10_0000)
}

/// Every address-looking token in `text`.
fn addresses_in(text: &str) -> Vec<IpAddr> {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .filter_map(|token| token.parse::<IpAddr>().ok())
        .collect()
}

/// The issue's target on lab ISPs the model was not trained on: TPR >= 0.95 at FPR <= 0.1 % of
/// the servers bots contacted (counted as bench/detection counts them), every C&C above every
/// other server in each window, and no subscriber address in the output. Scored with
/// `--min-score 0`, so the test does not hang on where one server falls around 0.5.
#[test]
fn lab_isp_cnc_servers_meet_the_target_rank_first_and_leak_no_subscriber_address() {
    let scratch = Scratch::new();
    // Seeds the shipped model was not trained on (it was trained on 1-6); 30 % of bots withheld.
    for seed in [41, 42] {
        let (flows, truth, seeds) = lab_isp(&scratch, seed, 0.3);
        let out = format!("cnc{seed}.jsonl");
        let analyze = ["flow", "analyze", "--input", &flows, "--seeds", &seeds, "--subscribers", "127.16.0.0/12"];
        scratch.run(&[&analyze[..], &["--min-score", "0", "--out", &out][..]].concat()).ok();
        // As the centre keeps them: each window's last emission (hindsight revises many).
        let candidates = common::latest_emissions(file_lines(&scratch.path(&out)));
        let cnc = truth_cnc(&truth);
        let key_of = |c: &Value| (c["ip"].as_str().unwrap().to_string(), c["port"].as_u64().unwrap());
        let mut best: HashMap<(String, u64), f64> = HashMap::new();
        for c in &candidates {
            let score = best.entry(key_of(c)).or_insert(0.0);
            *score = score.max(c["score"].as_f64().unwrap());
        }
        let truth_file = format!("truth{seed}.jsonl");
        let evaluate = ["flow", "evaluate", "--input", &flows, "--truth", &truth_file, "--seeds", &seeds];
        let run = scratch.run(&[&evaluate[..], &["--subscribers", "127.16.0.0/12"][..]].concat()).ok();
        let evaluation: Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
        let negatives = evaluation["negatives"].as_u64().unwrap() as usize;
        // The threshold that keeps false positives at 0.1 % of the negatives: above the best
        // score of the (allowed + 1)-th best non-C&C server.
        let mut other: Vec<f64> = best.iter().filter(|(k, _)| !cnc.contains_key(*k)).map(|(_, s)| *s).collect();
        other.sort_by(|a, b| b.total_cmp(a));
        let bar = other.get(negatives / 1000).copied().unwrap_or(0.0);
        let found = cnc.keys().filter(|k| best.get(*k).is_some_and(|s| *s > bar)).count();
        assert!(found * 100 >= cnc.len() * 95, "seed {seed}: {found} of {} C&C above {bar}: {best:?}", cnc.len());
        for c in &candidates {
            let key = key_of(c);
            let Some(periods) = cnc.get(&key) else {
                // Every other server ranks below every C&C of its window.
                let worst_cnc = candidates
                    .iter()
                    .filter(|o| o["window_start"] == c["window_start"] && cnc.contains_key(&key_of(o)))
                    .map(|o| o["rank"].as_u64().unwrap())
                    .max();
                assert!(worst_cnc.is_none_or(|w| w < c["rank"].as_u64().unwrap()), "seed {seed}: {c} above a C&C");
                continue;
            };
            if c["score"].as_f64().unwrap() < 0.5 {
                continue;
            }
            // Reported only in windows where the server really was a C&C.
            let (start, end) = (c["window_start"].as_str().unwrap(), c["window_end"].as_str().unwrap());
            let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
            assert!(
                periods.iter().any(|(from, until)| parse(from) < parse(end) && parse(start) < parse(until)),
                "seed {seed}: {c} outside its active periods {periods:?}"
            );
            assert!(c["seed_clients"].as_u64().unwrap() >= 2 && c["total_clients"].as_u64().unwrap() >= 2);
            assert!(c["methods"].as_array().unwrap().iter().any(|m| m == "model"));
        }
        // Ranks run 1.. within each window, best score first.
        let mut by_window: HashMap<&str, Vec<(u64, f64)>> = HashMap::new();
        for c in &candidates {
            by_window
                .entry(c["window_start"].as_str().unwrap())
                .or_default()
                .push((c["rank"].as_u64().unwrap(), c["score"].as_f64().unwrap()));
        }
        for ranks in by_window.values_mut() {
            ranks.sort_by_key(|r| r.0);
            assert!(ranks.iter().enumerate().all(|(i, r)| r.0 == i as u64 + 1));
            assert!(ranks.windows(2).all(|w| w[0].1 >= w[1].1));
        }
        // The first botnet moves its C&C halfway: the new server's evidence names the old one,
        // whose bots it took over (shared-bot similarity).
        let mut moved: Vec<&Value> =
            truth.iter().filter(|t| t["kind"] == "cnc" && t["botnet"] == "lab-botnet-1").collect();
        moved.sort_by_key(|t| t["from"].as_str().unwrap().to_string());
        let (old, new) = (moved[0], moved[1]);
        let old_name = format!("{}:{}", old["ip"].as_str().unwrap(), old["port"]);
        assert!(
            candidates.iter().filter(|c| c["ip"] == new["ip"] && c["port"] == new["port"]).any(|c| c["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().contains(&old_name))),
            "seed {seed}: the new C&C {new} is not linked to {old_name}"
        );
        // Privacy: no subscriber address anywhere in what is shared.
        let text = std::fs::read_to_string(scratch.path(&out)).unwrap();
        let leaked: Vec<IpAddr> = addresses_in(&text).into_iter().filter(in_subscriber_prefix).collect();
        assert!(leaked.is_empty(), "seed {seed}: subscriber addresses in the output: {leaked:?}");
    }
}

#[tokio::test]
async fn candidates_are_stored_once_and_gzipped_zeek_logs_are_read() {
    use botscope_store::Store;
    use std::io::Write;
    let scratch = Scratch::new();
    let capture =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iot23/CTU-IoT-Malware-Capture-34-1.conn.log.labeled.excerpt");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(capture).unwrap()).unwrap();
    scratch.write("conn.log.gz", gz.finish().unwrap());
    scratch.write("seeds.txt", "192.168.1.195\n");
    let db = scratch.db();
    let args = [
        "--db",
        db.to_str().unwrap(),
        "flow",
        "analyze",
        "--input",
        "conn.log.gz",
        "--seeds",
        "seeds.txt",
        "--window",
        "1d",
        "--min-seed-clients",
        "1",
        "--sensor",
        "lab-isp",
    ];
    scratch.run(&args).ok();
    let store = common::open_sqlite(&db).await;
    let stored = store.count_records(Some(botscope_model::Kind::Cnc)).await.unwrap();
    assert_eq!(stored, 2, "the C&C server, once per day");
    scratch.run(&args).ok();
    assert_eq!(store.count_records(Some(botscope_model::Kind::Cnc)).await.unwrap(), stored, "stable ids");
}

#[test]
fn regression_a_seed_listed_as_server_is_never_reported() {
    // P2P bots talk to each other: the "server" end is then a subscriber. Without --subscribers
    // the analyser cannot know the prefix, but a seed bot is still never named.
    let scratch = Scratch::new();
    let mut flows = String::new();
    for bot in 1..=6u8 {
        for minute in 0..30 {
            flows.push_str(&format!(
                "{{\"start\":\"2026-11-02T00:{minute:02}:0{bot}Z\",\"end\":\"2026-11-02T00:{minute:02}:0{bot}Z\",\"src\":\"127.16.0.{bot}\",\"sport\":40000,\"dst\":\"127.16.0.99\",\"dport\":7777,\"proto\":6,\"flags\":27,\"packets\":4,\"bytes\":300}}\n"
            ));
        }
    }
    scratch.write("p2p.jsonl", &flows);
    let seeds: String = (1..=6).map(|b| format!("127.16.0.{b}\n")).chain(["127.16.0.99\n".to_string()]).collect();
    scratch.write("seeds.txt", seeds);
    let run =
        scratch.run(&["flow", "analyze", "--input", "p2p.jsonl", "--seeds", "seeds.txt", "--min-score", "0"]).ok();
    assert!(!run.stdout.contains("127.16.0.99"), "{}", run.stdout);
}

#[test]
fn real_iot23_mirai_capture_ranks_its_cnc_first_above_the_ddos_victim() {
    let scratch = Scratch::new();
    let capture =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iot23/CTU-IoT-Malware-Capture-34-1.conn.log.labeled.excerpt");
    scratch.write("seeds.txt", "192.168.1.195\n");
    let run = scratch
        .run(&[
            "flow",
            "analyze",
            "--input",
            capture,
            "--seeds",
            "seeds.txt",
            "--window",
            "1d",
            "--min-seed-clients",
            "1",
            "--min-score",
            "0",
        ])
        .ok();
    let candidates = lines(&run.stdout);
    let windows: BTreeSet<&str> = candidates.iter().map(|c| c["window_start"].as_str().unwrap()).collect();
    assert_eq!(windows.len(), 2, "{}", run.stdout);
    for window in windows {
        let first = candidates.iter().find(|c| c["window_start"] == window && c["rank"] == 1).unwrap();
        assert_eq!((first["ip"].as_str(), first["port"].as_u64()), (Some("185.244.25.235"), Some(6667)), "{window}");
        assert!(first["score"].as_f64().unwrap() >= 0.5, "{first}");
        if let Some(victim) = candidates.iter().find(|c| c["window_start"] == window && c["ip"] == "123.59.209.185") {
            assert!(victim["score"].as_f64().unwrap() < 0.5 && victim["rank"].as_u64().unwrap() > 1, "{victim}");
        }
    }
    // The home router (DHCP, DNS) is not a candidate: private addresses are left out by default.
    assert!(!run.stdout.contains("192.168.1.1\""), "{}", run.stdout);
    // The infected host itself never appears.
    assert!(!run.stdout.contains("192.168.1.195"));
}

/// One known bot and the default --min-seed-clients 2 used to give nothing, silently: now the
/// analyser says why (and how to find it), and says so too when the seed is not in the flows.
#[test]
fn regression_one_known_bot_says_why_no_server_qualified() {
    let scratch = Scratch::new();
    let capture =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iot23/CTU-IoT-Malware-Capture-34-1.conn.log.labeled.excerpt");
    scratch.write("bot.txt", "192.168.1.195\n");
    let run = scratch.run(&["flow", "analyze", "--input", capture, "--seeds", "bot.txt", "--window", "1d"]).ok();
    assert!(run.stdout.trim().is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("no C&C candidate"), "{}", run.stderr);
    assert!(run.stderr.contains("--min-seed-clients 1"), "the way out is named: {}", run.stderr);
    // The same bot with --min-seed-clients 1 finds its C&C (the test above checks its rank).
    let args =
        ["flow", "analyze", "--input", capture, "--seeds", "bot.txt", "--window", "1d", "--min-seed-clients", "1"];
    let run = scratch.run(&args).ok();
    assert!(run.stdout.contains("\"185.244.25.235\""), "{}", run.stdout);
    assert!(!run.stderr.contains("no C&C candidate"), "{}", run.stderr);
    // A seed the flows never show.
    scratch.write("elsewhere.txt", "192.0.2.77\n");
    let args = ["flow", "analyze", "--input", capture, "--seeds", "elsewhere.txt", "--min-seed-clients", "1"];
    let run = scratch.run(&args).ok();
    assert!(run.stderr.contains("none of the seeds appears as a client in the flows"), "{}", run.stderr);
}

/// Exporters send a long session when their timeout expires, often after its window has closed: a
/// C&C used only in that window used to vanish. Now the closed window takes the late flows, is
/// scored again, and its record is sent again under the same id; the store keeps the revision with
/// more flows.
#[tokio::test]
async fn regression_late_flows_revise_their_closed_window_under_the_same_id() {
    let scratch = Scratch::new();
    let flow = |at: &str, bot: u8, dst: &str, dport: u16| {
        format!(
            r#"{{"start":"2026-11-02T{at}Z","end":"2026-11-02T{at}Z","src":"127.16.0.{bot}","sport":40000,"dst":"{dst}","dport":{dport},"proto":6,"flags":27,"packets":4,"bytes":240}}"#
        )
    };
    let cnc = "127.64.0.10";
    let mut input = Vec::new();
    for (n, at) in ["09:05:00", "09:06:00", "09:07:00", "09:35:00", "09:36:00", "09:37:00"].iter().enumerate() {
        input.push(flow(at, 1 + (n % 3) as u8, cnc, 6667));
    }
    // The next hour's traffic moves 15 minutes past 10:00: the 09:00 window closes...
    input.push(flow("10:20:00", 9, "127.80.0.1", 443));
    // ...then two more bots' sessions of 09:00 arrive late...
    input.push(flow("09:40:00", 4, cnc, 6667));
    input.push(flow("09:41:00", 5, cnc, 6667));
    // ...and the 10:00 window closes, which scores 09:00 again.
    input.push(flow("11:20:00", 9, "127.80.0.1", 443));
    scratch.write("flows.jsonl", &(input.join("\n") + "\n"));
    scratch.write("bots.txt", "127.16.0.1\n127.16.0.2\n127.16.0.3\n127.16.0.4\n127.16.0.5\n");
    let args = ["flow", "analyze", "--input", "flows.jsonl", "--seeds", "bots.txt", "--min-score", "0"];
    let run = scratch.run(&[&["--db", "late.db"], &args[..], &["--out", "cnc.jsonl"]].concat()).ok();
    let records: Vec<Value> = file_lines(&scratch.path("cnc.jsonl")).into_iter().filter(|r| r["ip"] == cnc).collect();
    assert_eq!(records.len(), 2, "first and revised report: {records:?}\n{}", run.stderr);
    assert_eq!(records[0]["id"], records[1]["id"]);
    assert_eq!((records[0]["flows"].as_u64(), records[1]["flows"].as_u64()), (Some(6), Some(8)));
    assert_eq!(records[1]["seed_clients"].as_u64(), Some(5));
    let store = common::open_sqlite(&scratch.path("late.db")).await;
    let stored: Vec<botscope_model::CncCandidate> = botscope_store::all_of(&store).await.unwrap();
    let stored: Vec<_> = stored.iter().filter(|c| c.ip.to_string() == cnc).collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].flows, 8, "the store keeps the revision with more flows");
    // With --late 0s the late sessions are dropped, as before.
    let run = scratch.run(&[&args[..], &["--late", "0s"]].concat()).ok();
    let records: Vec<Value> = lines(&run.stdout).into_iter().filter(|r| r["ip"] == cnc).collect();
    assert_eq!(records.len(), 1, "{}", run.stdout);
    assert_eq!(records[0]["flows"].as_u64(), Some(6));
    assert!(run.stderr.contains("flows for windows already closed"), "{}", run.stderr);
}

fn stop(collector: Reaped) {
    let status = terminate(collector);
    assert!(status.success(), "the collector exited with {status}");
}

#[test]
fn udp_export_in_every_format_decodes_to_the_generated_flows() {
    let scratch = Scratch::new();
    // The same small ISP, once to a file and then once per export format.
    const ISP: [&str; 8] = ["lab", "flows", "--seed", "43", "--subscribers", "60", "--days", "1"];
    scratch.run(&[&ISP[..], &["--out", "isp.jsonl", "--truth", "truth.jsonl", "--seeds", "seeds.txt"]].concat()).ok();
    let expected = std::fs::read_to_string(scratch.path("isp.jsonl")).unwrap();
    let expected_count = expected.lines().count();
    scratch
        .run(&[
            "flow",
            "analyze",
            "--input",
            "isp.jsonl",
            "--seeds",
            "seeds.txt",
            "--subscribers",
            "127.16.0.0/12",
            "--out",
            "file.cnc",
        ])
        .ok();
    let from_file = std::fs::read_to_string(scratch.path("file.cnc")).unwrap();
    assert!(!from_file.is_empty());
    for format in ["v5", "v9", "ipfix", "sflow"] {
        let port = free_udp_port();
        let (decoded, stats, cnc) = (format!("{format}.flows"), format!("{format}.stats"), format!("{format}.cnc"));
        let collector = start_flow_collector(
            &scratch,
            port,
            &[
                "--seeds",
                "seeds.txt",
                "--subscribers",
                "127.16.0.0/12",
                "--flows",
                &decoded,
                "--stats",
                &stats,
                "--out",
                &cnc,
            ],
        );
        let target = format!("udp://127.0.0.1:{port}");
        let export = ["--export", target.as_str(), "--format", format, "--rate", "100000"];
        scratch.run(&[&ISP[..], &export[..]].concat()).ok();
        std::thread::sleep(Duration::from_millis(500));
        stop(collector);
        let stats: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path(&stats)).unwrap()).unwrap();
        let d = &stats["decode"];
        assert_eq!(d["malformed"], 0, "{format}: {d}");
        assert_eq!(d["sequence_lost"], 0, "{format}: {d}");
        assert_eq!(d["unknown_template_sets"], 0, "{format}: {d}");
        assert_eq!(d["flows"].as_u64().unwrap() as usize, expected_count, "{format}: {d}");
        let got = std::fs::read_to_string(scratch.path(&decoded)).unwrap();
        if format == "sflow" {
            // sFlow carries no flow times and one sample per flow: packets are exact, bytes are
            // the mean packet size times the count.
            for (g, e) in lines(&got).iter().zip(lines(&expected)) {
                assert_eq!(
                    (&g["src"], &g["dst"], &g["dport"], &g["packets"]),
                    (&e["src"], &e["dst"], &e["dport"], &e["packets"])
                );
                let (packets, bytes) = (e["packets"].as_u64().unwrap(), e["bytes"].as_u64().unwrap());
                assert_eq!(g["bytes"].as_u64().unwrap(), bytes / packets * packets);
            }
        } else {
            assert!(got == expected, "{format}: decoded flows differ from the generated ones");
            // The same flows give the same candidates, live or from the file.
            assert_eq!(std::fs::read_to_string(scratch.path(&cnc)).unwrap(), from_file, "{format}");
        }
    }
}

#[test]
fn flow_files_in_every_format_give_the_same_candidates() {
    let scratch = Scratch::new();
    let (flows, _, seeds) = lab_isp(&scratch, 44, 0.3);
    let run = |input: &str, format: &str| {
        scratch
            .run(&[
                "flow",
                "analyze",
                "--input",
                input,
                "--format",
                format,
                "--seeds",
                &seeds,
                "--subscribers",
                "127.16.0.0/12",
            ])
            .ok()
            .stdout
    };
    let reference = run(&flows, "jsonl");
    assert!(!reference.is_empty());
    // The same flows written as nfdump CSV (times to the millisecond, as nfdump prints them).
    let mut csv = String::from("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt\n");
    for f in file_lines(&scratch.path(&flows)) {
        let time = |key: &str| {
            chrono::DateTime::parse_from_rfc3339(f[key].as_str().unwrap())
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string()
        };
        let proto = match f["proto"].as_u64().unwrap() {
            6 => "TCP",
            17 => "UDP",
            _ => "ICMP",
        };
        let flags = f["flags"].as_u64().unwrap();
        let flag_text: String =
            "CEUAPRSF".chars().enumerate().map(|(i, c)| if flags & (0x80 >> i) != 0 { c } else { '.' }).collect();
        csv.push_str(&format!(
            "{},{},0.0,{},{},{},{},{},{},0,0,{},{},0,0\n",
            time("start"),
            time("end"),
            f["src"].as_str().unwrap(),
            f["dst"].as_str().unwrap(),
            f["sport"],
            f["dport"],
            proto,
            flag_text,
            f["packets"],
            f["bytes"]
        ));
    }
    csv.push_str("Summary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n1,2,3,4,5,6\n");
    scratch.write("flows.csv", csv);
    assert_eq!(run("flows.csv", "auto"), reference, "nfdump CSV");
}

#[test]
fn bad_input_gives_clear_errors_and_counted_skips() {
    let scratch = Scratch::new();
    scratch.write("seeds.txt", "127.16.0.1\nnot an address\n");
    scratch.write("text.txt", "hello\nworld\n");
    let run = scratch.run(&["flow", "analyze", "--input", "text.txt", "--seeds", "seeds.txt"]).fails();
    assert!(run.stderr.contains("not a flow file") && run.stderr.contains("--format"), "{}", run.stderr);
    assert!(
        run.stderr.contains("line 2") || run.stderr.contains("line=2"),
        "the bad seed line is named: {}",
        run.stderr
    );
    scratch.write("empty-seeds.txt", "# nothing\n");
    let run = scratch.run(&["flow", "analyze", "--input", "text.txt", "--seeds", "empty-seeds.txt"]).fails();
    assert!(run.stderr.contains("no infected host"), "{}", run.stderr);
    let good = r#"{"start":"2026-11-02T00:00:01Z","end":"2026-11-02T00:00:02Z","src":"127.16.0.1","dst":"127.200.0.1","dport":23,"proto":6,"packets":1,"bytes":60}"#;
    scratch.write("mixed.jsonl", format!("{good}\n{{\"start\":1}}\n\u{1}\u{2}garbage\n{good}\n"));
    let run = scratch.run(&["flow", "analyze", "--input", "mixed.jsonl", "--seeds", "seeds.txt"]).ok();
    assert!(run.stderr.contains("flows=2") && run.stderr.contains("bad_lines=2"), "{}", run.stderr);
    let run =
        scratch.run(&["flow", "analyze", "--input", "mixed.jsonl", "--seeds", "seeds.txt", "--window", "7m"]).fails();
    assert!(run.stderr.contains("--window"), "{}", run.stderr);
    scratch.write("model.json", "{\"version\":1}");
    let run = scratch
        .run(&["flow", "analyze", "--input", "mixed.jsonl", "--seeds", "seeds.txt", "--model", "model.json"])
        .fails();
    assert!(run.stderr.contains("model"), "{}", run.stderr);
    let run = scratch.run(&["lab", "flows", "--export", "udp://192.0.2.1:9995"]).fails();
    assert!(run.stderr.contains("loopback"), "{}", run.stderr);
}

#[test]
fn hostile_datagrams_are_counted_and_the_collector_keeps_going() {
    let scratch = Scratch::new();
    scratch.write("seeds.txt", "127.16.0.1\n");
    let port = free_udp_port();
    let collector = start_flow_collector(
        &scratch,
        port,
        &["--seeds", "seeds.txt", "--flows", "f.jsonl", "--stats", "s.json", "--out", "c.jsonl"],
    );
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = (Ipv4Addr::LOCALHOST, port);
    let mut rng = common::Rng::from_clock("hostile_datagrams");
    let mut sent_malformed = 0;
    for i in 0..2000u32 {
        let len = rng.below(300) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Steer most into a decoder: NetFlow v5, v9, IPFIX and sFlow version numbers.
        match i % 5 {
            0 if len >= 2 => d[..2].copy_from_slice(&[0, 5]),
            1 if len >= 2 => d[..2].copy_from_slice(&[0, 9]),
            2 if len >= 2 => d[..2].copy_from_slice(&[0, 10]),
            3 if len >= 4 => d[..4].copy_from_slice(&[0, 0, 0, 5]),
            _ => {}
        }
        socket.send_to(&d, target).unwrap();
        sent_malformed += 1;
    }
    // Then one good v5 datagram with two flows.
    let mut good = vec![0, 5, 0, 2, 0, 0, 0x10, 0, 0x6a, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for host in [1u8, 2] {
        let mut r = vec![127, 16, 0, host, 127, 200, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 180];
        r.extend_from_slice(&[
            0, 0, 0x0f, 0xa0, 0, 0, 0x10, 0, 0x9c, 0x40, 0, 23, 0, 0x1b, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        good.extend_from_slice(&r);
    }
    socket.send_to(&good, target).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stop(collector);
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("s.json")).unwrap()).unwrap();
    assert_eq!(stats["decode"]["datagrams"].as_u64().unwrap(), sent_malformed + 1, "{stats}");
    let flows = file_lines(&scratch.path("f.jsonl"));
    assert!(
        flows.iter().filter(|f| f["dst"] == "127.200.0.1" && f["dport"] == 23).count() >= 2,
        "the good datagram's flows are kept"
    );
}

/// A NetFlow v5 datagram with one TCP flow per source host, each 127.16.0.HOST -> DST port 23.
fn v5_datagram(hosts: &[u8], dst: [u8; 4]) -> Vec<u8> {
    let mut d = vec![0, 5, 0, hosts.len() as u8, 0, 0, 0x10, 0, 0x6a, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for host in hosts {
        d.extend_from_slice(&[127, 16, 0, *host]);
        d.extend_from_slice(&dst);
        d.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 180]);
        d.extend_from_slice(&[0, 0, 0x0f, 0xa0, 0, 0, 0x10, 0, 0x9c, 0x40, 0, 23, 0, 0x1b, 6, 0]);
        d.extend_from_slice(&[0; 8]);
    }
    d
}

#[test]
fn regression_flow_collect_decodes_only_the_named_exporters() {
    // `flow collect` decoded datagrams from any source: anyone who could reach the port could
    // install templates and inject flows. Two loopback sources, one named by --exporter.
    let scratch = Scratch::new();
    scratch.write("seeds.txt", "127.16.0.1\n");
    let port = free_udp_port();
    let collector = start_flow_collector(
        &scratch,
        port,
        &[
            "--exporter",
            "127.0.0.1",
            "--seeds",
            "seeds.txt",
            "--flows",
            "f.jsonl",
            "--stats",
            "s.json",
            "--out",
            "c.jsonl",
        ],
    );
    let target = (Ipv4Addr::LOCALHOST, port);
    let named = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let other = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    for _ in 0..3 {
        named.send_to(&v5_datagram(&[1, 2], [127, 200, 0, 1]), target).unwrap();
    }
    // From the other source: flows, and an IPFIX template (id 256: source and destination address).
    let template =
        [0, 10, 0, 32, 0x6a, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 16, 1, 0, 0, 2, 0, 8, 0, 4, 0, 12, 0, 4];
    for _ in 0..4 {
        other.send_to(&v5_datagram(&[9], [127, 201, 0, 1]), target).unwrap();
        other.send_to(&template, target).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop(collector);
    let flows = file_lines(&scratch.path("f.jsonl"));
    assert_eq!(flows.len(), 6, "{flows:?}");
    assert!(flows.iter().all(|f| f["dst"] == "127.200.0.1"), "only the named exporter's flows: {flows:?}");
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("s.json")).unwrap()).unwrap();
    assert_eq!(stats["decode"]["datagrams"], 3, "{stats}");
    assert_eq!(stats["decode"]["templates"], 0, "{stats}");
    assert_eq!(stats["refused"]["datagrams"], 8, "{stats}");
    assert_eq!(stats["refused"]["sources"], serde_json::json!([{"address": "127.0.0.2", "datagrams": 8}]), "{stats}");
    assert_eq!(stats["refused"]["other_sources"], 0, "{stats}");
}

/// An exporter's announced flow timeouts (IPFIX options data, as Juniper and Cisco send) reach
/// --stats, so an operator sees how late its flows may come.
#[test]
fn an_exporters_announced_timeouts_are_reported() {
    let scratch = Scratch::new();
    scratch.write("seeds.txt", "127.16.0.1\n");
    let port = free_udp_port();
    let args = ["--seeds", "seeds.txt", "--stats", "s.json", "--out", "c.jsonl"];
    let collector = start_flow_collector(&scratch, port, &args);
    // IPFIX: options template 258 (scope observationDomainId; flowActiveTimeout, flowIdleTimeout),
    // then its record: 36,000 s active (ten hours, longer than --grace plus --late), 15 s idle.
    let mut m = vec![0, 10, 0, 0, 0x6a, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    m.extend_from_slice(&[0, 3, 0, 22, 1, 2, 0, 3, 0, 1, 0, 149, 0, 4, 0, 36, 0, 2, 0, 37, 0, 2]);
    m.extend_from_slice(&[1, 2, 0, 12, 0, 0, 0, 1, 0x8c, 0xa0, 0x00, 0x0f]);
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(&m, (Ipv4Addr::LOCALHOST, port)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stop(collector);
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("s.json")).unwrap()).unwrap();
    assert_eq!(stats["decode"]["options_records"], 1, "{stats}");
    assert_eq!(
        stats["exporter_timeouts"]["127.0.0.1"],
        serde_json::json!({"active_s": 36000, "idle_s": 15}),
        "{stats}"
    );
}

#[test]
fn flow_collect_without_exporters_refuses_a_listener_others_can_reach() {
    let scratch = Scratch::new();
    scratch.write("seeds.txt", "127.16.0.1\n");
    // Refused before binding: nothing listens on 0.0.0.0 even for a moment.
    let run =
        scratch.run(&["flow", "collect", "--listen", "0.0.0.0:0", "--seeds", "seeds.txt", "--duration", "1"]).fails();
    assert!(
        run.stderr.contains("0.0.0.0:0 is not a loopback address") && run.stderr.contains("--exporter CIDR"),
        "{}",
        run.stderr
    );
    let run = scratch
        .run(&["flow", "collect", "--listen", "127.0.0.1:0", "--exporter", "not-a-prefix", "--seeds", "seeds.txt"])
        .fails();
    assert!(run.stderr.contains("--exporter not-a-prefix"), "{}", run.stderr);
}
