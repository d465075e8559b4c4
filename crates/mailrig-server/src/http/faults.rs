//! The fault-rule endpoints, `/api/v1/faults`: list, add, look at, switch on
//! and off, and remove the rules of the running world's fault plan.
//!
//! A rule is posted as one JSON object with the keys of a scenario file's
//! `[[fault]]` table (or as TOML text with `Content-Type: application/toml`),
//! and checked against the world exactly as a scenario's rules are. A body
//! that is not JSON is a 400; a body that is JSON but not a rule (unknown key,
//! stage or action; a parameter the action rejects) is a 422 whose error
//! names the culprit; a name that exists is a 409; an unknown name is a 404.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use mailrig_core::fault::FaultRuleSpec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::access;
use super::error::ApiError;
use super::extract::{ApiBody, ApiPath, ApiQuery, NoParams};
use crate::faults::{FaultError, FaultInfo};
use crate::state::ServerState;

type AppState = State<Arc<ServerState>>;

pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/faults", get(list).post(add).delete(clear))
        .route("/faults/{name}", get(one).patch(patch).delete(remove))
        .route("/faults/{name}/enable", post(enable))
        .route("/faults/{name}/disable", post(disable))
}

impl From<FaultError> for ApiError {
    fn from(e: FaultError) -> Self {
        match e {
            FaultError::Invalid(m) => ApiError::InvalidFault(m),
            FaultError::Exists(n) => ApiError::FaultExists(n),
            FaultError::Unknown(n) => ApiError::UnknownFault(n),
        }
    }
}

/// Parses a JSON body: a syntax error is a 400, a well-formed body of the
/// wrong shape a 422 (serde's message names the unknown key or variant).
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("the request needs a JSON body".into()));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidFault(e.to_string()),
        _ => ApiError::BadRequest(format!("body is not valid JSON: {e}")),
    })
}

/// What a rule may be posted as.
const RULE_TYPES: &[&str] = &access::BODY_TYPES;
/// What a change of a rule may be sent as.
const JSON_ONLY: &[&str] = &["application/json"];

/// The body's media type if it is one of `accepted`, else a 415 listing them.
/// (The access guard already refuses bodies of other types everywhere; this
/// narrows the list to what one endpoint reads.)
fn accepted_type(
    headers: &HeaderMap,
    accepted: &'static [&'static str],
) -> Result<String, ApiError> {
    match access::body_type(headers) {
        Some(t) if accepted.contains(&t.as_str()) => Ok(t),
        got => Err(ApiError::UnsupportedMediaType { got, accepted }),
    }
}

/// A rule from a request body: JSON, or TOML when the content type says so.
fn spec_body(headers: &HeaderMap, body: &[u8]) -> Result<FaultRuleSpec, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "the request needs a body: one fault rule as JSON (or TOML)".into(),
        ));
    }
    if accepted_type(headers, RULE_TYPES)?.ends_with("toml") {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::BadRequest("TOML body is not UTF-8".into()))?;
        return crate::faults::parse_toml_spec(text).map_err(ApiError::InvalidFault);
    }
    json_body(body)
}

async fn list(State(state): AppState, _: ApiQuery<NoParams>) -> Json<Vec<FaultInfo>> {
    Json(state.fault_infos())
}

/// What `POST /faults` answers.
#[derive(Debug, Serialize)]
struct Added {
    rule: FaultInfo,
    /// Reasons the rule may never fire (e.g. a selector matching nothing).
    warnings: Vec<String>,
}

async fn add(
    State(state): AppState,
    _: ApiQuery<NoParams>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<impl IntoResponse, ApiError> {
    let spec = spec_body(&headers, &body)?;
    let (rule, warnings) = state.add_fault(spec)?;
    let location = format!("/api/v1/faults/{}", path_segment(&rule.name));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(Added { rule, warnings }),
    ))
}

/// `name` as one URL path segment: unreserved characters as they are, every
/// other byte percent-encoded (a rule name may hold spaces or `/`).
fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn one(
    State(state): AppState,
    ApiPath(name): ApiPath<String>,
    _: ApiQuery<NoParams>,
) -> Result<Json<FaultInfo>, ApiError> {
    Ok(Json(state.fault_info(&name)?))
}

/// `PATCH /faults/{name}`: what may change at run time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    enabled: bool,
}

async fn patch(
    State(state): AppState,
    ApiPath(name): ApiPath<String>,
    _: ApiQuery<NoParams>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Json<FaultInfo>, ApiError> {
    // An unknown rule is reported before a bad body.
    state.fault_info(&name)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "the request needs a JSON body such as {\"enabled\": false}".into(),
        ));
    }
    accepted_type(&headers, JSON_ONLY)?;
    let change: Change = json_body(&body)?;
    Ok(Json(state.set_fault_enabled(&name, change.enabled)?))
}

async fn enable(
    State(state): AppState,
    ApiPath(name): ApiPath<String>,
    _: ApiQuery<NoParams>,
) -> Result<Json<FaultInfo>, ApiError> {
    Ok(Json(state.set_fault_enabled(&name, true)?))
}

async fn disable(
    State(state): AppState,
    ApiPath(name): ApiPath<String>,
    _: ApiQuery<NoParams>,
) -> Result<Json<FaultInfo>, ApiError> {
    Ok(Json(state.set_fault_enabled(&name, false)?))
}

#[derive(Debug, Serialize)]
struct Deleted {
    deleted: usize,
}

async fn remove(
    State(state): AppState,
    ApiPath(name): ApiPath<String>,
    _: ApiQuery<NoParams>,
) -> Result<Json<Deleted>, ApiError> {
    state.remove_fault(&name)?;
    Ok(Json(Deleted { deleted: 1 }))
}

async fn clear(State(state): AppState, _: ApiQuery<NoParams>) -> Json<Deleted> {
    Json(Deleted {
        deleted: state.clear_faults(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rule_names_become_one_path_segment() {
        assert_eq!(super::path_segment("no-user03_v1.2~"), "no-user03_v1.2~");
        assert_eq!(super::path_segment("a b/c\nä"), "a%20b%2Fc%0A%C3%A4");
    }
}
