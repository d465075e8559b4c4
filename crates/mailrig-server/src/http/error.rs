//! Errors of the HTTP API: one enum, each variant a status code and a sentence
//! that names the problem, sent as `{"error": "..."}`.

use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use mailrig_core::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unknown mailbox '{0}'")]
    UnknownMailbox(String),
    #[error("unknown folder '{folder}' in mailbox '{mailbox}'")]
    UnknownFolder { mailbox: String, folder: String },
    #[error("bad uid '{0}': a message UID is a positive whole number")]
    BadUid(String),
    #[error("no message with UID {uid} in {mailbox} {folder}")]
    NoSuchMessage {
        mailbox: String,
        folder: String,
        uid: u32,
    },
    #[error("bad query parameter '{name}': {reason}")]
    BadParameter { name: &'static str, reason: String },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("no such endpoint: {0}")]
    NotFound(String),
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("no fault rule named '{0}'")]
    UnknownFault(String),
    #[error("a fault rule named '{0}' already exists")]
    FaultExists(String),
    #[error("invalid fault rule: {0}")]
    InvalidFault(String),
    #[error("message store error: {0}")]
    Store(StoreError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownMailbox(_)
            | ApiError::UnknownFolder { .. }
            | ApiError::NoSuchMessage { .. }
            | ApiError::UnknownFault(_)
            | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::FaultExists(_) => StatusCode::CONFLICT,
            ApiError::InvalidFault(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadUid(_) | ApiError::BadParameter { .. } | ApiError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
