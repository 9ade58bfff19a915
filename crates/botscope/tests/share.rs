//! STIX 2.1 export, checked by the OASIS tools themselves: every bundle passes `stix2_validator
//! --version 2.1 --strict` and loads with the `stix2` library (PyPI, in the venv scripts/test
//! makes; BOTSCOPE_VENV names it).
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{Scratch, venv};

/// Runs the strict OASIS validator and loads the bundle with the stix2 library.
fn assert_valid(bundle: &std::path::Path) {
    let venv = venv();
    let out = Command::new(venv.join("bin/stix2_validator"))
        .args(["--version", "2.1", "--strict"])
        .arg(bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stix2_validator --strict refused {}:\n{}{}",
        bundle.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let load =
        "import sys, stix2\nb = stix2.parse(open(sys.argv[1]).read(), allow_custom=False)\nprint(len(b.objects))";
    let out = Command::new(venv.join("bin/python")).args(["-c", load]).arg(bundle).output().unwrap();
    assert!(out.status.success(), "stix2 could not load it: {}", String::from_utf8_lossy(&out.stderr));
}

fn cnc(ip: &str, day: u32, refs: &[String], sensor: &str) -> String {
    let refs: Vec<String> = refs.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        r#"{{"kind":"cnc","window_start":"2026-11-{day:02}T00:00:00Z","window_end":"2026-11-{day:02}T01:00:00Z","ip":"{ip}","port":6667,"protocol":"tcp","score":0.95,"rank":1,"methods":["graph","model"],"seed_clients":{n},"total_clients":{n},"seed_refs":[{refs}],"flows":90,"first_seen":"2026-11-{day:02}T00:00:05Z","last_seen":"2026-11-{day:02}T00:59:00Z","family":"mirai","sensor":"{sensor}"}}"#,
        n = refs.len(),
        refs = refs.join(",")
    )
}

fn activity(n: u32) -> (String, String) {
    let line = format!(
        r#"{{"kind":"activity","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-03T00:00:00Z","src":"127.16.8.{n}","classification":"infected","tags":["mirai"],"packets":10,"mirai_packets":10,"distinct_destinations":9,"first_seen":"2026-11-02T00:03:51Z","last_seen":"2026-11-02T23:58:12Z","sensor":"darknet-a"}}"#
    );
    let id = botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap().id().unwrap().to_string();
    (line, id)
}

fn objects(path: &std::path::Path) -> BTreeMap<String, serde_json::Value> {
    let bundle: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    bundle["objects"].as_array().unwrap().iter().map(|o| (o["id"].as_str().unwrap().to_string(), o.clone())).collect()
}

#[test]
fn bundles_pass_the_oasis_validator_keep_stable_ids_and_carry_their_tlp() {
    let scratch = Scratch::new();
    let db = scratch.path("c.db").display().to_string();
    let bots: Vec<(String, String)> = (1..=12).map(activity).collect();
    let refs: Vec<String> = bots.iter().map(|(_, id)| id.clone()).collect();
    let mut lines: Vec<String> = bots.iter().map(|(line, _)| line.clone()).collect();
    // A botnet moves from 127.200.0.10 to .11 between days; a second ISP reports the first server too.
    lines.push(cnc("127.200.0.10", 2, &refs, "isp-a"));
    lines.push(cnc("127.200.0.10", 2, &refs[..6], "isp-b"));
    lines.push(cnc("127.200.0.11", 3, &refs, "isp-a"));
    lines.push(r#"{"kind":"liveness","ip":"127.200.0.10","port":6667,"protocol":"tcp","checked_at":"2026-11-04T10:00:00Z","alive":false,"outcome":"refused"}"#.into());
    lines.push(
        include_str!("../../../data/examples/records.jsonl")
            .lines()
            .find(|l| l.contains("darknet_day"))
            .unwrap()
            .into(),
    );
    scratch.write("records.jsonl", lines.join("\n"));
    scratch.run(&["--db", &db, "ingest", "records.jsonl"]).ok();
    scratch.run(&["--db", &db, "correlate"]).ok();

    scratch.run(&["--db", &db, "share", "stix", "--out", "first.json"]).ok();
    assert_valid(&scratch.path("first.json"));
    let first = objects(&scratch.path("first.json"));
    let kinds: BTreeMap<&str, usize> = first.values().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o["type"].as_str().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(kinds["identity"], 1);
    assert_eq!(kinds["indicator"], 2, "one indicator per C&C server");
    assert_eq!(kinds["infrastructure"], 3, "two C&C servers and one botnet: {kinds:?}");
    assert_eq!(kinds["malware"], 1);
    assert_eq!(kinds["sighting"], 1, "the darknet day's Mirai sighting");
    let botnet = first.values().find(|o| o["infrastructure_types"] == serde_json::json!(["botnet"])).unwrap();
    assert_eq!(botnet["name"], "BN-2026-0001");
    let dead = first
        .values()
        .find(|o| o["type"] == "indicator" && o["pattern"].as_str().unwrap().contains("'127.200.0.10'"))
        .unwrap();
    assert_eq!(dead["valid_until"], "2026-11-04T10:00:00.000Z", "valid until liveness found it dead");
    let controls = first.values().filter(|o| o["relationship_type"] == "controls").count();
    assert_eq!(controls, 2, "both servers control the botnet");
    for object in first.values().filter(|o| o["type"] != "identity") {
        assert_eq!(
            object["object_marking_refs"],
            serde_json::json!(["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]),
            "TLP:GREEN by default"
        );
    }
    let text = std::fs::read_to_string(scratch.path("first.json")).unwrap();
    assert!(!text.contains("127.16.8."), "no bot (subscriber) address is shared");

    // Again, unchanged: the same ids and versions, the same bytes.
    scratch.run(&["--db", &db, "share", "stix", "--out", "again.json"]).ok();
    assert_eq!(std::fs::read(scratch.path("first.json")).unwrap(), std::fs::read(scratch.path("again.json")).unwrap());

    // The second server is seen again a day later: its objects keep their ids with a newer version.
    scratch.write("later.jsonl", cnc("127.200.0.11", 4, &refs, "isp-a"));
    scratch.run(&["--db", &db, "ingest", "later.jsonl"]).ok();
    scratch.run(&["--db", &db, "share", "stix", "--tlp", "red", "--out", "later.json"]).ok();
    assert_valid(&scratch.path("later.json"));
    let later = objects(&scratch.path("later.json"));
    assert_eq!(later.len(), first.len(), "no new object, same ids");
    let moved = |map: &BTreeMap<String, serde_json::Value>| {
        map.values()
            .find(|o| o["type"] == "indicator" && o["pattern"].as_str().unwrap().contains("'127.200.0.11'"))
            .unwrap()
            .clone()
    };
    assert_eq!(moved(&later)["id"], moved(&first)["id"]);
    assert!(moved(&later)["modified"].as_str().unwrap() > moved(&first)["modified"].as_str().unwrap());
    assert!(
        later
            .values()
            .filter(|o| o["type"] != "identity")
            .all(|o| o["object_marking_refs"][0] == "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed")
    );

    // --since keeps only what changed since then (plus the producer).
    scratch.run(&["--db", &db, "share", "stix", "--since", "2026-11-04T00:00:00Z", "--out", "since.json"]).ok();
    assert_valid(&scratch.path("since.json"));
    let since = objects(&scratch.path("since.json"));
    assert!(since.len() < later.len() && since.values().any(|o| o["type"] == "indicator"));
    assert!(since.values().all(|o| o["type"] == "identity" || o["modified"].as_str().unwrap() >= "2026-11-04"));
    // The MISP feed of the same data loads with PyMISP: one event per botnet, the manifest names
    // every event, and hashes.csv holds the MD5 of each part of each value.
    scratch.run(&["--db", &db, "share", "misp", "--out", "feed", "--tlp", "amber"]).ok();
    let check = r#"
import hashlib, json, os, sys
from pymisp import MISPEvent
feed = sys.argv[1]
manifest = json.load(open(os.path.join(feed, "manifest.json")))
values = []
for uuid, entry in manifest.items():
    event = MISPEvent()
    event.load_file(os.path.join(feed, uuid + ".json"))
    assert event.uuid == uuid and event.info == entry["info"], uuid
    assert [t.name for t in event.tags] == ["tlp:amber"], event.tags
    for attribute in event.attributes:
        assert attribute.type == "ip-dst|port" and attribute.to_ids
        values.append(attribute.value)
expected = sorted(hashlib.md5(part.encode()).hexdigest() + "," + uuid
                  for uuid in manifest for e in [json.load(open(os.path.join(feed, uuid + ".json")))]
                  for a in e["Event"]["Attribute"] for part in a["value"].split("|"))
hashes = sorted(open(os.path.join(feed, "hashes.csv")).read().split())
assert hashes == expected, (hashes, expected)
print(len(manifest), " ".join(sorted(values)))
"#;
    let out = Command::new(venv().join("bin/python")).args(["-c", check]).arg(scratch.path("feed")).output().unwrap();
    assert!(out.status.success(), "PyMISP could not load the feed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1 127.200.0.10|6667 127.200.0.11|6667",
        "one botnet event with both of its C&C servers"
    );
    // Bad flags: clear errors.
    let bad = scratch.run(&["--db", &db, "share", "stix", "--tlp", "purple"]);
    assert_eq!(bad.code, Some(2));
    scratch.run(&["--db", &db, "share", "stix", "--since", "yesterday"]).fails();
}
