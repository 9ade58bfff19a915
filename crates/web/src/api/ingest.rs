//! `POST /api/v1/ingest`: NDJSON batches from sensors.
//!
//! The reply comes only after the batch's transaction committed: what the reply counts as
//! accepted survives a crash of the centre the moment after. Bad lines are answered one by one
//! (line number and reason) and the good lines of the batch are still stored, as a bulk API does.
//! When too many batches wait for the store the centre answers 503 with `Retry-After` instead of
//! queueing without bound; sensors keep the batch and send it again.

use std::io::Read;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use botscope_center::tokens::Role;
use botscope_model::{Kind, Record, parse_line};
use botscope_store::Store;
use serde::Serialize;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

/// Kinds a sensor token may send; the centre makes the others itself.
pub const SENSOR_KINDS: [Kind; 7] =
    [Kind::Finding, Kind::Activity, Kind::Cnc, Kind::Service, Kind::DarknetDay, Kind::FeedEntry, Kind::Outcome];

/// Per-line errors listed in a reply; the rest are counted.
const LISTED_ERRORS: usize = 100;

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
    let text = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?")) {
        None | Some("identity") => raw.to_vec(),
        Some("gzip") => {
            let mut out = Vec::new();
            let cap = limits.max_body as u64 * 8;
            flate2::read::GzDecoder::new(&raw[..])
                .take(cap + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_request(format!("the gzip body does not decompress: {e}")))?;
            if out.len() as u64 > cap {
                return Err(body_error(cap as usize));
            }
            out
        }
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {other:?} is not supported (send identity or gzip)"),
            ));
        }
    };

    let mut records: Vec<Record> = Vec::new();
    let mut problems = Vec::new();
    let mut error_count = 0;
    let mut lines = 0;
    for (index, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        let outcome = if line.len() > limits.max_line {
            Err(format!("line longer than {} bytes", limits.max_line))
        } else {
            read_line(line, &caller)
        };
        match outcome {
            Ok(record) => records.push(record),
            Err(error) => {
                error_count += 1;
                if problems.len() < LISTED_ERRORS {
                    problems.push(LineProblem { line: index + 1, error });
                }
            }
        }
    }

    let (inserted, duplicates) = if records.is_empty() {
        (0, 0)
    } else {
        // Bounded waiting: beyond `max_waiting` queued batches the caller is told to come back.
        if state.waiting.fetch_add(1, Ordering::SeqCst) >= limits.max_waiting {
            state.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the centre is busy; nothing from this batch was stored, send it again later".into(),
                retry_after: Some(2),
            });
        }
        let permit = state.writers.acquire().await;
        state.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = permit.map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))?;
        let summary = state.store.put_records(&records).await?;
        // Re-survey verdicts move their cases (fixed, not_fixed).
        let outcomes: Vec<botscope_model::Outcome> =
            records.iter().filter_map(|r| if let Record::Outcome(o) = r { Some(o.clone()) } else { None }).collect();
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
    Ok(Json(IngestReply {
        lines,
        accepted: records.len(),
        inserted,
        duplicates,
        errors: error_count > 0,
        error_count,
        problems,
    }))
}

/// One line as a record the caller may send, named after the caller's token label when it names
/// no sensor.
fn read_line(line: &[u8], caller: &botscope_center::tokens::Caller) -> Result<Record, String> {
    let mut record = parse_line(line, None).map_err(|e| e.to_string())?.ok_or("blank line")?;
    if caller.role != Role::Admin && !SENSOR_KINDS.contains(&record.kind()) {
        let names: Vec<&str> = SENSOR_KINDS.iter().map(|k| k.as_str()).collect();
        return Err(format!(
            "kind {} is made by the centre; a sensor or surveyor token may send {}",
            record.kind(),
            names.join(", ")
        ));
    }
    if let Record::Outcome(outcome) = &record
        && caller.role != Role::Admin
        && outcome.source != botscope_model::OutcomeSource::Recheck
    {
        return Err(
            "a sensor or surveyor sends only re-survey outcomes (source recheck); ISPs report theirs through /api/v1/isp"
                .into()
        );
    }
    // The id stays the one derived from the record as sent, so it matches the sensor's own files
    // (flow analysers cite seed records by it).
    let slot = match &mut record {
        Record::Finding(r) => Some(&mut r.sensor),
        Record::Activity(r) => Some(&mut r.sensor),
        Record::Cnc(r) => Some(&mut r.sensor),
        Record::Service(r) => Some(&mut r.sensor),
        Record::DarknetDay(r) => Some(&mut r.sensor),
        _ => None,
    };
    if let Some(slot) = slot
        && slot.is_none()
    {
        *slot = Some(caller.label.clone());
    }
    Ok(record)
}
