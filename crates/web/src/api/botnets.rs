//! Botnets as correlation left them.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use botscope_center::tokens::{Caller, Role};
use botscope_model::{Botnet, Kind, Payload};
use botscope_store::{RecordQuery, Store};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

/// `GET /api/v1/botnets` paging: the previous page's `next`, and how many per page.
#[derive(Debug, serde::Deserialize)]
pub struct Paging {
    /// The previous page's `next` (a botnet record's id).
    after: Option<String>,
    /// Botnets per page, 1 to [`super::records::MAX_PAGE`].
    limit: Option<u32>,
}

/// A botnet as `caller` may see it: an ISP learns how many independent reporters there were, not
/// the names of other ISPs' flow analysers or partners.
fn as_seen_by(botnet: Botnet, caller: &Caller) -> serde_json::Value {
    let reporters = botnet.reporters.len();
    let mut value = serde_json::to_value(botnet).unwrap_or_default();
    if caller.role != Role::Admin
        && let Some(fields) = value.as_object_mut()
    {
        fields.remove("reporters");
        fields.insert("reporter_count".into(), reporters.into());
    }
    value
}

/// `GET /api/v1/botnets`: `{"botnets": [...], "next": ID or null}`, a page at a time in record id
/// order (a national centre holds tens of thousands); pass `next` as `after` for the following
/// page.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    paging: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = auth.require(&[Role::Isp, Role::Admin])?;
    // A query that does not read is a 400 in the API's JSON body, as every other answer.
    let Query(paging) = paging.map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))?;
    let (limit, after) = super::records::page_bounds(paging.limit, paging.after.as_deref(), "a botnet record id")?;
    let query = RecordQuery { kind: Some(Kind::Botnet), after, limit, ..Default::default() };
    let records = state.store.records(&query).await?;
    let next = (records.len() == limit as usize).then(|| records.last().and_then(botscope_model::Record::id)).flatten();
    let botnets: Vec<serde_json::Value> =
        records.into_iter().filter_map(Botnet::from_record).map(|b| as_seen_by(b, caller)).collect();
    Ok(Json(serde_json::json!({ "botnets": botnets, "next": next })))
}

pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(serial): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = auth.require(&[Role::Isp, Role::Admin])?;
    // Through the serial index: one botnet, not all of them.
    let query = RecordQuery { kind: Some(Kind::Botnet), serial: Some(serial), limit: 1, ..Default::default() };
    let found = state.store.records(&query).await?.into_iter().find_map(Botnet::from_record);
    let botnet = found.ok_or_else(ApiError::not_found)?;
    Ok(Json(as_seen_by(botnet, caller)))
}
