//! STIX 2.1 bundles: indicators with address patterns, and the malware they indicate.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;

use botscope_model::{FeedEntry, FeedRole};

use super::table::push;
use super::{FeedRead, MAX_BUNDLE, family, parse_time};
use crate::CenterError;

/// The quoted values compared to `property` in a pattern (`property = 'value'`).
fn compared<'a>(pattern: &'a str, property: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = pattern;
    while let Some(at) = rest.find(property) {
        rest = &rest[at + property.len()..];
        let after = rest.trim_start();
        let Some(after) = after.strip_prefix('=') else { continue };
        let after = after.trim_start();
        if let Some(quoted) = after.strip_prefix('\'')
            && let Some(end) = quoted.find('\'')
        {
            found.push(&quoted[..end]);
        } else {
            let end = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
            found.push(&after[..end]);
        }
    }
    found
}

pub(crate) fn read(input: impl std::io::BufRead, source: &str) -> Result<FeedRead, CenterError> {
    let mut text = Vec::new();
    input
        .take(MAX_BUNDLE + 1)
        .read_to_end(&mut text)
        .map_err(|source| CenterError::Io { path: "STIX bundle".into(), source })?;
    if text.len() as u64 > MAX_BUNDLE {
        return Err(CenterError::Invalid(format!("the STIX bundle is larger than {MAX_BUNDLE} bytes")));
    }
    let bundle: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| CenterError::Invalid(format!("not a STIX bundle: {e}")))?;
    let objects = bundle
        .get("objects")
        .and_then(|o| o.as_array())
        .ok_or_else(|| CenterError::Invalid("not a STIX bundle: no \"objects\" list".into()))?;
    let name_of = |object: &serde_json::Value| object.get("name").and_then(|n| n.as_str()).map(String::from);
    let malware: HashMap<&str, String> = objects
        .iter()
        .filter(|o| o["type"] == "malware")
        .filter_map(|o| Some((o["id"].as_str()?, name_of(o)?)))
        .collect();
    let mut family_of: HashMap<&str, String> = HashMap::new();
    for relationship in objects.iter().filter(|o| o["type"] == "relationship" && o["relationship_type"] == "indicates")
    {
        if let (Some(from), Some(to)) = (relationship["source_ref"].as_str(), relationship["target_ref"].as_str())
            && let Some(name) = malware.get(to)
        {
            family_of.insert(from, name.clone());
        }
    }
    let mut read = FeedRead::default();
    for (index, object) in objects.iter().enumerate() {
        let at = index + 1;
        if object["type"] != "indicator" {
            continue;
        }
        let Some(pattern) = object["pattern"].as_str() else {
            read.problem(at, "indicator without a pattern");
            continue;
        };
        let mut addresses: Vec<&str> = compared(pattern, "ipv4-addr:value");
        addresses.extend(compared(pattern, "ipv6-addr:value"));
        addresses.extend(compared(pattern, "dst_ref.value"));
        if addresses.is_empty() {
            read.not_imported += 1;
            continue;
        }
        let port = compared(pattern, "dst_port").first().and_then(|p| p.parse::<u16>().ok());
        let Some(first_seen) = object["valid_from"].as_str().and_then(parse_time) else {
            read.problem(at, "indicator without a readable valid_from");
            continue;
        };
        let last_seen = object["valid_until"].as_str().and_then(parse_time).filter(|t| *t >= first_seen);
        let types: Vec<&str> =
            object["indicator_types"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).collect();
        let role = if types.contains(&"compromised") { FeedRole::Bot } else { FeedRole::Cnc };
        let id = object["id"].as_str();
        let name = id.and_then(|id| family_of.get(id)).cloned();
        let mut addresses: Vec<IpAddr> = addresses.iter().filter_map(|a| a.parse().ok()).collect();
        addresses.dedup();
        if addresses.is_empty() {
            read.problem(at, "the pattern's addresses do not parse");
            continue;
        }
        for ip in addresses {
            push(
                &mut read,
                at,
                FeedEntry {
                    id: None,
                    source: source.into(),
                    role,
                    ip,
                    port,
                    family: name.as_deref().and_then(family),
                    first_seen,
                    last_seen,
                    reference: id.map(String::from),
                },
            );
        }
    }
    Ok(read)
}
