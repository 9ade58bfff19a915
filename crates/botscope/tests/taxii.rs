//! The centre's TAXII 2.1 server, driven by the OASIS client (taxii2-client, PyPI, in the venv
//! scripts/test makes): discovery, collections, paging with limit/next, added_after, match filters,
//! object versions, the manifest, POST and its status; and the access rules, with plain HTTP.

mod common;

use std::process::Command;

use common::{Scratch, make_token, start_center, venv};
use reqwest::StatusCode;

const MEDIA: &str = "application/taxii+json;version=2.1";

fn cnc(ip: &str, day: u32) -> String {
    format!(
        r#"{{"kind":"cnc","window_start":"2026-11-{day:02}T00:00:00Z","window_end":"2026-11-{day:02}T01:00:00Z","ip":"{ip}","port":6667,"protocol":"tcp","score":0.95,"rank":1,"methods":["graph"],"seed_clients":3,"total_clients":3,"flows":90,"first_seen":"2026-11-{day:02}T00:00:05Z","last_seen":"2026-11-{day:02}T00:59:00Z","family":"mirai","sensor":"isp-a"}}"#
    )
}

/// A centre store with the example ISPs, three reported C&C servers correlated into botnets, and
/// its STIX bundle (shared.json) published in the shared collection.
fn published_centre() -> (Scratch, std::path::PathBuf, String) {
    let scratch = Scratch::new();
    let db_path = scratch.path("c.db");
    let db = db_path.display().to_string();
    scratch.load_example_isps(&db_path);
    scratch.write("cnc.jsonl", [cnc("127.200.0.10", 2), cnc("127.200.0.11", 3), cnc("127.200.0.12", 3)].join("\n"));
    scratch.run(&["--db", &db, "ingest", "cnc.jsonl"]).ok();
    scratch.run(&["--db", &db, "correlate"]).ok();
    scratch.run(&["--db", &db, "share", "stix", "--out", "shared.json", "--publish", "shared"]).ok();
    (scratch, db_path, db)
}

/// The client's view, as JSON: what the OASIS client saw doing each thing.
const CLIENT: &str = r#"
import json, sys
from taxii2client.v21 import Server, as_pages
base, token, partner = sys.argv[1], sys.argv[2], sys.argv[3]
server = Server(base + "/taxii2/", user="hikari-net", password=token)
out = {"title": server.title, "roots": len(server.api_roots)}
root = server.api_roots[0]
out["versions"] = root.versions
cols = {c.title: c for c in root.collections}
out["collections"] = sorted(cols)
shared = cols["shared"]
out["shared_can_write"] = shared.can_write
pages = list(as_pages(shared.get_objects, per_request=4))
out["pages"] = len(pages)
paged = [o["id"] for p in pages for o in p.get("objects", [])]
everything = shared.get_objects()
out["all"] = len(everything.get("objects", []))
out["paged_equals_all"] = sorted(paged) == sorted(o["id"] for o in everything["objects"])
out["indicators"] = len(shared.get_objects(type="indicator").get("objects", []))
one = everything["objects"][1]["id"]
out["by_id"] = [o["id"] for o in shared.get_object(one)["objects"]] == [one]
out["match_id"] = len(shared.get_objects(id=one)["objects"])
out["versions_of_one"] = len(shared.object_versions(one)["versions"])
manifest = shared.get_manifest()
out["manifest"] = len(manifest["objects"])
out["manifest_versions_match"] = all(m["version"] for m in manifest["objects"])
future = shared.get_objects(added_after="2999-01-01T00:00:00Z")
out["added_after_future"] = len(future.get("objects", []))
own = cols["hikari-net"]
status = own.add_objects(json.dumps(json.loads(open(partner).read())))
out["status"] = status.status
out["success_count"] = status.success_count
out["failure_count"] = status.failure_count
status.refresh()
out["status_again"] = status.status
out["own_after_post"] = len(own.get_objects().get("objects", []))
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oasis_client_reads_pages_filters_and_posts_and_access_rules_hold() {
    let (scratch, db_path, db) = published_centre();
    scratch.run(&["--db", &db, "share", "stix", "--tlp", "red", "--out", "red.json", "--publish", "hikari-net"]).ok();
    scratch.run(&["--db", &db, "share", "stix", "--tlp", "red", "--publish", "shared", "--out", "x.json"]).fails();
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.path("shared.json")).unwrap()).unwrap();
    let published = published["objects"].as_array().unwrap();
    // Publishing again adds no version.
    scratch.run(&["--db", &db, "share", "stix", "--out", "again.json", "--publish", "shared"]).ok();

    let hikari = make_token(&scratch, &db, "isp", Some("hikari-net"), None);
    let sakura = make_token(&scratch, &db, "isp", Some("sakura-bb"), None);
    let sensor = make_token(&scratch, &db, "sensor", None, None);
    let (_centre, base) = start_center(&scratch, &db, &["--correlate-every", "0"]);

    // A partner ISP's C&C indicator, posted into its own collection.
    let partner = serde_json::json!({"objects": [{
        "type": "indicator", "spec_version": "2.1", "id": "indicator--3b1c8f7e-2a4d-4c5e-9f60-7a8b9c0d1e2f",
        "created": "2026-11-06T00:00:00.000Z", "modified": "2026-11-06T00:00:00.000Z",
        "name": "C&C seen at hikari-net", "pattern_type": "stix", "valid_from": "2026-11-06T00:00:00Z",
        "pattern": "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '127.200.9.9' AND network-traffic:dst_port = 23]"
    }, {"type": "indicator", "id": "not-an-id"}]});
    scratch.write("partner.json", partner.to_string());
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", CLIENT, &base, &hikari])
        .arg(scratch.path("partner.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "taxii2-client failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("taxii2-client saw: {seen}");
    assert_eq!(seen["title"], "botscope centre");
    assert_eq!(seen["versions"], serde_json::json!([MEDIA]));
    assert_eq!(
        seen["collections"],
        serde_json::json!(["hikari-net", "shared"]),
        "an ISP sees the shared collection and its own only"
    );
    assert_eq!(seen["shared_can_write"], false);
    assert_eq!(seen["all"].as_u64(), Some(published.len() as u64), "every published object, each once");
    assert_eq!(seen["pages"].as_u64(), Some(published.len().div_ceil(4) as u64), "limit/next paging");
    assert_eq!(seen["paged_equals_all"], true);
    assert_eq!(seen["indicators"], 3);
    assert_eq!(
        (seen["by_id"].as_bool(), seen["match_id"].as_u64(), seen["versions_of_one"].as_u64()),
        (Some(true), Some(1), Some(1))
    );
    assert_eq!(seen["manifest"].as_u64(), Some(published.len() as u64));
    assert_eq!(seen["added_after_future"], 0);
    assert_eq!(
        (seen["status"].as_str(), seen["success_count"].as_u64(), seen["failure_count"].as_u64()),
        (Some("complete"), Some(1), Some(1))
    );
    assert_eq!(seen["status_again"], "complete");
    // The red bundle's objects and the partner's indicator.
    let red: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.path("red.json")).unwrap()).unwrap();
    assert_eq!(seen["own_after_post"].as_u64(), Some(red["objects"].as_array().unwrap().len() as u64 + 1));
    // The partner's C&C became a feed entry kept apart by who sent it.
    let store = common::open_sqlite(&db_path).await;
    let feeds = botscope_store::all_records(
        &store,
        botscope_store::RecordQuery { kind: Some(botscope_model::Kind::FeedEntry), ..Default::default() },
    )
    .await
    .unwrap();
    assert!(
        feeds.iter().any(|r| r.to_json_line().contains("\"source\":\"taxii:hikari-net\"")
            && r.to_json_line().contains("127.200.9.9"))
    );

    // Access rules and media types, with plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let get = |path: String, token: Option<&str>, accept: &str| {
        let mut request = http.get(format!("{base}{path}")).header("accept", accept.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(get("/taxii2/".into(), None, MEDIA).await.unwrap().status(), StatusCode::OK, "discovery is public");
    let anonymous = get("/taxii2/api1/collections/".into(), None, MEDIA).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers()["content-type"].to_str().unwrap().starts_with("application/taxii+json"));
    assert_eq!(get("/taxii2/".into(), None, "application/json").await.unwrap().status(), StatusCode::NOT_ACCEPTABLE);
    let hikari_collection = botscope_web::taxii::isp_collection("hikari-net");
    let objects = format!("/taxii2/api1/collections/{hikari_collection}/objects/");
    let foreign = get(objects.clone(), Some(&sakura), MEDIA).await.unwrap();
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND, "another ISP's collection does not exist for sakura-bb");
    assert!(!foreign.text().await.unwrap().contains("indicator--"));
    let shared_objects = format!("/taxii2/api1/collections/{}/objects/", botscope_web::taxii::SHARED_COLLECTION);
    let sakura_view = get(shared_objects.clone(), Some(&sakura), MEDIA).await.unwrap().text().await.unwrap();
    assert!(
        !sakura_view.contains("5e57c739-391a-4eb3-b6be-7d15ca92d5ed"),
        "no TLP:RED object in the shared collection"
    );
    assert_eq!(
        get(format!("{shared_objects}?limit=0"), Some(&sakura), MEDIA).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(format!("{shared_objects}?added_after=yesterday"), Some(&sakura), MEDIA).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let post = |token: &str, content_type: &str, body: String| {
        http.post(format!("{base}{shared_objects}"))
            .bearer_auth(token.to_string())
            .header("accept", MEDIA)
            .header("content-type", content_type.to_string())
            .body(body)
            .send()
    };
    assert_eq!(
        post(&sensor, MEDIA, partner.to_string()).await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "only admins write the shared collection"
    );
    let own_objects = format!("{base}{objects}");
    let wrong_type = http
        .post(&own_objects)
        .bearer_auth(&hikari)
        .header("accept", MEDIA)
        .header("content-type", "application/json")
        .body(partner.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!("{{\"objects\": [\"{}\"]}}", "x".repeat(11 << 20));
    // A connection of its own: the server answers 413 before reading the body and closes the
    // connection, which a pooled client could otherwise reuse for the next request.
    let once = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let too_large = once
        .post(&own_objects)
        .bearer_auth(&hikari)
        .header("accept", MEDIA)
        .header("content-type", MEDIA)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let garbage = http
        .post(&own_objects)
        .bearer_auth(&hikari)
        .header("accept", MEDIA)
        .header("content-type", MEDIA)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    // HTTP Basic with the token as the password works like Bearer.
    let basic = http
        .get(format!("{base}/taxii2/api1/collections/"))
        .basic_auth("anyone", Some(&hikari))
        .header("accept", MEDIA)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
}

/// The same client-side checks, for any server: what the OASIS client sees of one collection.
const CHECKS: &str = r#"
import json, sys
from taxii2client.v21 import Server, as_pages
url, user, password, title = sys.argv[1:5]
fill = sys.argv[5] if len(sys.argv) > 5 else None
root = Server(url, user=user, password=password).api_roots[0]
collection = {c.title: c for c in root.collections}[title]
if fill:
    status = collection.add_objects(open(fill).read())
    assert status.status == "complete" and status.failure_count == 0, status.failures
everything = collection.get_objects()
ids = sorted(o["id"] for o in everything.get("objects", []))
pages = list(as_pages(collection.get_objects, per_request=4))
paged = sorted(o["id"] for p in pages for o in p.get("objects", []))
one = ids[0]
print(json.dumps({
    "ids": ids,
    "pages": len(pages),
    "paged_equals_all": paged == ids,
    "indicators": len(collection.get_objects(type="indicator").get("objects", [])),
    "relationships_and_malware": len(collection.get_objects(type="relationship,malware").get("objects", [])),
    "match_id": [o["id"] for o in collection.get_objects(id=one)["objects"]],
    "object": [o["id"] for o in collection.get_object(one)["objects"]],
    "versions": len(collection.object_versions(one)["versions"]),
    "manifest": sorted(m["id"] for m in collection.get_manifest()["objects"]),
    "added_after_future": len(collection.get_objects(added_after="2999-01-01T00:00:00Z").get("objects", [])),
}, sort_keys=True))
"#;

fn free_port() -> u16 {
    botscope_testkit::free_loopback_port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_client_checks_agree_with_oasis_medallion_and_pull_imports_incrementally() {
    let (scratch, db_path, db) = published_centre();
    let admin = make_token(&scratch, &db, "admin", None, None);
    let (_centre, base) = start_center(&scratch, &db, &["--correlate-every", "0"]);

    // OASIS medallion (memory backend) with one empty, writable collection, filled below with the
    // same objects the centre published.
    let port = free_port();
    let data = serde_json::json!({
        "/discovery": {"title": "medallion", "description": "reference", "contact": "test",
                       "default": format!("http://127.0.0.1:{port}/api1/"), "api_roots": [format!("http://127.0.0.1:{port}/api1/")]},
        "api1": {
            "information": {"title": "api1", "versions": [MEDIA], "max_content_length": 10485760},
            "status": [],
            "collections": [{"id": "91a7b528-80eb-42ed-a74d-c6fbd5a26116", "title": "shared", "description": "reference",
                             "can_read": true, "can_write": true, "media_types": ["application/stix+json;version=2.1"],
                             "objects": [], "manifest": []}]
        }
    });
    scratch.write("medallion-data.json", data.to_string());
    let config = serde_json::json!({
        "backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                    "filename": scratch.path("medallion-data.json")},
        "users": {"ref": "secret"},
        "taxii": {"max_page_size": 100}
    });
    scratch.write("medallion.json", config.to_string());
    let medallion = common::Reaped(
        Command::new(venv().join("bin/medallion"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(scratch.path("medallion.json"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("medallion from the test venv"),
    );
    common::wait_for_port(port, "medallion");
    let bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.path("shared.json")).unwrap()).unwrap();
    scratch.write("envelope.json", serde_json::json!({ "objects": bundle["objects"] }).to_string());
    let check = |url: String, user: &str, password: &str, fill: Option<&str>| {
        let mut command = Command::new(venv().join("bin/python"));
        command.args(["-c", CHECKS, &url, user, password, "shared"]);
        if let Some(fill) = fill {
            command.arg(scratch.path(fill));
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "the client checks failed on {url}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let reference = check(format!("http://127.0.0.1:{port}/taxii2/"), "ref", "secret", Some("envelope.json"));
    let ours = check(format!("{base}/taxii2/"), "admin", &admin, None);
    assert_eq!(ours, reference, "botscope's TAXII server answers the OASIS client as medallion does");
    assert!(reference["ids"].as_array().unwrap().len() > 10 && reference["indicators"] == 3);

    // `share pull` from medallion: the three C&C indicators become feed entries; a second pull
    // fetches only what was added since.
    let pull = |args: &[&str]| {
        let mut all = vec!["--db", db.as_str(), "share", "pull"];
        all.extend(args);
        scratch.run(&all).ok()
    };
    let medallion_url = format!("http://127.0.0.1:{port}/taxii2/");
    let collection = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
    let reference_pull = [
        "--taxii",
        medallion_url.as_str(),
        "--collection",
        collection,
        "--user",
        "ref",
        "--password",
        "secret",
        "--state",
        "pull.json",
        "--source",
        "partner",
    ];
    let first = pull(&reference_pull);
    assert!(
        first.stderr.contains(&format!("objects={}", reference["ids"].as_array().unwrap().len())),
        "{}",
        first.stderr
    );
    let store = common::open_sqlite(&db_path).await;
    let partner_entries = |store: &botscope_store::SqliteStore| {
        let store = store.clone();
        async move {
            botscope_store::all_records(
                &store,
                botscope_store::RecordQuery { kind: Some(botscope_model::Kind::FeedEntry), ..Default::default() },
            )
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.to_json_line().contains("\"source\":\"partner\""))
            .count()
        }
    };
    assert_eq!(partner_entries(&store).await, 3);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let more = serde_json::json!({"objects": [{
        "type": "indicator", "spec_version": "2.1", "id": "indicator--6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "created": "2026-11-07T00:00:00.000Z", "modified": "2026-11-07T00:00:00.000Z", "name": "new C&C",
        "pattern_type": "stix", "valid_from": "2026-11-07T00:00:00Z",
        "pattern": "[ipv4-addr:value = '127.200.7.7']"
    }]});
    scratch.write("more.json", more.to_string());
    check(format!("http://127.0.0.1:{port}/taxii2/"), "ref", "secret", Some("more.json"));
    let second = pull(&reference_pull);
    assert!(second.stderr.contains("objects=1 "), "only the new object is fetched: {}", second.stderr);
    assert_eq!(partner_entries(&store).await, 4);
    // And from botscope's own server with a token.
    let own = pull(&[
        "--taxii",
        &format!("{base}/taxii2/"),
        "--collection",
        botscope_web::taxii::SHARED_COLLECTION,
        "--token",
        &admin,
        "--state",
        "own.json",
    ]);
    assert!(own.stderr.contains(&format!("objects={}", reference["ids"].as_array().unwrap().len())), "{}", own.stderr);
    drop(medallion);
}

/// Issue 16, finding 11: a partner's TLP:RED indicators became global feed entries (correlation,
/// liveness, every analyst's view), partner feeds were named after the token's free-text label
/// rather than the ISP, and ISP tokens read other ISPs' flow analyser names in botnets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_tlp_red_left_its_audience_and_partners_were_named_by_label() {
    let (scratch, db_path, db) = published_centre();
    let hikari = make_token(&scratch, &db, "isp", Some("hikari-net"), Some("Hikari SOC desk"));
    let admin = make_token(&scratch, &db, "admin", None, None);
    let (_centre, base) = start_center(&scratch, &db, &["--correlate-every", "0"]);
    let indicator = |id: &str, ip: &str, red: bool| {
        let mut object = serde_json::json!({
            "type": "indicator", "spec_version": "2.1", "id": id,
            "created": "2026-11-06T00:00:00.000Z", "modified": "2026-11-06T00:00:00.000Z",
            "name": "C&C", "pattern_type": "stix", "valid_from": "2026-11-06T00:00:00Z",
            "pattern": format!("[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '{ip}' AND network-traffic:dst_port = 23]")
        });
        if red {
            object["object_marking_refs"] =
                serde_json::json!(["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"]);
        }
        object
    };
    let envelope = serde_json::json!({"objects": [
        indicator("indicator--3b1c8f7e-2a4d-4c5e-9f60-7a8b9c0d1e2f", "127.200.9.9", false),
        indicator("indicator--4c2d9a8f-3b5e-4d6f-8a71-8b9cad1e2f30", "127.200.9.8", true),
    ]});
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let own = format!("{base}/taxii2/api1/collections/{}/objects/", botscope_web::taxii::isp_collection("hikari-net"));
    let posted = http
        .post(&own)
        .bearer_auth(&hikari)
        .header("accept", MEDIA)
        .header("content-type", MEDIA)
        .body(envelope.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::ACCEPTED, "{}", posted.text().await.unwrap());
    let store = common::open_sqlite(&db_path).await;
    let feeds: Vec<String> = botscope_store::all_records(
        &store,
        botscope_store::RecordQuery { kind: Some(botscope_model::Kind::FeedEntry), ..Default::default() },
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.to_json_line())
    .collect();
    assert!(
        feeds.iter().any(|f| f.contains("\"source\":\"taxii:hikari-net\"") && f.contains("127.200.9.9")),
        "{feeds:?}"
    );
    assert!(!feeds.iter().any(|f| f.contains("127.200.9.8")), "a TLP:RED indicator became a feed entry: {feeds:?}");
    assert!(!feeds.iter().any(|f| f.contains("Hikari SOC")), "{feeds:?}");
    // The red object is still in the collection it was posted to.
    let listed =
        http.get(&own).bearer_auth(&hikari).header("accept", MEDIA).send().await.unwrap().text().await.unwrap();
    assert!(listed.contains("indicator--4c2d9a8f-3b5e-4d6f-8a71-8b9cad1e2f30"));

    let botnets = |token: String| {
        let http = http.clone();
        let url = format!("{base}/api/v1/botnets");
        async move { http.get(url).bearer_auth(token).send().await.unwrap().text().await.unwrap() }
    };
    let isp_view = botnets(hikari.clone()).await;
    assert!(isp_view.contains("\"reporter_count\":1") && !isp_view.contains("isp-a"), "{isp_view}");
    let admin_view = botnets(admin).await;
    assert!(admin_view.contains("\"reporters\":[\"isp-a\"]"), "{admin_view}");
}
