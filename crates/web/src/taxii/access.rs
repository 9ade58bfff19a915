//! Who may see which TAXII collection.

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use botscope_center::tokens::{self, Caller, Role};
use botscope_store::Store;
use serde_json::{Value, json};

use super::TaxiiError;
use crate::AppState;

pub use botscope_share::taxii::{SHARED_COLLECTION, isp_collection};

/// The caller of a TAXII request: a token sent as Bearer, or as the password of HTTP Basic.
pub struct TaxiiCaller(pub Caller);

impl std::ops::Deref for TaxiiCaller {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl TaxiiCaller {
    pub async fn from_headers(headers: &HeaderMap, state: &AppState) -> Result<TaxiiCaller, TaxiiError> {
        let unauthorized = |m: &str| TaxiiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", m);
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("send a token: HTTP Basic with the token as password, or Bearer"))?;
        let token = if let Some(token) = value.strip_prefix("Bearer ") {
            token.trim().to_string()
        } else if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| unauthorized("the Basic credentials do not decode"))?;
            decoded.split_once(':').map(|(_, password)| password.to_string()).unwrap_or_default()
        } else {
            return Err(unauthorized("expected HTTP Basic or Bearer"));
        };
        if token.is_empty() || token.len() > 256 {
            return Err(unauthorized("unknown or revoked token"));
        }
        let row = state.store.token_by_hash(&tokens::hash(&token)).await?;
        row.as_ref().and_then(Caller::from_row).map(TaxiiCaller).ok_or_else(|| unauthorized("unknown or revoked token"))
    }
}

/// A collection as one caller sees it.
pub struct Collection {
    pub id: String,
    pub title: String,
    pub description: String,
    pub can_read: bool,
    pub can_write: bool,
    /// The shared collection (no TLP:RED).
    pub shared: bool,
}

impl Collection {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "can_read": self.can_read,
            "can_write": self.can_write,
            "media_types": ["application/stix+json;version=2.1"],
        })
    }
}

/// The collections a caller may know of.
pub async fn visible(caller: &TaxiiCaller, state: &AppState) -> Result<Vec<Collection>, TaxiiError> {
    let mut list = vec![Collection {
        id: SHARED_COLLECTION.into(),
        title: "shared".into(),
        description: "What the centre publishes for every participant (TLP:WHITE, GREEN, AMBER).".into(),
        can_read: true,
        can_write: caller.role == Role::Admin,
        shared: true,
    }];
    let own = |handle: &str| Collection {
        id: isp_collection(handle),
        title: handle.to_string(),
        description: format!(
            "{handle}'s own collection: what the centre tells only {handle}, and what {handle} posts."
        ),
        can_read: true,
        can_write: true,
        shared: false,
    };
    match (caller.role, caller.isp.as_deref()) {
        (Role::Admin, _) => list.extend(state.store.isps().await?.iter().map(|isp| own(&isp.handle))),
        (Role::Isp, Some(handle)) => list.push(own(handle)),
        _ => {}
    }
    Ok(list)
}

/// One collection by id, if the caller may know of it (else 404: another ISP's collection does not
/// exist for this caller).
pub async fn find(caller: &TaxiiCaller, state: &AppState, id: &str) -> Result<Collection, TaxiiError> {
    visible(caller, state).await?.into_iter().find(|c| c.id == id).ok_or_else(TaxiiError::not_found)
}

/// Whether an object is marked TLP:RED.
pub fn is_red(object: &Value) -> bool {
    object
        .get("object_marking_refs")
        .and_then(|m| m.as_array())
        .is_some_and(|refs| refs.iter().any(|r| r.as_str() == Some(TLP_RED)))
}

/// The TLP:RED marking definition's official id.
const TLP_RED: &str = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed";
