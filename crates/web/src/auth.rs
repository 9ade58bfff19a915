use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use botscope_center::tokens::{self, Caller, Role};
use botscope_store::Store;

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller of a request (`Authorization: Bearer TOKEN`).
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("send a token: Authorization: Bearer TOKEN (botscope token create)"))?;
        let value = value.to_str().map_err(|_| unauthorized("the Authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| unauthorized("expected Authorization: Bearer TOKEN"))?;
        let row = state.store.token_by_hash(&tokens::hash(token)).await?;
        let caller = row.as_ref().and_then(Caller::from_row).ok_or_else(|| unauthorized("unknown or revoked token"))?;
        Ok(Auth(caller))
    }
}

impl Auth {
    /// Refuses callers whose role is not among `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Caller, ApiError> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!("this needs a token of role {}", names.join(" or "))))
        }
    }
}
