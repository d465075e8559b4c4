//! Errors of the HTTP API: one enum, each variant a status code and a sentence
//! that names the problem, sent as `{"error": "..."}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mailrig_core::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unknown mailbox '{0}'")]
    UnknownMailbox(String),
    #[error("unknown domain '{0}'")]
    UnknownDomain(String),
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
    #[error(
        "message UID {uid} in {mailbox} has no attachment {index} (see `attachments` of .../parsed)"
    )]
    NoSuchAttachment {
        mailbox: String,
        uid: u32,
        index: usize,
    },
    #[error("unknown query parameter '{name}': {}", accepted_parameters(accepted))]
    UnknownParameter {
        name: String,
        accepted: &'static [&'static str],
    },
    #[error("query parameter '{0}' is given more than once")]
    RepeatedParameter(String),
    #[error("bad value '{value}' for query parameter '{name}': {reason}")]
    BadValue {
        name: String,
        value: String,
        reason: String,
    },
    #[error("the request body is too large")]
    BodyTooLarge,
    #[error("timed out after {secs} s: {found} of {count} matching messages arrived")]
    WaitTimedOut {
        secs: f64,
        found: usize,
        count: usize,
    },
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
    #[error("internal error: {0}")]
    Internal(String),
    #[error(
        "the HTTP API does not answer for Host '{0}': it answers loopback names and addresses (localhost, 127.0.0.1, [::1]), the address it listens on, and names allowed with `mailrig serve --http-allow-host NAME` (this check stops DNS rebinding)"
    )]
    HostNotAllowed(String),
    #[error(
        "cross-site request refused ({0}): the API changes state only for this server's own page and for clients that are not browsers"
    )]
    CrossOrigin(String),
    #[error(
        "a token is required and {0}: send `Authorization: Bearer TOKEN` with the token given to `mailrig serve --http-token` or MAILRIG_HTTP_TOKEN (in a browser: any user name, the token as password)"
    )]
    Unauthorized(&'static str),
    #[error("{}", unsupported_media_type(got.as_deref(), accepted))]
    UnsupportedMediaType {
        got: Option<String>,
        accepted: &'static [&'static str],
    },
}

fn accepted_parameters(accepted: &[&str]) -> String {
    if accepted.is_empty() {
        "this endpoint takes no query parameters".to_string()
    } else {
        format!("this endpoint accepts {}", accepted.join(", "))
    }
}

fn unsupported_media_type(got: Option<&str>, accepted: &[&str]) -> String {
    let got = match got {
        Some(t) => format!("unsupported Content-Type '{t}'"),
        None => "the request body has no Content-Type".to_string(),
    };
    format!(
        "{got}: send the body as {} (curl: -H 'Content-Type: {}')",
        accepted.join(" or "),
        accepted.first().copied().unwrap_or("application/json")
    )
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownMailbox(_)
            | ApiError::UnknownDomain(_)
            | ApiError::UnknownFolder { .. }
            | ApiError::NoSuchMessage { .. }
            | ApiError::NoSuchAttachment { .. }
            | ApiError::UnknownFault(_)
            | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::FaultExists(_) => StatusCode::CONFLICT,
            ApiError::InvalidFault(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadUid(_)
            | ApiError::UnknownParameter { .. }
            | ApiError::RepeatedParameter(_)
            | ApiError::BadValue { .. }
            | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::WaitTimedOut { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::HostNotAllowed(_) | ApiError::CrossOrigin(_) => StatusCode::FORBIDDEN,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                // Bearer for programs; Basic so that a browser asks for it.
                for challenge in [
                    "Bearer realm=\"mailrig\"",
                    "Basic realm=\"mailrig\", charset=\"UTF-8\"",
                ] {
                    headers.append(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(challenge),
                    );
                }
            }
            ApiError::UnsupportedMediaType { accepted, .. } => {
                if let Ok(v) = HeaderValue::from_str(&accepted.join(", ")) {
                    headers.insert(header::ACCEPT, v);
                }
            }
            _ => {}
        }
        response
    }
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
