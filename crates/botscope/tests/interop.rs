//! The survey against real login servers on 127.0.0.1: BusyBox telnetd with the real BusyBox
//! `login`, Dropbear, and lighttpd with Basic and Digest authentication (started by
//! `scripts/peers/start-peers.sh`, which needs root for the servers' private account files).
//! Behind the logins sit the environments of real devices: Debian's sh, BusyBox ash with line
//! editing (behind telnetd and Dropbear), a vendor CLI, and a shell that wants its terminal
//! queries answered. Each weak login must be found with the right dictionary id, each strong one
//! not, and the servers' own logs must show the attempts really happened.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

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

/// A scratch dictionary of shipped pairs (weights falling in the given order) and their ids.
fn dictionary_of(scratch: &Scratch, pairs: &[(&str, &str)]) -> (PathBuf, HashMap<String, u64>) {
    let mut text = String::from("version = 7\n");
    let mut ids = HashMap::new();
    for (rank, (user, pass)) in pairs.iter().enumerate() {
        let (id, _) = shipped_id(user, pass);
        ids.insert(format!("{user}/{pass}"), id);
        text.push_str(&format!(
            "[[credential]]\nid = {id}\nusername = \"{user}\"\npassword = \"{pass}\"\nweight = {}\n",
            10 - rank
        ));
    }
    (scratch.write("dictionary.toml", text), ids)
}

/// Runs the survey on 127.0.0.1 over `ports` ("PORT/PROTOCOL"); returns the records, the audit
/// lines and the summary.
fn survey(scratch: &Scratch, ports: &[String], dictionary: &std::path::Path) -> (Vec<Value>, Vec<Value>, Value) {
    let run = scratch
        .botscope()
        .args(["survey", "--lab", "--scope", "127.0.0.1", "--ports", &ports.join(","), "--credentials"])
        .arg(dictionary)
        .args(["--rate", "100", "--max-attempts-per-host", "1000", "--read-timeout", "8"])
        .args(["--out", "out.jsonl", "--audit", "audit.jsonl", "--summary", "summary.json"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let lines = |file: &str| -> Vec<Value> {
        std::fs::read_to_string(scratch.path(file)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let summary = serde_json::from_str(&std::fs::read_to_string(scratch.path("summary.json")).unwrap()).unwrap();
    (lines("out.jsonl"), lines("audit.jsonl"), summary)
}

fn credential_findings(records: &[Value], port: u16) -> Vec<u64> {
    records
        .iter()
        .filter(|r| r["kind"] == "finding" && r["issue"] == "default_credential" && r["port"] == port)
        .map(|r| r["credential_id"].as_u64().unwrap())
        .collect()
}

fn audited(audit: &[Value], port: u16, outcome: &str) -> Vec<u64> {
    audit
        .iter()
        .filter(|a| a["port"] == port && a["outcome"] == outcome)
        .map(|a| a["credential_id"].as_u64().unwrap())
        .collect()
}

/// The issue 17 finding: BusyBox ash (line editing on) asks the terminal for the cursor position
/// after its prompt, so a survey that waited for the prompt to end in `$` or `#` timed out and
/// logged the Mirai pair as `error`. Also a vendor CLI (no `echo`: kept as unconfirmed evidence,
/// never a finding) and a device that wants its terminal queries answered before the prompt.
#[test]
fn busybox_ash_vendor_cli_and_terminal_queries_are_judged_like_a_terminal() {
    let scratch = Scratch::new();
    let peers = Peers::start(&scratch);
    let port = |name: &str| *peers.ports.get(name).unwrap_or_else(|| panic!("no {name} in {:?}", peers.ports));
    let pairs = [("admin", "1234"), ("root", "xc3511"), ("admin", "admin")];
    let (dictionary, ids) = dictionary_of(&scratch, &pairs);
    let services = [
        ("telnet_ash", "telnet", Some("root/xc3511")),
        ("telnet_ash_strong", "telnet", None),
        ("ssh_ash", "ssh", Some("root/xc3511")),
        ("telnet_tty", "telnet", Some("admin/1234")),
        ("telnet_cli", "telnet", None),
    ];
    let list: Vec<String> = services.iter().map(|(name, protocol, _)| format!("{}/{protocol}", port(name))).collect();
    let (records, audit, summary) = survey(&scratch, &list, &dictionary);

    for (name, _, weak) in services {
        let found = credential_findings(&records, port(name));
        match weak {
            Some(pair) => assert_eq!(found, vec![ids[pair]], "{name}: {records:?}\naudit: {audit:?}"),
            None => assert!(found.is_empty(), "{name}: reported weak: {found:?}"),
        }
        assert!(audited(&audit, port(name), "error").is_empty(), "{name}: an attempt ended in error: {audit:?}");
    }
    // The vendor CLI let admin/admin in and never echoed: kept as evidence (audited twice, the
    // second time on a fresh connection) and counted, but not a finding.
    assert_eq!(audited(&audit, port("telnet_cli"), "unconfirmed"), vec![ids["admin/admin"]; 2], "{audit:?}");
    assert!(audit.iter().any(|a| a["port"] == port("telnet_cli") && a["retry"] == true), "{audit:?}");
    assert_eq!(summary["logins"]["telnet"]["unconfirmed"], 2, "{summary}");
    assert_eq!(summary["logins"]["telnet"]["retried"], 1, "{summary}");
    assert_eq!(summary["logins"]["telnet"]["success"], 2, "{summary}");
    assert_eq!(summary["logins"]["ssh"]["success"], 1, "{summary}");
    // The round names the dictionary revision it used.
    assert_eq!(summary["dictionary_version"], 7, "{summary}");
    assert_eq!(summary["dictionary_pairs"], pairs.len(), "{summary}");
    // The strong BusyBox device rejected every pair itself, and the weak ones really let the
    // survey in (their login shells note each accepted login).
    let strong_log = std::fs::read_to_string(peers.dir.join("telnet_ash_strong/auth.log")).unwrap_or_default();
    assert_eq!(strong_log.lines().filter(|l| l.contains("invalid password")).count(), pairs.len(), "{strong_log}");
    assert!(!strong_log.contains("login accepted"), "{strong_log}");
    for name in ["telnet_ash", "telnet_tty", "telnet_cli"] {
        let log = std::fs::read_to_string(peers.dir.join(name).join("auth.log")).unwrap_or_default();
        assert!(log.contains("login accepted for"), "{name} auth.log:\n{log}");
    }
    for file in ["out.jsonl", "audit.jsonl", "summary.json"] {
        let text = std::fs::read_to_string(scratch.path(file)).unwrap();
        assert!(!text.contains("xc3511") && !text.contains("Xq7#pL2v!9mR"), "{file} leaks a password");
    }
}

/// A loopback proxy in front of `upstream` that resets (RST) the first connection on which the
/// client sends a second line (the password, after the user name) instead of passing it on;
/// every other connection is forwarded untouched.
#[allow(clippy::disallowed_methods, reason = "relays to the test's own telnetd on 127.0.0.1; no survey target")]
fn reset_first_login(upstream: u16) -> u16 {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let done = done.clone();
            std::thread::spawn(move || {
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
                let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
                // Set when this connection is reset: the other direction must then not send a FIN
                // first (the RST goes out when the last handle of the socket closes).
                let resetting = Arc::new(AtomicBool::new(false));
                let quiet = resetting.clone();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    if !quiet.load(Ordering::SeqCst) {
                        let _ = to_client.shutdown(Shutdown::Write);
                    }
                });
                let mut lines = 0;
                let mut buf = [0u8; 4096];
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    lines += buf[..n].iter().filter(|b| **b == b'\n').count();
                    if lines >= 2 && !done.swap(true, Ordering::SeqCst) {
                        resetting.store(true, Ordering::SeqCst);
                        socket2::SockRef::from(&client).set_linger(Some(std::time::Duration::ZERO)).unwrap();
                        let _ = server.shutdown(Shutdown::Both);
                        return;
                    }
                    if server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

/// No silent loss: a reset right after the password used to count as the device saying no, so
/// the one pair that worked was never reported. It is retried on a fresh connection instead.
#[test]
fn a_reset_after_the_password_does_not_lose_the_finding() {
    let scratch = Scratch::new();
    let peers = Peers::start(&scratch);
    let ash = *peers.ports.get("telnet_ash").unwrap();
    let proxy = reset_first_login(ash);
    let (dictionary, ids) = dictionary_of(&scratch, &[("root", "xc3511"), ("admin", "admin")]);
    let (records, audit, summary) = survey(&scratch, &[format!("{proxy}/telnet")], &dictionary);

    assert_eq!(credential_findings(&records, proxy), vec![ids["root/xc3511"]], "{records:?}\naudit: {audit:?}");
    assert_eq!(audited(&audit, proxy, "error"), vec![ids["root/xc3511"]], "{audit:?}");
    let success: Vec<&Value> = audit.iter().filter(|a| a["outcome"] == "success").collect();
    assert_eq!(success.len(), 1, "{audit:?}");
    assert_eq!(success[0]["retry"], true, "{audit:?}");
    assert_eq!(summary["logins"]["telnet"]["error"], 1, "{summary}");
    assert_eq!(summary["logins"]["telnet"]["retried"], 1, "{summary}");
    assert_eq!(summary["logins"]["telnet"]["success"], 1, "{summary}");
}

/// One Recog-layout file for the identification test (the file name says what it matches).
fn recog_file(dir: &std::path::Path, file: &str, pattern: &str, example: &str, params: &[(&str, &str)]) {
    let escape = |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
    let params: String = params
        .iter()
        .map(|(name, value)| format!("    <param pos=\"0\" name=\"{name}\" value=\"{}\"/>\n", escape(value)))
        .collect();
    let xml = format!(
        "<?xml version=\"1.0\"?>\n<fingerprints>\n  <fingerprint pattern=\"{}\">\n    <description>interop</description>\n    <example>{}</example>\n{params}  </fingerprint>\n</fingerprints>\n",
        escape(pattern),
        escape(example)
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), xml).unwrap();
}

/// Issue 17, item 3: every field a device names itself in reaches identification, read from
/// real servers: the FTP greeting (vsftpd), the RTSP `Server` header (the GStreamer RTSP server,
/// identified by Recog's own `rtsp_servers.xml`), and over https (lighttpd + OpenSSL) the
/// certificate's subject and issuer, `WWW-Authenticate` and `Set-Cookie`. Each field gets its own
/// run with only that field's file, so a match can only come from that field. The certificate's
/// names must read exactly as OpenSSL's RFC 2253 output writes them.
#[test]
fn greetings_headers_and_certificates_of_real_servers_identify_the_device() {
    let scratch = Scratch::new();
    let peers = Peers::start(&scratch);
    let port = |name: &str| *peers.ports.get(name).unwrap_or_else(|| panic!("no {name} in {:?}", peers.ports));
    let (dictionary, _) = dictionary_of(&scratch, &[("admin", "admin")]);
    let rfc2253 = |what: &str| {
        let out = Command::new("openssl")
            .args(["x509", "-noout", what, "-nameopt", "RFC2253", "-in"])
            .arg(peers.dir.join("https_camera/device.pem"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().split_once('=').unwrap().1.to_string()
    };
    let (subject, issuer) = (rfc2253("-subject"), rfc2253("-issuer"));
    assert_eq!(subject, r"CN=IPC-EX2041,OU=Network Camera,O=Example Camera Works\, Ltd.,ST=Tokyo,C=JP");

    let recog_rtsp =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../survey/tests/data/recog/rtsp_servers.xml");
    // (protocol, peer, writes the fingerprint directory, the vendor and model it must identify)
    type WriteRules<'a> = Box<dyn Fn(&std::path::Path) + 'a>;
    let cases: Vec<(&str, &str, WriteRules, (&str, &str))> = vec![
        (
            "ftp",
            "ftp_vsftpd",
            Box::new(|dir| {
                recog_file(
                    dir,
                    "ftp_banners.xml",
                    r"^\(vsFTPd (\d+\.\d+\.\d+)\)$",
                    "(vsFTPd 3.0.3)",
                    &[("service.vendor", "vsftpd project"), ("service.product", "vsFTPd")],
                )
            }),
            ("vsftpd project", "vsFTPd"),
        ),
        (
            "rtsp",
            "rtsp_gstreamer",
            Box::new(|dir: &std::path::Path| {
                std::fs::create_dir_all(dir).unwrap();
                std::fs::copy(&recog_rtsp, dir.join("rtsp_servers.xml")).unwrap();
            }),
            ("GStreamer", "GStreamer RTSP Server"),
        ),
        (
            "https",
            "https_camera",
            Box::new(|dir| {
                recog_file(
                    dir,
                    "x509_subjects.xml",
                    r"^CN=IPC-(EX\d+),OU=Network Camera,O=Example Camera Works\\, Ltd\.,ST=Tokyo,C=JP$",
                    r"CN=IPC-EX2041,OU=Network Camera,O=Example Camera Works\, Ltd.,ST=Tokyo,C=JP",
                    &[("hw.vendor", "Example Camera Works"), ("hw.product", "subject")],
                )
            }),
            ("Example Camera Works", "subject"),
        ),
        (
            "https",
            "https_camera",
            Box::new(|dir| {
                recog_file(
                    dir,
                    "x509_issuers.xml",
                    r"^CN=Example Camera Works Device CA,O=Example Camera Works,C=JP$",
                    "CN=Example Camera Works Device CA,O=Example Camera Works,C=JP",
                    &[("hw.vendor", "Example Camera Works"), ("hw.product", "issuer")],
                )
            }),
            ("Example Camera Works", "issuer"),
        ),
        (
            "https",
            "https_camera",
            Box::new(|dir| {
                recog_file(
                    dir,
                    "http_wwwauth.xml",
                    r#"^Basic realm="EX2041 Network Camera""#,
                    r#"Basic realm="EX2041 Network Camera""#,
                    &[("hw.vendor", "Example Camera Works"), ("hw.product", "realm")],
                )
            }),
            ("Example Camera Works", "realm"),
        ),
        (
            "https",
            "https_camera",
            Box::new(|dir| {
                recog_file(
                    dir,
                    "http_cookies.xml",
                    r"^EXCAMSESSID=[0-9a-f]+;",
                    "EXCAMSESSID=00aa; path=/",
                    &[("hw.vendor", "Example Camera Works"), ("hw.product", "cookie")],
                )
            }),
            ("Example Camera Works", "cookie"),
        ),
    ];
    for (index, (protocol, name, write, (vendor, model))) in cases.iter().enumerate() {
        let dir = scratch.path(&format!("recog-{index}"));
        write(&dir);
        let run = scratch
            .botscope()
            .args(["survey", "--lab", "--scope", "127.0.0.1", "--ports", &format!("{}/{protocol}", port(name))])
            .arg("--credentials")
            .arg(&dictionary)
            .arg("--fingerprints")
            .arg(&dir)
            .args(["--out", &format!("out-{index}.jsonl")])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let text = std::fs::read_to_string(scratch.path(&format!("out-{index}.jsonl"))).unwrap();
        let service: Value = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|r| r["kind"] == "service")
            .unwrap_or_else(|| panic!("{name}: no service record in {text}"));
        assert_eq!(service["status"], "success", "{name}: {service}");
        assert_eq!(service["device"]["vendor"], *vendor, "{name} case {index}: {service}");
        assert_eq!(service["device"]["model"], *model, "{name} case {index}: {service}");
        let banner = service["banner"].as_str().unwrap();
        if *protocol == "https" {
            assert!(banner.contains(&format!("Certificate subject: {subject}")), "{banner}");
            assert!(banner.contains(&format!("Certificate issuer: {issuer}")), "{banner}");
            assert!(banner.contains("Set-Cookie: EXCAMSESSID=0d1e2f"), "{banner}");
        }
    }
    // vsftpd's own log shows the survey said QUIT rather than dropping the line.
    let ftp_log = std::fs::read_to_string(peers.dir.join("ftp_vsftpd/vsftpd.log")).unwrap_or_default();
    assert!(!ftp_log.contains("LOGIN"), "the survey must never log in over FTP: {ftp_log}");
}
