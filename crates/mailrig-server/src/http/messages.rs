//! The endpoints a test in any language asserts with, across all mailboxes:
//! `GET /messages` (filters, newest first, `limit`/`offset`),
//! `GET /messages/wait` (returns once `count` matching messages exist, 408
//! at the timeout: the one-call replacement for a polling loop; woken by the
//! store's change signal, not by polling) and
//! `POST /reset` (the world as it started: no messages, an empty journal,
//! the scenario's fault rules with their counters at zero).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use mailrig_core::fault::FaultRuleSpec;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{ApiQuery, NoParams, QueryParams};
use super::view::MessageSummary;
use crate::search::Filter;
use crate::state::ServerState;

type AppState = State<Arc<ServerState>>;

/// The [`Filter`] of a query that has the filter fields.
macro_rules! filter_of {
    ($q:expr) => {
        Filter::new(
            $q.to.clone(),
            $q.from.clone(),
            $q.subject.clone(),
            $q.mailbox.clone(),
            $q.domain.clone(),
            $q.text.clone(),
            $q.header.clone(),
            $q.q.clone(),
            $q.after,
            $q.before,
        )
        .map_err(|e| {
            bad(
                "header",
                &e.0,
                "give a header field name, optionally ': ' and part of its value (X-Mailer: swaks)",
            )
        })?
    };
}

/// The fault rules the world started with, restored by `POST /reset`.
#[derive(Debug, Clone, Default)]
pub struct InitialFaults(pub Vec<FaultRuleSpec>);

impl InitialFaults {
    /// The rules of the plan now, as specs (names filled in).
    pub fn of(state: &ServerState) -> InitialFaults {
        InitialFaults(state.fault_infos().into_iter().map(|f| f.spec).collect())
    }
}

pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/messages/wait", get(wait))
        .route("/reset", post(reset))
}

/// Default and largest page of `GET /messages`.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;
const MAX_OFFSET: usize = u32::MAX as usize;
/// Default and longest wait of `GET /messages/wait`, seconds.
const DEFAULT_TIMEOUT: f64 = 10.0;
const MAX_TIMEOUT: f64 = 300.0;
const MAX_COUNT: usize = 10_000;

/// The messages that match, newest first: the total and the page from
/// `offset`, as summaries. Runs on the blocking pool: the index may have
/// deliveries to take in, and a search scans every message.
async fn matching(
    state: &Arc<ServerState>,
    filter: Filter,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<MessageSummary>), ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let found = state.search.search(&state.store, &filter, offset, limit);
        let summaries = found
            .hits
            .iter()
            .filter_map(|h| {
                let m = h.fetch(&state.store)?;
                let address = &state.store.mailbox(h.mailbox).address;
                Some(MessageSummary::new(address, &h.folder, &m))
            })
            .collect();
        (found.total, summaries)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the search stopped: {e}")))
}

// The filters are repeated in each query rather than flattened in: serde's
// flatten hands numbers to serde_urlencoded as strings, which then fail.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    to: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    mailbox: Option<String>,
    domain: Option<String>,
    text: Option<String>,
    header: Option<String>,
    q: Option<String>,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    limit: Option<usize>,
    offset: Option<usize>,
}

impl QueryParams for ListQuery {
    const ACCEPTED: &'static [&'static str] = &[
        "to", "from", "subject", "mailbox", "domain", "text", "header", "q", "after", "before",
        "limit", "offset",
    ];
}

#[derive(Debug, Serialize)]
pub struct Page {
    /// Matching messages in all; `messages` is the slice from `offset`.
    total: usize,
    offset: usize,
    limit: usize,
    messages: Vec<MessageSummary>,
}

fn bad(name: &str, value: impl ToString, reason: &str) -> ApiError {
    ApiError::BadValue {
        name: name.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// `GET /messages`.
pub async fn list(
    State(state): AppState,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad("limit", limit, "give 1 to 1000"));
    }
    let offset = q.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(bad("offset", offset, "give 0 to 4294967295"));
    }
    let (total, messages) = matching(&state, filter_of!(q), offset, limit).await?;
    Ok(Json(Page {
        total,
        offset,
        limit,
        messages,
    }))
}

#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    to: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    mailbox: Option<String>,
    domain: Option<String>,
    text: Option<String>,
    header: Option<String>,
    q: Option<String>,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    count: Option<usize>,
    timeout: Option<f64>,
}

impl QueryParams for WaitQuery {
    const ACCEPTED: &'static [&'static str] = &[
        "to", "from", "subject", "mailbox", "domain", "text", "header", "q", "after", "before",
        "count", "timeout",
    ];
}

#[derive(Debug, Serialize)]
pub struct Arrived {
    /// Matching messages when the wait ended (at least `count`).
    total: usize,
    /// The newest `count` of them, newest first.
    messages: Vec<MessageSummary>,
}

/// `GET /messages/wait`.
pub async fn wait(
    State(state): AppState,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Json<Arrived>, ApiError> {
    let count = q.count.unwrap_or(1);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(bad("count", count, "give 1 to 10000"));
    }
    let timeout = q.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if !(0.0..=MAX_TIMEOUT).contains(&timeout) {
        return Err(bad("timeout", timeout, "give 0 to 300 seconds"));
    }
    let filter = filter_of!(q);
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(timeout);
    loop {
        // Listen first, then look: a delivery between the two still wakes us.
        let changed = state.store.changes().listen();
        let (total, messages) = matching(&state, filter.clone(), 0, count).await?;
        if total >= count {
            return Ok(Json(Arrived { total, messages }));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline || state.shutdown.is_cancelled() {
            return Err(ApiError::WaitTimedOut {
                secs: timeout,
                found: total,
                count,
            });
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(deadline - now) => {}
            _ = state.shutdown.cancelled() => {}
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ResetDone {
    /// Messages deleted.
    deleted: usize,
    /// Fault rules now in the plan (the scenario's own).
    faults: usize,
}

/// `POST /reset`.
pub async fn reset(
    State(state): AppState,
    Extension(initial): Extension<Arc<InitialFaults>>,
    _: ApiQuery<NoParams>,
) -> Result<Json<ResetDone>, ApiError> {
    let deleted = state.store.clear().map_err(ApiError::Store)?;
    state.clear_faults();
    for spec in &initial.0 {
        state.add_fault(spec.clone())?;
    }
    state.journal.clear();
    Ok(Json(ResetDone {
        deleted,
        faults: initial.0.len(),
    }))
}
