//! botscope's HTTP face. For now the centre's API (`/api/v1`): ingest from sensors, botnets, and
//! each ISP's own notifications. Routes are documented in docs/api.md.
#![deny(missing_docs)]

mod api;
mod auth;
mod error;
pub mod taxii;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use botscope_store::{AnyStore, Store};
use tokio::sync::Semaphore;

pub use error::ApiError;

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
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body: 16 << 20, max_line: 1 << 20, writers: 4, max_waiting: 64 }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: AnyStore,
    /// Request bounds.
    pub limits: Limits,
    writers: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    taxii_statuses: taxii::Statuses,
}

impl AppState {
    /// State over a store.
    pub fn new(store: AnyStore, limits: Limits) -> Self {
        AppState {
            store,
            limits,
            writers: Arc::new(Semaphore::new(limits.writers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            taxii_statuses: taxii::Statuses::default(),
        }
    }
}

async fn health(State(state): State<AppState>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let records = state.store.count_records(None).await?;
    Ok(axum::Json(serde_json::json!({ "status": "ok", "records": records })))
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
        // The ingest handler bounds its body itself, to answer 413 in JSON.
        .route("/ingest", post(api::ingest::ingest).layer(DefaultBodyLimit::disable()))
        .route("/botnets", get(api::botnets::list))
        .route("/botnets/{serial}", get(api::botnets::show))
        .route("/isp/notifications", get(api::isp::list))
        .route("/isp/notifications/{id}/status", post(api::isp::update_status))
        .route("/recheck", get(api::isp::recheck))
        .route("/isp/report", get(api::isp::report))
        .layer(DefaultBodyLimit::max(1 << 20));
    let objects = "/taxii2/api1/collections/{id}/objects/";
    Router::new()
        .nest("/api/v1", api)
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
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
