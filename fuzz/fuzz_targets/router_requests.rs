//! Any bytes as an authenticated request to the whole application (the API, TAXII and the pages)
//! over a real SQLite store that keeps what earlier inputs wrote. Every request is answered, within
//! a time bound and with a body under a size bound; a panic in any handler, a hang or an unbounded
//! answer is a finding. Memory is bounded by libFuzzer's -rss_limit_mb (see fuzz/README.md).
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use botscope_center::tokens::{self, Role};
use botscope_model::{Record, parse_line};
use botscope_store::{AnyStore, SqliteStore, Store};
use botscope_web::{AppState, PagesConfig};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// Largest answer any request may get: the biggest page of the seeded store is far below it.
const MAX_RESPONSE: usize = 8 << 20;
/// Longest any request may take.
const MAX_TIME: Duration = Duration::from_secs(10);

const ROUTES: &[&str] = &[
    "/api/v1/health",
    "/api/v1/ready",
    "/metrics",
    "/api/v1/ingest",
    "/api/v1/botnets",
    "/api/v1/botnets/{}",
    "/api/v1/isp/notifications",
    "/api/v1/isp/notifications/{}/status",
    "/api/v1/recheck",
    "/api/v1/isp/report",
    "/",
    "/botnets",
    "/botnets/{}",
    "/cnc",
    "/isps",
    "/coverage",
    "/check",
    "/login",
    "/logout",
    "/portal",
    "/portal/cases/{}/status",
    "/portal/tokens",
    "/portal/tokens/{}/revoke",
    "/taxii2/",
    "/taxii2/api1/",
    "/taxii2/api1/collections/",
    "/taxii2/api1/collections/{}/",
    "/taxii2/api1/collections/{}/objects/",
    "/taxii2/api1/collections/{}/objects/{}/",
    "/taxii2/api1/collections/{}/objects/{}/versions/",
    "/taxii2/api1/collections/{}/manifest/",
    "/taxii2/api1/status/{}/",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD"];

struct World {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    /// Bearer tokens: admin, two ISPs, sensor, surveyor.
    tokens: Vec<String>,
    /// Ids worth putting in paths: stored records, the shared collection.
    ids: Vec<String>,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (router, tokens, ids) = runtime.block_on(async {
            let store = SqliteStore::open(&dir.path().join("centre.db"), 2).await.unwrap();
            let mut tokens = Vec::new();
            for (role, isp, label) in [
                (Role::Admin, None, "analyst"),
                (Role::Isp, Some("hikari-net"), "hikari-net"),
                (Role::Isp, Some("sakura-bb"), "sakura-bb"),
                (Role::Sensor, None, "darknet-a"),
                (Role::Surveyor, None, "survey-1"),
            ] {
                let (token, row) = tokens::issue(role, isp, label, &[], chrono::Utc::now()).unwrap();
                store.put_token(&row).await.unwrap();
                tokens.push(token);
            }
            let mut records: Vec<Record> = include_str!("../../data/examples/records.jsonl")
                .lines()
                .filter_map(|line| parse_line(line.as_bytes(), None).ok().flatten())
                .collect();
            let ids: Vec<String> = records
                .iter_mut()
                .map(|r| r.ensure_id().to_string())
                .chain(["5b2f8c1e-7d3a-4e9b-8f60-2a1c3d4e5f6a".to_string(), "BN-2026-0001".to_string()])
                .collect();
            store.put_records(&records).await.unwrap();
            let pages = PagesConfig { open_dashboard: true, ..PagesConfig::default() };
            let state = AppState::new(AnyStore::Sqlite(store), Default::default()).with_pages(pages);
            (botscope_web::router(state), tokens, ids)
        });
        World { runtime, router, tokens, ids, _dir: dir }
    })
}

/// Reads the input as: method, token, route, path values, query, headers, body.
fn request(world: &World, data: &[u8]) -> Option<axum::http::Request<axum::body::Body>> {
    let (&[method, token, route, flags], rest) = data.split_first_chunk::<4>()?;
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\u{0}');
    let (path_value, query, body) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let value = |n: u8| -> String {
        if n & 1 == 0 {
            world.ids[n as usize / 2 % world.ids.len()].clone()
        } else {
            path_value.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
        }
    };
    let template = ROUTES[route as usize % ROUTES.len()];
    let mut path = String::new();
    for (n, piece) in template.split("{}").enumerate() {
        if n > 0 {
            path.push_str(&value(flags.wrapping_add(n as u8)));
        }
        path.push_str(piece);
    }
    let query: String = query.chars().filter(|c| c.is_ascii_graphic() && *c != '#').collect();
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    let mut builder = axum::http::Request::builder().method(METHODS[method as usize % METHODS.len()]).uri(path);
    if let Some(token) = world.tokens.get(token as usize % (world.tokens.len() + 1)) {
        builder = if flags & 0x10 == 0 {
            builder.header("authorization", format!("Bearer {token}"))
        } else {
            builder.header("authorization", format!("Basic {}", base64_of(&format!("x:{token}"))))
        };
    }
    if route as usize % ROUTES.len() >= 21 {
        builder = builder.header("accept", "application/taxii+json;version=2.1");
        builder = builder.header("content-type", "application/taxii+json;version=2.1");
    } else if flags & 0x20 != 0 {
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
    } else {
        builder = builder.header("content-type", "application/json");
    }
    let body = if flags & 0x40 != 0 {
        builder = builder.header("content-encoding", "gzip");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, body.as_bytes()).ok()?;
        encoder.finish().ok()?
    } else {
        body.as_bytes().to_vec()
    };
    let mut request = builder.body(axum::body::Body::from(body)).ok()?;
    let peer: SocketAddr = ([127, 16, 4, flags], 40_000).into();
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    Some(request)
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let Some(request) = request(world, data) else { return };
    world.runtime.block_on(async {
        let answer = tokio::time::timeout(MAX_TIME, async {
            let response = world.router.clone().oneshot(request).await.expect("the router is infallible");
            axum::body::to_bytes(response.into_body(), MAX_RESPONSE).await
        })
        .await
        .expect("a request took longer than the time bound");
        answer.expect("an answer larger than the size bound");
    });
});
