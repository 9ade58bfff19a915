//! The pages people use, in a real browser: `botscope demo` serves the lab's world and Debian's
//! headless Chromium (driven through chromedriver by tests/browser/drive.py) opens every page in
//! both languages, signs in to the ISP portal, and asks the self-check page from an infected, a
//! vulnerable and a clean lab address. The checks here hold what the browser saw against the
//! store and the lab's truth files. Screenshots of every page go to
//! target/tmp/web-screenshots/.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Stdio;

use botscope_model::{ActivityClass, Kind, NotificationReason, NotificationStatus, Record};
use botscope_store::{RecordQuery, Store, all_records};
use common::{Reaped, Scratch, get_with_token, json_lines, post_form, post_login, sign_in, venv};

/// Starts `botscope demo` and waits until it serves (it prints the dashboard's address).
fn start_demo(scratch: &Scratch, dir: &Path, port: u16) -> Reaped {
    let mut child = scratch
        .botscope()
        .args(["demo", "--seed", "7", "--dir"])
        .arg(dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (ready, serving) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("demo: {line}");
            if line.starts_with("dashboard:") {
                let _ = ready.send(());
            }
        }
    });
    serving.recv_timeout(std::time::Duration::from_secs(600)).expect("the demo did not start serving");
    Reaped(child)
}

/// A loopback relay whose connections to `server` leave from `source`: the server sees a request
/// from `source`, as if the browser sat at that lab address.
#[allow(clippy::disallowed_methods, reason = "relays to the test's own centre on loopback; no survey target")]
async fn relay_from(source: IpAddr, server: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind(SocketAddr::new(source, 0)).unwrap();
                let mut outbound = socket.connect(server).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    address
}

fn chart(page: &serde_json::Value, id: &str) -> BTreeMap<String, f64> {
    page["charts"][id]
        .as_array()
        .unwrap_or_else(|| panic!("{} has no chart {id}", page["path"]))
        .iter()
        .map(|m| (m[1].as_str().unwrap().to_string(), m[2].as_f64().unwrap()))
        .collect()
}

fn as_f64(counts: BTreeMap<String, u64>) -> BTreeMap<String, f64> {
    counts.into_iter().map(|(k, v)| (k, v as f64)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_every_page_and_the_browser_sees_what_the_store_holds() {
    let python = venv().join("bin/python");
    assert!(Path::new("/usr/bin/chromium").exists(), "Debian's chromium is needed (scripts/test installs it)");
    let scratch = Scratch::new();
    let dir = scratch.path("demo");
    let port = botscope_testkit::free_loopback_port();
    let _demo = start_demo(&scratch, &dir, port);
    let base = format!("http://127.0.0.1:{port}");
    let store = common::open_sqlite(&dir.join("botscope.db")).await;

    // Three lab addresses, chosen from the lab's truth: one infected (the darknet truth says so and
    // the telescope saw it), one vulnerable but never seen scanning, one with neither.
    let devices = json_lines(&dir.join("devices-truth.jsonl"));
    let darknet = json_lines(&dir.join("darknet-truth.jsonl"));
    let in_darknet: BTreeSet<String> = darknet.iter().map(|s| s["src"].as_str().unwrap().to_string()).collect();
    let truly_infected: BTreeSet<String> =
        darknet.iter().filter(|s| s["class"] == "infected").map(|s| s["src"].as_str().unwrap().to_string()).collect();
    let activity = all_records(&store, RecordQuery { kind: Some(Kind::Activity), ..Default::default() }).await.unwrap();
    let infected: IpAddr = activity
        .iter()
        .filter_map(Record::payload::<botscope_model::SourceActivity>)
        .filter(|a| a.classification == ActivityClass::Infected)
        .map(|a| a.src)
        .find(|ip| truly_infected.contains(&ip.to_string()))
        .expect("the telescope saw a truly infected host");
    let vulnerable_device = devices
        .iter()
        .find(|d| {
            let ip = d["ip"].as_str().unwrap();
            !in_darknet.contains(ip)
                && d["findings"].as_array().unwrap().iter().any(|f| f["kind"] == "default_credential")
        })
        .expect("a vulnerable device that never scanned");
    let vulnerable: IpAddr = vulnerable_device["ip"].as_str().unwrap().parse().unwrap();
    // A device with nothing wrong, else an address of the lab ISP's prefix that no device has.
    let clean: IpAddr = devices
        .iter()
        .find(|d| !in_darknet.contains(d["ip"].as_str().unwrap()) && d["findings"] == serde_json::json!([]))
        .map(|d| d["ip"].as_str().unwrap().parse().unwrap())
        .unwrap_or_else(|| {
            let taken: BTreeSet<&str> = devices.iter().map(|d| d["ip"].as_str().unwrap()).collect();
            (1..=250u8)
                .map(|n| IpAddr::from([127, 17, 250, n]))
                .find(|ip| !taken.contains(ip.to_string().as_str()) && !in_darknet.contains(&ip.to_string()))
                .unwrap()
        });
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut checks = serde_json::Map::new();
    for (verdict, source) in [("infected", infected), ("vulnerable", vulnerable), ("clean", clean)] {
        let relay = relay_from(source, server).await;
        checks.insert(verdict.into(), format!("http://{relay}").into());
    }

    let tokens = std::fs::read_to_string(dir.join("tokens.txt")).unwrap();
    let token_of = |name: &str| {
        tokens.lines().find(|l| l.starts_with(name)).and_then(|l| l.split('\t').nth(1)).unwrap().to_string()
    };
    let botnets = all_records(&store, RecordQuery { kind: Some(Kind::Botnet), ..Default::default() }).await.unwrap();
    let serial = botnets
        .iter()
        .filter_map(Record::payload::<botscope_model::Botnet>)
        .find(|b| b.cnc.len() == 2)
        .map(|b| b.serial.clone())
        .expect("the lab's moved botnet");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    let plan = serde_json::json!({
        "base": base,
        "pages": ["/", "/botnets", format!("/botnets/{serial}"), "/cnc", "/isps", "/coverage", "/check"],
        "checks": checks,
        "isp_token": token_of("isp hikari-net"),
        "other_isp": "sakura-bb",
        "shots": shots,
        "out": scratch.path("seen.json"),
    });
    scratch.write("plan.json", plan.to_string());
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/drive.py");
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python).arg(driver).arg(scratch.path("plan.json")).status().map(|s| (s, scratch))
    })
    .await
    .unwrap()
    .expect("python runs");
    let (status, scratch) = status;
    assert!(status.success(), "the browser run failed");
    let seen: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.path("seen.json")).unwrap()).unwrap();

    // Every page loaded, in the language asked for, with no console error or warning.
    let pages = seen["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 14);
    for page in pages {
        assert_eq!(
            page["console"],
            serde_json::json!([]),
            "console messages on {} ({})",
            page["path"],
            page["asked_lang"]
        );
        assert_eq!(page["lang"], page["asked_lang"]);
        assert!(!page["h1"].as_str().unwrap().is_empty());
        let shot = std::fs::metadata(page["screenshot"].as_str().unwrap()).unwrap();
        assert!(shot.len() > 10_000, "screenshot of {} is empty", page["path"]);
    }
    let overview_ja = pages.iter().find(|p| p["path"] == "/" && p["asked_lang"] == "ja").unwrap();
    assert_eq!(overview_ja["h1"], "概要");
    assert_eq!(seen["first_tab"], "skip", "the first Tab reaches the skip link");

    // The charts hold exactly what the store holds.
    let days: Vec<botscope_model::DarknetDay> =
        all_records(&store, RecordQuery { kind: Some(Kind::DarknetDay), ..Default::default() })
            .await
            .unwrap()
            .into_iter()
            .filter_map(Record::into_payload::<botscope_model::DarknetDay>)
            .collect();
    let mut categories: BTreeMap<String, u64> = BTreeMap::new();
    let mut mirai_packets: BTreeMap<String, u64> = BTreeMap::new();
    let mut mirai_hosts: BTreeMap<String, u64> = BTreeMap::new();
    for day in &days {
        for c in &day.categories {
            *categories.entry(c.category.clone()).or_default() += c.packets;
        }
        *mirai_packets.entry(day.date.clone()).or_default() += day.mirai_packets;
        *mirai_hosts.entry(day.date.clone()).or_default() += day.mirai_sources;
    }
    assert!(categories.values().sum::<u64>() > 0);
    let findings: Vec<botscope_model::Finding> =
        all_records(&store, RecordQuery { kind: Some(Kind::Finding), ..Default::default() })
            .await
            .unwrap()
            .into_iter()
            .filter_map(Record::into_payload::<botscope_model::Finding>)
            .collect();
    let mut type_of: BTreeMap<IpAddr, String> = BTreeMap::new();
    for f in &findings {
        let kind = f.device.as_ref().and_then(|d| d.device_type).map(|t| serde_json::to_value(t).unwrap());
        let slot = type_of.entry(f.ip).or_insert_with(|| "unknown".into());
        if let Some(kind) = kind {
            *slot = kind.as_str().unwrap().to_string();
        }
    }
    let mut device_types: BTreeMap<String, u64> = BTreeMap::new();
    for kind in type_of.values() {
        *device_types.entry(kind.clone()).or_default() += 1;
    }
    let cases: Vec<botscope_model::Notification> =
        all_records(&store, RecordQuery { kind: Some(Kind::Notification), ..Default::default() })
            .await
            .unwrap()
            .into_iter()
            .filter_map(Record::into_payload::<botscope_model::Notification>)
            .collect();
    let mut infected_daily: BTreeMap<String, u64> = BTreeMap::new();
    let mut weak_monthly: BTreeMap<String, u64> = BTreeMap::new();
    for case in &cases {
        match case.reason {
            NotificationReason::Infected => {
                *infected_daily.entry(case.created_at.format("%Y-%m-%d").to_string()).or_default() += 1
            }
            NotificationReason::DefaultCredential | NotificationReason::NoAuthentication => {
                *weak_monthly.entry(case.created_at.format("%Y-%m").to_string()).or_default() += 1
            }
            _ => {}
        }
    }
    assert_eq!(infected_daily.len(), 2, "one daily report per lab day");
    for lang in ["en", "ja"] {
        let overview = pages.iter().find(|p| p["path"] == "/" && p["asked_lang"] == lang).unwrap();
        assert_eq!(chart(overview, "categories"), as_f64(categories.clone()));
        assert_eq!(chart(overview, "mirai_packets_daily"), as_f64(mirai_packets.clone()));
        assert_eq!(chart(overview, "mirai_hosts_daily"), as_f64(mirai_hosts.clone()));
        assert_eq!(chart(overview, "device_types"), as_f64(device_types.clone()));
        assert_eq!(chart(overview, "infected_daily"), as_f64(infected_daily.clone()));
        assert_eq!(chart(overview, "notified_monthly"), as_f64(weak_monthly.clone()));
    }
    let windows =
        all_records(&store, RecordQuery { kind: Some(Kind::BotnetWindow), ..Default::default() }).await.unwrap();
    let members: BTreeMap<String, f64> = windows
        .iter()
        .filter_map(Record::payload::<botscope_model::BotnetWindow>)
        .filter(|w| w.serial == serial)
        .map(|w| (w.window_start.format("%Y-%m-%d %H:%M").to_string(), w.bots.len() as f64))
        .collect();
    let botnet_page = pages.iter().find(|p| p["path"] == format!("/botnets/{serial}").as_str()).unwrap();
    let drawn = chart(botnet_page, "members");
    assert_eq!(drawn.len(), members.len());
    for (label, value) in &members {
        let short: String = label.chars().take(16).collect();
        assert_eq!(drawn.get(&short), Some(value), "members in window {label}");
    }

    // The self-check answers each lab address for itself, in both languages.
    let check_pages = seen["checks"].as_array().unwrap();
    assert_eq!(check_pages.len(), 6);
    let vulnerable_model = vulnerable_device["model"].as_str().unwrap();
    for check in check_pages {
        assert_eq!(check["verdict"], check["expected"], "{}", check);
        assert_eq!(check["lang"], check["asked_lang"]);
        assert_eq!(check["console"], serde_json::json!([]));
        assert_eq!(check["glossary"], 5, "the glossary explains ID/password, key, SSID, firmware, EOL");
        let source = match check["expected"].as_str().unwrap() {
            "infected" => infected,
            "vulnerable" => vulnerable,
            _ => clean,
        };
        assert_eq!(check["visitor"], source.to_string(), "the page answers for the visitor's own address");
        if check["expected"] == "vulnerable" {
            let guides = check["guides"].as_array().unwrap();
            assert!(
                guides.iter().any(|g| g.as_str().unwrap().contains(vulnerable_model)),
                "the guide of the device's model ({vulnerable_model}) is shown: {guides:?}"
            );
        }
        if check["asked_lang"] == "ja" {
            assert!(check["h1"].as_str().unwrap().contains("回線"));
        }
    }

    // The ISP portal: sign-in, only the ISP's own cases, a status update that sticks, downloads.
    let portal = &seen["portal"];
    assert!(portal["redirected_to"].as_str().unwrap().contains("/login?next="), "the portal needs a sign-in");
    assert!(portal["after_login"].as_str().unwrap().contains("/portal"));
    assert_eq!(portal["console"], serde_json::json!([]));
    let own: BTreeSet<String> =
        cases.iter().filter(|c| c.isp == "hikari-net").map(|c| c.id.unwrap().to_string()).collect();
    let shown: BTreeSet<String> =
        portal["cases"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert!(!own.is_empty());
    assert_eq!(shown, own, "the portal lists exactly the ISP's own cases");
    let updated = portal["updated"]["id"].as_str().unwrap();
    assert_eq!(portal["updated"]["status"], "contacted");
    let Some(Record::Notification(case)) = store.record(updated.parse().unwrap()).await.unwrap() else { panic!() };
    assert_eq!(case.status, NotificationStatus::Contacted, "the status update was stored");
    let csv = portal["csv"].as_str().unwrap();
    assert_eq!(csv.lines().count(), own.len() + 1);
    assert!(csv.lines().skip(1).all(|l| l.split(',').nth(1) == Some("hikari-net")));
    let json: serde_json::Value = serde_json::from_str(portal["json"].as_str().unwrap()).unwrap();
    assert!(json["notifications"].as_array().unwrap().iter().all(|n| n["isp"] == "hikari-net"));
    assert_eq!(json["notifications"].as_array().unwrap().len(), own.len());
    assert!(portal["other_isp_title"].as_str().unwrap().starts_with("404"), "another ISP's list is not found");
    assert_eq!(portal["other_isp_rows"], 0);
    assert!(
        portal["other_isp_console"].as_array().unwrap().iter().any(|m| m["message"].as_str().unwrap().contains("404")),
        "the browser's console is read (the 404 shows there): {}",
        portal["other_isp_console"]
    );
    assert!(portal["ja_h1"].as_str().unwrap().contains("通知"));
    assert_eq!(portal["tokens_console"], serde_json::json!([]));
    // The token made in the portal works on the API and sees only its ISP.
    let new_token = portal["new_token"].as_str().unwrap();
    let (status, body) = get_with_token(&format!("{base}/api/v1/isp/notifications"), new_token).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["notifications"].as_array().unwrap().len(), own.len());
    eprintln!("screenshots: {}", shots.display());
}

/// An HTTP client that follows no redirects (the tests look at them) and sends from `from`.
fn client(from: Option<IpAddr>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(ip) = from {
        builder = builder.local_address(ip);
    }
    builder.build().unwrap()
}

async fn get(client: &reqwest::Client, url: &str, cookie: Option<&str>) -> (reqwest::StatusCode, String, String) {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    (response.status(), location, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_keep_each_audience_to_its_own_data_and_refuse_bad_requests() {
    let scratch = Scratch::new();
    let db_path = scratch.db();
    let db = db_path.display().to_string();
    scratch.load_example_isps(&db_path);
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/examples/records.jsonl");
    // A second ISP's case, which the first ISP must never see or change.
    let other = std::fs::read_to_string(examples)
        .unwrap()
        .lines()
        .nth(4)
        .unwrap()
        .replace("hikari-net", "sakura-bb")
        .replace("127.16.4.21", "127.20.9.9");
    // A finding of today (the example's is older than the self-check's 30 days), and a feed whose
    // name is markup: pages must show it as text.
    let today = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let fresh = format!(
        r#"{{"kind":"finding","observed_at":"{today}","ip":"127.16.4.21","port":2323,"protocol":"telnet","issue":"default_credential","credential_id":1}}"#
    );
    let hostile = r#"{"kind":"feed_entry","source":"<b>x</b>","role":"cnc","ip":"127.200.0.10","port":6667,"first_seen":"2026-11-04T08:00:00Z"}"#;
    scratch.write("other.jsonl", format!("{other}\n{fresh}\n{hostile}\n"));
    scratch.run(&["--db", &db, "ingest", "--strict", examples, "other.jsonl"]).ok();
    let admin = common::make_token(&scratch, &db, "admin", None, Some("analyst"));
    let hikari = common::make_token(&scratch, &db, "isp", Some("hikari-net"), None);
    let _sakura = common::make_token(&scratch, &db, "isp", Some("sakura-bb"), None);
    let sensor = common::make_token(&scratch, &db, "sensor", None, Some("survey-1"));
    let (_centre, base) = common::start_center(
        &scratch,
        &db,
        &[
            "--correlate-every",
            "0",
            "--check-rate",
            "3",
            "--client-ip-header",
            "X-Forwarded-For",
            "--trusted-proxy",
            "127.0.0.1",
        ],
    );
    let http = client(None);

    // The dashboard needs an admin's sign-in unless the server was started with --open-dashboard.
    let (status, location, _) = get(&http, &format!("{base}/botnets?lang=ja"), None).await;
    assert_eq!((status, location.as_str()), (reqwest::StatusCode::SEE_OTHER, "/login?next=%2Fbotnets%3Flang%3Dja"));
    let response = post_login(&http, &base, &sensor, "").await;
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?failed=1"), "sensors cannot sign in");
    assert!(response.headers().get("set-cookie").is_none());
    // A sign-in posted from another site (no nonce of ours) signs nobody in.
    let response =
        post_form(&http, &format!("{base}/login"), None, &format!("token={hikari}&nonce={}", "a".repeat(64))).await;
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?expired=1"));
    assert!(response.headers().get("set-cookie").is_none());
    let (isp_cookie, home) = sign_in(&http, &base, &hikari).await;
    assert!(home.starts_with("/portal"));
    let (status, location, _) = get(&http, &format!("{base}/"), Some(&isp_cookie)).await;
    assert_eq!(
        (status, location.as_str()),
        (reqwest::StatusCode::SEE_OTHER, "/portal"),
        "ISPs see their portal, not every ISP's picture"
    );
    let (admin_cookie, _) = sign_in(&http, &base, &admin).await;
    let (status, _, page) = get(&http, &format!("{base}/botnets"), Some(&admin_cookie)).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(page.contains("BN-2026-0007"));

    // CSV of a table, and clear errors for what does not exist or does not parse.
    let response =
        http.get(format!("{base}/cnc?format=csv&table=cnc")).header("cookie", &admin_cookie).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = response.text().await.unwrap();
    assert!(csv.starts_with("server,protocol,botnet,"), "{csv}");
    assert!(csv.contains("127.200.0.10:6667,tcp,"), "{csv}");
    let (_, _, page) = get(&http, &format!("{base}/cnc"), Some(&admin_cookie)).await;
    assert!(
        page.contains("&lt;b&gt;x&lt;/b&gt;") && !page.contains("<b>x</b>"),
        "data is shown as text, never as markup"
    );
    let (status, _, _) = get(&http, &format!("{base}/cnc?format=csv&table=nope"), Some(&admin_cookie)).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let (status, _, page) = get(&http, &format!("{base}/?from=2026-13-01"), Some(&admin_cookie)).await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
    assert!(page.contains("expected YYYY-MM-DD"));
    let (status, _, _) = get(&http, &format!("{base}/botnets/BN-1999-0001"), Some(&admin_cookie)).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    // The time range filters: the example's darknet day is 2026-11-02.
    let day = |from: &str| format!("{base}/?from={from}&to={from}&format=csv&table=mirai_packets_daily");
    let (_, _, inside) = get(&http, &day("2026-11-02"), Some(&admin_cookie)).await;
    assert_eq!(inside, "date,packets\r\n2026-11-02,3146\r\n");
    let (_, _, outside) = get(&http, &day("2026-11-03"), Some(&admin_cookie)).await;
    assert_eq!(outside, "date,packets\r\n");

    // The portal: the ISP's own case only; another ISP's case cannot be changed, and a form
    // without the session's CSRF value is refused.
    let (status, _, portal) = get(&http, &format!("{base}/portal"), Some(&isp_cookie)).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(portal.contains("127.16.4.21") && !portal.contains("127.20.9.9"));
    let csrf = portal.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let store = common::open_sqlite(&db_path).await;
    let cases =
        all_records(&store, RecordQuery { kind: Some(Kind::Notification), ..Default::default() }).await.unwrap();
    let case_of = |isp: &str| {
        cases
            .iter()
            .find_map(|r| match r {
                Record::Notification(n) if n.isp == isp => n.id,
                _ => None,
            })
            .unwrap()
    };
    let (own, theirs) = (case_of("hikari-net"), case_of("sakura-bb"));
    let status_url = |id: uuid::Uuid| format!("{base}/portal/cases/{id}/status");
    let response = post_form(&http, &status_url(theirs), Some(&isp_cookie), &format!("status=fixed&csrf={csrf}")).await;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    let response = post_form(&http, &status_url(own), Some(&isp_cookie), "status=fixed&csrf=forged").await;
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    let response = post_form(
        &http,
        &status_url(own),
        Some(&isp_cookie),
        &format!("status=unreachable&note=no+answer&csrf={csrf}"),
    )
    .await;
    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    let Some(Record::Notification(case)) = store.record(theirs).await.unwrap() else { panic!() };
    assert_eq!(case.status, NotificationStatus::Sent, "the other ISP's case is untouched");
    let Some(Record::Notification(case)) = store.record(own).await.unwrap() else { panic!() };
    assert_eq!(case.status, NotificationStatus::Unreachable);
    for format in ["", "&format=json", "&format=csv"] {
        let (status, _, page) = get(&http, &format!("{base}/portal?isp=sakura-bb{format}"), Some(&isp_cookie)).await;
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "another ISP's list{format}");
        assert!(!page.contains("127.20.9.9"));
    }
    let response = http.get(format!("{base}/portal?format=csv")).header("cookie", &isp_cookie).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    // Another ISP's token cannot be revoked from this portal (nor learned: not found).
    let tokens = scratch.run(&["--db", &db, "token", "list"]).ok().stdout;
    let token_id = |isp: &str| {
        tokens
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|words| words.get(1) == Some(&"isp") && words.get(2) == Some(&isp))
            .map(|words| words[0].to_string())
            .expect("the ISP token is listed")
    };
    let revoke = format!("{base}/portal/tokens/{}/revoke", token_id("sakura-bb"));
    let response = post_form(&http, &revoke, Some(&isp_cookie), &format!("csrf={csrf}")).await;
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    assert!(
        !scratch
            .run(&["--db", &db, "token", "list"])
            .ok()
            .stdout
            .lines()
            .any(|l| l.contains("sakura-bb") && !l.ends_with('-'))
    );
    // After sign-in, only a path on this site is followed: a tab would let a browser read
    // "/\t/evil.example" as "//evil.example".
    let response = post_login(&http, &base, &hikari, "%2F%09%2Fevil.example").await;
    assert_eq!(response.headers()["location"], "/portal?lang=en");

    // Revoking the token ends its sessions at once.
    scratch.run(&["--db", &db, "token", "revoke", &token_id("hikari-net")]).ok();
    let (status, location, _) = get(&http, &format!("{base}/portal"), Some(&isp_cookie)).await;
    assert_eq!(status, reqwest::StatusCode::SEE_OTHER);
    assert!(location.starts_with("/login"));

    // The self-check: a trusted proxy's header names the visitor; anyone else's header is
    // ignored; each address gets a few answers a minute.
    let (_, _, page) = {
        let response = http
            .get(format!("{base}/check"))
            .header("x-forwarded-for", "198.51.100.7, 127.16.4.21")
            .send()
            .await
            .unwrap();
        (response.status(), String::new(), response.text().await.unwrap())
    };
    assert!(page.contains("id=\"visitor\">127.16.4.21<"), "the proxy's last hop is the visitor");
    assert!(page.contains("data-verdict=\"vulnerable\""), "today's finding of that address is found");
    assert!(page.contains("Example Networks XR-500") || page.contains("ID and password"));
    // A proxy that adds its own header line: the client's line is what the client claimed.
    let response = http
        .get(format!("{base}/check"))
        .header("x-forwarded-for", "127.16.4.21")
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    let page = response.text().await.unwrap();
    assert!(page.contains("id=\"visitor\">198.51.100.7<"), "the last line is the proxy's");
    assert!(page.contains("data-verdict=\"clean\""));
    // A trusted proxy that names nobody gets an error, not the proxy's own answer.
    let response = http.get(format!("{base}/check")).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    let untrusted = client(Some("127.0.0.9".parse().unwrap()));
    let response =
        untrusted.get(format!("{base}/check")).header("x-forwarded-for", "127.16.4.21").send().await.unwrap();
    let page = response.text().await.unwrap();
    assert!(page.contains("id=\"visitor\">127.0.0.9<"), "a header from an untrusted peer is ignored");
    assert!(!page.contains("127.16.4.21"), "nothing about another address");
    for _ in 0..2 {
        assert_eq!(untrusted.get(format!("{base}/check")).send().await.unwrap().status(), reqwest::StatusCode::OK);
    }
    let response = untrusted.get(format!("{base}/check?lang=ja")).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert!(response.text().await.unwrap().contains("1分ほど"));
}

/// Regression (issue 16, finding 6): a device model `=HYPERLINK(...)` came out unchanged in the
/// notification CSV, the portal's CSV download, the report API and the report files, for a
/// spreadsheet to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_model_formula_comes_out_defused_in_every_isp_download() {
    let scratch = Scratch::new();
    let db_path = scratch.db();
    let db = db_path.display().to_string();
    scratch.load_example_isps(&db_path);
    let finding = r#"{"kind":"finding","observed_at":"2026-10-05T00:00:00Z","ip":"127.16.0.1","port":23,"protocol":"telnet","issue":"default_credential","credential_id":3,"device":{"vendor":"Sakura Netware","model":"=HYPERLINK(\"http://x\",\"y\")","type":"router"}}"#;
    scratch.write("finding.jsonl", finding);
    scratch.run(&["--db", &db, "ingest", "finding.jsonl"]).ok();
    let month = ["--period", "month", "--date", "2026-10", "--isp", "hikari-net"];
    scratch.run(&[&["--db", db.as_str(), "notify", "generate", "--out", "reports"][..], &month].concat()).ok();
    let hikari = common::make_token(&scratch, &db, "isp", Some("hikari-net"), None);
    let (_centre, base) = common::start_center(&scratch, &db, &["--correlate-every", "0"]);
    let http = client(None);

    // The cell as a spreadsheet must get it: text behind an apostrophe, quoted per RFC 4180.
    let defused = r#""'=HYPERLINK(""http://x"",""y"")""#;
    let check = |what: &str, csv: &str| {
        assert!(csv.contains(&format!(",{defused},")), "{what}: {csv}");
        assert!(!csv.contains(",=") && !csv.contains(",\"="), "{what}: a cell starts with =: {csv}");
    };
    let file = std::fs::read_to_string(scratch.path("reports/hikari-net/2026-10-default_credentials.csv")).unwrap();
    check("report file", &file);
    let (status, csv) = get_with_token(&format!("{base}/api/v1/isp/notifications?format=csv"), &hikari).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    check("notification CSV", &csv);
    let report = format!("{base}/api/v1/isp/report?period=month&date=2026-10&report=default_credentials");
    let (status, csv) = get_with_token(&report, &hikari).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    check("report API", &csv);
    let (cookie, _) = sign_in(&http, &base, &hikari).await;
    let (status, _, csv) = get(&http, &format!("{base}/portal?format=csv"), Some(&cookie)).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    check("portal download", &csv);
}
