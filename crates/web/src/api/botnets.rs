//! Botnets as correlation left them.

use axum::Json;
use axum::extract::{Path, State};
use botscope_center::tokens::{Caller, Role};
use botscope_model::{Botnet, Kind, Payload};
use botscope_store::{RecordQuery, Store};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

pub(crate) async fn all_botnets(state: &AppState) -> Result<Vec<Botnet>, ApiError> {
    let mut botnets: Vec<Botnet> = botscope_store::all_of(&state.store).await?;
    botnets.sort_by(|a, b| a.serial.cmp(&b.serial));
    Ok(botnets)
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

pub async fn list(State(state): State<AppState>, auth: Auth) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = auth.require(&[Role::Isp, Role::Admin])?;
    let botnets: Vec<serde_json::Value> =
        all_botnets(&state).await?.into_iter().map(|b| as_seen_by(b, caller)).collect();
    Ok(Json(serde_json::json!({ "botnets": botnets })))
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
