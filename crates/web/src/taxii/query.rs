//! The TAXII filters: `added_after`, `limit`, `next`, `match[id|type|version|spec_version]`.

use std::collections::BTreeMap;

use botscope_model::{TaxiiObject, Timestamp};

use super::TaxiiError;

/// Objects per page unless `limit` asks for fewer; also the most a page holds.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

enum Versions {
    Last,
    First,
    All,
    At(Vec<String>),
}

pub struct Filters {
    added_after: Option<Timestamp>,
    limit: usize,
    after: Option<(i64, String, String)>,
    ids: Option<Vec<String>>,
    types: Option<Vec<String>>,
    versions: Vec<Versions>,
    spec_versions: Option<Vec<String>>,
}

/// One page of a filtered collection.
pub struct Page {
    pub items: Vec<TaxiiObject>,
    pub more: bool,
    pub next: Option<String>,
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn key(o: &TaxiiObject) -> (i64, String, String) {
    (o.date_added.timestamp_micros(), o.stix_id().to_string(), o.version().to_string())
}

fn cursor(key: &(i64, String, String)) -> String {
    format!("{}|{}|{}", key.0, key.1, key.2).bytes().map(|b| format!("{b:02x}")).collect()
}

fn read_cursor(text: &str) -> Option<(i64, String, String)> {
    let bytes: Option<Vec<u8>> =
        (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    let plain = String::from_utf8(bytes?).ok()?;
    let mut parts = plain.splitn(3, '|');
    Some((parts.next()?.parse().ok()?, parts.next()?.to_string(), parts.next()?.to_string()))
}

impl Filters {
    /// The `added_after` filter, for reading only what may pass it.
    pub fn added_after(&self) -> Option<Timestamp> {
        self.added_after
    }

    /// Reads the query string; `only` is the object id of the `objects/{id}/` routes.
    pub fn parse(raw: &str, only: Option<&str>) -> Result<Filters, TaxiiError> {
        let mut filters = Filters {
            added_after: None,
            limit: PAGE,
            after: None,
            ids: only.map(|id| vec![id.to_string()]),
            types: None,
            versions: Vec::new(),
            spec_versions: None,
        };
        let list = |value: &str| value.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (decode(name), decode(value));
            match name.as_str() {
                "added_after" => {
                    let t = chrono::DateTime::parse_from_rfc3339(&value)
                        .map_err(|_| TaxiiError::bad_request(format!("added_after {value:?} is not a timestamp")))?;
                    filters.added_after = Some(t.to_utc());
                }
                "limit" => {
                    let n: i64 =
                        value.parse().map_err(|_| TaxiiError::bad_request("limit must be a positive integer"))?;
                    if n <= 0 {
                        return Err(TaxiiError::bad_request("limit must be a positive integer"));
                    }
                    filters.limit = (n as usize).min(MAX_PAGE);
                }
                "next" => {
                    filters.after = Some(
                        read_cursor(&value)
                            .ok_or_else(|| TaxiiError::bad_request("next is not a cursor of this server"))?,
                    );
                }
                "match[id]" => {
                    let ids: Vec<String> = list(&value);
                    filters.ids = Some(match filters.ids.take() {
                        Some(only) => only.into_iter().filter(|id| ids.contains(id)).collect(),
                        None => ids,
                    });
                }
                "match[type]" => filters.types = Some(list(&value)),
                "match[spec_version]" => filters.spec_versions = Some(list(&value)),
                "match[version]" => {
                    for v in list(&value) {
                        filters.versions.push(match v.as_str() {
                            "last" => Versions::Last,
                            "first" => Versions::First,
                            "all" => Versions::All,
                            other => {
                                chrono::DateTime::parse_from_rfc3339(other).map_err(|_| {
                                    TaxiiError::bad_request(format!(
                                        "match[version] {other:?}: first, last, all or a timestamp"
                                    ))
                                })?;
                                Versions::At(vec![other.to_string()])
                            }
                        });
                    }
                }
                _ => {}
            }
        }
        if filters.versions.is_empty() {
            filters.versions.push(Versions::Last);
        }
        Ok(filters)
    }

    /// The page of `objects` (sorted by date added) these filters select.
    pub fn apply(&self, objects: Vec<TaxiiObject>) -> Page {
        let wanted = |o: &TaxiiObject| {
            let kind = o.object.get("type").and_then(|t| t.as_str()).unwrap_or("");
            let spec = o.object.get("spec_version").and_then(|t| t.as_str()).unwrap_or("2.1");
            self.ids.as_ref().is_none_or(|ids| ids.iter().any(|id| id == o.stix_id()))
                && self.types.as_ref().is_none_or(|types| types.iter().any(|t| t == kind))
                && self.spec_versions.as_ref().is_none_or(|specs| specs.iter().any(|s| s == spec))
        };
        let candidates: Vec<TaxiiObject> = objects.into_iter().filter(|o| wanted(o)).collect();
        // Per object id, its versions, oldest first.
        let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for o in &candidates {
            versions.entry(o.stix_id().to_string()).or_default().push(o.version().to_string());
        }
        for list in versions.values_mut() {
            list.sort();
            list.dedup();
        }
        let chosen = |o: &TaxiiObject| {
            let list = &versions[o.stix_id()];
            self.versions.iter().any(|v| match v {
                Versions::All => true,
                Versions::Last => list.last().map(String::as_str) == Some(o.version()),
                Versions::First => list.first().map(String::as_str) == Some(o.version()),
                Versions::At(at) => at.iter().any(|t| same_time(t, o.version())),
            })
        };
        let mut left: Vec<TaxiiObject> = candidates
            .into_iter()
            .filter(|o| chosen(o))
            .filter(|o| self.added_after.is_none_or(|after| o.date_added > after))
            .filter(|o| self.after.as_ref().is_none_or(|after| key(o) > *after))
            .collect();
        let more = left.len() > self.limit;
        left.truncate(self.limit);
        let next = if more { left.last().map(|o| cursor(&key(o))) } else { None };
        Page { items: left, more, next }
    }
}

fn same_time(a: &str, b: &str) -> bool {
    match (chrono::DateTime::parse_from_rfc3339(a), chrono::DateTime::parse_from_rfc3339(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn object(id: &str, modified: &str, added_ms: i64) -> TaxiiObject {
        TaxiiObject {
            id: None,
            collection: "c".into(),
            date_added: chrono::DateTime::from_timestamp_millis(added_ms).unwrap(),
            added_by: "t".into(),
            object: serde_json::json!({"type": "indicator", "id": id, "modified": modified, "spec_version": "2.1"}),
        }
    }

    #[test]
    fn versions_paging_and_filters_select_what_taxii_says() {
        let a = "indicator--11111111-1111-4111-8111-111111111111";
        let b = "indicator--22222222-2222-4222-8222-222222222222";
        let all = || {
            vec![
                object(a, "2026-11-01T00:00:00.000Z", 1_000),
                object(b, "2026-11-01T00:00:00.000Z", 2_000),
                object(a, "2026-11-02T00:00:00.000Z", 3_000),
            ]
        };
        let ids = |page: &Page| {
            page.items.iter().map(|o| (o.stix_id().to_string(), o.version().to_string())).collect::<Vec<_>>()
        };
        let last = Filters::parse("", None).unwrap().apply(all());
        assert_eq!(ids(&last).len(), 2, "the last version of each object by default");
        assert!(ids(&last).contains(&(a.to_string(), "2026-11-02T00:00:00.000Z".to_string())));
        let every = Filters::parse("match%5Bversion%5D=all&limit=1", None).unwrap().apply(all());
        assert!(every.more && every.items.len() == 1);
        let rest = Filters::parse(&format!("match[version]=all&limit=5&next={}", every.next.unwrap()), None)
            .unwrap()
            .apply(all());
        assert_eq!(rest.items.len(), 2);
        let first = Filters::parse("match[version]=first&match[id]=".to_string().as_str(), None).unwrap().apply(all());
        assert!(first.items.is_empty(), "an empty id list matches nothing");
        let after = Filters::parse("added_after=1970-01-01T00:00:02Z", Some(a)).unwrap().apply(all());
        assert_eq!(ids(&after), vec![(a.to_string(), "2026-11-02T00:00:00.000Z".to_string())]);
        for bad in ["limit=0", "limit=-3", "limit=x", "added_after=yesterday", "next=zz", "match[version]=sometimes"] {
            assert!(Filters::parse(bad, None).is_err(), "{bad} must be refused");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_query_strings_never_panic(raw in ".{0,200}") {
            if let Ok(filters) = Filters::parse(&raw, None) {
                let _ = filters.apply(Vec::new());
            }
        }
    }
}
