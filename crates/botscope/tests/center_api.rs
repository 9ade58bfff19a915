//! The centre's API against a real `botscope serve`: ingest, tokens and roles, bad input, and a
//! server killed with -9 in the middle of ingest.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::collections::BTreeSet;

use common::{Scratch, finding_line, make_token, start_center};
use reqwest::StatusCode;

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post(base: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> (StatusCode, serde_json::Value) {
    let mut request = client().post(format!("{base}/api/v1/ingest")).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("reply is not JSON: {text}")))
}

async fn get(base: &str, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = client().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

fn notification(isp: &str, host: u8) -> String {
    format!(
        r#"{{"kind":"notification","isp":"{isp}","ip":"127.16.9.{host}","port":23,"reason":"default_credential","created_at":"2026-11-03T01:00:00Z","status":"sent","language":"ja"}}"#
    )
}

fn notification_id(line: &str) -> String {
    botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap().id().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_is_idempotent_answers_bad_lines_one_by_one_and_refuses_what_it_must() {
    let scratch = Scratch::new();
    let db = scratch.path("centre.db").display().to_string();
    let sensor = make_token(&scratch, &db, "sensor", None, Some("survey-7"));
    let (_server, base) = start_center(&scratch, &db, &["--max-body-mib", "1"]);

    let batch: String = (0..300).map(|n| finding_line(n) + "\n").collect();
    let (status, reply) = post(&base, Some(&sensor), batch.clone()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        (reply["accepted"].as_u64(), reply["inserted"].as_u64(), reply["errors"].as_bool()),
        (Some(300), Some(300), Some(false))
    );
    let (_, again) = post(&base, Some(&sensor), batch).await;
    assert_eq!((again["inserted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(300)));

    // Good lines are stored, bad ones answered with their line numbers and reasons.
    let mixed = format!(
        "{}\nnot json\n{}\n{{\"kind\":\"finding\",\"scroe\":1}}\n{}\n",
        finding_line(1000),
        notification("hikari-net", 1).replace("notification", "botnet"),
        notification("hikari-net", 2),
    );
    let (status, reply) = post(&base, Some(&sensor), mixed).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["accepted"], 1);
    assert_eq!(reply["error_count"], 4);
    let problems = reply["problems"].as_array().unwrap();
    let lines: Vec<u64> = problems.iter().map(|p| p["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 3, 4, 5], "{reply}");
    assert!(problems[1]["error"].as_str().unwrap().contains("unknown field"), "{reply}");
    assert!(problems[2]["error"].as_str().unwrap().contains("scroe"), "{reply}");
    assert!(problems[3]["error"].as_str().unwrap().contains("made by the centre"), "{reply}");

    // Records without a sensor are named after the token's label, and their ids derived from the
    // record as kept.
    let stored = common::open_sqlite(std::path::Path::new(&db)).await;
    let id = common::id_as_sent_by(&finding_line(1000), "survey-7");
    let record = botscope_store::Store::record(&stored, id).await.unwrap().expect("stored under its derived id");
    assert!(record.to_json_line().contains("\"sensor\":\"survey-7\""));

    // Bodies over the bound: 413, nothing stored.
    let huge: String = (0..9_000).map(|n| finding_line(50_000 + n) + "\n").collect();
    assert!(huge.len() > 1 << 20);
    let (status, reply) = post(&base, Some(&sensor), huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    // A gzip bomb is bounded by the decompressed limit too.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut bomb, &vec![b' '; 32 << 20]).unwrap();
    let response = client()
        .post(format!("{base}/api/v1/ingest"))
        .bearer_auth(&sensor)
        .header("content-encoding", "gzip")
        .body(bomb.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Tokens: none, unknown, revoked.
    assert_eq!(post(&base, None, "x").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(post(&base, Some("bst_not-a-token"), "x").await.0, StatusCode::UNAUTHORIZED);
    let spare = make_token(&scratch, &db, "sensor", None, None);
    let listed = scratch.run(&["--db", &db, "token", "list"]).ok().stdout;
    let spare_id =
        listed.lines().rfind(|l| l.contains("sensor")).unwrap().split_whitespace().next().unwrap().to_string();
    assert!(!listed.contains(&spare), "token list must never show a token");
    scratch.run(&["--db", &db, "token", "revoke", &spare_id]).ok();
    assert_eq!(post(&base, Some(&spare), finding_line(1)).await.0, StatusCode::UNAUTHORIZED);
    // Unknown routes and bad content encodings.
    assert_eq!(get(&base, "/api/v1/nothing", Some(&sensor)).await.0, StatusCode::NOT_FOUND);
    let (status, body) = get(&base, "/api/v1/ingest", Some(&sensor)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body.contains("\"error\""), "errors are JSON: {body}");
    let response = client()
        .post(format!("{base}/api/v1/ingest"))
        .bearer_auth(&sensor)
        .header("content-encoding", "br")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isp_token_sees_and_changes_only_its_own_notifications() {
    let scratch = Scratch::new();
    let db = scratch.path("centre.db").display().to_string();
    let admin = make_token(&scratch, &db, "admin", None, None);
    let isp_a = make_token(&scratch, &db, "isp", Some("hikari-net"), None);
    let isp_b = make_token(&scratch, &db, "isp", Some("sakura-bb"), None);
    let sensor = make_token(&scratch, &db, "sensor", None, None);
    let (_server, base) = start_center(&scratch, &db, &[]);
    let lines = [notification("hikari-net", 1), notification("hikari-net", 2), notification("sakura-bb", 3)];
    let (status, reply) = post(&base, Some(&admin), lines.join("\n")).await;
    assert_eq!((status, reply["accepted"].as_u64()), (StatusCode::OK, Some(3)), "{reply}");

    let (status, body) = get(&base, "/api/v1/isp/notifications", Some(&isp_a)).await;
    assert_eq!(status, StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ips: BTreeSet<&str> =
        listed["notifications"].as_array().unwrap().iter().map(|n| n["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, BTreeSet::from(["127.16.9.1", "127.16.9.2"]));
    assert!(!body.contains("127.16.9.3") && !body.contains("sakura-bb"));
    // A page at a time: one per page, the same two, then no next.
    let (status, first) = get(&base, "/api/v1/isp/notifications?limit=1", Some(&isp_a)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let next = first["next"].as_str().expect("a next page").to_string();
    let (_, second) = get(&base, &format!("/api/v1/isp/notifications?limit=1&after={next}"), Some(&isp_a)).await;
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    let (_, third) = get(
        &base,
        &format!("/api/v1/isp/notifications?limit=1&after={}", second["next"].as_str().unwrap()),
        Some(&isp_a),
    )
    .await;
    let third: serde_json::Value = serde_json::from_str(&third).unwrap();
    let paged: BTreeSet<&str> = [&first, &second]
        .iter()
        .flat_map(|page| page["notifications"].as_array().unwrap().iter().map(|n| n["ip"].as_str().unwrap()))
        .collect();
    assert_eq!(paged, ips);
    assert!(third["notifications"].as_array().unwrap().is_empty() && third["next"].is_null(), "{third}");
    // Asking for another ISP's list, or changing its case: as if it did not exist.
    let (status, body) = get(&base, "/api/v1/isp/notifications?isp=sakura-bb", Some(&isp_a)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("127.16.9.3"));
    let b_case = notification_id(&lines[2]);
    let update = |token: &str, id: &str, body: &str| {
        client()
            .post(format!("{base}/api/v1/isp/notifications/{id}/status"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let response = update(&isp_a, &b_case, r#"{"status":"fixed"}"#).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Its own: recorded; a bad status or body: 400; a sensor token: 403; no token: 401.
    let a_case = notification_id(&lines[0]);
    let response = update(&isp_a, &a_case, r#"{"status":"contacted","note":"called the subscriber"}"#).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(update(&isp_a, &a_case, r#"{"status":"sent"}"#).await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(update(&isp_a, &a_case, "{not json").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(update(&sensor, &a_case, r#"{"status":"fixed"}"#).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(get(&base, "/api/v1/isp/notifications", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&base, "/api/v1/isp/notifications", Some(&sensor)).await.0, StatusCode::FORBIDDEN);
    let (_, body) = get(&base, "/api/v1/isp/notifications?status=contacted&format=csv", Some(&isp_a)).await;
    assert_eq!(body.lines().count(), 2, "{body}");
    assert!(body.contains("127.16.9.1") && body.contains("contacted"));
    // ISP B still sees its case untouched, and an admin sees all three.
    let (_, body) = get(&base, "/api/v1/isp/notifications", Some(&isp_b)).await;
    assert!(body.contains("\"status\":\"sent\"") && body.contains("127.16.9.3") && !body.contains("127.16.9.1"));
    let (_, body) = get(&base, "/api/v1/isp/notifications", Some(&admin)).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["notifications"].as_array().unwrap().len(), 3);
    // Survey workers (surveyor tokens) fetch the open vulnerable cases; an ISP's or a plain
    // sensor's token may not (they would see every ISP's vulnerable subscribers).
    assert_eq!(get(&base, "/api/v1/recheck", Some(&isp_a)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(&base, "/api/v1/recheck", Some(&sensor)).await.0, StatusCode::FORBIDDEN);
    let surveyor = make_token(&scratch, &db, "surveyor", None, None);
    let (status, body) = get(&base, "/api/v1/recheck", Some(&surveyor)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.lines().count(), 3, "{body}");
    let (_, later) = get(&base, "/api/v1/recheck?min_age_days=100000", Some(&surveyor)).await;
    assert_eq!(later, "", "none was notified that long ago");
    assert_eq!(get(&base, "/api/v1/recheck?min_age_days=x", Some(&surveyor)).await.0, StatusCode::BAD_REQUEST);
    // Sensors may not post notifications (the centre makes them).
    let (_, reply) = post(&base, Some(&sensor), notification("hikari-net", 9)).await;
    assert_eq!(reply["error_count"], 1);
}

/// Posts batches as fast as the centre takes them, remembering what it acknowledged, until the
/// server dies; then checks every acknowledged record is in the store.
async fn acknowledged_batches_survive_kill_9(db: &str, open: impl AsyncFnOnce() -> Vec<uuid::Uuid>, scratch: &Scratch) {
    let sensor = make_token(scratch, db, "sensor", None, Some("kill-9"));
    let (server, base) = start_center(scratch, db, &[]);
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<uuid::Uuid>::new()));
    let sender = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            for batch in 0u32.. {
                let lines: Vec<String> = (0..500).map(|n| finding_line(batch * 500 + n)).collect();
                let ids: Vec<uuid::Uuid> = lines.iter().map(|l| common::id_as_sent_by(l, "kill-9")).collect();
                match client()
                    .post(format!("{base}/api/v1/ingest"))
                    .bearer_auth(&sensor)
                    .body(lines.join("\n"))
                    .send()
                    .await
                {
                    Ok(response) if response.status() == StatusCode::OK => {
                        let reply: serde_json::Value = response.json_or_text().await;
                        assert_eq!(reply["accepted"], 500);
                        acknowledged.lock().unwrap().extend(ids);
                    }
                    _ => break,
                }
            }
        })
    };
    // Let it ingest for a while, then kill it without warning.
    while acknowledged.lock().unwrap().len() < 20_000 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut server = server;
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    sender.await.unwrap();
    let acked = acknowledged.lock().unwrap().clone();
    let stored: BTreeSet<uuid::Uuid> = open().await.into_iter().collect();
    let lost = acked.iter().filter(|id| !stored.contains(id)).count();
    assert_eq!(lost, 0, "{lost} of {} acknowledged records were lost", acked.len());
    assert!(acked.len() >= 20_000);
}

trait JsonOrText {
    async fn json_or_text(self) -> serde_json::Value;
}

impl JsonOrText for reqwest::Response {
    async fn json_or_text(self) -> serde_json::Value {
        let text = self.text().await.unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    }
}

async fn all_ids(store: &impl botscope_store::Store) -> Vec<uuid::Uuid> {
    let query = botscope_store::RecordQuery::default();
    botscope_store::all_records(store, query).await.unwrap().iter().filter_map(|r| r.id()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_centre_killed_mid_ingest_loses_nothing_it_acknowledged_sqlite() {
    let scratch = Scratch::new();
    let path = scratch.path("centre.db");
    let db = path.display().to_string();
    acknowledged_batches_survive_kill_9(&db, async || all_ids(&common::open_sqlite(&path).await).await, &scratch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_centre_killed_mid_ingest_loses_nothing_it_acknowledged_postgres() {
    let scratch = Scratch::new();
    let cluster = botscope_testkit::PgCluster::start();
    let url = cluster.create_database("kill9");
    let open_url = url.clone();
    acknowledged_batches_survive_kill_9(
        &url,
        async move || all_ids(&botscope_store::PostgresStore::open(&open_url, 2).await.unwrap()).await,
        &scratch,
    )
    .await;
}

fn outcome(case: &str, isp: &str, status: &str, at: &str) -> String {
    format!(
        r#"{{"kind":"outcome","notification":"{case}","isp":"{isp}","status":"{status}","source":"recheck","at":"{at}"}}"#
    )
}

async fn case_status(base: &str, admin: &str, ip: &str) -> String {
    let (_, body) = get(base, "/api/v1/isp/notifications", Some(admin)).await;
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let case = listed["notifications"].as_array().unwrap().iter().find(|n| n["ip"] == ip).expect("the case").clone();
    case["status"].as_str().unwrap().to_string()
}

/// Issue 16, finding 1: a sensor token moved a case of any ISP from `contacted` to
/// `false_positive` (which drops it from later reports) by posting an outcome with source recheck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_sensor_token_rewrote_any_isps_case() {
    let scratch = Scratch::new();
    let db = scratch.path("centre.db").display().to_string();
    let admin = make_token(&scratch, &db, "admin", None, None);
    let sensor = make_token(&scratch, &db, "sensor", None, Some("darknet-a"));
    let surveyor = make_token(&scratch, &db, "surveyor", None, Some("survey-1"));
    let (_server, base) = start_center(&scratch, &db, &[]);
    let open_case = notification("hikari-net", 1).replace("\"sent\"", "\"contacted\"");
    let infected = r#"{"kind":"notification","isp":"hikari-net","ip":"127.16.9.7","reason":"infected","created_at":"2026-11-03T01:00:00Z","status":"sent","language":"ja"}"#;
    let (status, reply) = post(&base, Some(&admin), format!("{open_case}\n{infected}")).await;
    assert_eq!((status, reply["accepted"].as_u64()), (StatusCode::OK, Some(2)), "{reply}");
    let case = notification_id(&open_case);
    let infected_case = notification_id(infected);
    let past = "2026-11-05T00:00:00Z";

    // The attack as found: a sensor token's "re-survey" verdict.
    let (_, reply) = post(&base, Some(&sensor), outcome(&case, "hikari-net", "false_positive", past)).await;
    assert_eq!(reply["error_count"], 1, "{reply}");
    let (_, reply) = post(&base, Some(&sensor), outcome(&case, "hikari-net", "fixed", past)).await;
    assert!(reply["problems"][0]["error"].as_str().unwrap().contains("only surveyor tokens"), "{reply}");
    // A surveyor may say only fixed or not_fixed, about a case a re-survey judges, of the ISP it
    // names, never dated ahead.
    let refused = [
        outcome(&case, "hikari-net", "false_positive", past),
        outcome(&case, "hikari-net", "fixed", "2099-01-01T00:00:00Z"),
        outcome(&case, "sakura-bb", "fixed", past),
        outcome(&infected_case, "hikari-net", "fixed", past),
        outcome(&uuid::Uuid::new_v4().to_string(), "hikari-net", "fixed", past),
    ];
    let (_, reply) = post(&base, Some(&surveyor), refused.join("\n")).await;
    assert_eq!((reply["accepted"].as_u64(), reply["error_count"].as_u64()), (Some(0), Some(5)), "{reply}");
    assert_eq!(case_status(&base, &admin, "127.16.9.1").await, "contacted");
    assert_eq!(case_status(&base, &admin, "127.16.9.7").await, "sent");
    // The real verdict still moves the case.
    let (_, reply) = post(&base, Some(&surveyor), outcome(&case, "hikari-net", "fixed", past)).await;
    assert_eq!(reply["accepted"], 1, "{reply}");
    assert_eq!(case_status(&base, &admin, "127.16.9.1").await, "fixed");
}

/// Issue 16, finding 5: senders chose record ids and sensor names and the first write won: a
/// sensor pre-empted the telescope's record for a source, a forged id blocked another sender's
/// feed entry, and invented sensor names made a crowd of "independent" reporters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_senders_chose_ids_and_sensor_names_and_the_first_write_won() {
    let scratch = Scratch::new();
    let db = scratch.path("centre.db").display().to_string();
    let telescope = make_token(&scratch, &db, "sensor", None, Some("darknet-a"));
    let feeder = make_token(&scratch, &db, "sensor", None, Some("partner-feed"));
    let attacker = make_token(&scratch, &db, "sensor", None, Some("isp-mallory"));
    // A second token cannot take a name another live token holds.
    let taken = scratch.run(&["--db", &db, "token", "create", "--role", "sensor", "--label", "darknet-a"]).fails();
    assert!(taken.stderr.contains("held by another live token"), "{}", taken.stderr);
    let (_server, base) = start_center(&scratch, &db, &[]);

    let activity = r#"{"kind":"activity","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-03T00:00:00Z","src":"127.20.240.35","classification":"infected","packets":98,"distinct_destinations":103,"first_seen":"2026-11-02T00:23:51Z","last_seen":"2026-11-02T01:03:14Z","sensor":"darknet-a"}"#;
    let (_, reply) = post(&base, Some(&attacker), activity).await;
    assert!(reply["problems"][0]["error"].as_str().unwrap().contains("not a name of this token"), "{reply}");
    let unnamed = activity.replace(r#","sensor":"darknet-a""#, "");
    let (_, reply) = post(&base, Some(&attacker), unnamed).await;
    assert_eq!(reply["inserted"], 1, "stored as the attacker's own: {reply}");
    let (_, reply) = post(&base, Some(&telescope), activity).await;
    assert_eq!((reply["inserted"].as_u64(), reply["duplicates"].as_u64()), (Some(1), Some(0)), "{reply}");

    let entry = r#"{"kind":"feed_entry","source":"partner-feed","role":"cnc","ip":"127.200.0.10","port":6667,"first_seen":"2026-11-04T08:00:00Z"}"#;
    let real_id = botscope_model::parse_line(entry.as_bytes(), None).unwrap().unwrap().id().unwrap();
    let forged = format!(
        r#"{{"kind":"feed_entry","id":"{real_id}","source":"isp-mallory","role":"cnc","ip":"127.200.0.99","port":1,"first_seen":"2026-11-04T08:00:00Z"}}"#
    );
    let (_, reply) = post(&base, Some(&attacker), forged).await;
    assert!(reply["problems"][0]["error"].as_str().unwrap().contains("is not the id the centre derives"), "{reply}");
    let (_, reply) = post(&base, Some(&attacker), entry).await;
    assert_eq!(reply["error_count"], 1, "a feed is named after its sender: {reply}");
    let (_, reply) = post(&base, Some(&feeder), entry).await;
    assert_eq!(reply["inserted"], 1, "{reply}");

    let crowd: String = (0..1_500)
        .map(|n| {
            format!(
                r#"{{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"127.200.0.10","port":6667,"protocol":"tcp","score":0.97,"rank":1,"methods":["graph"],"seed_clients":41,"total_clients":58,"flows":1290,"first_seen":"2026-11-02T09:00:03Z","last_seen":"2026-11-02T09:59:41Z","sensor":"fake-{n}"}}"#
            ) + "\n"
        })
        .collect();
    let (_, reply) = post(&base, Some(&attacker), crowd).await;
    assert_eq!((reply["accepted"].as_u64(), reply["error_count"].as_u64()), (Some(0), Some(1_500)), "{reply}");
}

/// Issue 16, finding 8: gzip decoding and parsing ran on the async workers, so six concurrent
/// 128 MiB bombs stalled `/api/v1/health` for seconds. Now they run on the blocking pool: the
/// health check is answered while the bombs are still being read (an order, not a time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_gzip_bombs_stalled_the_health_check() {
    let scratch = Scratch::new();
    let db = scratch.path("centre.db").display().to_string();
    let sensor = make_token(&scratch, &db, "sensor", None, Some("bomber"));
    let (_server, base) = start_center(&scratch, &db, &["--max-body-mib", "16"]);
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Just under the decompressed bound (8 x 16 MiB), so each is read to the end.
    std::io::Write::write_all(&mut bomb, &vec![b' '; (128 << 20) - 4096]).unwrap();
    let bomb = bomb.finish().unwrap();
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut bombs = Vec::new();
    for _ in 0..6 {
        let (base, sensor, bomb, finished) = (base.clone(), sensor.clone(), bomb.clone(), finished.clone());
        bombs.push(tokio::spawn(async move {
            let response = client()
                .post(format!("{base}/api/v1/ingest"))
                .bearer_auth(&sensor)
                .header("content-encoding", "gzip")
                .body(bomb)
                .send()
                .await
                .unwrap();
            finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            response.status()
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, _) = get(&base, "/api/v1/health", None).await;
    let done_when_healthy = finished.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(status, StatusCode::OK);
    for bomb in bombs {
        assert_eq!(bomb.await.unwrap(), StatusCode::OK, "a batch of blank lines is read and answered");
    }
    assert_eq!(done_when_healthy, 0, "the health check waited for a bomb to be decoded");
}

/// Prometheus's own checker (Debian's `prometheus` package) on the exposition: no error and no
/// lint problem.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let done = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&done.stdout), String::from_utf8_lossy(&done.stderr));
    assert!(done.status.success() && said.trim().is_empty(), "promtool: {said}\n{text}");
}

/// The value of one sample line of the exposition (`name{labels}` exactly as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics_tell_a_monitor_what_the_centre_does() {
    let scratch = Scratch::new();
    let db = scratch.path("centre.db").display().to_string();
    let sensor = make_token(&scratch, &db, "sensor", None, Some("survey-7"));
    let (_server, base) = start_center(&scratch, &db, &[]);

    // Liveness reads nothing; readiness asks the store for its migrations.
    let (status, body) = get(&base, "/api/v1/health", None).await;
    assert_eq!(status, StatusCode::OK);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert!(health.get("records").is_none(), "health counts nothing: {body}");
    let (status, body) = get(&base, "/api/v1/ready", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(ready["schema"].as_i64().unwrap() > 0, "{body}");

    // Some traffic: a batch with one bad line, a batch without a token, a path that is nowhere.
    let batch: String = (0..5).map(|n| finding_line(n) + "\n").collect::<String>() + "{not json\n";
    let (status, reply) = post(&base, Some(&sensor), batch).await;
    assert_eq!((status, reply["inserted"].as_u64()), (StatusCode::OK, Some(5)), "{reply}");
    let (status, _) = post(&base, None, finding_line(9)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(&base, "/no/such/page", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&base, "/api/v1/botnets/BN-2026-0001", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, text) = get(&base, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    promtool_accepts(&text);
    let requests = |method: &str, route: &str, status: u16| {
        sample(
            &text,
            &format!("botscope_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(requests("POST", "/api/v1/ingest", 200), Some(1.0), "{text}");
    assert_eq!(requests("POST", "/api/v1/ingest", 401), Some(1.0), "{text}");
    assert_eq!(requests("GET", "/api/v1/ready", 200), Some(1.0), "{text}");
    // Routes by template, so that no request grows the label set.
    assert_eq!(requests("GET", "/api/v1/botnets/{serial}", 401), Some(1.0), "{text}");
    assert_eq!(requests("GET", "unmatched", 404), Some(1.0), "{text}");
    assert!(!text.contains("BN-2026-0001") && !text.contains("/no/such/page"), "{text}");
    assert!(requests("GET", "/api/v1/health", 200).unwrap() >= 2.0, "start_center's own check too: {text}");
    assert_eq!(sample(&text, "botscope_ingest_lines_total"), Some(6.0), "{text}");
    assert_eq!(sample(&text, "botscope_ingest_records_inserted_total"), Some(5.0), "{text}");
    assert_eq!(sample(&text, "botscope_ingest_lines_refused_total"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "botscope_ingest_batches_waiting"), Some(0.0), "{text}");
    // The histogram's +Inf bucket counts every ingest answered.
    let ingest_count =
        sample(&text, "botscope_http_request_duration_seconds_bucket{route=\"/api/v1/ingest\",le=\"+Inf\"}");
    assert_eq!(ingest_count, Some(2.0), "{text}");
    // This very request is being served.
    assert!(sample(&text, "botscope_http_connections_open").unwrap() >= 1.0, "{text}");
}

/// The store going away mid-run: liveness still answers (the process is fine), readiness says
/// the store does not answer and why (connection refused), not only that a pool waited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_the_cause_when_the_store_stops_answering() {
    let scratch = Scratch::new();
    let cluster = botscope_testkit::PgCluster::start();
    let url = cluster.create_database("ready");
    let (_server, base) = start_center(&scratch, &url, &["--correlate-every", "0"]);
    let (status, _) = get(&base, "/api/v1/ready", None).await;
    assert_eq!(status, StatusCode::OK);
    cluster.stop();
    let (status, body) = get(&base, "/api/v1/ready", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // The pool's wait (seconds), then one direct connection names the cause.
    assert!(body.contains("the store does not answer") && body.contains("refused"), "{body}");
    assert!(!body.contains("127.0.0.1"), "no store address for an anonymous caller: {body}");
    let (status, _) = get(&base, "/api/v1/health", None).await;
    assert_eq!(status, StatusCode::OK);
}

/// `[serve]` in botscope.toml sets what `serve`'s flags set, and a flag given wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_its_settings_from_the_configuration_and_flags_win() {
    let scratch = Scratch::new();
    let db = scratch.path("centre.db").display().to_string();
    let from_file = botscope_testkit::free_loopback_port();
    let config = format!("[serve]\nlisten = \"127.0.0.1:{from_file}\"\ncorrelate_every = \"0s\"\nmax_body_mib = 1\n");
    scratch.write("botscope.toml", &config);
    let config_path = scratch.path("botscope.toml").display().to_string();
    let start = |extra: &[&str]| {
        common::Reaped(
            scratch
                .botscope()
                .args(["--config", &config_path, "--db", &db, "serve"])
                .args(extra)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .unwrap(),
        )
    };
    {
        let _server = start(&[]);
        common::wait_for_port(from_file, "the centre on the configured address");
        let base = format!("http://127.0.0.1:{from_file}");
        let (status, _) = get(&base, "/api/v1/health", None).await;
        assert_eq!(status, StatusCode::OK);
        // serve.max_body_mib = 1: a 2 MiB body is refused before it is read.
        let sensor = make_token(&scratch, &db, "sensor", None, Some("survey-9"));
        let (status, _) = post(&base, Some(&sensor), vec![b'x'; 2 << 20]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }
    let from_flag = botscope_testkit::free_loopback_port();
    let _server = start(&["--listen", &format!("127.0.0.1:{from_flag}")]);
    common::wait_for_port(from_flag, "the centre on the flag's address");
    let (status, _) = get(&format!("http://127.0.0.1:{from_flag}"), "/api/v1/health", None).await;
    assert_eq!(status, StatusCode::OK);
}

/// Issue 20, item 6: a newer sensor's records (a later format with fields this centre does not
/// know) are stored as this centre understands them rather than refused, and the reply says what
/// was left out; what no rule can read is refused with a reason that says to upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_sensors_records_reach_this_centre_and_it_says_what_it_left_out() {
    let scratch = Scratch::new();
    let db = scratch.db().display().to_string();
    let sensor = make_token(&scratch, &db, "sensor", None, Some("survey-9"));
    let (_server, base) = start_center(&scratch, &db, &["--correlate-every", "0"]);
    let today = r#"{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"127.16.4.21","port":23,"protocol":"telnet","issue":"default_credential","credential_id":17,"device":{"vendor":"Example Networks","model":"XR-500"},"sensor":"survey-9"}"#;
    let newer = today
        .replace(r#""kind":"finding","#, r#""kind":"finding","format":7,"cvss":9.8,"#)
        .replace(r#""model":"XR-500""#, r#""model":"XR-500","antenna":"5 GHz""#)
        .replace("127.16.4.21", "127.16.4.22");
    let new_value = newer.replace("default_credential", "known_vulnerability").replace("127.16.4.22", "127.16.4.23");
    let typo = today.replace("\"port\"", "\"prot\"");
    let body = [today, newer.as_str(), new_value.as_str(), typo.as_str()].join("\n");
    let (status, reply) = post(&base, Some(&sensor), body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!((reply["accepted"].as_u64(), reply["error_count"].as_u64()), (Some(2), Some(2)), "{reply}");
    assert_eq!(reply["ignored_fields"], serde_json::json!(["cvss", "device.antenna"]), "{reply}");
    let problems = reply["problems"].to_string();
    assert!(problems.contains("known_vulnerability") && problems.contains("upgrade botscope"), "{problems}");
    assert!(
        problems.contains("prot") && problems.matches("upgrade").count() == 1,
        "today's typo stays a typo: {problems}"
    );
    // Stored as this centre's format: the known fields, nothing of the unknown ones.
    let store = common::open_sqlite(&scratch.db()).await;
    let stored = botscope_store::all_records(&store, botscope_store::RecordQuery::default()).await.unwrap();
    let lines: Vec<String> = stored.iter().map(botscope_model::Record::to_json_line).collect();
    let kept = lines.iter().find(|l| l.contains("127.16.4.22")).expect("the newer finding is stored");
    assert!(kept.contains("\"model\":\"XR-500\"") && !kept.contains("antenna") && !kept.contains("cvss"), "{kept}");
    let (_, metrics) = get(&base, "/metrics", None).await;
    assert_eq!(sample(&metrics, "botscope_ingest_fields_ignored_total"), Some(2.0));
}

/// `/api/v1/records` searches by address, prefix, ISP, port, serial, status and sensor, a page at
/// a time with a cursor; only an admin may search, and a bad parameter is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_searched_by_prefix_isp_port_and_serial_a_page_at_a_time() {
    let scratch = Scratch::new();
    let db = scratch.db().display().to_string();
    let admin = make_token(&scratch, &db, "admin", None, None);
    let isp = make_token(&scratch, &db, "isp", Some("hikari-net"), None);
    let sensor = make_token(&scratch, &db, "sensor", None, Some("survey-9"));
    let (_server, base) = start_center(&scratch, &db, &["--correlate-every", "0"]);
    let finding = |host: u8, port: u16| {
        format!(
            r#"{{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"127.16.{host}.1","port":{port},"protocol":"telnet","issue":"no_authentication","sensor":"survey-9"}}"#
        )
    };
    let lines: Vec<String> = (0..30).map(|n| finding(n, if n % 3 == 0 { 2323 } else { 23 })).collect();
    let (status, reply) = post(&base, Some(&sensor), lines.join("\n")).await;
    assert_eq!((status, reply["accepted"].as_u64()), (StatusCode::OK, Some(30)), "{reply}");
    let search = |query: String| {
        let admin = admin.clone();
        let base = base.clone();
        async move {
            let (status, body) = get(&base, &format!("/api/v1/records?{query}"), Some(&admin)).await;
            (status, serde_json::from_str::<serde_json::Value>(&body).unwrap())
        }
    };
    let (status, page) = search("kind=finding&prefix=127.16.0.0/20&port=2323".into()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // Hosts 0..16 are in 127.16.0.0/20; of them 0, 3, 6, 9, 12 and 15 are on 2323.
    assert_eq!(page["records"].as_array().unwrap().len(), 6, "{page}");
    assert!(page["next"].is_null());
    // Ten at a time, every record once.
    let mut seen = std::collections::BTreeSet::new();
    let mut after = String::new();
    for _ in 0..4 {
        let (_, page) = search(format!("kind=finding&sensor=survey-9&limit=10{after}")).await;
        for record in page["records"].as_array().unwrap() {
            assert!(seen.insert(record["id"].as_str().unwrap().to_string()), "a record came twice");
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    let (status, body) = get(&base, "/api/v1/records?prefix=127.16.0.0/40", Some(&admin)).await;
    assert!(status == StatusCode::BAD_REQUEST && body.contains("prefix"), "{body}");
    let (status, _) = get(&base, "/api/v1/records?kind=finding", Some(&isp)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an ISP token sees its own cases, not every record");
}

/// A national centre holds tens of thousands of botnets: the list comes a page at a time, every
/// botnet once, and an ISP token still sees reporter counts only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botnets_are_listed_a_page_at_a_time() {
    let scratch = Scratch::new();
    let db = scratch.db().display().to_string();
    let admin = make_token(&scratch, &db, "admin", None, None);
    let isp = make_token(&scratch, &db, "isp", Some("hikari-net"), None);
    let (_server, base) = start_center(&scratch, &db, &["--correlate-every", "0"]);
    let lines: Vec<String> = (0..250)
        .map(|n| {
            format!(
                r#"{{"kind":"botnet","serial":"BN-2026-{n:04}","family":"mirai","status":"active","first_seen":"2026-10-20T00:00:00Z","last_seen":"2026-11-02T21:40:00Z","members":3,"cnc":[],"reporters":["isp-a"]}}"#
            )
        })
        .collect();
    let (status, reply) = post(&base, Some(&admin), lines.join("\n")).await;
    assert_eq!((status, reply["accepted"].as_u64()), (StatusCode::OK, Some(250)), "{reply}");
    let page = |query: String, token: String| {
        let base = base.clone();
        async move {
            let (status, body) = get(&base, &format!("/api/v1/botnets{query}"), Some(&token)).await;
            (status, serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default())
        }
    };
    let (status, first) = page(String::new(), isp.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["botnets"].as_array().unwrap().len(), 100, "the default page");
    assert!(first["botnets"][0]["reporter_count"] == 1 && first["botnets"][0].get("reporters").is_none());
    let mut serials = std::collections::BTreeSet::new();
    let mut after = String::new();
    for _ in 0..10 {
        let (_, got) = page(format!("?limit=70{after}"), admin.clone()).await;
        for botnet in got["botnets"].as_array().unwrap() {
            assert!(serials.insert(botnet["serial"].as_str().unwrap().to_string()), "a botnet came twice");
        }
        match got["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(serials.len(), 250, "every botnet once");
    for bad in ["?limit=0", "?limit=1001", "?after=BN-2026-0001"] {
        let (status, _) = page(bad.into(), admin.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}
