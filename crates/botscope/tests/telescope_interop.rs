//! The telescope against real tools: packets crafted by scapy and hping3 on loopback, captured by
//! tcpdump in three link types, counted by tshark; and live capture through libpcap on a veth pair
//! inside a network namespace this test makes, fed by tcpreplay.
//!
//! Every packet goes to 127.224.0.0/16 or ::1 on the loopback device, or stays inside the test's
//! own namespace.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Scratch;
use serde_json::Value;

const DARKNET: &str = "127.224.0.0/16,::1/128";

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A capture that is stopped (SIGINT, so it flushes) when the test ends, even by a panic.
struct Capture(Child);

impl Drop for Capture {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            signal(self.0.id(), "INT");
            let _ = self.0.wait();
        }
    }
}

/// Starts tcpdump and waits until it says it is listening.
fn tcpdump(scratch: &Scratch, out: &str, extra: &[&str]) -> Capture {
    let mut child = Command::new("tcpdump")
        // Immediate mode: without it this kernel hands tcpdump nothing until its buffer block fills.
        .args(["-Z", "root", "--immediate-mode", "-U", "-w", out])
        .args(extra)
        .arg("dst net 127.224.0.0/16 or (ip6 and dst host ::1 and udp port 1900)")
        .current_dir(scratch.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump (Debian package tcpdump)");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    let capture = Capture(child);
    rx.recv_timeout(Duration::from_secs(20)).expect("tcpdump did not start listening");
    capture
}

fn stop(child: &mut Child) {
    signal(child.id(), "INT");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "process {} did not stop", child.id());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(pid: u32, signal: &str) {
    Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
}

/// What scapy sends, by source: (source, packets, the class a telescope must give, tags).
const CRAFT: &str = r#"
import sys
from scapy.all import IP, TCP, UDP, ICMP, Raw, send, conf, L3RawSocket
conf.L3socket = L3RawSocket
conf.verb = 0
def ip_int(a):
    o = [int(x) for x in a.split(".")]
    return (o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]
packets = []
# Mirai bots: SYN whose sequence number is the destination address, 23 and 2323 about 9:1.
for b in range(5):
    src = "127.16.7.%d" % (10 + b)
    for i in range(30):
        dst = "127.224.%d.%d" % (b, 1 + i)
        packets.append(IP(src=src, dst=dst, ttl=52, id=(i * 97) % 65536) /
                       TCP(sport=40000 + b, dport=2323 if i % 10 == 0 else 23, seq=ip_int(dst), flags="S", window=5840))
# ZMap: IP id 54321.
for i in range(20):
    packets.append(IP(src="127.99.1.1", dst="127.224.9.%d" % (1 + i), id=54321) / TCP(sport=51000, dport=443, seq=1000 + i, flags="S"))
# masscan: IP id = destination ^ port ^ sequence.
for i in range(20):
    dst = "127.224.10.%d" % (1 + i)
    seq = 123456789 + i * 7919
    packets.append(IP(src="127.99.2.2", dst=dst, id=(ip_int(dst) ^ 80 ^ seq) & 0xffff) / TCP(sport=61000, dport=80, seq=seq, flags="S"))
# DDoS victims: SYN-ACK and RST backscatter; ICMP port unreachable quoting a spoofed datagram.
for i in range(15):
    packets.append(IP(src="127.80.0.5", dst="127.224.11.%d" % (1 + i)) / TCP(sport=80, dport=1024 + i, seq=77 + i, ack=99, flags="SA"))
for i in range(10):
    packets.append(IP(src="127.80.0.6", dst="127.224.12.%d" % (1 + i)) / TCP(sport=443, dport=2048 + i, seq=0, ack=5, flags="RA"))
for i in range(5):
    packets.append(IP(src="127.80.0.7", dst="127.224.13.%d" % (1 + i)) / ICMP(type=3, code=3) /
                   IP(src="127.224.13.%d" % (1 + i), dst="127.80.0.7") / UDP(sport=3000 + i, dport=53))
# An SSDP prober over IPv4 and IPv6.
for i in range(5):
    packets.append(IP(src="127.120.0.9", dst="127.224.14.%d" % (1 + i)) / UDP(sport=5555, dport=1900) / Raw(b"M-SEARCH * HTTP/1.1\r\n\r\n"))
for p in packets:
    send(p)
# IPv6 through the kernel's own stack (scapy's raw IPv6 socket cannot address ::1).
import socket
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for i in range(10):
    s6.sendto(b"M-SEARCH * HTTP/1.1\r\n\r\n", ("::1", 1900))
print(len(packets) + 10)
"#;

/// (source, class, tags) scapy's and hping3's sources must get.
const EXPECTED: &[(&str, &str, &[&str])] = &[
    ("127.16.7.10", "infected", &["mirai", "scanner"]),
    ("127.16.7.14", "infected", &["mirai", "scanner"]),
    ("127.99.1.1", "research_scanner", &["scanner", "zmap"]),
    ("127.99.2.2", "research_scanner", &["masscan", "scanner"]),
    ("127.80.0.5", "backscatter", &["backscatter_syn_ack"]),
    ("127.80.0.6", "backscatter", &["backscatter_rst"]),
    ("127.80.0.7", "backscatter", &["backscatter_icmp"]),
    ("127.120.0.9", "unknown", &["ssdp_probe"]),
    ("::1", "unknown", &["ssdp_probe"]),
    ("127.16.9.9", "infected", &["iot_scanner", "scanner"]),
];

/// Per-source darknet packets and Mirai-fingerprint packets, as tshark dissects the file.
fn tshark_counts(scratch: &Scratch, file: &str) -> BTreeMap<String, (u64, u64)> {
    let out = Command::new("tshark")
        .args(["-n", "-r", file, "-T", "fields", "-E", "separator=,"])
        .args([
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.src",
            "-e",
            "ipv6.dst",
            "-e",
            "tcp.flags",
            "-e",
            "tcp.seq_raw",
        ])
        .current_dir(scratch.dir.path())
        .output()
        .expect("tshark (Debian package tshark)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split(',').collect();
        // ICMP errors quote an inner IP header: tshark lists both addresses, the outer first.
        let first = |s: &str| s.split(';').next().unwrap_or("").to_string();
        let (src, dst) = if !f[0].is_empty() { (first(f[0]), first(f[1])) } else { (first(f[2]), first(f[3])) };
        let dst: IpAddr = dst.parse().unwrap();
        let in_darknet = match dst {
            IpAddr::V4(v4) => v4.octets()[..2] == [127, 224],
            IpAddr::V6(v6) => v6.is_loopback(),
        };
        if !in_darknet {
            continue;
        }
        let flags = u32::from_str_radix(f[4].trim_start_matches("0x"), 16).ok();
        let seq: Option<u32> = first(f[5]).parse().ok();
        let mirai = match (dst, flags, seq) {
            (IpAddr::V4(v4), Some(0x002), Some(seq)) => seq == u32::from(v4),
            _ => false,
        };
        let entry = counts.entry(src).or_default();
        entry.0 += 1;
        entry.1 += u64::from(mirai);
    }
    counts
}

#[test]
fn crafted_packets_captured_by_tcpdump_agree_with_tshark() {
    let scratch = Scratch::new();
    let mut captures = vec![
        ("lo-ether.pcap", tcpdump(&scratch, "lo-ether.pcap", &["-i", "lo", "--time-stamp-precision=nano"])),
        ("any-sll.pcap", tcpdump(&scratch, "any-sll.pcap", &["-i", "any", "-y", "LINUX_SLL"])),
        ("any-sll2.pcap", tcpdump(&scratch, "any-sll2.pcap", &["-i", "any", "-y", "LINUX_SLL2"])),
    ];
    let crafted = Command::new("/usr/bin/python3").args(["-c", CRAFT]).output().expect("python3-scapy");
    assert!(crafted.status.success(), "scapy: {}", String::from_utf8_lossy(&crafted.stderr));
    let sent: u64 = String::from_utf8_lossy(&crafted.stdout).trim().parse().unwrap();
    // hping3: a SYN scan of telnet over random darknet addresses from one (spoofed) source.
    let hping = Command::new("hping3")
        .args([
            "-q",
            "-S",
            "-p",
            "23",
            "-c",
            "40",
            "-i",
            "u2000",
            "-a",
            "127.16.9.9",
            "--rand-dest",
            "-I",
            "lo",
            "127.224.x.x",
        ])
        .output()
        .expect("hping3 (Debian package hping3)");
    assert!(
        hping.status.success() || hping.status.code() == Some(1),
        "hping3: {}",
        String::from_utf8_lossy(&hping.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    for (_, capture) in &mut captures {
        stop(&mut capture.0);
    }
    for (file, _) in &captures {
        let tshark = tshark_counts(&scratch, file);
        let out = format!("{file}.jsonl");
        let stats_file = format!("{file}.stats");
        scratch.run(&["telescope", "--pcap", file, "--darknet", DARKNET, "--out", &out, "--stats", &stats_file]).ok();
        let records = lines(&scratch.path(&out));
        let ours: BTreeMap<String, (u64, u64)> = records
            .iter()
            .map(|r| {
                (
                    r["src"].as_str().unwrap().to_string(),
                    (r["packets"].as_u64().unwrap(), r["mirai_packets"].as_u64().unwrap()),
                )
            })
            .collect();
        assert_eq!(ours, tshark, "{file}: per-source packets and Mirai packets differ from tshark's");
        let total: u64 = tshark.values().map(|c| c.0).sum();
        // The loopback capture holds every packet; the `any` captures may miss a few under load,
        // which does not matter here: tshark reads the same file.
        let least = if file.starts_with("lo") { sent + 40 } else { (sent + 40) * 9 / 10 };
        assert!(total >= least, "{file}: {total} darknet packets captured, {sent} + 40 sent");
        for (src, class, tags) in EXPECTED {
            let r = records.iter().find(|r| r["src"] == *src).unwrap_or_else(|| panic!("{file}: {src} missing"));
            assert_eq!(r["classification"], *class, "{file}: {r}");
            assert_eq!(r["tags"], serde_json::json!(tags), "{file}: {r}");
        }
    }
}

/// A network namespace with a veth pair, removed on drop.
struct Namespace {
    name: String,
}

impl Namespace {
    fn new() -> Namespace {
        let name = format!("botscope-tel-{}", std::process::id());
        let ip = |args: &[&str]| {
            let status = Command::new("ip").args(args).status().expect("ip (Debian package iproute2)");
            assert!(status.success(), "ip {args:?}");
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        ip(&["netns", "add", &name]);
        let ns = Namespace { name };
        ip(&["-n", &ns.name, "link", "add", "replay0", "type", "veth", "peer", "name", "tap0"]);
        for link in ["lo", "replay0", "tap0"] {
            ip(&["-n", &ns.name, "link", "set", link, "up"]);
        }
        ns
    }

    fn exec(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

#[test]
fn live_capture_in_a_namespace_fed_by_tcpreplay() {
    let scratch = Scratch::new();
    scratch
        .run(&[
            "lab",
            "darknet",
            "--out",
            "replay.pcap",
            "--seed",
            "21",
            "--sources",
            "80",
            "--hours",
            "2",
            "--truth",
            "truth.jsonl",
        ])
        .ok();
    let ns = Namespace::new();
    let mut telescope = ns
        .exec(env!("CARGO_BIN_EXE_botscope"))
        .args(["telescope", "--interface", "tap0", "--darknet", "127.224.0.0/16", "--out", "live.jsonl"])
        .args(["--stats", "live.json", "--duration", "120"])
        .current_dir(scratch.dir.path())
        .env_remove("BOTSCOPE_DB")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = telescope.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("capturing") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("the telescope did not start capturing");
    let replay = ns
        .exec("tcpreplay")
        .args(["-q", "-i", "replay0", "--pps", "20000", "replay.pcap"])
        .current_dir(scratch.dir.path())
        .output()
        .expect("tcpreplay (Debian package tcpreplay)");
    assert!(replay.status.success(), "tcpreplay: {}", String::from_utf8_lossy(&replay.stderr));
    std::thread::sleep(Duration::from_millis(1500));
    stop(&mut telescope);
    let log = log.join().unwrap();
    assert!(telescope.wait().unwrap().success(), "{log}");

    let truth = lines(&scratch.path("truth.jsonl"));
    let records = lines(&scratch.path("live.jsonl"));
    let mut wrong = Vec::new();
    for t in &truth {
        match records.iter().find(|r| r["src"] == t["src"]) {
            Some(r) if r["classification"] == t["class"] && r["tags"] == t["tags"] && r["packets"] == t["packets"] => {}
            other => wrong.push(format!("{t} -> {other:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} sources wrong:\n{}\n{log}",
        wrong.len(),
        truth.len(),
        wrong.join("\n").chars().take(3000).collect::<String>()
    );
}
