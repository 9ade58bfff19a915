//! What a real `botscope serve` holds for anyone who reaches it: TAXII statuses, the overview's
//! cross-reporter figure, half-sent request heads and idle connections, and query values no
//! handler may panic on (issue 16, findings 3, 4, 7 and 9).
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]
#![allow(
    clippy::disallowed_methods,
    reason = "raw connections to the centre this test started on loopback; no survey target"
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Scratch, make_token, start_center};
use reqwest::StatusCode;

const MEDIA: &str = "application/taxii+json;version=2.1";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The server process's resident memory, bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Regression (issue 16, finding 3): four 0.9 MB envelopes of empty objects from one ISP token
/// grew the server by about 2.7 GB, because every status was kept for ever with a copy of every
/// object's failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxii_statuses_expire_are_capped_and_stay_small() {
    let scratch = Scratch::new();
    let db_path = scratch.db();
    let db = db_path.display().to_string();
    scratch.load_example_isps(&db_path);
    let hikari = make_token(&scratch, &db, "isp", Some("hikari-net"), None);
    let sakura = make_token(&scratch, &db, "isp", Some("sakura-bb"), None);
    let admin = make_token(&scratch, &db, "admin", None, None);
    let (server, base) = start_center(
        &scratch,
        &db,
        &[
            "--correlate-every",
            "0",
            "--taxii-status-ttl",
            "8s",
            "--taxii-statuses",
            "4",
            "--taxii-statuses-per-token",
            "2",
        ],
    );
    let http = client();
    let objects =
        |isp: &str| format!("{base}/taxii2/api1/collections/{}/objects/", botscope_web::taxii::isp_collection(isp));
    let post = |url: String, token: &str, body: String| {
        http.post(url).bearer_auth(token).header("accept", MEDIA).header("content-type", MEDIA).body(body).send()
    };
    let status_of = |id: &str, token: &str| {
        http.get(format!("{base}/taxii2/api1/status/{id}/")).bearer_auth(token).header("accept", MEDIA).send()
    };

    // 300,000 empty objects in 0.9 MB: every one fails, each is counted, few are listed.
    let empties = format!("{{\"objects\":[{}{{}}]}}", "{},".repeat(299_999));
    assert!(empties.len() < 1 << 20);
    let before = resident_bytes(server.0.id());
    let mut ids = Vec::new();
    for _ in 0..4 {
        let response = post(objects("hikari-net"), &hikari, empties.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let text = response.text().await.unwrap();
        assert!(text.len() < 64 << 10, "a status is small: {} bytes", text.len());
        let status: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!((status["total_count"].as_u64(), status["failure_count"].as_u64()), (Some(300_000), Some(300_000)));
        assert_eq!(status["success_count"], 0);
        let listed = status["failures"].as_array().unwrap().len();
        assert!(listed > 0 && listed <= botscope_web::taxii::LISTED, "{listed} failures listed");
        ids.push(status["id"].as_str().unwrap().to_string());
    }
    let grown = resident_bytes(server.0.id()).saturating_sub(before);
    assert!(grown < 256 << 20, "four posts grew the server by {} MiB", grown >> 20);

    // Two per token: the two oldest of hikari's are gone, like statuses that never were.
    for (n, id) in ids.iter().enumerate() {
        let expected = if n < 2 { StatusCode::NOT_FOUND } else { StatusCode::OK };
        assert_eq!(status_of(id, &hikari).await.unwrap().status(), expected, "status {n}");
    }
    // Only the token that posted (or an admin) reads a status.
    assert_eq!(status_of(&ids[3], &sakura).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(status_of(&ids[3], &admin).await.unwrap().status(), StatusCode::OK);
    // Four in all: two more from sakura and one from the admin push hikari's oldest out.
    let one = r#"{"objects":[{"type":"indicator","spec_version":"2.1"}]}"#.to_string();
    let mut others = Vec::new();
    let mut last_post = Instant::now();
    for (isp, token) in [("sakura-bb", &sakura), ("sakura-bb", &sakura), ("hikari-net", &admin)] {
        last_post = Instant::now();
        let response = post(objects(isp), token, one.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let status: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        others.push(status["id"].as_str().unwrap().to_string());
    }
    assert_eq!(status_of(&ids[2], &hikari).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(status_of(&ids[3], &hikari).await.unwrap().status(), StatusCode::OK);
    // After the TTL every status is unknown.
    tokio::time::sleep((last_post + Duration::from_millis(8_500)).saturating_duration_since(Instant::now())).await;
    assert_eq!(status_of(&ids[3], &hikari).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(status_of(&others[2], &admin).await.unwrap().status(), StatusCode::NOT_FOUND);
}

fn cnc_line(sensor: &str, host: u32) -> String {
    format!(
        r#"{{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"127.200.{}.{}","port":6667,"protocol":"tcp","score":0.9,"rank":1,"methods":["graph"],"seed_clients":4,"total_clients":5,"flows":12,"first_seen":"2026-11-02T09:00:03Z","last_seen":"2026-11-02T09:59:41Z","sensor":"{sensor}"}}"#,
        host / 256,
        host % 256
    )
}

/// Regression (issue 16, finding 4): 1,500 invented sensor names made the overview's figure of
/// "per-ISP and shared C&C reports" 1.1 million rows, a 285 MB page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_sensor_names_do_not_grow_the_overview_with_their_square() {
    let scratch = Scratch::new();
    let db_path = scratch.db();
    let db = db_path.display().to_string();
    let mut lines: Vec<String> = (1..=30).map(|h| cnc_line("isp-hikari", h)).collect();
    lines.extend((1..=10).map(|h| cnc_line("isp-sakura", h)));
    lines.extend((0..1500).map(|n| cnc_line(&format!("invented-{n:04}"), 1000 + n % 7)));
    scratch.write("cnc.jsonl", lines.join("\n"));
    scratch.run(&["--db", &db, "ingest", "cnc.jsonl"]).ok();
    let correlated = scratch.run(&["--db", &db, "correlate", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&correlated.stdout).unwrap();
    assert_eq!(report["per_reporter"].as_object().unwrap().len(), 20);
    assert_eq!(report["other_reporters"], 1502 - 20);
    assert!(report["reporter_overlap"].as_array().unwrap().len() <= 190);

    let (_server, base) = start_center(&scratch, &db, &["--correlate-every", "0", "--open-dashboard"]);
    let http = client();
    let page = http.get(format!("{base}/?lang=en")).send().await.unwrap().text().await.unwrap();
    assert!(page.len() < 4 << 20, "the overview is {} KiB", page.len() >> 10);
    assert!(page.contains("1482 more are summed as others"), "the page says how many were left out");
    let csv = http.get(format!("{base}/?format=csv&table=isp_overlap")).send().await.unwrap().text().await.unwrap();
    let rows = csv.lines().count() - 1;
    assert!(rows <= 20 + 1 + 190, "{rows} rows");
    assert!(csv.contains("isp-hikari,30\r\n") && csv.contains("isp-hikari & isp-sakura,10\r\n"), "{csv}");
    assert!(csv.contains("others (1482 analysers),7\r\n"), "{csv}");
}

/// Reads until the server closes the connection; `None` if it was still open after `wait`.
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(got),
            Err(_) => return None,
        }
    }
}

fn health(base: &str) -> Option<String> {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).ok()?;
    stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    read_until_closed(&mut stream, Duration::from_secs(10)).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Regression (issue 16, finding 7): 50 half-sent request heads were still held after 45 s.
#[test]
fn half_sent_request_heads_are_closed_after_the_header_timeout() {
    let scratch = Scratch::new();
    let db = scratch.db().display().to_string();
    let (_server, base) = start_center(&scratch, &db, &["--correlate-every", "0", "--header-timeout", "1s"]);
    let address = base.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let mut held: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(&address).unwrap();
            stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n").unwrap();
            stream
        })
        .collect();
    for (n, stream) in held.iter_mut().enumerate() {
        let left = Duration::from_secs(1 + 5).saturating_sub(started.elapsed());
        let answer = read_until_closed(stream, left.max(Duration::from_millis(1)));
        assert!(answer.is_some(), "connection {n} still open {:?} after its half-sent head", started.elapsed());
    }
    // A whole request still gets its answer, and kept-alive connections serve several.
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..2 {
        stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buffer = [0u8; 4096];
        let n = stream.read(&mut buffer).unwrap();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buffer[..n]));
    }
    // Idle after its last answer, it too is closed after the timeout.
    assert!(read_until_closed(&mut stream, Duration::from_secs(6)).is_some());
}

/// Regression (issue 16, finding 7): nothing capped connections, so idle ones could pile up
/// without bound.
#[test]
fn connections_beyond_the_cap_are_refused_and_the_centre_answers_once_others_close() {
    let scratch = Scratch::new();
    let db = scratch.db().display().to_string();
    let (_server, base) =
        start_center(&scratch, &db, &["--correlate-every", "0", "--header-timeout", "60s", "--max-connections", "5"]);
    let address = base.trim_start_matches("http://").to_string();
    // The start-up health check's connection is closed; let the server see it go.
    std::thread::sleep(Duration::from_millis(300));
    let idle: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(&address).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    for n in 6..=10 {
        let mut extra = TcpStream::connect(&address).unwrap();
        let answer = read_until_closed(&mut extra, Duration::from_secs(5));
        let answer = answer.unwrap_or_else(|| panic!("connection {n} beyond the cap was kept open"));
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 503"), "connection {n}: {text}");
    }
    let refused = health(&base).unwrap_or_default();
    assert!(!refused.starts_with("HTTP/1.1 200"), "the cap holds: {refused}");
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if health(&base).is_some_and(|reply| reply.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(Instant::now() < deadline, "/api/v1/health did not answer after the idle connections closed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Regression (issue 16, finding 9): `GET /api/v1/recheck?min_age_days=4294967295` panicked a
/// handler (a date before any date). Every other extreme query value is answered too, never with
/// a dropped connection or a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_min_age_days_is_answered_not_panicked() {
    let scratch = Scratch::new();
    let db_path = scratch.db();
    let db = db_path.display().to_string();
    scratch.load_example_isps(&db_path);
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/examples/records.jsonl");
    scratch.run(&["--db", &db, "ingest", examples]).ok();
    let surveyor = make_token(&scratch, &db, "surveyor", None, None);
    let admin = make_token(&scratch, &db, "admin", None, None);
    let hikari = make_token(&scratch, &db, "isp", Some("hikari-net"), None);
    let (_server, base) = start_center(&scratch, &db, &["--correlate-every", "0", "--open-dashboard"]);
    let http = client();

    let response = http
        .get(format!("{base}/api/v1/recheck?min_age_days=4294967295"))
        .bearer_auth(&surveyor)
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "", "no case is older than any date");

    let shared = format!("/taxii2/api1/collections/{}/objects/", botscope_web::taxii::SHARED_COLLECTION);
    let extremes: Vec<(String, &str)> = vec![
        ("/api/v1/recheck?min_age_days=18446744073709551616".into(), &surveyor),
        ("/api/v1/recheck?min_age_days=-1".into(), &surveyor),
        ("/api/v1/isp/report?period=day&date=262143-12-31&report=infected".into(), &hikari),
        ("/api/v1/isp/report?period=day&date=-262143-01-01&report=infected".into(), &hikari),
        ("/api/v1/isp/report?period=month&date=262143-12&report=default_credentials".into(), &hikari),
        ("/api/v1/isp/report?period=month&date=%2B262143-12&report=eol".into(), &hikari),
        ("/api/v1/isp/report?isp=hikari-net&period=day&date=9999999999-01-01&report=infected".into(), &admin),
        ("/api/v1/isp/notifications?status=x&format=csv".into(), &hikari),
        ("/api/v1/botnets/BN-99999999999999999999-1".into(), &admin),
        (format!("{shared}?limit=99999999999999999999999"), &admin),
        (format!("{shared}?limit=9223372036854775807"), &admin),
        (format!("{shared}?added_after=%2B262143-12-31T23:59:59Z"), &admin),
        (format!("{shared}?next=ffffffffffffffff"), &admin),
        ("/?from=262143-12-31&to=262143-12-31".into(), &admin),
        ("/?from=-262143-01-01".into(), &admin),
        ("/botnets?from=0000-01-01&to=262143-12-31".into(), &admin),
        ("/cnc?to=262143-12-31&format=csv&table=cnc".into(), &admin),
        ("/coverage?from=1970-01-01&to=262143-12-31".into(), &admin),
        ("/isps?from=262143-12-31".into(), &admin),
        ("/check?lang=xx".into(), &admin),
    ];
    for (path, token) in &extremes {
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .header("accept", MEDIA)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer ({e})"));
        assert!(response.status().as_u16() < 500, "{path}: {}", response.status());
    }
    assert!(health(&base).is_some_and(|reply| reply.starts_with("HTTP/1.1 200")));
}
