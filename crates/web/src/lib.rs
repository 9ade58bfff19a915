//! botscope's HTTP face: the centre's API (`/api/v1`: ingest from sensors, botnets, each ISP's own
//! notifications), the TAXII 2.1 server, and the pages people use: the analysts' dashboard, the ISP
//! portal and the public self-check. Routes are documented in docs/api.md and docs/web.md.
//!
//! Boundaries: it serves HTTP and stores through the `Store` trait; who may write what is decided
//! by `botscope_center::admit`, and STIX/TAXII content by `botscope_share`.
#![deny(missing_docs)]

mod api;
mod auth;
mod error;
mod kept;
mod metrics;
pub mod pages;
pub mod taxii;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use botscope_store::{AnyStore, Store};
use tokio::sync::Semaphore;

pub use axum::http::HeaderName;
pub use error::ApiError;
pub use metrics::Metrics;

/// Bounds the API holds every request to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body, bytes (compressed size for gzip; 8 times this decompressed).
    pub max_body: usize,
    /// Longest record line, bytes.
    pub max_line: usize,
    /// Ingest batches committing at once.
    pub writers: usize,
    /// Ingest batches waiting to commit before new ones get 503.
    pub max_waiting: usize,
    /// How long a client has to send a request's head (request line and headers), on a new
    /// connection and between requests on a kept-alive one; then the connection is closed.
    pub header_timeout: std::time::Duration,
    /// Connections served at once; beyond it a new connection is answered 503 and closed at once.
    pub max_connections: usize,
    /// How long a TAXII POST's status resource can be read.
    pub taxii_status_ttl: std::time::Duration,
    /// TAXII status resources held in all (the oldest are dropped first).
    pub taxii_statuses: usize,
    /// TAXII status resources held per token (its oldest are dropped first).
    pub taxii_statuses_per_token: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 16 << 20,
            max_line: 1 << 20,
            writers: 4,
            max_waiting: 64,
            header_timeout: std::time::Duration::from_secs(10),
            max_connections: 1024,
            taxii_status_ttl: std::time::Duration::from_secs(24 * 3600),
            taxii_statuses: 10_000,
            taxii_statuses_per_token: 1_000,
        }
    }
}

/// How the pages behave.
#[derive(Debug, Clone)]
pub struct PagesConfig {
    /// The dashboard needs no sign-in (for a centre on loopback, or the demo); otherwise only
    /// admins who signed in see it. The ISP portal always needs an ISP's sign-in.
    pub open_dashboard: bool,
    /// Header a trusted reverse proxy puts the visitor's address in (e.g. X-Forwarded-For).
    pub client_ip_header: Option<HeaderName>,
    /// Peers whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How many days back the self-check looks.
    pub check_days: u32,
    /// Self-check answers per visitor address and minute.
    pub check_per_minute: u32,
    /// Remediation guides by device model, for the self-check.
    pub guides: pages::check::Guides,
    /// Cookies carry Secure: people reach the server over HTTPS (through a TLS proxy).
    pub secure_cookies: bool,
}

impl Default for PagesConfig {
    fn default() -> Self {
        PagesConfig {
            open_dashboard: false,
            client_ip_header: None,
            trusted_proxies: Vec::new(),
            check_days: 30,
            check_per_minute: 20,
            guides: pages::check::Guides::default(),
            secure_cookies: false,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: AnyStore,
    /// Request bounds.
    pub limits: Limits,
    /// How the pages behave.
    pub pages: Arc<PagesConfig>,
    /// What the server did, for `/metrics`.
    pub metrics: Arc<Metrics>,
    writers: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    taxii_statuses: taxii::Statuses,
    check_local: pages::check::LocalCheckLimit,
    /// When the latest roll-up refresh of this process began; held while one runs.
    rollups: Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
    /// C&C servers summed from the roll-up per day range, with the roll-up version they were read at.
    servers: Arc<kept::Kept<DayRange, botscope_center::rollup::servers::Servers, (u64, i64)>>,
    /// Every botnet's current server per start time, with the botnets' generation.
    current_servers: Arc<kept::Kept<Option<botscope_model::Timestamp>, Vec<botscope_store::BotnetCurrentServer>, i64>>,
    /// Every botnet's servers per start time, with the botnets' generation.
    botnet_servers: Arc<kept::Kept<Option<botscope_model::Timestamp>, BotnetServers, i64>>,
}

/// Each botnet's servers as (serial, address, port), [`Store::botnet_servers`].
type BotnetServers = Vec<(String, std::net::IpAddr, u16)>;

/// A range of days, either end open.
type DayRange = (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>);

/// Day ranges whose C&C servers a process keeps (the default view's, and a few others'), and
/// start times whose botnet server lists it keeps.
const RANGES_KEPT: usize = 4;

/// How long a botnet server list is kept at most: a replica of a build before the botnets'
/// generation (migration 0014) rewrites botnets without raising it.
const BOTNET_LISTS_KEPT_AT_MOST: std::time::Duration = std::time::Duration::from_secs(60);

impl AppState {
    /// State over a store.
    pub fn new(store: AnyStore, limits: Limits) -> Self {
        AppState {
            store,
            limits,
            writers: Arc::new(Semaphore::new(limits.writers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            taxii_statuses: taxii::Statuses::new(taxii::StatusLimits {
                ttl: limits.taxii_status_ttl,
                max: limits.taxii_statuses,
                per_token: limits.taxii_statuses_per_token,
            }),
            pages: Arc::new(PagesConfig::default()),
            metrics: Arc::new(Metrics::default()),
            check_local: pages::check::LocalCheckLimit::default(),
            rollups: Arc::new(tokio::sync::Mutex::new(None)),
            servers: Arc::new(kept::Kept::new(RANGES_KEPT, None)),
            current_servers: Arc::new(kept::Kept::new(RANGES_KEPT, Some(BOTNET_LISTS_KEPT_AT_MOST))),
            botnet_servers: Arc::new(kept::Kept::new(RANGES_KEPT, Some(BOTNET_LISTS_KEPT_AT_MOST))),
        }
    }

    /// The C&C servers reported on the days from `from` to `to`, as
    /// [`botscope_center::rollup::servers::read`] sums them, read again only when the store's
    /// roll-up of the range has changed since (see [`botscope_store::Store::server_rollup_version`]).
    /// A national year holds tens of thousands of servers: summing them cost the overview and
    /// `/cnc` about 0.1 s of each core per request, and sixteen users at once queued behind it.
    /// Callers asking while a range is read wait for it and share it.
    pub async fn rolled_up_servers(
        &self,
        from: Option<chrono::NaiveDate>,
        to: Option<chrono::NaiveDate>,
    ) -> Result<Arc<botscope_center::rollup::servers::Servers>, botscope_center::CenterError> {
        let store = &self.store;
        let (servers, answered) = self
            .servers
            .get(
                (from, to),
                async { store.server_rollup_version(from, to).await.map_err(botscope_center::CenterError::Store) },
                || botscope_center::rollup::servers::read(store, from, to),
            )
            .await?;
        self.metrics.count_kept(&self.metrics.server_cache_hits, &self.metrics.server_cache_reads, answered);
        Ok(servers)
    }

    /// Every botnet filed at or after `since` with the server it used last
    /// ([`Store::botnet_current_servers`]), in serial number order (the shorter serial first),
    /// sorted once when read; read again when the botnets' generation moves
    /// ([`Store::record_version`]) or after a minute.
    pub async fn botnet_current_servers(
        &self,
        since: Option<botscope_model::Timestamp>,
    ) -> Result<Arc<Vec<botscope_store::BotnetCurrentServer>>, botscope_store::StoreError> {
        let store = &self.store;
        let (current, answered) = self
            .current_servers
            .get(since, store.record_version(botscope_model::Kind::Botnet), || async move {
                let mut current = store.botnet_current_servers(since).await?;
                current.sort_by(|a, b| (a.serial.len(), &a.serial).cmp(&(b.serial.len(), &b.serial)));
                Ok(current)
            })
            .await?;
        self.metrics.count_kept(&self.metrics.botnet_list_hits, &self.metrics.botnet_list_reads, answered);
        Ok(current)
    }

    /// Every server of the botnets filed at or after `since` ([`Store::botnet_servers`]), kept
    /// like [`AppState::botnet_current_servers`].
    pub async fn botnet_servers(
        &self,
        since: Option<botscope_model::Timestamp>,
    ) -> Result<Arc<BotnetServers>, botscope_store::StoreError> {
        let store = &self.store;
        let (servers, answered) = self
            .botnet_servers
            .get(since, store.record_version(botscope_model::Kind::Botnet), || store.botnet_servers(since))
            .await?;
        self.metrics.count_kept(&self.metrics.botnet_list_hits, &self.metrics.botnet_list_reads, answered);
        Ok(servers)
    }

    /// Brings the daily roll-ups up to date with what was written before the call, one refresh at a
    /// time per process. A refresh that began after the call was made has counted all of that
    /// already, so callers that waited behind it share it (and get an empty summary) instead of
    /// each recounting: under continuous ingest today is always marked, and sixteen pages asked at
    /// once would otherwise read today's records sixteen times in a row.
    pub async fn refresh_rollups(
        &self,
    ) -> Result<botscope_center::rollup::RefreshSummary, botscope_center::CenterError> {
        self.refresh_since(std::time::Instant::now()).await
    }

    /// [`AppState::refresh_rollups`] for a page: what was written before the page was asked for.
    /// The reads one page makes at once (the overview's servers and figures) thus share one
    /// refresh instead of recounting today twice under ingest.
    pub async fn refresh_rollups_for(
        &self,
        view: &pages::data::View,
    ) -> Result<botscope_center::rollup::RefreshSummary, botscope_center::CenterError> {
        self.refresh_since(view.asked.unwrap_or_else(std::time::Instant::now)).await
    }

    async fn refresh_since(
        &self,
        asked: std::time::Instant,
    ) -> Result<botscope_center::rollup::RefreshSummary, botscope_center::CenterError> {
        let mut latest_began = self.rollups.lock().await;
        if latest_began.is_some_and(|began| began >= asked) {
            return Ok(botscope_center::rollup::RefreshSummary::default());
        }
        let began = std::time::Instant::now();
        let summary = botscope_center::rollup::refresh(&self.store).await?;
        *latest_began = Some(began);
        self.metrics.rollup_days.fetch_add(summary.days, std::sync::atomic::Ordering::Relaxed);
        self.metrics.rollup_records.fetch_add(summary.records, std::sync::atomic::Ordering::Relaxed);
        Ok(summary)
    }

    /// The same state with these page settings.
    pub fn with_pages(mut self, pages: PagesConfig) -> Self {
        self.pages = Arc::new(pages);
        self
    }
}

/// The wall clock in Unix milliseconds: how state shared with other replicas through the store
/// (sessions, TAXII statuses, rate counts) tells time, since an `Instant` means nothing to another
/// process.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Liveness: the process answers. It reads nothing, so a load balancer may ask often.
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Readiness: the store answers one small query and has every migration this build carries.
async fn ready(State(state): State<AppState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let schema = state.store.schema().await.map_err(|error| {
        // The caller needs no token: the kind of failure only, the whole error in the log.
        tracing::warn!(%error, "readiness: the store does not answer");
        ApiError {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            message: format!("the store does not answer: {}", error.brief()),
            retry_after: Some(5),
        }
    })?;
    if !schema.is_current() {
        return Err(ApiError {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            message: format!(
                "the store has migrations up to {} and this build needs {}: run `botscope db upgrade` (docs/center.md)",
                schema.applied, schema.expected
            ),
            retry_after: Some(30),
        });
    }
    Ok(axum::Json(serde_json::json!({ "status": "ready", "schema": schema.applied })))
}

async fn no_route() -> ApiError {
    ApiError::not_found()
}

async fn wrong_method() -> ApiError {
    ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "this route does not take that method (see docs/api.md)")
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(api::openapi::serve))
        // The ingest handler bounds its body itself, to answer 413 in JSON.
        .route("/ingest", post(api::ingest::ingest).layer(DefaultBodyLimit::disable()))
        .route("/botnets", get(api::botnets::list))
        .route("/botnets/{serial}", get(api::botnets::show))
        .route("/records", get(api::records::search))
        .route("/isp/notifications", get(api::isp::list))
        .route("/isp/notifications/{id}/status", post(api::isp::update_status))
        .route("/recheck", get(api::isp::recheck))
        .route("/isp/report", get(api::isp::report))
        .layer(DefaultBodyLimit::max(1 << 20));
    let objects = "/taxii2/api1/collections/{id}/objects/";
    let pages = Router::new()
        .route("/", get(pages::dashboard::overview))
        .route("/botnets", get(pages::botnets::list))
        .route("/botnets/{serial}", get(pages::botnets::show))
        .route("/cnc", get(pages::dashboard::cnc))
        .route("/isps", get(pages::dashboard::isps))
        .route("/coverage", get(pages::dashboard::coverage))
        .route("/check", get(pages::check::check))
        .route("/login", get(pages::session::login_form).post(pages::session::login))
        .route("/logout", post(pages::session::logout))
        .route("/portal", get(pages::portal::cases))
        .route("/portal/cases/{id}/status", post(pages::portal::update_status))
        .route("/portal/tokens", get(pages::portal::tokens_page).post(pages::portal::create_token))
        .route("/portal/tokens/{id}/revoke", post(pages::portal::revoke_token))
        .route("/assets/style.css", get(pages::stylesheet))
        .layer(DefaultBodyLimit::max(64 << 10));
    Router::new()
        .merge(pages)
        .nest("/api/v1", api)
        .route("/metrics", get(metrics::metrics))
        .route("/taxii2/", get(taxii::discovery))
        .route("/taxii2/api1/", get(taxii::api_root))
        .route("/taxii2/api1/collections/", get(taxii::collections))
        .route("/taxii2/api1/collections/{id}/", get(taxii::collection))
        // The POST handler bounds its body itself, to answer 413 in TAXII's error format.
        .route(objects, get(taxii::get_objects).post(taxii::post_objects).layer(DefaultBodyLimit::disable()))
        .route(&format!("{objects}{{object_id}}/"), get(taxii::get_object))
        .route(&format!("{objects}{{object_id}}/versions/"), get(taxii::versions))
        .route("/taxii2/api1/collections/{id}/manifest/", get(taxii::manifest))
        .route("/taxii2/api1/status/{id}/", get(taxii::status))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
///
/// Each connection must send a request head within `limits.header_timeout` (also between requests
/// on a kept-alive connection), and at most `limits.max_connections` are served at once. A
/// connection beyond the cap is answered 503 and closed at once rather than left waiting: a queue
/// of waiting connections is exactly what a flood of idle ones builds, and an immediate answer
/// lets a real client retry while the slots free (each is held at most the header timeout when
/// idle).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits;
    let metrics = state.metrics.clone();
    let router = router(state);
    let cap = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(cap));
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or memory: wait a little rather than spin; a connection
                    // that failed before it was accepted concerns nobody else.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection cap reached; closing a new connection");
            metrics.connections_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Best effort and never waiting: the socket is fresh, so its send buffer has room.
            let _ = stream.try_write(FULL_RESPONSE);
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        // The self-check answers for the visitor's own address, read as ConnectInfo.
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            hyper::service::Service::call(&service, request)
        });
        let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let mut stop = stop.clone();
        let open = OpenConnection::new(metrics.clone());
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
            drop(slot);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection holds a slot until it ends: having them all back means all have finished.
    let _ = slots.acquire_many(cap as u32).await;
    Ok(())
}

/// Counts a connection as open while it lives.
struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics.connections_open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenConnection(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The answer to a connection beyond the cap.
const FULL_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 56\r\n\r\n{\"error\":\"too many connections; try again in a second\"}\n";
