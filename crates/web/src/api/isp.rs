//! What an ISP's token may see and do: its own notifications, and outcomes on them.
//!
//! Another ISP's notification is answered exactly like one that does not exist (404), so a token
//! cannot even learn which ids belong to someone else.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use botscope_center::tokens::{Caller, Role};
use botscope_model::{Kind, Notification, NotificationStatus, Outcome, OutcomeSource, Payload, Record};
use botscope_store::{RecordQuery, Store};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Admins only: whose notifications.
    isp: Option<String>,
    /// Only this status.
    status: Option<String>,
    /// Only this reason.
    reason: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
    /// Page size: with it (or `after`) the list comes a page at a time in id order, with `next`.
    limit: Option<u32>,
    /// The previous page's `next`.
    after: Option<String>,
}

/// A query string that does not read, in the API's error body.
fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("bad query: {}", rejection.body_text()))
}

/// The ISP a request may look at: an ISP token's own, or for an admin the one asked for.
fn scope(caller: &Caller, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    match caller.role {
        // An ISP token without an ISP sees nothing rather than everything.
        Role::Isp => match (caller.isp.as_deref(), asked) {
            (None, _) => Err(ApiError::not_found()),
            (Some(own), Some(other)) if other != own => Err(ApiError::not_found()),
            (Some(own), _) => Ok(Some(own.to_string())),
        },
        Role::Admin => Ok(asked.map(String::from)),
        Role::Sensor | Role::Surveyor => Err(ApiError::forbidden("this needs a token of role isp or admin")),
    }
}

/// Every notification of one ISP (or of all), read through the ISP index.
pub(crate) async fn notifications_of(state: &AppState, isp: Option<&str>) -> Result<Vec<Notification>, ApiError> {
    let query = RecordQuery { kind: Some(Kind::Notification), isp: isp.map(String::from), ..Default::default() };
    let records = botscope_store::all_records(&state.store, query).await?;
    Ok(records.into_iter().filter_map(Notification::from_record).collect())
}

pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(query_error)?;
    let isp = scope(&auth.0, params.isp.as_deref())?;
    let status: Option<NotificationStatus> =
        params.status.as_deref().map(str::parse).transpose().map_err(ApiError::bad_request)?;
    let (mut found, next) = if params.limit.is_some() || params.after.is_some() {
        // A page, through the (kind, isp) and (kind, status) indexes.
        let (limit, after) = super::records::page_bounds(params.limit, params.after.as_deref(), "a notification id")?;
        let query = RecordQuery {
            kind: Some(Kind::Notification),
            isp: isp.clone(),
            status: status.map(|s| s.as_str().to_string()),
            after,
            limit,
            ..Default::default()
        };
        let page = state.store.records(&query).await?;
        let next = (page.len() == limit as usize).then(|| page.last().and_then(Record::id)).flatten();
        (page.into_iter().filter_map(Notification::from_record).collect(), next)
    } else {
        let mut all = notifications_of(&state, isp.as_deref()).await?;
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.ip.cmp(&b.ip)));
        (all, None)
    };
    found.retain(|n| status.is_none_or(|s| n.status == s));
    if let Some(reason) = &params.reason {
        found.retain(|n| n.reason.as_str() == reason);
    }
    match params.format.as_deref() {
        None | Some("json") if params.limit.is_some() || params.after.is_some() => {
            Ok(Json(serde_json::json!({ "notifications": found, "next": next })).into_response())
        }
        None | Some("json") => Ok(Json(serde_json::json!({ "notifications": found })).into_response()),
        Some("csv") => {
            let csv = botscope_center::notify::cases_csv(&found);
            let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response();
            // A CSV page names the next one in a header, as the JSON body's `next` does.
            if let Some(next) = next.and_then(|id| header::HeaderValue::from_str(&id.to_string()).ok()) {
                response.headers_mut().insert("x-next-after", next);
            }
            Ok(response)
        }
        Some(other) => Err(ApiError::bad_request(format!("format {other:?}: expected json or csv"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    status: String,
    #[serde(default)]
    note: Option<String>,
}

pub async fn update_status(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: Result<Json<StatusUpdate>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Outcome>), ApiError> {
    let caller = auth.require(&[Role::Isp, Role::Admin])?.clone();
    let Json(update) =
        body.map_err(|e| ApiError::bad_request(format!("expected {{\"status\": ..., \"note\": ...}}: {e}")))?;
    let id: uuid::Uuid = id.parse().map_err(|_| ApiError::not_found())?;
    let status: NotificationStatus = update.status.parse().map_err(ApiError::bad_request)?;
    if !botscope_center::notify::ISP_STATUSES.contains(&status) {
        let names: Vec<&str> = botscope_center::notify::ISP_STATUSES.iter().map(|s| s.as_str()).collect();
        return Err(ApiError::bad_request(format!("an ISP reports one of: {}", names.join(", "))));
    }
    let Some(Record::Notification(mut notification)) = state.store.record(id).await? else {
        return Err(ApiError::not_found());
    };
    if caller.role == Role::Isp && caller.isp.as_deref() != Some(notification.isp.as_str()) {
        return Err(ApiError::not_found());
    }
    let outcome = botscope_center::notify::record_outcome(
        &state.store,
        &mut notification,
        status,
        OutcomeSource::Isp,
        update.note,
    )
    .await
    .map_err(|e| match e {
        botscope_center::CenterError::Store(s) => ApiError::from(s),
        other => ApiError::bad_request(other.to_string()),
    })?;
    Ok((StatusCode::CREATED, Json(outcome)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecheckParams {
    /// Only cases last notified at least this many days ago (time for the ISP to act).
    #[serde(default)]
    min_age_days: u32,
}

/// The open vulnerable cases a re-survey should look at, as notification records (NDJSON): what
/// `botscope survey --recheck --center URL` fetches. Infected hosts and false positives are left
/// out: a re-survey cannot judge the first, and the second are not problems.
pub async fn recheck(
    State(state): State<AppState>,
    auth: Auth,
    params: Result<Query<RecheckParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    auth.require(&[Role::Surveyor, Role::Admin])?;
    let Query(params) = params.map_err(query_error)?;
    // An age beyond what a date can hold asks for cases older than any: none, rather than a panic.
    let Some(due) = chrono::Duration::try_days(i64::from(params.min_age_days))
        .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
    else {
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], String::new()).into_response());
    };
    let mut body = String::new();
    for case in notifications_of(&state, None).await? {
        // The same rule the ingest applies to a surveyor's verdicts: what is offered here is what
        // a verdict may move.
        if botscope_center::admit::recheckable(&case) && case.last_notified.unwrap_or(case.created_at) <= due {
            body.push_str(&Record::Notification(case).to_json_line());
            body.push('\n');
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Admins only: whose report.
    isp: Option<String>,
    /// `day` or `month`.
    period: String,
    /// `YYYY-MM-DD` or `YYYY-MM` [default: the period of the latest evidence].
    date: Option<String>,
    /// The report type, e.g. `infected`, `default_credentials`.
    report: String,
}

/// `GET /api/v1/isp/report`: one of the ISP's Shadowserver-style reports as CSV, computed on
/// request from the store (nothing is marked as notified by reading it).
pub async fn report(
    State(state): State<AppState>,
    auth: Auth,
    params: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    use botscope_center::notify::{self, GenerateConfig, Period, PeriodKind, ReportType};
    let caller = auth.require(&[Role::Isp, Role::Admin])?.clone();
    let Query(params) = params.map_err(query_error)?;
    let isp = scope(&caller, params.isp.as_deref())?
        .ok_or_else(|| ApiError::bad_request("an admin names the ISP: isp=HANDLE"))?;
    let kind = match params.period.as_str() {
        "day" => PeriodKind::Day,
        "month" => PeriodKind::Month,
        other => return Err(ApiError::bad_request(format!("period {other:?}: expected day or month"))),
    };
    let report = ReportType::ALL.into_iter().find(|r| r.as_str() == params.report).ok_or_else(|| {
        let names: Vec<&str> = ReportType::ALL.iter().map(|r| r.as_str()).collect();
        ApiError::bad_request(format!("report {:?}: expected one of {}", params.report, names.join(", ")))
    })?;
    let period = params
        .date
        .as_deref()
        .map(|d| Period::parse(kind, d))
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let config =
        GenerateConfig { kind, period, isps: Some(vec![isp]), now: chrono::Utc::now(), new_only: false, dry_run: true };
    let generated = notify::generate(&state.store, &config, &|_| None).await.map_err(|e| match e {
        botscope_center::CenterError::Store(s) => ApiError::from(s),
        other => ApiError::bad_request(other.to_string()),
    })?;
    let mut rows: Vec<&notify::Row> = generated.rows.iter().filter(|r| r.report == report).collect();
    rows.sort_by_key(|r| (r.case.ip, r.case.port));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], notify::report_csv(&rows)).into_response())
}
