//! `GET /api/v1/records`: the store searched by what analysts look things up by (address,
//! prefix, ISP, port, botnet serial, status, sensor, time), a page at a time through the store's
//! indexes, never by reading every record.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use botscope_center::tokens::Role;
use botscope_model::{Kind, Record};
use botscope_store::{RecordQuery, Store};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

/// Records a page holds when the request does not say.
pub const DEFAULT_PAGE: u32 = 100;
/// The most a page holds.
pub const MAX_PAGE: u32 = 1_000;

/// A page's size and start from `limit` and `after` as a request gave them: the default page when
/// no limit is given, and what is wrong with either (`what` names the records `after` refers to).
pub(crate) fn page_bounds(
    limit: Option<u32>,
    after: Option<&str>,
    what: &str,
) -> Result<(u32, Option<uuid::Uuid>), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit {limit}: between 1 and {MAX_PAGE}")));
    }
    let after = after
        .map(|text| text.parse().map_err(|_| ApiError::bad_request(format!("after {text:?}: not {what}"))))
        .transpose()?;
    Ok((limit, after))
}

/// What `GET /api/v1/records` reads from its query string; every filter is optional and they
/// combine (AND).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// A record kind (`finding`, `activity`, `cnc`, ...).
    kind: Option<String>,
    /// One address.
    ip: Option<String>,
    /// Addresses in a prefix (`203.0.113.0/24`, `2001:db8::/32`).
    prefix: Option<String>,
    /// Addresses in the prefixes an AS originates in the loaded routing table (`64500` or `AS64500`).
    asn: Option<String>,
    /// The `isp` field.
    isp: Option<String>,
    /// The `port` field.
    port: Option<u16>,
    /// A botnet serial (botnets and their windows).
    serial: Option<String>,
    /// The `status` field (notifications, botnets, services).
    status: Option<String>,
    /// The `sensor` field.
    sensor: Option<String>,
    /// A TAXII collection's id (`taxii_object` records).
    collection: Option<String>,
    /// Filed at or after this time (RFC 3339).
    since: Option<String>,
    /// Filed before this time (RFC 3339).
    until: Option<String>,
    /// The previous page's `next`.
    after: Option<String>,
    /// Records per page, 1 to [`MAX_PAGE`].
    limit: Option<u32>,
}

fn time(name: &str, text: Option<&str>) -> Result<Option<botscope_model::Timestamp>, ApiError> {
    text.map(|text| {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| ApiError::bad_request(format!("{name} {text:?}: not an RFC 3339 time ({e})")))
    })
    .transpose()
}

impl SearchParams {
    /// The AS asked for, if any.
    fn asn(&self) -> Result<Option<u32>, ApiError> {
        self.asn
            .as_deref()
            .map(|text| {
                let digits = text.strip_prefix("AS").or_else(|| text.strip_prefix("as")).unwrap_or(text);
                digits
                    .parse::<u32>()
                    .map_err(|_| ApiError::bad_request(format!("asn {text:?}: expected 64500 or AS64500")))
            })
            .transpose()
    }

    /// The store query these parameters ask for, or what is wrong with them.
    fn query(self) -> Result<RecordQuery, ApiError> {
        let (limit, after) = page_bounds(self.limit, self.after.as_deref(), "a record id")?;
        let kind = self.kind.as_deref().map(str::parse::<Kind>).transpose().map_err(ApiError::bad_request)?;
        let fields = [&self.isp, &self.serial, &self.status, &self.sensor, &self.collection];
        if kind.is_none() && (self.port.is_some() || fields.iter().any(|f| f.is_some())) {
            // The field indexes are per kind: without one, the search would read every record.
            return Err(ApiError::bad_request(
                "isp, port, serial, status, sensor and collection search within one kind: add kind=",
            ));
        }
        let ip =
            self.ip.as_deref().map(str::parse).transpose().map_err(|e| ApiError::bad_request(format!("ip: {e}")))?;
        let prefix: Option<ipnet::IpNet> = self
            .prefix
            .as_deref()
            .map(|text| text.parse().map_err(|e| ApiError::bad_request(format!("prefix {text:?}: {e}"))))
            .transpose()?;
        let (since, until) = (time("since", self.since.as_deref())?, time("until", self.until.as_deref())?);
        if let (Some(since), Some(until)) = (since, until)
            && until < since
        {
            return Err(ApiError::bad_request("until is before since"));
        }
        Ok(RecordQuery {
            kind,
            after,
            limit,
            since,
            until,
            ip,
            prefix: prefix.map(|p| p.trunc()),
            within_any: None,
            ip_any: None,
            isp: self.isp,
            port: self.port,
            serial: self.serial,
            status: self.status,
            sensor: self.sensor,
            collection: self.collection,
            cases_any: None,
        })
    }
}

/// `GET /api/v1/records` (admin): `{"records": [...], "next": ID or null}`, in id order; pass
/// `next` as `after` for the following page.
pub async fn search(
    State(state): State<AppState>,
    auth: Auth,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&[Role::Admin])?;
    let Query(params) = params.map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))?;
    let asn = params.asn()?;
    let mut query = params.query()?;
    if let Some(asn) = asn {
        // Through the routing table the ISP attribution uses: the prefixes the AS originates now.
        query.within_any = Some(state.store.prefixes_originated_by(asn).await?);
    }
    let records = state.store.records(&query).await?;
    let next = (records.len() == query.limit as usize).then(|| records.last().and_then(Record::id)).flatten();
    Ok(Json(serde_json::json!({ "records": records, "next": next })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Result<RecordQuery, String> {
        let Query(params): Query<SearchParams> =
            Query::try_from_uri(&format!("http://x/?{query}").parse().unwrap()).map_err(|e| e.body_text())?;
        params.asn().map_err(|e| e.message)?;
        params.query().map_err(|e| e.message)
    }

    #[test]
    fn search_parameters_read_or_say_what_is_wrong() {
        let query = params("kind=finding&prefix=203.0.113.77/24&port=23&limit=5").unwrap();
        assert_eq!((query.kind, query.port, query.limit), (Some(Kind::Finding), Some(23), 5));
        assert_eq!(query.prefix.unwrap().to_string(), "203.0.113.0/24");
        assert_eq!(params("").unwrap().limit, DEFAULT_PAGE);
        assert!(params("asn=AS64500").is_ok() && params("asn=64500").is_ok());
        for (bad, named) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("kind=bogus", "bogus"),
            ("prefix=1.2.3.4/33", "prefix"),
            ("ip=nope", "ip"),
            ("since=yesterday", "since"),
            ("since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", "until"),
            ("after=7", "after"),
            ("port=70000", "port"),
            ("colour=red", "colour"),
            ("serial=BN-2026-0007", "kind"),
            ("asn=AS-1", "asn"),
            ("asn=4294967296", "asn"),
        ] {
            let error = params(bad).unwrap_err();
            assert!(error.contains(named), "{bad}: {error}");
        }
    }
}
