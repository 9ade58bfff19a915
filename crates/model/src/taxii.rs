use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// One version of one STIX object in one TAXII collection of the centre, as the TAXII server
/// serves it: the object exactly as published or posted, and when the collection got it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxiiObject {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The collection's id.
    pub collection: String,
    /// When the collection got this version (TAXII's `date_added`).
    pub date_added: Timestamp,
    /// Who added it: `centre`, or the label of the token that posted it.
    pub added_by: String,
    /// The STIX object.
    pub object: serde_json::Value,
}

impl TaxiiObject {
    /// The STIX id of the object.
    pub fn stix_id(&self) -> &str {
        self.object.get("id").and_then(|v| v.as_str()).unwrap_or("")
    }

    /// The object's version: `modified`, else `created` (STIX objects without either have one
    /// version, named by the empty string).
    pub fn version(&self) -> &str {
        self.object.get("modified").or_else(|| self.object.get("created")).and_then(|v| v.as_str()).unwrap_or("")
    }

    pub(crate) fn natural_key(&self) -> String {
        format!("taxii_object|{}|{}|{}", self.collection, self.stix_id(), self.version())
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        let id = self.stix_id();
        let Some((kind, uuid)) = id.split_once("--") else {
            return Err("object.id must be TYPE--UUID".into());
        };
        if kind.is_empty() || uuid.parse::<Uuid>().is_err() {
            return Err("object.id must be TYPE--UUID".into());
        }
        if self.object.get("type").and_then(|v| v.as_str()) != Some(kind) {
            return Err("object.type must match the type in object.id".into());
        }
        if self.collection.trim().is_empty() {
            return Err("collection must not be empty".into());
        }
        Ok(())
    }
}
