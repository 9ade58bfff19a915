//! Several `botscope serve` replicas on one PostgreSQL store behind a real load balancer
//! (Debian's HAProxy, round robin): whatever one replica learnt about a user (a signed-in session,
//! a TAXII status, how often an address used the self-check) the next request may need from the
//! other, and a replica that dies takes nobody's session with it.
#![allow(clippy::unwrap_used, reason = "a test should fail loudly on what it did not expect")]

mod common;

use std::process::Stdio;

use common::{Reaped, Scratch, make_token, start_center};
use reqwest::StatusCode;

const HAPROXY: &str = "/usr/sbin/haproxy";
const MEDIA: &str = "application/taxii+json;version=2.1";

/// HAProxy in the foreground: round robin over `replicas`, health-checked every second (three
/// failures in a row mark one down, so a slow answer on a busy machine does not), a request whose
/// replica refuses the connection sent to another, the client's address in X-Forwarded-For.
fn start_haproxy(scratch: &Scratch, replicas: &[&str]) -> (Reaped, String) {
    let port = botscope_testkit::free_loopback_port();
    let mut config = format!(
        "global\n  maxconn 256\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
         \x20 retries 3\n  option redispatch\n\
         frontend web\n  bind 127.0.0.1:{port}\n  default_backend centres\n\
         backend centres\n  balance roundrobin\n  option forwardfor\n  option httpchk GET /api/v1/health\n"
    );
    for (n, base) in replicas.iter().enumerate() {
        let address = base.trim_start_matches("http://");
        config.push_str(&format!("  server replica{n} {address} check inter 1s fall 3 rise 2\n"));
    }
    let path = scratch.write("haproxy.cfg", config);
    let check = std::process::Command::new(HAPROXY).arg("-c").arg("-f").arg(&path).output().unwrap();
    assert!(check.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&check.stderr));
    let child = std::process::Command::new(HAPROXY)
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proxy = Reaped(child);
    common::wait_for_port(port, "haproxy");
    (proxy, format!("http://127.0.0.1:{port}"))
}

/// GET requests of one route template a replica answered with `status`, from its own /metrics.
async fn served(http: &reqwest::Client, replica: &str, route: &str, status: u16) -> f64 {
    let text = http.get(format!("{replica}/metrics")).send().await.unwrap().text().await.unwrap();
    let series = format!("botscope_http_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}} ");
    text.lines().filter_map(|l| l.strip_prefix(&series)?.parse::<f64>().ok()).sum()
}

/// Whether both replicas answered `route` with `status` at least once.
async fn both_served(http: &reqwest::Client, replicas: [&str; 2], route: &str, status: u16) -> bool {
    served(http, replicas[0], route, status).await >= 1.0 && served(http, replicas[1], route, status).await >= 1.0
}

/// The dashboard through the proxy, `times` times in a row: each must be the signed-in page.
async fn dashboard_signed_in(http: &reqwest::Client, base: &str, cookie: &str, times: usize, when: &str) {
    for n in 0..times {
        let response = http.get(format!("{base}/")).header("cookie", cookie).send().await.unwrap();
        let status = response.status();
        let page = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{when}, request {n}: {page}");
        assert!(page.contains("class=\"logout\"") && page.contains("duty-analyst"), "{when}, request {n}: {page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_haproxy_share_sessions_statuses_and_limits_and_survive_losing_one() {
    let scratch = Scratch::new();
    let cluster = botscope_testkit::PgCluster::start();
    let url = cluster.create_database("replicas");
    let admin = make_token(&scratch, &url, "admin", None, Some("duty-analyst"));
    let settings = [
        "--correlate-every",
        "0",
        "--check-rate",
        "3",
        "--client-ip-header",
        "X-Forwarded-For",
        "--trusted-proxy",
        "127.0.0.1",
    ];
    let (replica_a, base_a) = start_center(&scratch, &url, &settings);
    // The other replica has the same settings from botscope.toml's [serve] instead of flags.
    let config = scratch.path("replica-b.toml");
    std::fs::write(
        &config,
        "[serve]\ncheck_rate = 3\nclient_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"127.0.0.1\"]\n",
    )
    .unwrap();
    let (_replica_b, base_b) =
        start_center(&scratch, &url, &["--correlate-every", "0", "--config", config.to_str().unwrap()]);
    let (_proxy, base) = start_haproxy(&scratch, &[&base_a, &base_b]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Redirects are answers to check, not to follow.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let replicas = [base_a.as_str(), base_b.as_str()];
    // Signed in on one replica, known on both: round robin sends every other request to each.
    let (cookie, _) = common::sign_in(&http, &base, &admin).await;
    dashboard_signed_in(&http, &base, &cookie, 6, "both replicas up").await;
    assert!(both_served(&http, replicas, "/", 200).await, "each replica served the signed-in dashboard");
    // Signing out on one replica ends the session on both.
    let (other, _) = common::sign_in(&http, &base, &admin).await;
    let out = http.post(format!("{base}/logout")).header("cookie", &other).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    for n in 0..4 {
        let after = http.get(format!("{base}/")).header("cookie", &other).send().await.unwrap();
        assert!(after.headers()["location"].to_str().unwrap().starts_with("/login"), "request {n} after sign-out");
    }
    assert!(both_served(&http, replicas, "/", 303).await, "each replica refused the ended session");

    // A TAXII status made on one replica is answered by both.
    let objects = format!("{base}/taxii2/api1/collections/{}/objects/", botscope_web::taxii::SHARED_COLLECTION);
    let indicator = serde_json::json!({"objects": [{
        "type": "indicator", "spec_version": "2.1", "id": "indicator--5d3e0b9f-4c6f-4e70-9b82-9cadbe2f3041",
        "created": "2026-11-06T00:00:00.000Z", "modified": "2026-11-06T00:00:00.000Z",
        "name": "C&C", "pattern_type": "stix", "valid_from": "2026-11-06T00:00:00Z",
        "pattern": "[ipv4-addr:value = '127.200.9.7']"
    }]});
    let posted = http
        .post(&objects)
        .bearer_auth(&admin)
        .header("accept", MEDIA)
        .header("content-type", MEDIA)
        .body(indicator.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::ACCEPTED);
    let status: serde_json::Value = serde_json::from_str(&posted.text().await.unwrap()).unwrap();
    let status_url = format!("{base}/taxii2/api1/status/{}/", status["id"].as_str().unwrap());
    for n in 0..4 {
        let polled = http.get(&status_url).bearer_auth(&admin).header("accept", MEDIA).send().await.unwrap();
        assert_eq!(polled.status(), StatusCode::OK, "status poll {n}");
        let polled: serde_json::Value = serde_json::from_str(&polled.text().await.unwrap()).unwrap();
        assert_eq!((polled["id"].clone(), polled["success_count"].clone()), (status["id"].clone(), 1.into()));
    }
    assert!(both_served(&http, replicas, "/taxii2/api1/status/{id}/", 200).await, "each replica answered a poll");

    // The self-check's limit (3 a minute) counts one visitor once across replicas: with a count per
    // replica, four requests alternating between two would all be answered.
    // The visitor comes from 127.0.0.7; HAProxy (127.0.0.1, trusted) names it.
    let visitor =
        reqwest::Client::builder().local_address("127.0.0.7".parse::<std::net::IpAddr>().ok()).build().unwrap();
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(visitor.get(format!("{base}/check")).send().await.unwrap().status());
    }
    assert_eq!(answers, [StatusCode::OK, StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
    assert!(both_served(&http, replicas, "/check", 200).await, "both replicas counted the visitor");

    // One replica dies mid-session: the user stays signed in and the status stays readable.
    drop(replica_a);
    dashboard_signed_in(&http, &base, &cookie, 6, "after replica A was killed").await;
    let polled = http.get(&status_url).bearer_auth(&admin).header("accept", MEDIA).send().await.unwrap();
    assert_eq!(polled.status(), StatusCode::OK);
}
