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
use mail_parser::MessageParser;
use mailrig_core::fault::FaultRuleSpec;
use mailrig_core::store::StoredMessage;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{ApiQuery, NoParams, QueryParams};
use super::view::MessageSummary;
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
        )?
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

/// Which messages: every filter given must match.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// The mailbox it is stored in, an envelope recipient or a To/Cc address.
    to: Option<String>,
    /// The From address or the envelope sender.
    from: Option<String>,
    /// Part of the subject, case-insensitive.
    subject: Option<String>,
    /// The mailbox it is stored in.
    mailbox: Option<String>,
    /// The domain of the mailbox it is stored in.
    domain: Option<String>,
    /// Part of the decoded text or HTML body, lowercased.
    text: Option<String>,
    /// A header field name and part of its value (lowercased).
    header: Option<(String, String)>,
    /// Part of the sender, a recipient, the subject or the body, lowercased.
    any: Option<String>,
    /// Stored at or after / before.
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
}

impl Filter {
    /// A filter from query values; `header` is `Name: part of value` (or
    /// just `Name`), checked here so that a bad one is a 400 naming it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        to: Option<String>,
        from: Option<String>,
        subject: Option<String>,
        mailbox: Option<String>,
        domain: Option<String>,
        text: Option<String>,
        header: Option<String>,
        any: Option<String>,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Result<Filter, ApiError> {
        let header = match header {
            None => None,
            Some(h) => {
                // As the schema's pattern `^[!-9;-~]+(:[\s\S]*)?$`: a field
                // name (RFC 5322 ftext), then optionally a colon and any text.
                let (name, value) = h.split_once(':').unwrap_or((h.as_str(), ""));
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(bad(
                        "header",
                        &h,
                        "give a header field name, optionally ': ' and part of its value (X-Mailer: swaks)",
                    ));
                }
                Some((name.to_string(), value.trim().to_lowercase()))
            }
        };
        Ok(Filter {
            to,
            from,
            subject,
            mailbox,
            domain,
            text: text.map(|t| t.to_lowercase()),
            header,
            any: any.map(|t| t.to_lowercase()),
            after,
            before,
        })
    }

    fn needs_headers(&self) -> bool {
        self.to.is_some() || self.from.is_some() || self.subject.is_some() || self.header.is_some()
    }

    /// The decoded text and HTML bodies, lowercased, joined.
    fn body_text(m: &StoredMessage) -> String {
        let Some(p) = MessageParser::new().parse(&m.raw[..]) else {
            return String::new();
        };
        let mut out = String::new();
        for i in 0..p.text_body_count() {
            if let Some(t) = p.body_text(i) {
                out.push_str(&t.to_lowercase());
                out.push('\n');
            }
        }
        for i in 0..p.html_body_count() {
            if let Some(t) = p.body_html(i) {
                out.push_str(&t.to_lowercase());
                out.push('\n');
            }
        }
        out
    }

    fn matches(&self, mailbox: &str, m: &StoredMessage) -> bool {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        if let Some(want) = &self.mailbox
            && !eq(want, mailbox)
        {
            return false;
        }
        if let Some(want) = &self.domain
            && !mailbox.rsplit_once('@').is_some_and(|(_, d)| eq(d, want))
        {
            return false;
        }
        if self.after.is_some_and(|t| m.internal_date < t)
            || self.before.is_some_and(|t| m.internal_date >= t)
        {
            return false;
        }
        if let Some(want) = &self.text
            && !Self::body_text(m).contains(want.as_str())
        {
            return false;
        }
        if !self.needs_headers() && self.any.is_none() {
            return true;
        }
        let parsed = MessageParser::new().parse_headers(&m.raw[..]);
        let addresses = |list: Option<&mail_parser::Address>| -> Vec<String> {
            list.map(|a| {
                a.iter()
                    .filter_map(|x| x.address().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
        };
        if let Some(want) = &self.to {
            let mut all = vec![mailbox.to_string()];
            if let Some(e) = &m.envelope {
                all.extend(e.rcpt_to.iter().cloned());
            }
            if let Some(p) = &parsed {
                all.extend(addresses(p.to()));
                all.extend(addresses(p.cc()));
            }
            if !all.iter().any(|a| eq(a.trim_matches(['<', '>']), want)) {
                return false;
            }
        }
        if let Some(want) = &self.from {
            let mut all = Vec::new();
            if let Some(e) = &m.envelope {
                all.push(e.mail_from.clone());
            }
            if let Some(p) = &parsed {
                all.extend(addresses(p.from()));
            }
            if !all.iter().any(|a| eq(a, want)) {
                return false;
            }
        }
        if let Some(want) = &self.subject {
            let subject = parsed
                .as_ref()
                .and_then(|p| p.subject())
                .unwrap_or("")
                .to_lowercase();
            if !subject.contains(&want.to_lowercase()) {
                return false;
            }
        }
        if let Some((name, want)) = &self.header {
            let found = parsed.as_ref().is_some_and(|p| {
                p.headers_raw().any(|(n, v)| {
                    n.eq_ignore_ascii_case(name) && v.to_lowercase().contains(want.as_str())
                })
            });
            if !found {
                return false;
            }
        }
        if let Some(want) = &self.any {
            let mut hay = mailbox.to_lowercase();
            if let Some(e) = &m.envelope {
                hay.push_str(&e.mail_from.to_lowercase());
                for r in &e.rcpt_to {
                    hay.push(' ');
                    hay.push_str(&r.to_lowercase());
                }
            }
            if let Some(p) = &parsed {
                for a in [p.from(), p.to(), p.cc()].into_iter().flatten() {
                    for x in a.iter() {
                        hay.push(' ');
                        hay.push_str(&x.address().unwrap_or("").to_lowercase());
                        hay.push(' ');
                        hay.push_str(&x.name().unwrap_or("").to_lowercase());
                    }
                }
                hay.push(' ');
                hay.push_str(&p.subject().unwrap_or("").to_lowercase());
            }
            if !hay.contains(want.as_str()) && !Self::body_text(m).contains(want.as_str()) {
                return false;
            }
        }
        true
    }
}

/// Every stored message that matches, newest first: (mailbox, folder, message).
fn matching(state: &ServerState, filter: &Filter) -> Vec<(String, String, StoredMessage)> {
    let mut out = Vec::new();
    for (_, b) in state.store.mailboxes() {
        if let Some(want) = &filter.mailbox
            && !want.eq_ignore_ascii_case(&b.address)
        {
            continue;
        }
        for f in b.folders() {
            let Ok(msgs) = b.messages(&f.name) else {
                continue;
            };
            for m in msgs {
                if filter.matches(&b.address, &m) {
                    out.push((b.address.clone(), f.name.clone(), m));
                }
            }
        }
    }
    out.sort_by(|a, b| {
        b.2.internal_date
            .cmp(&a.2.internal_date)
            .then_with(|| a.0.cmp(&b.0))
            .then_with(|| b.2.uid.cmp(&a.2.uid))
    });
    out
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
    let all = matching(&state, &filter_of!(q));
    let messages = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(a, f, m)| MessageSummary::new(a, f, m))
        .collect();
    Ok(Json(Page {
        total: all.len(),
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
        let all = matching(&state, &filter);
        if all.len() >= count {
            let messages = all
                .iter()
                .take(count)
                .map(|(a, f, m)| MessageSummary::new(a, f, m))
                .collect();
            return Ok(Json(Arrived {
                total: all.len(),
                messages,
            }));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline || state.shutdown.is_cancelled() {
            return Err(ApiError::WaitTimedOut {
                secs: timeout,
                found: all.len(),
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
