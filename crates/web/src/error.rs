use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An API error: a status and a sentence, sent as `{"error": ..., "status": ...}`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the caller.
    pub message: String,
    /// Seconds to wait before retrying (503 under load).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), retry_after: None }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404, also for what exists but belongs to someone else: never confirm another ISP's data.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<botscope_store::StoreError> for ApiError {
    fn from(error: botscope_store::StoreError) -> Self {
        if let botscope_store::StoreError::TooBroad { .. } | botscope_store::StoreError::TooManyPrefixes { .. } = error
        {
            // The caller's query, not our side: say how to narrow it.
            return ApiError::bad_request(error.to_string());
        }
        // The cause goes to the log; the caller learns only that it was on our side.
        tracing::error!(%error, "store error while serving a request");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the store is unavailable; nothing from this request was committed, retry later".into(),
            retry_after: Some(5),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message, "status": self.status.as_u16() }));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"botscope\""));
        }
        response
    }
}
