//! The API's contract: an OpenAPI 3.1 description of `/api/v1`, served at
//! `/api/v1/openapi.json` for the ISPs and partners who script against it.
//!
//! It is built here, beside the handlers, from the same constants they use (page sizes, kinds,
//! statuses, report types), and the tests hold it to the router (every operation it describes is
//! routed and answers) and to a live server: a property-based tester (schemathesis) checks that
//! every answer is one it describes.

use axum::Json;
use serde_json::{Value, json};

use super::records::{DEFAULT_PAGE, MAX_PAGE};

fn error_response(what: &str) -> Value {
    json!({
        "description": what,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

/// The answers every authenticated operation may give besides its own.
fn with_errors(mut responses: Value, codes: &[(&str, &str)]) -> Value {
    let common = [
        ("401", "no token, or a token that is unknown or revoked"),
        ("403", "the token's role may not do this"),
        ("503", "the store does not answer (nothing was committed); retry after Retry-After"),
    ];
    if let Some(map) = responses.as_object_mut() {
        for (code, what) in codes.iter().chain(common.iter()) {
            map.entry(code.to_string()).or_insert_with(|| error_response(what));
        }
    }
    responses
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn path_param(name: &str, description: &str, example: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": { "type": "string" }, "example": example })
}

fn json_body(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn page_params() -> [Value; 2] {
    [
        query(
            "limit",
            &format!("records per page, 1 to {MAX_PAGE}"),
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE }),
        ),
        query("after", "the previous page's `next`", json!({ "type": "string", "format": "uuid" })),
    ]
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let text = |format: &str| json!({ format: { "schema": { "type": "string" } } });
    let notification_statuses = botscope_center::notify::ISP_STATUSES.map(|s| s.as_str());
    let every_status = botscope_model::NotificationStatus::ALL.map(|s| s.as_str());
    let kinds = botscope_model::Kind::ALL.map(|k| k.as_str());
    let reports = botscope_center::notify::ReportType::ALL.map(|r| r.as_str());
    let [limit, after] = page_params();
    let search_params = vec![
        query("kind", "a record kind", json!({ "type": "string", "enum": kinds })),
        query("ip", "one address", json!({ "type": "string" })),
        query("prefix", "addresses in a prefix, e.g. 203.0.113.0/24", json!({ "type": "string" })),
        query(
            "asn",
            "addresses in the prefixes an AS originates in the loaded routing table, e.g. 64500 or AS64500",
            json!({ "type": "string", "pattern": "^(AS|as)?[0-9]{1,10}$" }),
        ),
        query("isp", "the record's isp field", json!({ "type": "string" })),
        query("port", "the record's port field", json!({ "type": "integer", "minimum": 0, "maximum": 65535 })),
        query("serial", "a botnet serial", json!({ "type": "string" })),
        query("status", "the record's status field", json!({ "type": "string" })),
        query("sensor", "the record's sensor field", json!({ "type": "string" })),
        query("collection", "a TAXII collection id", json!({ "type": "string" })),
        query("since", "filed at or after (RFC 3339)", json!({ "type": "string" })),
        query("until", "filed before (RFC 3339)", json!({ "type": "string" })),
        json!({ "name": "limit", "in": "query", "required": false,
                "description": format!("records per page, 1 to {MAX_PAGE} (default {DEFAULT_PAGE})"),
                "schema": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE } }),
        after.clone(),
    ];
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "botscope centre API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The centre's API for sensors, ISPs and analysts (docs/api.md). Records are JSON objects as docs/formats.md defines them.",
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }],
        "paths": {
            "/health": { "get": {
                "summary": "Liveness: the process answers (reads nothing)",
                "security": [],
                "responses": { "200": { "description": "alive", "content": json_body(json!({
                    "type": "object", "required": ["status", "version"],
                    "properties": { "status": { "const": "ok" }, "version": { "type": "string" } } })) } }
            } },
            "/ready": { "get": {
                "summary": "Readiness: the store answers and has every migration this build carries",
                "security": [],
                "responses": {
                    "200": { "description": "ready", "content": json_body(json!({
                        "type": "object", "required": ["status", "schema"],
                        "properties": { "status": { "const": "ready" }, "schema": { "type": "integer" } } })) },
                    "503": error_response("the store does not answer, or lacks migrations"),
                }
            } },
            "/openapi.json": { "get": {
                "summary": "This description",
                "security": [],
                "responses": { "200": { "description": "the OpenAPI 3.1 document", "content": json_body(json!({ "type": "object" })) } }
            } },
            "/ingest": { "post": {
                "summary": "Send records: JSON Lines, optionally gzip (Content-Encoding)",
                "requestBody": { "required": true, "content": {
                    "application/x-ndjson": { "schema": { "type": "string" } },
                    "text/plain": { "schema": { "type": "string" } } } },
                "responses": with_errors(json!({ "200": { "description": "per-line outcome", "content": json_body(json!({ "$ref": "#/components/schemas/IngestReply" })) } }),
                    &[("400", "the body does not decompress"), ("413", "the batch is too large"), ("415", "an unsupported Content-Encoding")]),
            } },
            "/botnets": { "get": {
                "summary": "The botnets correlation found, a page at a time in record id order",
                "parameters": [limit.clone(), after.clone()],
                "responses": with_errors(json!({ "200": { "description": "a page of botnets", "content": json_body(json!({
                    "type": "object", "required": ["botnets", "next"],
                    "properties": {
                        "botnets": { "type": "array", "items": { "$ref": "#/components/schemas/Record" } },
                        "next": { "type": ["string", "null"] } } })) } }),
                    &[("400", "a parameter does not read")]),
            } },
            "/botnets/{serial}": { "get": {
                "summary": "One botnet by serial",
                "parameters": [path_param("serial", "a botnet's serial number", "BN-2026-0007")],
                "responses": with_errors(json!({ "200": { "description": "the botnet", "content": json_body(json!({ "$ref": "#/components/schemas/Record" })) } }),
                    &[("404", "no such serial")]),
            } },
            "/records": { "get": {
                "summary": "Search records a page at a time (admin)",
                "parameters": search_params,
                "responses": with_errors(json!({ "200": { "description": "a page", "content": json_body(json!({
                    "type": "object", "required": ["records", "next"],
                    "properties": {
                        "records": { "type": "array", "items": { "$ref": "#/components/schemas/Record" } },
                        "next": { "type": ["string", "null"] } } })) } }),
                    &[("400", "a parameter does not read")]),
            } },
            "/isp/notifications": { "get": {
                "summary": "The caller's ISP's notification cases",
                "parameters": [
                    query("isp", "admin only: whose cases", json!({ "type": "string" })),
                    query("status", "only this status", json!({ "type": "string", "enum": every_status })),
                    query("reason", "only this reason", json!({ "type": "string" })),
                    query("format", "json or csv", json!({ "type": "string", "enum": ["json", "csv"] })),
                    limit, after,
                ],
                "responses": with_errors(json!({ "200": { "description": "the cases", "content": {
                    "application/json": { "schema": { "type": "object", "required": ["notifications"], "properties": {
                        "notifications": { "type": "array", "items": { "$ref": "#/components/schemas/Record" } },
                        "next": { "type": ["string", "null"] } } } },
                    "text/csv": { "schema": { "type": "string" } } } } }),
                    &[("400", "a parameter does not read"), ("404", "another ISP's list")]),
            } },
            "/isp/notifications/{id}/status": { "post": {
                "summary": "Report what the ISP did about a case",
                "parameters": [path_param("id", "the notification's id", "190db74e-4ec9-5071-b614-648db3ea71ef")],
                "requestBody": { "required": true, "content": json_body(json!({
                    "type": "object", "required": ["status"], "additionalProperties": false,
                    "properties": { "status": { "type": "string", "enum": notification_statuses }, "note": { "type": "string" } } })) },
                "responses": with_errors(json!({ "201": { "description": "the outcome recorded", "content": json_body(json!({ "$ref": "#/components/schemas/Record" })) } }),
                    &[("400", "a status an ISP may not report, or a body that does not read"), ("404", "no such case, or another ISP's"), ("415", "the body is not JSON")]),
            } },
            "/recheck": { "get": {
                "summary": "Open vulnerable cases a re-survey should look at (surveyor, admin)",
                "parameters": [query("min_age_days", "only cases last notified this many days ago or earlier", json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX }))],
                "responses": with_errors(json!({ "200": { "description": "notification records, one per line", "content": text("application/x-ndjson") } }),
                    &[("400", "a parameter does not read")]),
            } },
            "/isp/report": { "get": {
                "summary": "One of the ISP's Shadowserver-style reports as CSV",
                "parameters": [
                    json!({ "name": "isp", "in": "query", "required": false, "example": "hikari-net",
                            "description": "whose report: an admin must name the ISP, an ISP token may name only its own",
                            "schema": { "type": "string" } }),
                    json!({ "name": "period", "in": "query", "required": true, "schema": { "type": "string", "enum": ["day", "month"] } }),
                    query("date", "YYYY-MM-DD for a day, YYYY-MM for a month", json!({ "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$" })),
                    json!({ "name": "report", "in": "query", "required": true, "schema": { "type": "string", "enum": reports } }),
                ],
                "responses": with_errors(json!({ "200": { "description": "the report", "content": text("text/csv") } }),
                    &[("400", "a parameter does not read"), ("404", "another ISP's report")]),
            } },
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "an API token (botscope token create)" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "status"], "properties": {
                    "error": { "type": "string" }, "status": { "type": "integer" } } },
                "Record": { "type": "object", "description": "a record as docs/formats.md defines it" },
                "IngestReply": { "type": "object",
                    "required": ["lines", "accepted", "inserted", "duplicates", "errors", "error_count", "problems"],
                    "properties": {
                        "lines": { "type": "integer", "minimum": 0 },
                        "accepted": { "type": "integer", "minimum": 0 },
                        "inserted": { "type": "integer", "minimum": 0 },
                        "duplicates": { "type": "integer", "minimum": 0 },
                        "errors": { "type": "boolean" },
                        "error_count": { "type": "integer", "minimum": 0 },
                        "problems": { "type": "array", "items": { "type": "object", "required": ["line", "error"],
                            "properties": { "line": { "type": "integer" }, "error": { "type": "string" } } } },
                        "ignored_fields": { "type": "array", "items": { "type": "string" } } } },
            }
        }
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of `/api/v1`, as (method, path): the router's routes under `/api/v1`.
    const OPERATIONS: [(&str, &str); 11] = [
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/openapi.json"),
        ("post", "/ingest"),
        ("get", "/botnets"),
        ("get", "/botnets/{serial}"),
        ("get", "/records"),
        ("get", "/isp/notifications"),
        ("post", "/isp/notifications/{id}/status"),
        ("get", "/recheck"),
        ("get", "/isp/report"),
    ];

    /// Every described operation is routed: without a token it is refused for want of one (or,
    /// for the public ones, answered), never "no such route" or "wrong method".
    #[tokio::test]
    async fn every_described_operation_is_routed() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("api.db"), 1).await.unwrap();
        let state = crate::AppState::new(botscope_store::AnyStore::Sqlite(store), crate::Limits::default());
        let app = crate::router(state);
        let document = document();
        for (method, path) in OPERATIONS {
            let uri = format!("/api/v1{}", path.replace("{serial}", "BN-2026-0001").replace("{id}", "x"));
            let request = axum::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 9))))
                .body(axum::body::Body::empty())
                .unwrap();
            let status = app.clone().oneshot(request).await.unwrap().status().as_u16();
            let public = document["paths"][path][method].get("security").is_some();
            let expected: &[u16] = if public { &[200, 503] } else { &[401] };
            assert!(expected.contains(&status), "{method} {uri}: {status}");
        }
    }

    #[test]
    fn the_description_lists_exactly_the_operations_and_every_one_answers_bad_requests_with_an_error() {
        let document = document();
        let paths = document["paths"].as_object().unwrap();
        let described: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone())))
            .collect();
        let mut expected: Vec<(String, String)> =
            OPERATIONS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        let mut described_sorted = described.clone();
        expected.sort();
        described_sorted.sort();
        assert_eq!(described_sorted, expected);
        for (method, path) in described {
            let responses = &paths[&path][&method]["responses"];
            assert!(responses.get("200").or(responses.get("201")).is_some(), "{method} {path}");
            if document["paths"][&path][&method].get("security").is_none() {
                assert!(responses.get("401").is_some(), "{method} {path} needs a token and must say 401");
            }
        }
    }
}
