//! The survey against real login servers on 127.0.0.1: BusyBox telnetd with the real BusyBox
//! `login`, Dropbear, and lighttpd with Basic and Digest authentication (started by
//! `scripts/peers/start-peers.sh`, which needs root for the servers' private account files).
//! Each weak login must be found with the right dictionary id, each strong one not, and the
//! servers' own logs must show the attempts really happened.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use common::Scratch;
use serde_json::Value;

struct Peers {
    dir: PathBuf,
    ports: HashMap<String, u16>,
}

impl Peers {
    fn start(scratch: &Scratch) -> Peers {
        let dir = scratch.path("peers");
        std::fs::create_dir_all(&dir).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/peers/start-peers.sh");
        let out = Command::new(script).arg(&dir).output().unwrap();
        assert!(out.status.success(), "start-peers.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let ports = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (name, port) = line.split_once(' ')?;
                Some((name.to_string(), port.trim().parse().ok()?))
            })
            .collect();
        Peers { dir, ports }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/peers/stop-peers.sh");
        let _ = Command::new(script).arg(&self.dir).output();
    }
}

/// The shipped dictionary's id of a pair.
fn shipped_id(username: &str, password: &str) -> (u64, u64) {
    let text = include_str!("../../../data/credentials.toml");
    let dictionary: toml::Value = toml::from_str(text).unwrap();
    let entry = dictionary["credential"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["username"].as_str() == Some(username) && c["password"].as_str() == Some(password))
        .unwrap_or_else(|| panic!("{username}/{password} is not in data/credentials.toml"));
    (entry["id"].as_integer().unwrap() as u64, entry["weight"].as_integer().unwrap() as u64)
}

#[test]
fn weak_logins_on_real_servers_are_found_and_strong_ones_are_not() {
    let scratch = Scratch::new();
    let peers = Peers::start(&scratch);
    let port = |name: &str| *peers.ports.get(name).unwrap_or_else(|| panic!("no {name} in {:?}", peers.ports));

    // A short dictionary of shipped pairs, failures first, so every server sees rejections too
    // (BusyBox login pauses 3 s after each).
    let pairs = [("root", "xc3511"), ("root", "vizxv"), ("admin", "admin"), ("admin", "1234")];
    let mut dictionary = String::new();
    let mut ids = HashMap::new();
    for (rank, (user, pass)) in pairs.iter().enumerate() {
        let (id, _) = shipped_id(user, pass);
        ids.insert(*pass, id);
        dictionary.push_str(&format!(
            "[[credential]]\nid = {id}\nusername = \"{user}\"\npassword = \"{pass}\"\nweight = {}\n",
            10 - rank
        ));
    }
    let dictionary = scratch.write("dictionary.toml", dictionary);

    let services = [
        ("telnet_weak", "telnet", Some("admin")),
        ("telnet_strong", "telnet", None),
        ("ssh_weak", "ssh", Some("admin")),
        ("ssh_strong", "ssh", None),
        ("http_basic_weak", "http", Some("admin")),
        ("http_digest_weak", "http", Some("1234")),
        ("http_basic_strong", "http", None),
    ];
    let list: Vec<String> = services.iter().map(|(name, protocol, _)| format!("{}/{protocol}", port(name))).collect();
    let run = scratch
        .botscope()
        .args(["survey", "--lab", "--scope", "127.0.0.1", "--ports", &list.join(","), "--credentials"])
        .arg(&dictionary)
        .args(["--rate", "100", "--max-attempts-per-host", "1000", "--read-timeout", "8"])
        .args(["--out", "out.jsonl", "--audit", "audit.jsonl"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let records: Vec<Value> = std::fs::read_to_string(scratch.path("out.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (name, protocol, weak) in services {
        let findings: Vec<&Value> = records
            .iter()
            .filter(|r| r["kind"] == "finding" && r["issue"] == "default_credential" && r["port"] == port(name))
            .collect();
        let service = records.iter().find(|r| r["kind"] == "service" && r["port"] == port(name));
        assert!(service.is_some_and(|s| s["protocol"] == protocol), "{name}: no {protocol} service record");
        match weak {
            Some(password) => {
                assert_eq!(findings.len(), 1, "{name}: expected one default_credential finding, got {findings:?}");
                assert_eq!(findings[0]["credential_id"].as_u64(), Some(ids[password]), "{name}");
            }
            None => assert!(findings.is_empty(), "{name}: a strong password was reported weak: {findings:?}"),
        }
    }

    // The strong telnet server rejected every pair itself (its own log), and the audit trail
    // agrees; nothing anywhere contains a password.
    let rejected = std::fs::read_to_string(peers.dir.join("telnet_strong/auth.log")).unwrap_or_default();
    let rejections = rejected.lines().filter(|l| l.contains("invalid password")).count();
    let audit = std::fs::read_to_string(scratch.path("audit.jsonl")).unwrap();
    let audited_failures = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a["port"] == port("telnet_strong") && a["outcome"] == "failure")
        .count();
    assert_eq!(audited_failures, pairs.len(), "{audit}");
    assert_eq!(rejections, pairs.len(), "telnet_strong auth.log:\n{rejected}");
    let strong = "Xq7#pL2v!9mR";
    for file in ["out.jsonl", "audit.jsonl"] {
        let text = std::fs::read_to_string(scratch.path(file)).unwrap();
        assert!(
            !text.contains(strong) && !text.contains("xc3511") && !text.contains("\"password\":"),
            "{file} leaks a password"
        );
    }
}
