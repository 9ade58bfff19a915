//! Signing in to the pages with an API token, and who may see what.
//!
//! A person signs in once with their token (the same one the API takes); the server keeps a
//! session (in the store, so that every replica knows it) and gives the browser only a random
//! session id in an HttpOnly, SameSite=Strict cookie.
//! Each request checks the token again, so revoking it ends its sessions at once. Forms that
//! change something carry the session's own CSRF value as well.

use std::time::Duration;

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use botscope_center::tokens::{self, Caller, Role};
use botscope_store::{Lease, LeaseBounds, LeaseKind, Store, StoreError};
use serde::Deserialize;

use super::{Area, Lang, Page, ViewState, error_page, esc};
use crate::AppState;

const COOKIE: &str = "botscope_session";
/// A one-off value the sign-in form and its cookie must agree on: another site cannot read it,
/// so it cannot sign a victim's browser in to the attacker's account.
const LOGIN_COOKIE: &str = "botscope_login";
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: u64 = 10_000;
/// Sessions one token may hold: a token holder cannot push everyone else out of the table.
const MAX_PER_TOKEN: u64 = 20;

struct Session {
    token_hash: String,
    csrf: String,
}

fn random_id() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

const SESSION_BOUNDS: LeaseBounds = LeaseBounds { max: MAX_SESSIONS, per_owner: MAX_PER_TOKEN };

/// Opens a session for a token and returns its id (the cookie's value). Sessions live in the
/// store, so that every replica behind a load balancer knows them, under a hash of the id: a copy
/// of the database signs nobody in. Past the bounds, the sessions expiring first are ended.
async fn open_session(store: &impl Store, token_hash: String, now_ms: i64) -> Result<String, StoreError> {
    let id = random_id();
    let lifetime_ms = i64::try_from(LIFETIME.as_millis()).unwrap_or(i64::MAX);
    let lease = Lease {
        kind: LeaseKind::Session,
        key: tokens::hash(&id),
        owner: token_hash,
        body: random_id(),
        expires_ms: now_ms.saturating_add(lifetime_ms),
    };
    store.put_lease(&lease, SESSION_BOUNDS, now_ms).await?;
    Ok(id)
}

async fn find_session(store: &impl Store, id: &str, now_ms: i64) -> Result<Option<Session>, StoreError> {
    let lease = store.lease(LeaseKind::Session, &tokens::hash(id), now_ms).await?;
    Ok(lease.map(|lease| Session { token_hash: lease.owner, csrf: lease.body }))
}

async fn close_session(store: &impl Store, id: &str) -> Result<(), StoreError> {
    store.drop_lease(LeaseKind::Session, &tokens::hash(id)).await.map(drop)
}

/// The session id a request's cookies carry, if any well-formed one.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// A cookie of ours by name: 64 characters, as every value we set is.
fn cookie(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == wanted && value.len() == 64 && value.bytes().all(|b| b.is_ascii_alphanumeric()))
                .then(|| value.to_string())
        })
    })
}

/// A Set-Cookie value with our attributes (and Secure when the site is reached over HTTPS).
fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let secure = if state.pages.secure_cookies { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).expect("ascii")
}

/// The signed-in person, if any, with their session's CSRF value.
#[derive(Clone)]
pub struct SignedIn {
    /// Who.
    pub caller: Caller,
    /// The value forms must echo.
    pub csrf: String,
}

async fn signed_in(parts: &Parts, state: &AppState) -> Result<Option<SignedIn>, crate::ApiError> {
    let Some(id) = session_id(&parts.headers) else { return Ok(None) };
    let Some(session) = find_session(&state.store, &id, crate::now_ms()).await? else { return Ok(None) };
    let row = state.store.token_by_hash(&session.token_hash).await?;
    match row.as_ref().and_then(Caller::from_row) {
        Some(caller) => Ok(Some(SignedIn { caller, csrf: session.csrf })),
        None => {
            close_session(&state.store, &id).await?;
            Ok(None)
        }
    }
}

fn to_login(parts: &Parts) -> Response {
    let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Redirect::to(&format!("/login?next={}", super::url_encode(next))).into_response()
}

/// Who looks at the dashboard: anyone when the server was started with an open dashboard,
/// otherwise a signed-in admin.
pub struct Viewer(pub Option<SignedIn>);

impl Viewer {
    /// Shows who is signed in on the page.
    pub fn sign(&self, page: &mut Page) {
        if let Some(s) = &self.0 {
            page.signed_in = Some(s.caller.label.clone());
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let who = signed_in(parts, state).await.map_err(IntoResponse::into_response)?;
        match who {
            Some(s) if s.caller.role == Role::Admin => Ok(Viewer(Some(s))),
            // An ISP's people belong in their portal; the centre's picture spans every ISP.
            Some(s) if s.caller.role == Role::Isp => Err(Redirect::to("/portal").into_response()),
            _ if state.pages.open_dashboard => Ok(Viewer(None)),
            _ => Err(to_login(parts)),
        }
    }
}

/// A signed-in ISP (or admin) in the portal.
pub struct PortalUser(pub SignedIn);

impl FromRequestParts<AppState> for PortalUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match signed_in(parts, state).await.map_err(IntoResponse::into_response)? {
            Some(s) if matches!(s.caller.role, Role::Isp | Role::Admin) => Ok(PortalUser(s)),
            _ => Err(to_login(parts)),
        }
    }
}

/// Where to go after signing in: only a path on this site.
fn safe_next(next: Option<&str>) -> Option<String> {
    let next = next?;
    // Printable ASCII only: browsers drop tabs and newlines from URLs, so "/\t/evil" would
    // become "//evil", another site.
    let printable = next.bytes().all(|b| b.is_ascii_graphic());
    (printable && next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && next.len() < 512)
        .then(|| next.to_string())
}

/// What `GET /login` reads from its query.
#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    lang: Option<String>,
    failed: Option<String>,
    expired: Option<String>,
}

fn login_page(state: &AppState, lang: Lang, next: Option<&str>, failed: bool, expired: bool) -> Response {
    let nonce = random_id();
    let mut page = Page::new("", "/login", lang.pick("Sign in", "ログイン").into(), lang, ViewState::default());
    page.view.pairs.insert("lang".into(), lang.code().into());
    page.area = Area::Public;
    if expired {
        page.html(format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            lang.pick(
                "The sign-in form expired; please sign in again.",
                "ログイン画面の有効期限が切れました。もう一度ログインしてください。"
            )
        ));
    } else if failed {
        page.html(format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            lang.pick(
                "That token is unknown, revoked, or cannot sign in here.",
                "そのトークンは無効か、ここではログインできません。"
            )
        ));
    }
    page.html(format!(
        "<p>{}</p><form class=\"login\" method=\"post\" action=\"/login\">\
<label for=\"token\">{}</label> <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"256\">\
<input type=\"hidden\" name=\"next\" value=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
<input type=\"hidden\" name=\"nonce\" value=\"{nonce}\"><button type=\"submit\">{}</button></form>",
        lang.pick(
            "ISP staff sign in with their ISP token, centre analysts with an admin token (botscope token create).",
            "ISPの担当者はISPトークンで、分析センターの担当者は管理者トークンでログインします（botscope token create）。"
        ),
        lang.pick("API token", "APIトークン"),
        esc(next.unwrap_or("")),
        lang.code(),
        lang.pick("Sign in", "ログイン"),
    ));
    let mut response = page.respond(None);
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(state, LOGIN_COOKIE, &nonce, "/login", 3600));
    response
}

/// `GET /login`.
pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let lang = Lang::choose(query.lang.as_deref(), &headers);
    let next = safe_next(query.next.as_deref());
    login_page(&state, lang, next.as_deref(), query.failed.is_some(), query.expired.is_some())
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    nonce: String,
}

/// `POST /login`: checks the form's nonce and the token, and opens a session.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let lang = Lang::choose(Some(&form.lang), &headers);
    let next = safe_next(Some(&form.next)).unwrap_or_default();
    if cookie(&headers, LOGIN_COOKIE).is_none_or(|nonce| nonce != form.nonce) {
        return Redirect::to(&format!("/login?expired=1&lang={}&next={}", lang.code(), super::url_encode(&next)))
            .into_response();
    }
    let token = form.token.trim();
    let caller = if token.is_empty() || token.len() > 256 {
        None
    } else {
        let hash = tokens::hash(token);
        match state.store.token_by_hash(&hash).await {
            Ok(row) => row.as_ref().and_then(Caller::from_row).map(|c| (c, hash)),
            Err(e) => return crate::ApiError::from(e).into_response(),
        }
    };
    let Some((caller, hash)) = caller.filter(|(c, _)| matches!(c.role, Role::Isp | Role::Admin)) else {
        return Redirect::to(&format!("/login?failed=1&lang={}&next={}", lang.code(), super::url_encode(&next)))
            .into_response();
    };
    let id = match open_session(&state.store, hash, crate::now_ms()).await {
        Ok(id) => id,
        Err(e) => return crate::ApiError::from(e).into_response(),
    };
    let home = if caller.role == Role::Isp { "/portal" } else { "/" };
    let next = safe_next(Some(&form.next)).filter(|n| caller.role == Role::Admin || n.starts_with("/portal"));
    let target = next.unwrap_or_else(|| format!("{home}?lang={}", lang.code()));
    let mut response = Redirect::to(&target).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(&state, COOKIE, &id, "/", LIFETIME.as_secs()));
    // The nonce is spent.
    headers.append(header::SET_COOKIE, set_cookie(&state, LOGIN_COOKIE, "", "/login", 0));
    response
}

/// `POST /logout`.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // The cookie goes whatever the store says: a browser signing out must not stay signed in.
    let closed = match session_id(&headers) {
        Some(id) => close_session(&state.store, &id).await,
        None => Ok(()),
    };
    let mut response = match closed {
        Ok(()) => Redirect::to("/login").into_response(),
        Err(e) => crate::ApiError::from(e).into_response(),
    };
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(&state, COOKIE, "", "/", 0));
    response
}

/// The refusal of a form whose CSRF value is not the session's; `None` when it is.
pub fn csrf_refusal(user: &SignedIn, sent: &str, lang: Lang) -> Option<Response> {
    // Compared without an early exit, so timing does not tell how much of a guess was right.
    let differ = sent.bytes().zip(user.csrf.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if sent.len() == user.csrf.len() && differ == 0 {
        None
    } else {
        Some(error_page(lang, StatusCode::FORBIDDEN, "the form expired; reload the page and try again"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/portal?lang=ja")).as_deref(), Some("/portal?lang=ja"));
        assert_eq!(safe_next(Some("//evil.example/")), None);
        assert_eq!(safe_next(Some("https://evil.example/")), None);
        assert_eq!(safe_next(Some("/\\evil.example")), None);
        assert_eq!(safe_next(Some("/\t/evil.example")), None);
        assert_eq!(safe_next(Some("/ /evil.example")), None);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        let id = "a".repeat(64);
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("x=1; {COOKIE}={id}")).unwrap());
        assert_eq!(session_id(&headers), Some(id));
        headers.insert(header::COOKIE, HeaderValue::from_static("botscope_session=short"));
        assert_eq!(session_id(&headers), None);
    }

    proptest::proptest! {
        #[test]
        fn any_cookie_header_gives_a_well_formed_id_or_none(cookie in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&cookie) {
                headers.insert(header::COOKIE, value);
            }
            if let Some(id) = session_id(&headers) {
                proptest::prop_assert_eq!(id.len(), 64);
                proptest::prop_assert!(!id.contains([';', ' ', '"', '<']));
            }
        }
    }

    async fn session_store() -> (tempfile::TempDir, botscope_store::SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("sessions.db"), 1).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn one_token_holds_a_bounded_number_of_sessions() {
        let (_dir, store) = session_store().await;
        let mut ids = Vec::new();
        for at in 0..MAX_PER_TOKEN as i64 + 5 {
            ids.push(open_session(&store, "h".into(), at).await.unwrap());
        }
        let other = open_session(&store, "other".into(), 100).await.unwrap();
        assert!(find_session(&store, &other, 101).await.unwrap().is_some());
        assert!(find_session(&store, ids.last().unwrap(), 101).await.unwrap().is_some(), "the newest stays");
        let mut live = 0;
        for id in &ids {
            live += find_session(&store, id, 101).await.unwrap().is_some() as u64;
        }
        assert_eq!(live, MAX_PER_TOKEN);
    }

    #[tokio::test]
    async fn sessions_open_expire_and_close_and_the_store_keeps_no_usable_id() {
        let (_dir, store) = session_store().await;
        let id = open_session(&store, "h".into(), 0).await.unwrap();
        assert_eq!(find_session(&store, &id, 1).await.unwrap().unwrap().token_hash, "h");
        // What the store holds is a hash: the id itself is nowhere in it.
        let held = store.lease(LeaseKind::Session, &tokens::hash(&id), 1).await.unwrap().unwrap();
        assert!(held.key != id && held.body != id && held.owner != id);
        assert!(store.lease(LeaseKind::Session, &id, 1).await.unwrap().is_none());
        let lifetime = LIFETIME.as_millis() as i64;
        assert!(find_session(&store, &id, lifetime).await.unwrap().is_none(), "expired");
        assert!(find_session(&store, &id, lifetime - 1).await.unwrap().is_some());
        close_session(&store, &id).await.unwrap();
        assert!(find_session(&store, &id, 1).await.unwrap().is_none());
    }
}
