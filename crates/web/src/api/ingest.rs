//! `POST /api/v1/ingest`: NDJSON batches from sensors.
//!
//! The reply comes only after the batch's transaction committed: what the reply counts as
//! accepted survives a crash of the centre the moment after. Bad lines are answered one by one
//! (line number and reason) and the good lines of the batch are still stored, as a bulk API does.
//! When too many batches wait for the store the centre answers 503 with `Retry-After` instead of
//! queueing without bound; sensors keep the batch and send it again. What a token may write (its
//! own sensor names, ids the centre derives, verdicts only on cases a re-survey judges) is
//! `botscope_center::admit`.

use std::io::Read;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use botscope_center::admit;
use botscope_center::tokens::{Caller, Role};
use botscope_model::{Record, parse_line_noting};
use botscope_store::Store;
use serde::Serialize;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

/// Per-line errors listed in a reply; the rest are counted.
const LISTED_ERRORS: usize = 100;
/// Distinct ignored field names listed in a reply.
const LISTED_IGNORED: usize = 100;

#[derive(Debug, Serialize)]
pub struct LineProblem {
    line: usize,
    error: String,
}

#[derive(Debug, Serialize)]
pub struct IngestReply {
    /// Non-blank lines in the batch.
    lines: usize,
    /// Records committed or already stored.
    accepted: usize,
    /// Records new to the store.
    inserted: u64,
    /// Records stored before (same id).
    duplicates: u64,
    /// Whether any line was refused.
    errors: bool,
    /// Lines refused.
    error_count: usize,
    /// The first refused lines and why.
    problems: Vec<LineProblem>,
    /// Fields of records of a newer format (docs/formats.md, "Format versions") that this centre
    /// does not know and left out, each named once; present only when there were some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ignored_fields: Vec<String>,
}

fn body_error(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the batch is larger than {limit} bytes; send smaller batches (nothing was stored)"),
    )
}

pub async fn ingest(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestReply>, ApiError> {
    let caller = auth.require(&[Role::Sensor, Role::Surveyor, Role::Admin])?.clone();
    let limits = state.limits;
    let raw = axum::body::to_bytes(body, limits.max_body).await.map_err(|_| body_error(limits.max_body))?;
    let gzip = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?")) {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {other:?} is not supported (send identity or gzip)"),
            ));
        }
    };

    // Admission first: beyond `max_waiting` batches in hand the caller is told to come back, before
    // any decompressing or parsing is spent on it.
    if state.waiting.fetch_add(1, Ordering::SeqCst) >= limits.max_waiting {
        state.waiting.fetch_sub(1, Ordering::SeqCst);
        state.metrics.ingest_busy.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the centre is busy; nothing from this batch was stored, send it again later".into(),
            retry_after: Some(2),
        });
    }
    let _admitted = Admitted(state.waiting.clone());

    // Decompressing and parsing are CPU work of unbounded length for the async workers: they run on
    // the blocking pool so the health check and other requests keep answering.
    let parse_caller = caller.clone();
    let read = tokio::task::spawn_blocking(move || read_batch(&raw, gzip, limits, &parse_caller))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reading the batch failed"))??;
    let Batch { lines, mut records, mut problems, mut error_count, ignored_fields, ignored_count } = read;

    // Verdicts must be about a case a re-survey judges, of the ISP they name.
    let mut kept = Vec::with_capacity(records.len());
    for (line, record) in records.drain(..) {
        if let Record::Outcome(outcome) = &record {
            match admit::admit_outcome(&state.store, outcome, &caller).await {
                Ok(()) => {}
                Err(admit::AdmitError::Store(error)) => return Err(error.into()),
                Err(admit::AdmitError::Refused(refusal)) => {
                    error_count += 1;
                    if problems.len() < LISTED_ERRORS {
                        problems.push(LineProblem { line, error: refusal.to_string() });
                    }
                    continue;
                }
            }
        }
        kept.push(record);
    }
    let records = kept;

    let (inserted, duplicates) = if records.is_empty() {
        (0, 0)
    } else {
        let permit = state.writers.acquire().await;
        let _permit = permit.map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
        let summary = state.store.put_records(&records).await?;
        // Re-survey verdicts move their cases (fixed, not_fixed).
        let outcomes: Vec<botscope_model::Outcome> =
            records.iter().filter_map(Record::payload::<botscope_model::Outcome>).cloned().collect();
        if !outcomes.is_empty() {
            botscope_center::notify::apply_outcomes(&state.store, &outcomes).await.map_err(|e| match e {
                botscope_center::CenterError::Store(s) => ApiError::from(s),
                other => ApiError::bad_request(other.to_string()),
            })?;
        }
        (summary.inserted, summary.duplicates)
    };
    tracing::debug!(
        token = %caller.token_id, lines, accepted = records.len(), inserted, errors = error_count,
        "committed ingest batch"
    );
    let m = &state.metrics;
    m.ingest_lines.fetch_add(lines as u64, Ordering::Relaxed);
    m.ingest_inserted.fetch_add(inserted, Ordering::Relaxed);
    m.ingest_duplicates.fetch_add(duplicates, Ordering::Relaxed);
    m.ingest_refused_lines.fetch_add(error_count as u64, Ordering::Relaxed);
    m.ingest_fields_ignored.fetch_add(ignored_count, Ordering::Relaxed);
    Ok(Json(IngestReply {
        lines,
        accepted: records.len(),
        inserted,
        duplicates,
        errors: error_count > 0,
        error_count,
        problems,
        ignored_fields: ignored_fields.into_iter().collect(),
    }))
}

/// Holds one of the `max_waiting` places until the batch is answered.
struct Admitted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A batch read into records (with their line numbers) and refused lines.
struct Batch {
    lines: usize,
    records: Vec<(usize, Record)>,
    problems: Vec<LineProblem>,
    error_count: usize,
    /// Distinct names of newer-format fields left out (at most [`LISTED_IGNORED`]), and how many
    /// were left out in all.
    ignored_fields: std::collections::BTreeSet<String>,
    ignored_count: u64,
}

/// Decompresses (bounded) and reads every line, applying the rules that need no store.
fn read_batch(raw: &[u8], gzip: bool, limits: crate::Limits, caller: &Caller) -> Result<Batch, ApiError> {
    let decompressed;
    let text: &[u8] = if gzip {
        let mut out = Vec::new();
        let cap = limits.max_body as u64 * 8;
        flate2::read::GzDecoder::new(raw)
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::bad_request(format!("the gzip body does not decompress: {e}")))?;
        if out.len() as u64 > cap {
            return Err(body_error(cap as usize));
        }
        decompressed = out;
        &decompressed
    } else {
        raw
    };
    let now = chrono::Utc::now();
    let mut batch = Batch {
        lines: 0,
        records: Vec::new(),
        problems: Vec::new(),
        error_count: 0,
        ignored_fields: std::collections::BTreeSet::new(),
        ignored_count: 0,
    };
    let mut ignored = Vec::new();
    for (index, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        batch.lines += 1;
        let outcome = if line.len() > limits.max_line {
            Err(format!("line longer than {} bytes", limits.max_line))
        } else {
            read_line(line, caller, now, &mut ignored)
        };
        if outcome.is_err() {
            // A refused line left nothing out: it is not stored at all.
            ignored.clear();
        }
        batch.ignored_count += ignored.len() as u64;
        for field in ignored.drain(..) {
            if batch.ignored_fields.len() < LISTED_IGNORED {
                batch.ignored_fields.insert(field);
            }
        }
        match outcome {
            Ok(record) => batch.records.push((index + 1, record)),
            Err(error) => {
                batch.error_count += 1;
                if batch.problems.len() < LISTED_ERRORS {
                    batch.problems.push(LineProblem { line: index + 1, error });
                }
            }
        }
    }
    Ok(batch)
}

/// One line as a record the caller may send (see [`admit::admit`]).
fn read_line(
    line: &[u8],
    caller: &Caller,
    now: botscope_model::Timestamp,
    ignored: &mut Vec<String>,
) -> Result<Record, String> {
    let record = parse_line_noting(line, None, ignored).map_err(|e| e.to_string())?.ok_or("blank line")?;
    admit::admit(record, caller, now).map_err(|refusal| refusal.to_string())
}
