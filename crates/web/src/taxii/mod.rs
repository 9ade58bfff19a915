//! A TAXII 2.1 server under `/taxii2/`: discovery, one API root (`api1`), collections, objects
//! (with `added_after`, `limit`/`next` and the `match[...]` filters), object versions, manifests,
//! and POST with a status resource. docs/sharing.md says what each collection holds.
//!
//! Access: tokens are the API's, sent as `Authorization: Bearer TOKEN` or HTTP Basic with the
//! token as the password. Anonymous callers get discovery only. The `shared` collection holds what
//! the centre publishes at TLP:WHITE/GREEN/AMBER, for every token to read; each ISP has a
//! collection of its own that only its token (and admins) may read and write, the only place a
//! TLP:RED object can go.

mod access;
mod query;
mod status;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use botscope_model::{Kind, Record, TaxiiObject, Timestamp};
use botscope_store::{RecordQuery, Store, all_records};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use crate::{AppState, now_ms};
use access::{Collection, TaxiiCaller};
pub use access::{SHARED_COLLECTION, isp_collection};
pub use status::{LISTED, StatusLimits, Statuses};

pub use botscope_share::taxii::MEDIA_TYPE;
/// Largest POST body the API root takes.
pub const MAX_CONTENT_LENGTH: usize = 10 << 20;

/// A TAXII error: `{title, description, http_status}` in the TAXII media type.
#[derive(Debug)]
pub struct TaxiiError {
    status: StatusCode,
    title: &'static str,
    description: String,
}

impl TaxiiError {
    fn new(status: StatusCode, title: &'static str, description: impl Into<String>) -> Self {
        TaxiiError { status, title, description: description.into() }
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found", "no such resource, or not readable with these credentials")
    }

    fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad request", description)
    }
}

impl From<botscope_store::StoreError> for TaxiiError {
    fn from(error: botscope_store::StoreError) -> Self {
        tracing::error!(%error, "store error while serving TAXII");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Store unavailable", "try again later")
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        let mut response = taxii_json(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"botscope TAXII\""));
        }
        response
    }
}

fn taxii_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    response
}

/// 406 unless the caller accepts the TAXII 2.1 media type.
fn check_accept(headers: &HeaderMap) -> Result<(), TaxiiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ok = accept.split(',').any(|part| {
        let part = part.trim().to_ascii_lowercase().replace(' ', "");
        part == "application/taxii+json" || part.starts_with("application/taxii+json;version=2.1")
    });
    if ok {
        Ok(())
    } else {
        Err(TaxiiError::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable", format!("send Accept: {MEDIA_TYPE}")))
    }
}

fn time(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `GET /taxii2/`: discovery, for anyone.
pub async fn discovery(headers: HeaderMap) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    Ok(taxii_json(
        StatusCode::OK,
        &json!({
            "title": "botscope centre",
            "description": "Botnet C&C servers, botnets and darknet sightings from a botscope centre (STIX 2.1).",
            "contact": "the centre's operators",
            "default": format!("http://{host}/taxii2/api1/"),
            "api_roots": [format!("http://{host}/taxii2/api1/")],
        }),
    ))
}

/// `GET /taxii2/api1/`.
pub async fn api_root(headers: HeaderMap, State(state): State<AppState>) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    TaxiiCaller::from_headers(&headers, &state).await?;
    Ok(taxii_json(
        StatusCode::OK,
        &json!({
            "title": "botscope centre",
            "description": "The centre's collections: shared, and one per ISP.",
            "versions": [MEDIA_TYPE],
            "max_content_length": MAX_CONTENT_LENGTH,
        }),
    ))
}

/// `GET /taxii2/api1/collections/`.
pub async fn collections(headers: HeaderMap, State(state): State<AppState>) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    let caller = TaxiiCaller::from_headers(&headers, &state).await?;
    let list: Vec<Value> = access::visible(&caller, &state).await?.iter().map(Collection::to_json).collect();
    Ok(taxii_json(StatusCode::OK, &json!({ "collections": list })))
}

/// `GET /taxii2/api1/collections/{id}/`.
pub async fn collection(
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    let caller = TaxiiCaller::from_headers(&headers, &state).await?;
    let found = access::find(&caller, &state, &id).await?;
    Ok(taxii_json(StatusCode::OK, &found.to_json()))
}

/// A collection's objects added at or after `since`, read through the (kind, collection, time)
/// index; the request's filters then apply exactly.
async fn stored(state: &AppState, collection: &str, since: Option<Timestamp>) -> Result<Vec<TaxiiObject>, TaxiiError> {
    let query = RecordQuery {
        kind: Some(Kind::TaxiiObject),
        collection: Some(collection.to_string()),
        since,
        ..Default::default()
    };
    let mut objects: Vec<TaxiiObject> = all_records(&state.store, query)
        .await?
        .into_iter()
        .filter_map(Record::into_payload::<TaxiiObject>)
        .filter(|o| o.collection == collection)
        .collect();
    objects.sort_by(|a, b| (a.date_added, a.stix_id(), a.version()).cmp(&(b.date_added, b.stix_id(), b.version())));
    Ok(objects)
}

/// Reads a collection's objects through the request's filters; the page and whether more follow.
async fn page(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    raw_query: Option<String>,
    only: Option<&str>,
) -> Result<(query::Page, Collection), TaxiiError> {
    check_accept(headers)?;
    let caller = TaxiiCaller::from_headers(headers, state).await?;
    let found = access::find(&caller, state, id).await?;
    if !found.can_read {
        return Err(TaxiiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "this collection is not readable with these credentials",
        ));
    }
    let filters = query::Filters::parse(raw_query.as_deref().unwrap_or(""), only)?;
    let objects = stored(state, id, filters.added_after()).await?;
    Ok((filters.apply(objects), found))
}

fn date_headers(response: &mut Response, page: &query::Page) {
    if let (Some(first), Some(last)) = (page.items.first(), page.items.last()) {
        for (name, value) in
            [("x-taxii-date-added-first", first.date_added), ("x-taxii-date-added-last", last.date_added)]
        {
            if let Ok(value) = HeaderValue::from_str(&time(value)) {
                response.headers_mut().insert(name, value);
            }
        }
    }
}

/// A page's answer: the body in the TAXII media type with the date-added headers of its objects.
fn page_response(page: &query::Page, body: &Value) -> Response {
    let mut response = taxii_json(StatusCode::OK, body);
    date_headers(&mut response, page);
    response
}

/// One object's routes: 404 when the collection has no version of it.
fn require_some(page: &query::Page) -> Result<(), TaxiiError> {
    if page.items.is_empty() && !page.more { Err(TaxiiError::not_found()) } else { Ok(()) }
}

/// `more` and `next` of a page, for every list body.
fn paging(page: &query::Page) -> Value {
    let mut body = json!({ "more": page.more });
    if let Some(next) = &page.next {
        body["next"] = next.clone().into();
    }
    body
}

fn envelope(page: &query::Page) -> Value {
    let mut body = paging(page);
    if !page.items.is_empty() {
        body["objects"] = page.items.iter().map(|o| o.object.clone()).collect::<Vec<_>>().into();
    }
    body
}

/// `GET /taxii2/api1/collections/{id}/objects/`.
pub async fn get_objects(
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, TaxiiError> {
    let (page, _) = page(&state, &headers, &id, raw, None).await?;
    Ok(page_response(&page, &envelope(&page)))
}

/// `GET /taxii2/api1/collections/{id}/objects/{object_id}/`.
pub async fn get_object(
    headers: HeaderMap,
    State(state): State<AppState>,
    Path((id, object_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, TaxiiError> {
    let (page, _) = page(&state, &headers, &id, raw, Some(&object_id)).await?;
    require_some(&page)?;
    Ok(page_response(&page, &envelope(&page)))
}

/// `GET /taxii2/api1/collections/{id}/objects/{object_id}/versions/`.
pub async fn versions(
    headers: HeaderMap,
    State(state): State<AppState>,
    Path((id, object_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, TaxiiError> {
    let raw = format!("{}&match[version]=all", raw.unwrap_or_default());
    let (page, _) = page(&state, &headers, &id, Some(raw), Some(&object_id)).await?;
    require_some(&page)?;
    let mut body = paging(&page);
    body["versions"] = page.items.iter().map(TaxiiObject::version).collect::<Vec<_>>().into();
    Ok(page_response(&page, &body))
}

/// `GET /taxii2/api1/collections/{id}/manifest/`.
pub async fn manifest(
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, TaxiiError> {
    let (page, _) = page(&state, &headers, &id, raw, None).await?;
    let records: Vec<Value> = page
        .items
        .iter()
        .map(|o| json!({ "id": o.stix_id(), "date_added": time(o.date_added), "version": o.version(), "media_type": "application/stix+json;version=2.1" }))
        .collect();
    let mut body = paging(&page);
    if !records.is_empty() {
        body["objects"] = records.into();
    }
    Ok(page_response(&page, &body))
}

/// `POST /taxii2/api1/collections/{id}/objects/`: stores each object (a version already there
/// counts as a success), answers 202 with a status resource.
pub async fn post_objects(
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    let caller = TaxiiCaller::from_headers(&headers, &state).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let normalized = content_type.to_ascii_lowercase().replace(' ', "");
    if !(normalized == "application/taxii+json" || normalized.starts_with("application/taxii+json;version=2.1")) {
        return Err(TaxiiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("send Content-Type: {MEDIA_TYPE}"),
        ));
    }
    let found = access::find(&caller, &state, &id).await?;
    if !found.can_write {
        return Err(TaxiiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "this collection is not writable with these credentials",
        ));
    }
    let raw = axum::body::to_bytes(body, MAX_CONTENT_LENGTH).await.map_err(|_| {
        TaxiiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Too large", format!("at most {MAX_CONTENT_LENGTH} bytes"))
    })?;
    let now = chrono::Utc::now();
    // A partner is named by its ISP handle, which the centre vouches for, never by the free-text
    // label of its token; an admin's post by the token's id.
    let sender = caller.isp.clone().unwrap_or_else(|| caller.token_id.clone());
    let mut tally = status::Tally::default();
    let mut records = Vec::new();
    // Objects are taken one at a time as the envelope is read, and only accepted ones are kept:
    // a tree of the whole envelope costs ten times its size when it is a list of `{}`.
    each_object(&raw, |object| {
        let text = |key: &str| object.get(key).and_then(Value::as_str);
        let stix_id = status::clip(text("id").unwrap_or(""), status::ID_BYTES);
        let version = status::clip(text("modified").or_else(|| text("created")).unwrap_or(""), status::VERSION_BYTES);
        if object.get("spec_version").and_then(Value::as_str) != Some("2.1") {
            return tally.failure(&stix_id, &version, "only STIX 2.1 objects (spec_version \"2.1\")");
        }
        if found.shared && access::is_red(&object) {
            return tally.failure(
                &stix_id,
                &version,
                "TLP:RED objects go only to their audience's collection, never the shared one",
            );
        }
        let entry =
            TaxiiObject { id: None, collection: found.id.clone(), date_added: now, added_by: sender.clone(), object };
        let mut record = Record::TaxiiObject(entry);
        match record.validate() {
            Ok(()) => {
                record.ensure_id();
                records.push(record);
                tally.success(&stix_id, &version);
            }
            Err(e) => tally.failure(&stix_id, &version, &e.to_string()),
        }
    })
    .map_err(|e| TaxiiError::bad_request(format!("not a JSON envelope with an \"objects\" list: {e}")))?;
    state.store.put_records(&records).await?;
    // A partner's C&C indicators become feed entries of the centre, kept apart by who sent them.
    // Feed entries reach correlation, liveness and every analyst's view, so TLP:RED objects stay
    // only in the collection they were posted to.
    let accepted: Vec<&Value> = records
        .iter()
        .filter_map(Record::payload::<TaxiiObject>)
        .map(|o| &o.object)
        .filter(|object| !access::is_red(object))
        .collect();
    if !accepted.is_empty() {
        let bundle = serde_json::to_vec(&json!({ "type": "bundle", "objects": accepted })).unwrap_or_default();
        let options = botscope_center::feeds::FeedOptions {
            format: botscope_center::feeds::FeedFormat::Stix,
            source: format!("taxii:{sender}"),
            plain_role: botscope_model::FeedRole::Cnc,
            now,
        };
        if let Ok(read) = botscope_center::feeds::read(bundle.as_slice(), &options) {
            let entries: Vec<Record> = read.entries.into_iter().map(Record::FeedEntry).collect();
            state.store.put_records(&entries).await?;
        }
    }
    let status_id = uuid::Uuid::new_v4().to_string();
    let status = tally.into_status(&status_id, &time(now));
    state.taxii_statuses.insert(&state.store, &status_id, &caller.token_id, &status, now_ms()).await?;
    Ok(taxii_json(StatusCode::ACCEPTED, &status))
}

/// Reads a TAXII envelope, handing each member of its `objects` list to `each` as it is read;
/// other members are skipped unread. An envelope without `objects` is an error.
fn each_object(raw: &[u8], each: impl FnMut(Value)) -> Result<(), serde_json::Error> {
    struct Envelope<F>(F);
    struct Objects<'a, F>(&'a mut F);

    impl<'de, F: FnMut(Value)> Visitor<'de> for Envelope<F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an envelope object")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
            let mut seen = false;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "objects" && !seen {
                    seen = true;
                    map.next_value_seed(Objects(&mut self.0))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if seen { Ok(()) } else { Err(serde::de::Error::missing_field("objects")) }
        }
    }

    impl<'de, F: FnMut(Value)> DeserializeSeed<'de> for Objects<'_, F> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_seq(self)
        }
    }

    impl<'de, F: FnMut(Value)> Visitor<'de> for Objects<'_, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(object) = seq.next_element::<Value>()? {
                (self.0)(object);
            }
            Ok(())
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    serde::Deserializer::deserialize_map(&mut deserializer, Envelope(each))?;
    deserializer.end()
}

/// `GET /taxii2/api1/status/{id}/`.
pub async fn status(
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    let caller = TaxiiCaller::from_headers(&headers, &state).await?;
    let admin = caller.role == botscope_center::tokens::Role::Admin;
    let body = state
        .taxii_statuses
        .get(&state.store, &id, &caller.token_id, admin, now_ms())
        .await?
        .ok_or_else(TaxiiError::not_found)?;
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_is_read_object_by_object() {
        let mut seen = Vec::new();
        each_object(br#"{"more": false, "objects": [{}, {"id": "x"}, 3], "next": {"a": [1]}}"#, |o| seen.push(o))
            .unwrap();
        assert_eq!(seen, vec![json!({}), json!({"id": "x"}), json!(3)]);
        for bad in [&br#"{"more": false}"#[..], br#"{"objects": {}}"#, br#"{"objects": []} x"#, b"[]", b"{"] {
            assert!(each_object(bad, |_| {}).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
