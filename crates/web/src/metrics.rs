//! What the server does, for Prometheus (`GET /metrics`, text exposition format 0.0.4) and the
//! access log: requests by route and status with their latencies, connections, ingest, and the
//! periodic correlation. Written by hand: the format is a few lines of text, and every label set is
//! bounded (route templates such as `/botnets/{serial}`, never the paths themselves; a fixed set
//! of methods), so no request can grow it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Upper bounds of the latency histogram's buckets, seconds.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Latency {
    /// Requests at or under each bound (not cumulative here; summed when written).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters and gauges the server keeps; one per process, shared by every handler.
pub struct Metrics {
    started_unix: f64,
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Latency>>,
    pub(crate) connections_open: AtomicI64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) ingest_lines: AtomicU64,
    pub(crate) ingest_inserted: AtomicU64,
    pub(crate) ingest_duplicates: AtomicU64,
    pub(crate) ingest_refused_lines: AtomicU64,
    pub(crate) ingest_fields_ignored: AtomicU64,
    pub(crate) ingest_busy: AtomicU64,
    correlation_runs: AtomicU64,
    correlation_failures: AtomicU64,
    correlation_last_success: AtomicI64,
    pub(crate) rollup_days: AtomicU64,
    pub(crate) rollup_records: AtomicU64,
    pub(crate) server_cache_hits: AtomicU64,
    pub(crate) server_cache_reads: AtomicU64,
    pub(crate) botnet_list_hits: AtomicU64,
    pub(crate) botnet_list_reads: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started_unix: chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
            requests: Mutex::default(),
            latency: Mutex::default(),
            connections_open: AtomicI64::new(0),
            connections_refused: AtomicU64::new(0),
            ingest_lines: AtomicU64::new(0),
            ingest_inserted: AtomicU64::new(0),
            ingest_duplicates: AtomicU64::new(0),
            ingest_refused_lines: AtomicU64::new(0),
            ingest_fields_ignored: AtomicU64::new(0),
            ingest_busy: AtomicU64::new(0),
            correlation_runs: AtomicU64::new(0),
            correlation_failures: AtomicU64::new(0),
            correlation_last_success: AtomicI64::new(0),
            rollup_days: AtomicU64::new(0),
            rollup_records: AtomicU64::new(0),
            server_cache_hits: AtomicU64::new(0),
            server_cache_reads: AtomicU64::new(0),
            botnet_list_hits: AtomicU64::new(0),
            botnet_list_reads: AtomicU64::new(0),
        }
    }
}

/// The methods counted by name; any other is `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    /// Counts one correlation run of the serving process (`serve --correlate-every`).
    pub fn correlation_finished(&self, succeeded: bool) {
        self.correlation_runs.fetch_add(1, Ordering::Relaxed);
        if succeeded {
            self.correlation_last_success.store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
        } else {
            self.correlation_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn observe(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((method, route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            let entry = latency.entry(route.to_string()).or_default();
            if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
                entry.buckets[bucket] += 1;
            }
            entry.count += 1;
            entry.sum += seconds;
        }
    }

    /// The text exposition; `waiting` is the ingest batches in hand now.
    /// Counts a kept value's answer: from the copy (`hits`) or read (`reads`).
    pub(crate) fn count_kept(&self, hits: &AtomicU64, reads: &AtomicU64, answered: crate::kept::Answered) {
        let counter = if answered == crate::kept::Answered::Kept { hits } else { reads };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, waiting: usize) -> String {
        let mut text = String::with_capacity(4096);
        let _ = writeln!(
            text,
            "# HELP botscope_build_info The running version (always 1).\n# TYPE botscope_build_info gauge\n\
             botscope_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let gauge = |text: &mut String, name: &str, help: &str, value: String| {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        let counter = |text: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        gauge(
            &mut text,
            "botscope_start_time_seconds",
            "When the server started, Unix time.",
            format!("{:.3}", self.started_unix),
        );
        let _ = writeln!(
            text,
            "# HELP botscope_http_requests_total Requests answered, by method, route template and status.\n# TYPE botscope_http_requests_total counter"
        );
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), n) in requests.iter() {
                let _ = writeln!(
                    text,
                    "botscope_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            text,
            "# HELP botscope_http_request_duration_seconds Time to answer a request, by route template.\n# TYPE botscope_http_request_duration_seconds histogram"
        );
        if let Ok(latency) = self.latency.lock() {
            for (route, l) in latency.iter() {
                let route = escape(route);
                let mut cumulative = 0;
                for (bound, n) in BUCKETS.iter().zip(l.buckets) {
                    cumulative += n;
                    let _ = writeln!(
                        text,
                        "botscope_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    text,
                    "botscope_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                     botscope_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                     botscope_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    l.count, l.sum, l.count
                );
            }
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            &mut text,
            "botscope_http_connections_open",
            "Connections being served now.",
            self.connections_open.load(Ordering::Relaxed).to_string(),
        );
        counter(
            &mut text,
            "botscope_http_connections_refused_total",
            "Connections answered 503 at once because the connection cap was reached.",
            load(&self.connections_refused),
        );
        gauge(
            &mut text,
            "botscope_ingest_batches_waiting",
            "Ingest batches in hand (parsing or waiting to commit).",
            waiting.to_string(),
        );
        let counters: [(&str, &str, &AtomicU64); 14] = [
            ("botscope_ingest_lines_total", "Record lines received in ingest batches.", &self.ingest_lines),
            (
                "botscope_ingest_records_inserted_total",
                "Records stored by ingest (new, or a later C&C revision).",
                &self.ingest_inserted,
            ),
            (
                "botscope_ingest_records_duplicate_total",
                "Records ingest left out because their id was stored.",
                &self.ingest_duplicates,
            ),
            (
                "botscope_ingest_lines_refused_total",
                "Ingest lines refused (malformed, or not the sender's to write).",
                &self.ingest_refused_lines,
            ),
            (
                "botscope_ingest_fields_ignored_total",
                "Fields of newer-format records that this build does not know and left out.",
                &self.ingest_fields_ignored,
            ),
            (
                "botscope_ingest_batches_busy_total",
                "Ingest batches answered 503 because too many were in hand.",
                &self.ingest_busy,
            ),
            ("botscope_correlation_runs_total", "Correlation runs of this process.", &self.correlation_runs),
            ("botscope_correlation_failures_total", "Correlation runs that failed.", &self.correlation_failures),
            (
                "botscope_rollup_refreshes_total",
                "Daily roll-ups (one kind, one day) this process recomputed.",
                &self.rollup_days,
            ),
            ("botscope_rollup_records_read_total", "Records read to recompute daily roll-ups.", &self.rollup_records),
            (
                "botscope_cnc_server_reads_total",
                "Day ranges of C&C servers this process summed from the store's roll-up.",
                &self.server_cache_reads,
            ),
            (
                "botscope_cnc_server_reuses_total",
                "Day ranges of C&C servers answered from this process's copy, the roll-up unchanged.",
                &self.server_cache_hits,
            ),
            (
                "botscope_botnet_server_list_reads_total",
                "Botnet server lists (current servers, every server) this process read from the store.",
                &self.botnet_list_reads,
            ),
            (
                "botscope_botnet_server_list_reuses_total",
                "Botnet server lists answered from this process's copy, the botnets unchanged.",
                &self.botnet_list_hits,
            ),
        ];
        for (name, help, value) in counters {
            counter(&mut text, name, help, load(value));
        }
        gauge(
            &mut text,
            "botscope_correlation_last_success_time_seconds",
            "When correlation last succeeded in this process, Unix time (0: not yet).",
            self.correlation_last_success.load(Ordering::Relaxed).to_string(),
        );
        text
    }
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(state.waiting.load(Ordering::SeqCst));
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Counts and times every request, and writes the access log line (target `botscope::access`, at
/// info: method, path without its query, status, milliseconds, the peer).
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    // The path only: a query string may carry what a log should not keep.
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state.metrics.observe(method, &route, status, seconds);
    tracing::info!(
        target: "botscope::access",
        method,
        path = %path,
        status,
        ms = format!("{:.1}", seconds * 1000.0),
        peer = peer.map(|p| p.to_string()).unwrap_or_default(),
        "request"
    );
    response
}
