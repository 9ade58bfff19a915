//! Botnets as correlation left them.

use axum::Json;
use axum::extract::{Path, State};
use botscope_center::tokens::Role;
use botscope_model::{Botnet, Kind, Record};
use botscope_store::{RecordQuery, all_records};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

pub(crate) async fn all_botnets(state: &AppState) -> Result<Vec<Botnet>, ApiError> {
    let query = RecordQuery { kind: Some(Kind::Botnet), ..Default::default() };
    let mut botnets: Vec<Botnet> = all_records(&state.store, query)
        .await?
        .into_iter()
        .filter_map(|r| if let Record::Botnet(b) = r { Some(b) } else { None })
        .collect();
    botnets.sort_by(|a, b| a.serial.cmp(&b.serial));
    Ok(botnets)
}

pub async fn list(State(state): State<AppState>, auth: Auth) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&[Role::Isp, Role::Admin])?;
    Ok(Json(serde_json::json!({ "botnets": all_botnets(&state).await? })))
}

pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path(serial): Path<String>,
) -> Result<Json<Botnet>, ApiError> {
    auth.require(&[Role::Isp, Role::Admin])?;
    all_botnets(&state).await?.into_iter().find(|b| b.serial == serial).map(Json).ok_or_else(ApiError::not_found)
}
