//! `botscope isp load` and `lookup`: answers checked against a brute-force longest-prefix match
//! over a table generated afresh on every run (nested prefixes, multi-origin, AS sets, IPv6).
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{Rng, Scratch};
use ipnet::IpNet;

struct Entry {
    prefix: IpNet,
    origin: Vec<Vec<u32>>,
}

fn origin_text(origin: &[Vec<u32>]) -> String {
    origin.iter().map(|set| set.iter().map(u32::to_string).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join("_")
}

fn random_origin(rng: &mut Rng) -> Vec<Vec<u32>> {
    let asn = |rng: &mut Rng| 64_500 + rng.below(40) as u32;
    match rng.below(10) {
        0 => vec![vec![asn(rng)], vec![asn(rng)]], // multi-origin
        1 => vec![vec![asn(rng), asn(rng)]],       // AS set
        _ => vec![vec![asn(rng)]],
    }
}

fn random_table(rng: &mut Rng) -> Vec<Entry> {
    let mut seen = HashSet::new();
    let mut table = Vec::new();
    let mut add = |prefix: IpNet, rng: &mut Rng, table: &mut Vec<Entry>| {
        if seen.insert(prefix) {
            table.push(Entry { prefix, origin: random_origin(rng) });
        }
    };
    for _ in 0..1_500 {
        let len = 8 + rng.below(17) as u8;
        let base = IpNet::new(IpAddr::V4(Ipv4Addr::from(rng.next() as u32)), len).unwrap().trunc();
        add(base, rng, &mut table);
        // Nest more specifics inside, sometimes several levels deep.
        let mut parent = base;
        for _ in 0..rng.below(4) {
            let IpNet::V4(p) = parent else { unreachable!() };
            let child_len = (p.prefix_len() + 1 + rng.below(6) as u8).min(32);
            let host = u32::from(p.network()) | (rng.next() as u32 & !u32::from(p.netmask()));
            let child = IpNet::new(IpAddr::V4(host.into()), child_len).unwrap().trunc();
            add(child, rng, &mut table);
            parent = child;
        }
    }
    for _ in 0..400 {
        let len = 32 + rng.below(33) as u8;
        let bits = (0x2001_0db8u128 << 96) | u128::from(rng.next() as u32) << 64 | u128::from(rng.next());
        let net = IpNet::new(IpAddr::V6(Ipv6Addr::from(bits)), len).unwrap().trunc();
        add(net, rng, &mut table);
    }
    table
}

fn probes(rng: &mut Rng, table: &[Entry]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for _ in 0..3_000 {
        let entry = &table[rng.below(table.len() as u64) as usize];
        out.push(match entry.prefix {
            IpNet::V4(net) => {
                IpAddr::V4((u32::from(net.network()) | (rng.next() as u32 & !u32::from(net.netmask()))).into())
            }
            IpNet::V6(net) => {
                IpAddr::V6((u128::from(net.network()) | (u128::from(rng.next()) & !u128::from(net.netmask()))).into())
            }
        });
    }
    for _ in 0..500 {
        out.push(IpAddr::V4(Ipv4Addr::from(rng.next() as u32)));
    }
    out.push("::1".parse().unwrap());
    out
}

/// The brute-force answer, in `botscope isp lookup`'s text format.
fn expected_line(table: &[Entry], owners: &[(String, Vec<u32>)], ip: IpAddr) -> String {
    let best = table.iter().filter(|e| e.prefix.contains(&ip)).max_by_key(|e| e.prefix.prefix_len());
    let Some(best) = best else { return format!("{ip}\t-\t-\tunattributed") };
    let mut isps: Vec<&str> = Vec::new();
    for asn in best.origin.iter().flatten() {
        for (handle, asns) in owners {
            if asns.contains(asn) && !isps.contains(&handle.as_str()) {
                isps.push(handle);
            }
        }
    }
    let isps = if isps.is_empty() { "-".to_string() } else { isps.join(",") };
    format!("{ip}\t{}\t{}\t{isps}", best.prefix, origin_text(&best.origin))
}

#[test]
fn lookup_matches_brute_force_longest_prefix_on_unseen_data() {
    let mut rng = Rng::from_clock("lookup_matches_brute_force");
    let scratch = Scratch::new();
    let table = random_table(&mut rng);

    // Registry: six ISPs owning disjoint handfuls of the ASNs in use; the rest stay unregistered.
    let owners: Vec<(String, Vec<u32>)> =
        (0..6).map(|i| (format!("isp-{i}"), (0..4).map(|j| 64_500 + i * 5 + j).collect())).collect();
    let mut registry = String::new();
    for (handle, asns) in &owners {
        registry.push_str(&format!(
            "[[isp]]\nhandle = \"{handle}\"\nname = \"{handle}\"\nasns = {asns:?}\ncontact = \"abuse@{handle}.example\"\n\n"
        ));
    }
    let registry = scratch.write("isps.toml", registry);

    // Gzipped, with comments and a malformed line among the real ones.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    writeln!(encoder, "# generated table").unwrap();
    for (n, entry) in table.iter().enumerate() {
        if n == 10 {
            writeln!(encoder, "10.0.0.1\t8\t64500").unwrap();
        }
        writeln!(encoder, "{}\t{}\t{}", entry.prefix.addr(), entry.prefix.prefix_len(), origin_text(&entry.origin))
            .unwrap();
    }
    let pfx2as = scratch.write("table.pfx2as.gz", encoder.finish().unwrap());

    let load = scratch
        .run(&["isp", "load", "--pfx2as", pfx2as.to_str().unwrap(), "--registry", registry.to_str().unwrap()])
        .ok();
    assert!(load.stdout.contains(&format!("routing table: {} prefixes", table.len())), "{}", load.stdout);
    assert!(
        load.stderr.contains("table.pfx2as.gz:12: skipped") && load.stderr.contains("host bits"),
        "{}",
        load.stderr
    );
    assert!(load.stdout.contains("ISP registry: 6 ISPs with 24 ASNs"), "{}", load.stdout);

    let addresses = probes(&mut rng, &table);
    let input: String = addresses.iter().map(|a| format!("{a}\n")).collect();
    let out = scratch.run_with_stdin(&["isp", "lookup", "-"], input.as_bytes()).ok();
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(got.len(), addresses.len());
    let mut attributed = 0;
    for (ip, line) in addresses.iter().zip(got) {
        let want = expected_line(&table, &owners, *ip);
        assert_eq!(line, want, "wrong answer for {ip}");
        attributed += usize::from(!line.ends_with("\t-") && !line.ends_with("unattributed"));
    }
    assert!(attributed > 100, "too few probes hit a registry ISP ({attributed}) to test the mapping");
}

#[test]
fn unattributed_addresses_exit_zero_and_json_says_so() {
    let scratch = Scratch::new();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/examples/");
    scratch
        .run(&[
            "isp",
            "load",
            "--pfx2as",
            &format!("{examples}pfx2as.txt"),
            "--registry",
            &format!("{examples}isps.toml"),
        ])
        .ok();
    let out = scratch.run(&["isp", "lookup", "198.18.0.1", "127.16.4.21"]).ok();
    assert_eq!(out.stdout, "198.18.0.1\t-\t-\tunattributed\n127.16.4.21\t127.16.0.0/14\t64500\thikari-net\n");
    let out = scratch.run(&["isp", "lookup", "--json", "2001:db8:21::1", "198.18.0.1"]).ok();
    let answers: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(answers[0]["prefix"], "2001:db8:20::/44");
    assert_eq!(answers[0]["asn"], "64501_64511");
    assert_eq!(answers[0]["isps"], serde_json::json!(["hikari-net", "sakura-bb"]));
    assert_eq!(answers[1]["attributed"], false);
    assert_eq!(answers[1]["prefix"], serde_json::Value::Null);

    let out = scratch.run(&["isp", "lookup", "127.16.4.21", "not-an-ip", "::1"]).fails();
    assert_eq!(out.stdout.lines().count(), 2, "valid addresses are still answered");
    assert!(out.stderr.contains("not-an-ip"), "{}", out.stderr);
}

#[test]
fn a_file_without_usable_lines_leaves_the_stored_table_alone() {
    let scratch = Scratch::new();
    scratch.write("good.txt", "192.0.2.0\t24\t64500\n");
    scratch.write("junk.txt", "<html>not a table</html>\n\n");
    scratch.run(&["isp", "load", "--pfx2as", "good.txt"]).ok();
    let out = scratch.run(&["isp", "load", "--pfx2as", "junk.txt"]).fails();
    assert!(out.stderr.contains("junk.txt:1: skipped") && out.stderr.contains("left unchanged"), "{}", out.stderr);
    let out = scratch.run(&["isp", "lookup", "192.0.2.9"]).ok();
    assert_eq!(out.stdout, "192.0.2.9\t192.0.2.0/24\t64500\t-\n");
}

#[test]
fn a_bad_registry_is_refused_with_its_line_and_changes_nothing() {
    let scratch = Scratch::new();
    scratch.write("pfx.txt", "192.0.2.0\t24\t64500\n");
    scratch
        .write("isps.toml", "[[isp]]\nhandle = \"one\"\nname = \"One\"\nasns = [64500]\ncontact = \"a@one.example\"\n");
    scratch.write(
        "bad.toml",
        "[[isp]]\nhandle = \"two\"\nname = \"Two\"\nasns = [64500]\ncontact = \"a@two.example\"\nlanguage = \"de\"\n",
    );
    scratch.run(&["isp", "load", "--pfx2as", "pfx.txt", "--registry", "isps.toml"]).ok();
    let out = scratch.run(&["isp", "load", "--registry", "bad.toml"]).fails();
    assert!(out.stderr.contains("line 6") && out.stderr.contains("de"), "{}", out.stderr);
    assert!(scratch.run(&["isp", "lookup", "192.0.2.1"]).ok().stdout.ends_with("\tone\n"));
    let none = scratch.run(&["isp", "load"]);
    assert_eq!(none.code, Some(2), "isp load needs --pfx2as or --registry");
}
