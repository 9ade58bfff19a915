//! The ISP portal: an ISP's own notification cases, status updates, downloads and API tokens.
//!
//! An ISP's session only ever reads and changes its own ISP's cases and tokens; another ISP's case
//! or token is answered as not found, exactly like one that does not exist.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use botscope_center::notify::ISP_STATUSES;
use botscope_center::tokens::{self, Role};
use botscope_model::{NotificationStatus, OutcomeSource, Record};
use botscope_store::Store;
use serde::Deserialize;

use super::data::{endpoint, when};
use super::session::{PortalUser, SignedIn, csrf_refusal};
use super::{Area, Lang, Page, ViewState, error_page, esc, private};
use crate::AppState;
use crate::error::ApiError;

/// The ISP a portal request is about: an ISP's own; an admin picks one (or sees all).
fn scope(user: &SignedIn, asked: Option<&str>) -> Result<Option<String>, ()> {
    match user.caller.role {
        // An ISP session without an ISP sees nothing rather than everything.
        Role::Isp => match (user.caller.isp.as_deref(), asked) {
            (None, _) => Err(()),
            (Some(own), Some(other)) if !other.is_empty() && other != own => Err(()),
            (Some(own), _) => Ok(Some(own.to_string())),
        },
        _ => Ok(asked.filter(|a| !a.is_empty()).map(String::from)),
    }
}

fn lang_of(query: &HashMap<String, String>, headers: &HeaderMap) -> Lang {
    Lang::choose(query.get("lang").map(String::as_str), headers)
}

fn portal_page(path: &str, title: String, lang: Lang, user: &SignedIn, query: &HashMap<String, String>) -> Page {
    let mut view = ViewState::default();
    for key in ["lang", "isp", "status", "reason"] {
        if let Some(value) = query.get(key).filter(|v| !v.is_empty() && v.len() < 100) {
            view.pairs.insert(key.into(), value.clone());
        }
    }
    view.pairs.insert("lang".into(), lang.code().into());
    let mut page = Page::new(
        if path.starts_with("/portal/tokens") { "/portal/tokens" } else { "/portal" },
        path,
        title,
        lang,
        view,
    );
    page.area = Area::Portal;
    page.signed_in = Some(match &user.caller.isp {
        Some(isp) => format!("{} ({isp})", user.caller.label),
        None => user.caller.label.clone(),
    });
    page
}

fn status_label(status: NotificationStatus, lang: Lang) -> &'static str {
    match status {
        NotificationStatus::Pending => lang.pick("pending", "未送付"),
        NotificationStatus::Sent => lang.pick("sent", "通知済み"),
        NotificationStatus::Contacted => lang.pick("contacted", "利用者に連絡済み"),
        NotificationStatus::Fixed => lang.pick("fixed", "対処済み"),
        NotificationStatus::Unreachable => lang.pick("unreachable", "連絡がつかない"),
        NotificationStatus::NotFixed => lang.pick("not fixed", "未対処（再調査）"),
        NotificationStatus::FalsePositive => lang.pick("false positive", "誤検知"),
    }
}

/// `GET /portal`: the ISP's cases, with `format=csv|json` for downloads.
pub async fn cases(
    State(state): State<AppState>,
    PortalUser(user): PortalUser,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let lang = lang_of(&query, &headers);
    let Ok(isp) = scope(&user, query.get("isp").map(String::as_str)) else {
        return Ok(error_page(lang, StatusCode::NOT_FOUND, "not found"));
    };
    let mut found = crate::api::isp::notifications_of(&state, isp.as_deref()).await?;
    if let Some(status) = query.get("status").filter(|s| !s.is_empty()) {
        found.retain(|n| n.status.as_str() == status);
    }
    if let Some(reason) = query.get("reason").filter(|s| !s.is_empty()) {
        found.retain(|n| n.reason.as_str() == reason);
    }
    found.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.ip.cmp(&b.ip)).then(a.port.cmp(&b.port)));
    match query.get("format").map(String::as_str) {
        Some("csv") => {
            let csv = botscope_center::notify::cases_csv(&found);
            return Ok(private(
                (
                    [
                        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                        (header::CONTENT_DISPOSITION, "attachment; filename=\"botscope-cases.csv\""),
                    ],
                    csv,
                )
                    .into_response(),
            ));
        }
        Some("json") => return Ok(private(Json(serde_json::json!({ "notifications": found })).into_response())),
        Some(other) => {
            return Ok(error_page(lang, StatusCode::BAD_REQUEST, &format!("format {other:?}: expected csv or json")));
        }
        None => {}
    }
    let title = match &isp {
        Some(isp) => format!("{} {isp}", lang.pick("Notifications for", "通知一覧:")),
        None => lang.pick("Notifications for every ISP", "全ISPの通知").to_string(),
    };
    let mut page = portal_page("/portal", title, lang, &user, &query);
    let open = found
        .iter()
        .filter(|n| !matches!(n.status, NotificationStatus::Fixed | NotificationStatus::FalsePositive))
        .count();
    page.html(format!(
        "<p>{}</p>",
        esc(&match lang {
            Lang::En => format!(
                "{} cases, {open} still open. Tell the centre what you did: it is checked by the next re-survey.",
                found.len()
            ),
            Lang::Ja => format!(
                "{}件（うち未完了{open}件）。対応した内容を登録してください。次回の再調査で確認されます。",
                found.len()
            ),
        })
    ));
    let mut filters = format!(
        "<form class=\"filters\" method=\"get\" action=\"/portal\" aria-label=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">",
        lang.pick("Filters", "絞り込み"),
        lang.code()
    );
    if user.caller.role == Role::Admin {
        let _ = write!(
            filters,
            "<label>ISP <input name=\"isp\" value=\"{}\" size=\"14\"></label>",
            esc(isp.as_deref().unwrap_or(""))
        );
    }
    let current = query.get("status").cloned().unwrap_or_default();
    let _ = write!(
        filters,
        "<label>{} <select name=\"status\"><option value=\"\">{}</option>",
        lang.pick("Status", "状態"),
        lang.pick("all", "すべて")
    );
    for status in NotificationStatus::ALL {
        let selected = if status.as_str() == current { " selected" } else { "" };
        let _ =
            write!(filters, "<option value=\"{}\"{selected}>{}</option>", status.as_str(), status_label(status, lang));
    }
    let _ = write!(filters, "</select></label> <button type=\"submit\">{}</button></form>", lang.pick("Apply", "適用"));
    page.html(filters);
    let download = |format: &str| page.view.href("/portal", &[("format", format)]);
    page.html(format!(
        "<p class=\"downloads\"><a href=\"{}\">{}</a> · <a href=\"{}\">{}</a></p>",
        esc(&download("csv")),
        lang.pick("Download CSV", "CSVでダウンロード"),
        esc(&download("json")),
        lang.pick("Download JSON", "JSONでダウンロード")
    ));
    let mut table = format!(
        "<div class=\"table-wrap\"><table id=\"t-cases\"><caption>{}</caption><thead><tr>",
        lang.pick("Cases", "案件")
    );
    for column in [
        lang.pick("address", "アドレス"),
        lang.pick("problem", "問題"),
        lang.pick("device", "機器"),
        lang.pick("first notified", "初回通知"),
        lang.pick("times", "通知回数"),
        lang.pick("botnet", "ボットネット"),
        lang.pick("status", "状態"),
        lang.pick("report what you did", "対応の登録"),
    ] {
        let _ = write!(table, "<th scope=\"col\">{}</th>", esc(column));
    }
    table.push_str("</tr></thead><tbody>");
    if found.is_empty() {
        let _ = write!(
            table,
            "<tr><td colspan=\"8\" class=\"empty\">{}</td></tr>",
            lang.pick("No cases.", "案件はありません。")
        );
    }
    for case in &found {
        let id = case.id.map(|i| i.to_string()).unwrap_or_default();
        let address = match case.port {
            Some(port) => endpoint(case.ip, port),
            None => case.ip.to_string(),
        };
        let device = case
            .device
            .as_ref()
            .map(|d| {
                format!("{} {}", d.vendor.as_deref().unwrap_or(""), d.model.as_deref().unwrap_or("")).trim().to_string()
            })
            .unwrap_or_default();
        let mut options = String::new();
        for status in ISP_STATUSES {
            let _ = write!(options, "<option value=\"{}\">{}</option>", status.as_str(), status_label(status, lang));
        }
        let _ = write!(
            table,
            "<tr data-case=\"{id}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"status\" data-status=\"{}\">{}</td>\
<td><form method=\"post\" action=\"/portal/cases/{id}/status\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
<label class=\"visually-hidden\" for=\"s-{id}\">{}</label><select id=\"s-{id}\" name=\"status\">{options}</select> \
<label class=\"visually-hidden\" for=\"n-{id}\">{}</label><input id=\"n-{id}\" name=\"note\" maxlength=\"500\" size=\"12\" placeholder=\"{}\"> \
<button type=\"submit\">{}</button></form></td></tr>",
            esc(&address),
            esc(case.reason.as_str()),
            esc(&device),
            when(case.created_at),
            case.times_notified,
            esc(case.botnet.as_deref().unwrap_or("")),
            case.status.as_str(),
            status_label(case.status, lang),
            esc(&user.csrf),
            lang.code(),
            lang.pick("New status", "新しい状態"),
            lang.pick("Note", "メモ"),
            lang.pick("note (no names)", "メモ（氏名は書かない）"),
            lang.pick("Save", "登録"),
        );
    }
    table.push_str("</tbody></table></div>");
    page.html(table);
    Ok(page.respond(None))
}

/// The language of a posted form, once its CSRF value checked out; else the refusal page.
fn form_lang(user: &SignedIn, headers: &HeaderMap, lang: &str, csrf: &str) -> Result<Lang, Box<Response>> {
    let lang = Lang::choose(Some(lang), headers);
    match csrf_refusal(user, csrf, lang) {
        Some(refusal) => Err(Box::new(refusal)),
        None => Ok(lang),
    }
}

/// The status form of one case.
#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
    #[serde(default)]
    note: String,
    csrf: String,
    #[serde(default)]
    lang: String,
}

/// `POST /portal/cases/{id}/status`.
pub async fn update_status(
    State(state): State<AppState>,
    PortalUser(user): PortalUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Result<Response, ApiError> {
    let lang = match form_lang(&user, &headers, &form.lang, &form.csrf) {
        Ok(lang) => lang,
        Err(refusal) => return Ok(*refusal),
    };
    let not_found = || error_page(lang, StatusCode::NOT_FOUND, "not found");
    let Ok(id) = id.parse::<uuid::Uuid>() else { return Ok(not_found()) };
    let Some(status) = ISP_STATUSES.into_iter().find(|s| s.as_str() == form.status) else {
        return Ok(error_page(lang, StatusCode::BAD_REQUEST, "choose contacted, fixed, unreachable or false_positive"));
    };
    let Some(Record::Notification(mut case)) = state.store.record(id).await? else { return Ok(not_found()) };
    if user.caller.role == Role::Isp && user.caller.isp.as_deref() != Some(case.isp.as_str()) {
        return Ok(not_found());
    }
    let note = Some(form.note.trim().chars().take(500).collect::<String>()).filter(|n| !n.is_empty());
    botscope_center::notify::record_outcome(&state.store, &mut case, status, OutcomeSource::Isp, note).await.map_err(
        |e| match e {
            botscope_center::CenterError::Store(s) => ApiError::from(s),
            other => ApiError::bad_request(other.to_string()),
        },
    )?;
    Ok(Redirect::to(&format!("/portal?lang={}", lang.code())).into_response())
}

/// `GET /portal/tokens`: the ISP's API tokens.
pub async fn tokens_page(
    State(state): State<AppState>,
    PortalUser(user): PortalUser,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let lang = lang_of(&query, &headers);
    render_tokens(&state, &user, lang, &query, None).await
}

async fn render_tokens(
    state: &AppState,
    user: &SignedIn,
    lang: Lang,
    query: &HashMap<String, String>,
    new_token: Option<&str>,
) -> Result<Response, ApiError> {
    let Some(isp) = user.caller.isp.clone() else {
        return Ok(error_page(lang, StatusCode::BAD_REQUEST, "tokens of the centre are managed with botscope token"));
    };
    let mut page = portal_page("/portal/tokens", lang.pick("API tokens", "APIトークン").into(), lang, user, query);
    if let Some(token) = new_token {
        page.html(format!(
            "<div class=\"new-token\" role=\"status\"><p>{}</p><p><code id=\"new-token\">{}</code></p></div>",
            lang.pick(
                "Your new token. It is shown only now: copy it to where your scripts keep secrets.",
                "新しいトークンです。表示されるのは今だけです。スクリプトの秘密情報の保管場所にコピーしてください。"
            ),
            esc(token)
        ));
    }
    page.html(format!(
        "<p>{}</p>",
        lang.pick(
            "Tokens let your systems read your notifications and report outcomes through the API (docs/api.md). They see only your ISP's data.",
            "トークンを使うと、貴社のシステムからAPIで通知の取得や対応結果の登録ができます（docs/api.md）。参照できるのは貴社のデータだけです。"
        )
    ));
    let mut table = format!(
        "<div class=\"table-wrap\"><table id=\"t-tokens\"><caption>{}</caption><thead><tr><th scope=\"col\">id</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\"></th></tr></thead><tbody>",
        lang.pick("Your tokens", "貴社のトークン"),
        lang.pick("label", "ラベル"),
        lang.pick("made", "作成日時"),
        lang.pick("revoked", "失効日時"),
    );
    for row in state
        .store
        .tokens()
        .await?
        .into_iter()
        .filter(|t| t.isp.as_deref() == Some(isp.as_str()) && t.role == Role::Isp)
    {
        let revoke = if row.revoked_at.is_none() {
            format!(
                "<form method=\"post\" action=\"/portal/tokens/{}/revoke\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\"><button type=\"submit\">{}</button></form>",
                esc(&row.id),
                esc(&user.csrf),
                lang.code(),
                lang.pick("Revoke", "失効させる")
            )
        } else {
            String::new()
        };
        let _ = write!(
            table,
            "<tr data-token=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{revoke}</td></tr>",
            esc(&row.id),
            esc(&row.id),
            esc(&row.label),
            when(row.created_at),
            row.revoked_at.map(when).unwrap_or_default()
        );
    }
    table.push_str("</tbody></table></div>");
    page.html(table);
    page.html(format!(
        "<form class=\"new\" method=\"post\" action=\"/portal/tokens\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
<label for=\"label\">{}</label> <input id=\"label\" name=\"label\" required maxlength=\"64\"> <button type=\"submit\">{}</button></form>",
        esc(&user.csrf),
        lang.code(),
        lang.pick("Label for a new token", "新しいトークンのラベル"),
        lang.pick("Make a token", "トークンを作成")
    ));
    Ok(page.respond(None))
}

/// The form that makes a token.
#[derive(Deserialize)]
pub struct NewTokenForm {
    label: String,
    csrf: String,
    #[serde(default)]
    lang: String,
}

/// `POST /portal/tokens`: a new token of the ISP, shown once.
pub async fn create_token(
    State(state): State<AppState>,
    PortalUser(user): PortalUser,
    headers: HeaderMap,
    Form(form): Form<NewTokenForm>,
) -> Result<Response, ApiError> {
    let lang = match form_lang(&user, &headers, &form.lang, &form.csrf) {
        Ok(lang) => lang,
        Err(refusal) => return Ok(*refusal),
    };
    let Some(isp) = user.caller.isp.clone() else {
        return Ok(error_page(lang, StatusCode::BAD_REQUEST, "tokens of the centre are managed with botscope token"));
    };
    let label: String = form.label.trim().chars().filter(|c| !c.is_control()).take(64).collect();
    if label.is_empty() {
        return Ok(error_page(lang, StatusCode::BAD_REQUEST, "give the token a label"));
    }
    let (token, row) = tokens::issue(Role::Isp, Some(&isp), &label, &[], chrono::Utc::now())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state.store.put_token(&row).await?;
    tracing::info!(isp = %isp, token = %row.id, "ISP made a token in the portal");
    let mut query = HashMap::new();
    query.insert("lang".to_string(), lang.code().to_string());
    render_tokens(&state, &user, lang, &query, Some(&token)).await
}

/// The form that revokes a token.
#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    #[serde(default)]
    lang: String,
}

/// `POST /portal/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    PortalUser(user): PortalUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, ApiError> {
    let lang = match form_lang(&user, &headers, &form.lang, &form.csrf) {
        Ok(lang) => lang,
        Err(refusal) => return Ok(*refusal),
    };
    let own = state
        .store
        .tokens()
        .await?
        .into_iter()
        .any(|t| t.id == id && t.role == Role::Isp && t.isp.is_some() && t.isp == user.caller.isp);
    if !own {
        return Ok(error_page(lang, StatusCode::NOT_FOUND, "not found"));
    }
    state.store.revoke_token(&id).await?;
    Ok(Redirect::to(&format!("/portal/tokens?lang={}", lang.code())).into_response())
}
