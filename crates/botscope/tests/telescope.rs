//! The telescope end to end: synthetic darknets against their truth, every capture format,
//! damaged captures, a million sources, and the store. Real-tool interop (scapy, hping3, tcpdump,
//! tshark, tcpreplay) is in `telescope_interop.rs`.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use botscope_store::Store;
use common::Scratch;
use serde_json::Value;

const DARKNET: &str = "127.224.0.0/16";

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes a synthetic darknet; returns its printed summary.
fn lab_darknet(scratch: &Scratch, name: &str, seed: u64, extra: &[&str]) -> Value {
    let run = scratch
        .run(
            &[
                &["lab", "darknet", "--out", name, "--seed", &seed.to_string(), "--truth", &format!("{name}.truth")],
                extra,
            ]
            .concat(),
        )
        .ok();
    serde_json::from_str(run.stdout.trim()).unwrap()
}

fn telescope(scratch: &Scratch, inputs: &[&str], out: &str, extra: &[&str]) -> Value {
    let stats = format!("{out}.stats");
    let mut args = vec!["telescope", "--pcap"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&["--darknet", DARKNET, "--out", out, "--stats", &stats]);
    args.extend_from_slice(extra);
    scratch.run(&args).ok();
    serde_json::from_str(&std::fs::read_to_string(scratch.path(&stats)).unwrap()).unwrap()
}

/// Compares records with the truth: every source, its class and its tags.
fn assert_matches_truth(records: &[Value], truth: &[Value]) {
    let by_src: HashMap<&str, &Value> = records.iter().map(|r| (r["src"].as_str().unwrap(), r)).collect();
    assert_eq!(records.len(), truth.len(), "one record per source in a one-day window");
    let mut wrong = Vec::new();
    for t in truth {
        let src = t["src"].as_str().unwrap();
        let Some(r) = by_src.get(src) else {
            wrong.push(format!("{src} ({}) missing", t["kind"]));
            continue;
        };
        if r["classification"] != t["class"] || r["tags"] != t["tags"] || r["packets"] != t["packets"] {
            wrong.push(format!(
                "{src} {}: truth {} {} {} packets, got {} {} {} packets",
                t["kind"], t["class"], t["tags"], t["packets"], r["classification"], r["tags"], r["packets"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{} of {} sources wrong:\n{}", wrong.len(), truth.len(), wrong.join("\n"));
}

#[test]
fn synthetic_darknets_give_every_source_its_true_class_and_tags() {
    let scratch = Scratch::new();
    for seed in [1u64, 2, 3] {
        let name = format!("d{seed}.pcap");
        let summary = lab_darknet(&scratch, &name, seed, &["--sources", "300", "--hours", "12"]);
        let out = format!("d{seed}.jsonl");
        let stats = telescope(&scratch, &[&name], &out, &[]);
        let records = lines(&scratch.path(&out));
        let truth = lines(&scratch.path(&format!("{name}.truth")));
        assert_matches_truth(&records, &truth);
        let kinds: std::collections::BTreeSet<_> = truth.iter().map(|t| t["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds.len(), 10, "every source kind present: {kinds:?}");

        // The statistics agree with what the generator wrote.
        let totals = &stats["totals"];
        assert_eq!(totals["darknet_packets"], summary["darknet_packets"]);
        assert_eq!(totals["outside_darknet"], summary["outside_packets"]);
        assert_eq!(totals["skipped"]["not_ip"], summary["non_ip_frames"]);
        let day = &stats["days"][0];
        assert_eq!(day["mirai_packets"], summary["mirai_packets"]);
        let mirai_truth = truth.iter().filter(|t| t["kind"] == "mirai").count() as u64;
        assert_eq!(day["mirai_sources"].as_u64().unwrap(), mirai_truth);
        let infected = truth.iter().filter(|t| t["class"] == "infected").count() as u64;
        assert_eq!(day["infected_sources"].as_u64().unwrap(), infected);
        let victims: Vec<&str> =
            stats["ddos_victims"].as_array().unwrap().iter().map(|v| v["victim"].as_str().unwrap()).collect();
        let truth_victims = truth.iter().filter(|t| t["class"] == "backscatter").count();
        assert_eq!(victims.len(), truth_victims);
        // Each victim's attacked port is the one the generator flooded.
        for v in stats["ddos_victims"].as_array().unwrap() {
            let t = truth.iter().find(|t| t["src"] == v["victim"]).unwrap();
            assert_eq!(v["ports"], t["ports"], "{v}");
        }
        let category_sum: u64 =
            stats["categories"].as_array().unwrap().iter().map(|c| c["packets"].as_u64().unwrap()).sum();
        assert_eq!(category_sum, summary["darknet_packets"].as_u64().unwrap());
    }
}

#[test]
fn hourly_windows_split_sources_and_keep_daily_totals() {
    let scratch = Scratch::new();
    lab_darknet(&scratch, "h.pcap", 5, &["--sources", "150", "--hours", "6"]);
    let daily = telescope(&scratch, &["h.pcap"], "daily.jsonl", &[]);
    let hourly = telescope(&scratch, &["h.pcap"], "hourly.jsonl", &["--window", "1h"]);
    let daily_records = lines(&scratch.path("daily.jsonl"));
    let hourly_records = lines(&scratch.path("hourly.jsonl"));
    assert!(hourly_records.len() > daily_records.len());
    // Per source, the hourly packets add up to the daily ones.
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    for r in &hourly_records {
        *sums.entry(r["src"].as_str().unwrap().to_string()).or_default() += r["packets"].as_u64().unwrap();
        let start = chrono::DateTime::parse_from_rfc3339(r["window_start"].as_str().unwrap()).unwrap();
        let end = chrono::DateTime::parse_from_rfc3339(r["window_end"].as_str().unwrap()).unwrap();
        assert_eq!((end - start).num_seconds(), 3600);
    }
    for r in &daily_records {
        assert_eq!(sums[r["src"].as_str().unwrap()], r["packets"].as_u64().unwrap());
    }
    // Unique hosts per day are counted once, however many hours they span.
    assert_eq!(daily["days"][0]["mirai_sources"], hourly["days"][0]["mirai_sources"]);
    assert_eq!(daily["days"][0]["infected_sources"], hourly["days"][0]["infected_sources"]);
}

#[test]
fn compressed_and_pcapng_captures_give_the_same_records() {
    let scratch = Scratch::new();
    lab_darknet(&scratch, "c.pcap", 7, &["--sources", "120", "--hours", "3"]);
    telescope(&scratch, &["c.pcap"], "plain.jsonl", &[]);
    let expected = std::fs::read_to_string(scratch.path("plain.jsonl")).unwrap();
    let dir = scratch.dir.path();
    let sh = |cmd: &str| {
        let status = std::process::Command::new("sh").arg("-c").arg(cmd).current_dir(dir).status().unwrap();
        assert!(status.success(), "{cmd}");
    };
    sh("gzip -k -c c.pcap > c.pcap.gz");
    sh("zstd -q -c c.pcap > c.pcap.zst");
    // editcap (Wireshark) writes pcapng, nanosecond pcap, and cooked-capture conversions.
    sh("editcap -F pcapng c.pcap c.pcapng");
    sh("editcap -F nsecpcap c.pcap c.nsec.pcap");
    sh("zstd -q -c c.pcapng > c.pcapng.zst");
    for input in ["c.pcap.gz", "c.pcap.zst", "c.pcapng", "c.nsec.pcap", "c.pcapng.zst"] {
        let out = format!("{input}.jsonl");
        telescope(&scratch, &[input], &out, &[]);
        let got = std::fs::read_to_string(scratch.path(&out)).unwrap();
        assert!(got == expected, "{input} gave different records");
    }
    // Splitting the capture in two files (given out of order) changes nothing.
    sh("editcap -r c.pcap first.pcap 1-20000 && editcap -r c.pcap second.pcap 20001-999999999");
    telescope(&scratch, &["second.pcap", "first.pcap"], "split.jsonl", &[]);
    assert!(std::fs::read_to_string(scratch.path("split.jsonl")).unwrap() == expected);
}

#[test]
fn damaged_captures_are_read_around_the_damage() {
    let scratch = Scratch::new();
    lab_darknet(&scratch, "m.pcap", 11, &["--sources", "80", "--hours", "2"]);
    let pristine = std::fs::read(scratch.path("m.pcap")).unwrap();
    let mut rng = common::Rng::from_clock("damaged_captures");
    // Truncations anywhere, and bursts of random bytes written over the middle.
    for round in 0..12 {
        let mut bytes = pristine.clone();
        if round % 2 == 0 {
            bytes.truncate(24 + rng.below(bytes.len() as u64 - 24) as usize);
        } else {
            let at = 24 + rng.below(bytes.len() as u64 - 200) as usize;
            for b in &mut bytes[at..at + 1 + rng.below(150) as usize] {
                *b = rng.next() as u8;
            }
        }
        scratch.write("broken.pcap", &bytes);
        let stats = telescope(&scratch, &["broken.pcap"], "broken.jsonl", &[]);
        let frames = stats["totals"]["frames"].as_u64().unwrap();
        assert!(frames > 0, "round {round}: nothing read");
        if round % 2 == 1 {
            // Random bytes over at most 150 bytes cost a handful of records, not the file.
            let total = stats["totals"]["darknet_packets"].as_u64().unwrap();
            assert!(total + 50 >= pristine.len() as u64 / 200, "round {round}: only {total} packets read");
        }
    }
    // Not a capture at all: a clear error, exit 1.
    scratch.write("text.pcap", "this is not a capture\n");
    let run = scratch.run(&["telescope", "--pcap", "text.pcap", "--darknet", DARKNET]).fails();
    assert!(run.stderr.contains("not a pcap or pcapng"), "{}", run.stderr);
    let run = scratch.run(&["telescope", "--pcap", "text.pcap", "--darknet", "not-a-prefix"]).fails();
    assert!(run.stderr.contains("--darknet"), "{}", run.stderr);
}

/// Raw-IP pcap with one 40-byte SYN from each of `sources` distinct addresses.
fn write_many_sources(path: &Path, sources: u32) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
    out.write_all(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    out.write_all(&65_535u32.to_le_bytes()).unwrap();
    out.write_all(&101u32.to_le_bytes()).unwrap();
    for i in 0..sources {
        let src = 0x7f01_0000u32 + i;
        let dst = 0x7fe0_0000u32 + (i & 0xffff);
        let mut packet = [0u8; 40];
        packet[..4].copy_from_slice(&[0x45, 0, 0, 40]);
        packet[8] = 64;
        packet[9] = 6;
        packet[12..16].copy_from_slice(&src.to_be_bytes());
        packet[16..20].copy_from_slice(&dst.to_be_bytes());
        packet[22..24].copy_from_slice(&23u16.to_be_bytes());
        packet[24..28].copy_from_slice(&dst.to_be_bytes());
        packet[32] = 0x50;
        packet[33] = 0x02;
        let ts = 1_793_577_600 + i / 1000;
        out.write_all(&ts.to_le_bytes()).unwrap();
        out.write_all(&0u32.to_le_bytes()).unwrap();
        out.write_all(&40u32.to_le_bytes()).unwrap();
        out.write_all(&40u32.to_le_bytes()).unwrap();
        out.write_all(&packet).unwrap();
    }
    out.flush().unwrap();
}

/// Peak resident memory (KiB) of `botscope args`, from GNU time.
fn peak_kib(scratch: &Scratch, args: &[&str]) -> u64 {
    let report = scratch.path("time.txt");
    let status = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o", report.to_str().unwrap(), env!("CARGO_BIN_EXE_botscope")])
        .args(args)
        .current_dir(scratch.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(report).unwrap().trim().lines().last().unwrap().parse().unwrap()
}

#[test]
fn a_million_sources_stay_within_bounded_memory() {
    let scratch = Scratch::new();
    write_many_sources(&scratch.path("million.pcap"), 1_000_000);
    let args =
        ["-q", "telescope", "--pcap", "million.pcap", "--darknet", DARKNET, "--out", "/dev/null", "--stats", "s.json"];
    let peak = peak_kib(&scratch, &args);
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("s.json")).unwrap()).unwrap();
    assert_eq!(stats["days"][0]["mirai_sources"], 1_000_000);
    let sources = stats["days"][0]["sources"].as_u64().unwrap();
    assert!((980_000..=1_020_000).contains(&sources), "day's unique sources estimate {sources}");
    // About 200 bytes per source of state plus the day's exact Mirai-source set.
    assert!(peak < 700 * 1024, "peak {peak} KiB for a million sources");

    // With a cap, state stops growing and the rest is counted.
    let capped = peak_kib(&scratch, &[&args[..], &["--max-sources", "50000"]].concat());
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("s.json")).unwrap()).unwrap();
    assert_eq!(stats["totals"]["sources_over_limit"], 950_000);
    assert!(capped < peak, "capped {capped} KiB, uncapped {peak} KiB");
}

#[tokio::test]
async fn the_store_holds_activity_and_daily_statistics() {
    let scratch = Scratch::new();
    lab_darknet(&scratch, "s.pcap", 13, &["--sources", "60", "--hours", "2"]);
    let db = scratch.db();
    scratch.load_example_isps(&db);
    let args =
        ["--db", db.to_str().unwrap(), "telescope", "--pcap", "s.pcap", "--darknet", DARKNET, "--stats", "st.json"];
    scratch.run(&args).ok();
    let store = common::open_sqlite(&db).await;
    assert_eq!(store.count_records(Some(botscope_model::Kind::Activity)).await.unwrap(), 60);
    assert_eq!(store.count_records(Some(botscope_model::Kind::DarknetDay)).await.unwrap(), 1);
    // Bots live in 127.16.0.0/12; the example registry gives 127.16.0.0/14 to hikari-net.
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(scratch.path("st.json")).unwrap()).unwrap();
    let by_isp = stats["days"][0]["by_isp"].as_array().unwrap();
    assert!(
        by_isp.iter().any(|i| i["isp"] == "hikari-net" && i["infected_sources"].as_u64().unwrap() > 0),
        "{by_isp:?}"
    );
    // Running again stores nothing new: records have stable ids.
    scratch.run(&args).ok();
    assert_eq!(store.count_records(Some(botscope_model::Kind::Activity)).await.unwrap(), 60);
}

/// Regression: a read error in the middle of a file (a truncated .gz) used to drop every record
/// still in memory and the statistics.
#[test]
fn a_capture_cut_short_inside_its_compression_keeps_what_was_read() {
    let scratch = Scratch::new();
    lab_darknet(&scratch, "t.pcap", 17, &["--sources", "60", "--hours", "2"]);
    let sh = |cmd: &str| {
        let status =
            std::process::Command::new("sh").arg("-c").arg(cmd).current_dir(scratch.dir.path()).status().unwrap();
        assert!(status.success(), "{cmd}");
    };
    sh("gzip -c t.pcap | head -c 40000 > cut.pcap.gz");
    let stats = telescope(&scratch, &["cut.pcap.gz"], "cut.jsonl", &[]);
    assert!(!lines(&scratch.path("cut.jsonl")).is_empty());
    assert!(stats["totals"]["darknet_packets"].as_u64().unwrap() > 100);
    assert_eq!(stats["totals"]["skipped"]["truncated_record"], 1);
}

/// Regression: only the first frame of a multi-frame zstd file (concatenated files, pzstd) was read.
#[test]
fn every_frame_of_a_concatenated_zstd_file_is_read() {
    let scratch = Scratch::new();
    lab_darknet(&scratch, "z.pcap", 19, &["--sources", "60", "--hours", "2"]);
    telescope(&scratch, &["z.pcap"], "plain.jsonl", &[]);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("head -c 100000 z.pcap | zstd -q -c > z.zst && tail -c +100001 z.pcap | zstd -q -c >> z.zst")
        .current_dir(scratch.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    telescope(&scratch, &["z.zst"], "z.jsonl", &[]);
    assert!(std::fs::read(scratch.path("z.jsonl")).unwrap() == std::fs::read(scratch.path("plain.jsonl")).unwrap());
}

/// Regression: one record stamped far in the future closed every open window, so every later
/// packet counted as late and its source got no record.
#[test]
fn one_far_future_timestamp_does_not_close_the_windows() {
    let scratch = Scratch::new();
    lab_darknet(&scratch, "f.pcap", 23, &["--sources", "60", "--hours", "2"]);
    let mut bytes = std::fs::read(scratch.path("f.pcap")).unwrap();
    // The first record starts at byte 24: its seconds become year 2106.
    bytes[24..28].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    scratch.write("f.pcap", &bytes);
    let stats = telescope(&scratch, &["f.pcap"], "f.jsonl", &[]);
    assert_eq!(stats["totals"]["skipped"]["bad_timestamp"], 1);
    assert_eq!(stats["totals"]["late_packets"], 0);
    assert_eq!(stats["days"].as_array().unwrap().len(), 1);
    assert_eq!(lines(&scratch.path("f.jsonl")).len(), 60);
}

/// Regression: two captures overlapping in time (two taps of one darknet) used to be read one
/// after the other, so with hourly windows most of the second one arrived "late" and was lost.
#[test]
fn overlapping_captures_are_merged_by_time() {
    let scratch = Scratch::new();
    lab_darknet(&scratch, "o.pcap", 29, &["--sources", "80", "--hours", "4"]);
    telescope(&scratch, &["o.pcap"], "whole.jsonl", &["--window", "1h"]);
    // Deal the records alternately into two files, as two taps would see them.
    let bytes = std::fs::read(scratch.path("o.pcap")).unwrap();
    let (mut a, mut b) = (bytes[..24].to_vec(), bytes[..24].to_vec());
    let mut at = 24;
    let mut turn = false;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let record = &bytes[at..at + 16 + len];
        if turn {
            a.extend_from_slice(record)
        } else {
            b.extend_from_slice(record)
        }
        turn = !turn;
        at += 16 + len;
    }
    scratch.write("tap-a.pcap", a);
    scratch.write("tap-b.pcap", b);
    let stats = telescope(&scratch, &["tap-b.pcap", "tap-a.pcap"], "merged.jsonl", &["--window", "1h"]);
    assert_eq!(stats["totals"]["late_packets"], 0);
    assert!(
        std::fs::read(scratch.path("merged.jsonl")).unwrap() == std::fs::read(scratch.path("whole.jsonl")).unwrap()
    );
}
