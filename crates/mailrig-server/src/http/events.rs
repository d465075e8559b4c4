//! `GET /api/v1/events`: a Server-Sent Events stream of what happens in the
//! world, for the web page, a dashboard or a test that follows deliveries.
//!
//! Events (each `data:` is one JSON object):
//! * `hello` once at the start: `{"journal_seq", "store_version", "messages"}`;
//! * `journal` per new journal entry (the entry; its SSE `id` is its `seq`,
//!   so a browser's reconnect resumes after it via `Last-Event-ID`);
//! * `delivery` per stored message (the message summary), after its
//!   `journal` entry;
//! * `store` when messages changed otherwise too (deleted, flags, IMAP
//!   APPEND): `{"store_version", "messages"}`, at most four a second;
//! * `faults` when a rule was added, removed, switched or fired:
//!   `[{"name", "enabled", "fired"}]`.
//!
//! A comment line is sent every 15 seconds so that proxies and browsers keep
//! an idle stream open (a wall display may leave it open for days). The
//! stream is woken by the journal's and the store's change signals, never by
//! polling, except that fault rules are compared once a second.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use mailrig_core::journal::JournalQuery;
use mailrig_core::store::INBOX;
use mailrig_core::{JournalEntry, JournalEvent};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::error::ApiError;
use super::extract::{ApiQuery, QueryParams};
use super::view::MessageSummary;
use crate::state::ServerState;

/// Journal entries sent per wake-up at most (the rest follow at once).
const BATCH: usize = 500;
/// Fault counters are compared this often even without a journal entry.
const FAULT_CHECK: Duration = Duration::from_secs(1);
/// `store` events are this far apart at least.
const STORE_EVERY: Duration = Duration::from_millis(250);
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `?since=SEQ`: start after this journal entry (default: from now on).
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    since: Option<u64>,
}

impl QueryParams for EventsQuery {
    const ACCEPTED: &'static [&'static str] = &["since"];
}

#[derive(Debug, Serialize)]
struct Hello {
    journal_seq: u64,
    store_version: u64,
    messages: usize,
}

#[derive(Debug, Serialize)]
struct StoreChanged {
    store_version: u64,
    messages: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct FaultCounter {
    name: String,
    enabled: bool,
    fired: u64,
}

/// What one subscriber has seen.
struct Cursor {
    state: Arc<ServerState>,
    journal_seq: u64,
    store_version: u64,
    store_sent: Instant,
    faults: Vec<FaultCounter>,
    faults_checked: Instant,
    started: bool,
}

fn faults_of(state: &ServerState) -> Vec<FaultCounter> {
    state
        .fault_infos()
        .into_iter()
        .map(|f| FaultCounter {
            name: f.name,
            enabled: f.enabled,
            fired: f.fired,
        })
        .collect()
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().comment("unserializable event"))
}

fn delivery(state: &ServerState, e: &JournalEntry) -> Option<Event> {
    let JournalEvent::Delivered { mailbox, uid } = &e.event else {
        return None;
    };
    let id = state.world.mailbox_by_address(mailbox)?;
    let b = state.store.mailbox(id);
    let m = b
        .with_folder(INBOX, |f| f.position(*uid).map(|p| f.messages[p].clone()))
        .ok()
        .flatten()?;
    Some(json_event(
        "delivery",
        &MessageSummary::new(&b.address, INBOX, &m),
    ))
}

impl Cursor {
    /// The events due now (empty when nothing changed).
    fn due(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(json_event(
                "hello",
                &Hello {
                    journal_seq: self.state.journal.last_seq(),
                    store_version: self.store_version,
                    messages: self.state.store.total_messages(),
                },
            ));
        }
        let entries = self.state.journal.query(&JournalQuery {
            since: Some(self.journal_seq),
            limit: Some(BATCH),
            ..JournalQuery::default()
        });
        let had_entries = !entries.is_empty();
        for e in &entries {
            self.journal_seq = e.seq;
            out.push(json_event("journal", e).id(e.seq.to_string()));
            if let Some(d) = delivery(&self.state, e) {
                out.push(d);
            }
        }
        let now = Instant::now();
        let version = self.state.store.changes().version();
        if version != self.store_version && now >= self.store_sent + STORE_EVERY {
            self.store_version = version;
            self.store_sent = now;
            out.push(json_event(
                "store",
                &StoreChanged {
                    store_version: version,
                    messages: self.state.store.total_messages(),
                },
            ));
        }
        if had_entries || now >= self.faults_checked + FAULT_CHECK {
            self.faults_checked = now;
            let faults = faults_of(&self.state);
            if faults != self.faults {
                out.push(json_event("faults", &faults));
                self.faults = faults;
            }
        }
        out
    }

    /// Waits for the next events; `None` when the server shuts down.
    async fn next(mut self) -> Option<(Vec<Event>, Cursor)> {
        loop {
            let journal = self.state.journal.changes().listen();
            let store = self.state.store.changes().listen();
            let events = self.due();
            if !events.is_empty() {
                return Some((events, self));
            }
            if self.state.shutdown.is_cancelled() {
                return None;
            }
            let store_pending = self.state.store.changes().version() != self.store_version;
            let mut wake = self.faults_checked + FAULT_CHECK;
            if store_pending {
                wake = wake.min(self.store_sent + STORE_EVERY);
            }
            tokio::select! {
                _ = journal => {}
                _ = store, if !store_pending => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = self.state.shutdown.cancelled() => return None,
            }
        }
    }
}

/// The stream of one subscriber, starting after journal entry `since`.
pub fn stream(
    state: Arc<ServerState>,
    since: u64,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> + Send + 'static {
    let now = Instant::now();
    let cursor = Cursor {
        journal_seq: since,
        store_version: state.store.changes().version(),
        store_sent: now,
        faults: faults_of(&state),
        faults_checked: now,
        started: false,
        state,
    };
    stream::unfold(cursor, Cursor::next).flat_map(|events| stream::iter(events.into_iter().map(Ok)))
}

/// `GET /events`.
pub async fn events(
    State(state): State<Arc<ServerState>>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    // A browser's reconnect says where it was; that wins over `since`.
    let last = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest("Last-Event-ID is not a journal sequence number".into())
                })?,
        ),
        None => None,
    };
    let since = last.or(q.since).unwrap_or_else(|| state.journal.last_seq());
    Ok(Sse::new(stream(state, since)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
