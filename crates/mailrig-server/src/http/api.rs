//! The JSON endpoints under `/api/v1`: health, domains and mailboxes with
//! counts, messages (list, raw, delete), store reset and the journal. Each
//! handler looks a thing up, hands it to [`super::view`] to shape, and turns
//! every failure into an [`ApiError`] that names it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use mailrig_core::store::{INBOX, canonical_name};
use mailrig_core::world::MailboxId;
use mailrig_core::{JournalEntry, StoreError};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, NoParams, QueryParams};
use super::view::{self, DomainSummary, MailboxSummary, MessageSummary};
use crate::state::{Metrics, ServerState};

type AppState = State<Arc<ServerState>>;

pub fn routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/health", get(health))
        .route("/domains", get(domains))
        .route("/mailboxes", get(mailboxes))
        .route("/mailboxes/{address}", get(mailbox))
        .route(
            "/mailboxes/{address}/messages",
            get(list_messages).delete(delete_all_messages),
        )
        .route(
            "/mailboxes/{address}/messages/{uid}",
            get(get_message).delete(delete_message),
        )
        .route("/mailboxes/{address}/messages/{uid}/raw", get(raw_message))
        .route(
            "/messages",
            get(super::messages::list).delete(delete_every_message),
        )
        .route("/journal", get(journal))
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub hostname: String,
    pub mailboxes: usize,
    pub messages: usize,
    pub connections_active: u64,
}

async fn health(State(state): AppState, _: ApiQuery<NoParams>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        hostname: state.world.identity.hostname.clone(),
        mailboxes: state.world.mailboxes.len(),
        messages: state.store.total_messages(),
        connections_active: Metrics::get(&state.metrics.connections_active),
    })
}

async fn domains(State(state): AppState, _: ApiQuery<NoParams>) -> Json<Vec<DomainSummary>> {
    Json(view::domain_summaries(&state))
}

/// `?domain=` narrows the list to one domain (an unknown one is a 404).
#[derive(Debug, Deserialize)]
struct MailboxesQuery {
    domain: Option<String>,
}

impl QueryParams for MailboxesQuery {
    const ACCEPTED: &'static [&'static str] = &["domain"];
}

async fn mailboxes(
    State(state): AppState,
    ApiQuery(q): ApiQuery<MailboxesQuery>,
) -> Result<Json<Vec<MailboxSummary>>, ApiError> {
    let ids: Vec<MailboxId> = match &q.domain {
        Some(d) => state
            .world
            .domain(d)
            .ok_or_else(|| ApiError::UnknownDomain(d.clone()))?
            .mailboxes
            .clone(),
        None => state.world.mailboxes.iter().map(|m| m.id).collect(),
    };
    Ok(Json(
        ids.into_iter()
            .map(|id| view::mailbox_summary(&state, id))
            .collect(),
    ))
}

fn mailbox_id(state: &ServerState, address: &str) -> Result<MailboxId, ApiError> {
    state
        .world
        .mailbox_by_address(address)
        .ok_or_else(|| ApiError::UnknownMailbox(address.to_string()))
}

fn parse_uid(uid: &str) -> Result<u32, ApiError> {
    match uid.parse::<u32>() {
        Ok(n) if n > 0 && uid.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ApiError::BadUid(uid.chars().take(64).collect())),
    }
}

fn store_error(address: &str, folder: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NoSuchFolder(_) => ApiError::UnknownFolder {
            mailbox: address.to_string(),
            folder: folder.to_string(),
        },
        other => ApiError::Store(other),
    }
}

async fn mailbox(
    State(state): AppState,
    ApiPath(address): ApiPath<String>,
    _: ApiQuery<NoParams>,
) -> Result<Json<MailboxSummary>, ApiError> {
    let id = mailbox_id(&state, &address)?;
    Ok(Json(view::mailbox_summary(&state, id)))
}

/// `?folder=` picks the folder (default INBOX).
#[derive(Debug, Deserialize)]
struct FolderQuery {
    folder: Option<String>,
}

impl QueryParams for FolderQuery {
    const ACCEPTED: &'static [&'static str] = &["folder"];
}

impl FolderQuery {
    fn folder(&self) -> String {
        canonical_name(self.folder.as_deref().unwrap_or(INBOX))
    }
}

#[derive(Debug, Serialize)]
struct MessageList {
    mailbox: String,
    folder: String,
    total: usize,
    messages: Vec<MessageSummary>,
}

async fn list_messages(
    State(state): AppState,
    ApiPath(address): ApiPath<String>,
    ApiQuery(q): ApiQuery<FolderQuery>,
) -> Result<Json<MessageList>, ApiError> {
    let id = mailbox_id(&state, &address)?;
    let folder = q.folder();
    let b = state.store.mailbox(id);
    let msgs = b
        .messages(&folder)
        .map_err(|e| store_error(&b.address, &folder, e))?;
    Ok(Json(MessageList {
        mailbox: b.address.clone(),
        folder: folder.clone(),
        total: msgs.len(),
        messages: msgs
            .iter()
            .map(|m| MessageSummary::new(&b.address, &folder, m))
            .collect(),
    }))
}

/// Finds one message; the error names the mailbox, folder and UID.
fn find_message(
    state: &ServerState,
    address: &str,
    folder: &str,
    uid: &str,
) -> Result<(String, mailrig_core::StoredMessage), ApiError> {
    let id = mailbox_id(state, address)?;
    let uid = parse_uid(uid)?;
    let b = state.store.mailbox(id);
    let found = b
        .with_folder(folder, |f| f.position(uid).map(|p| f.messages[p].clone()))
        .map_err(|e| store_error(&b.address, folder, e))?;
    let m = found.ok_or_else(|| ApiError::NoSuchMessage {
        mailbox: b.address.clone(),
        folder: folder.to_string(),
        uid,
    })?;
    Ok((b.address.clone(), m))
}

async fn get_message(
    State(state): AppState,
    ApiPath((address, uid)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<FolderQuery>,
) -> Result<Json<MessageSummary>, ApiError> {
    let folder = q.folder();
    let (addr, m) = find_message(&state, &address, &folder, &uid)?;
    Ok(Json(MessageSummary::new(&addr, &folder, &m)))
}

async fn raw_message(
    State(state): AppState,
    ApiPath((address, uid)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<FolderQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let folder = q.folder();
    let (_, m) = find_message(&state, &address, &folder, &uid)?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], m.raw))
}

#[derive(Debug, Serialize)]
struct Deleted {
    deleted: usize,
}

async fn delete_message(
    State(state): AppState,
    ApiPath((address, uid)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<FolderQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let folder = q.folder();
    let (_, m) = find_message(&state, &address, &folder, &uid)?;
    let id = mailbox_id(&state, &address)?;
    let b = state.store.mailbox(id);
    let gone = b
        .delete_messages(&folder, &[m.uid])
        .map_err(|e| store_error(&b.address, &folder, e))?;
    if gone.is_empty() {
        // Removed by someone else between the lookup and now.
        return Err(ApiError::NoSuchMessage {
            mailbox: b.address.clone(),
            folder,
            uid: m.uid,
        });
    }
    Ok(Json(Deleted {
        deleted: gone.len(),
    }))
}

async fn delete_all_messages(
    State(state): AppState,
    ApiPath(address): ApiPath<String>,
    ApiQuery(q): ApiQuery<FolderQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let id = mailbox_id(&state, &address)?;
    let b = state.store.mailbox(id);
    let deleted = if q.folder.is_some() {
        let folder = q.folder();
        let uids: Vec<u32> = b
            .with_folder(&folder, |f| f.messages.iter().map(|m| m.uid).collect())
            .map_err(|e| store_error(&b.address, &folder, e))?;
        b.delete_messages(&folder, &uids)
            .map_err(|e| store_error(&b.address, &folder, e))?
            .len()
    } else {
        // Without ?folder=, every folder of the mailbox is emptied.
        b.clear().map_err(ApiError::Store)?
    };
    Ok(Json(Deleted { deleted }))
}

/// `?journal=true` also empties the journal.
#[derive(Debug, Deserialize)]
struct ResetQuery {
    journal: Option<bool>,
}

impl QueryParams for ResetQuery {
    const ACCEPTED: &'static [&'static str] = &["journal"];
}

async fn delete_every_message(
    State(state): AppState,
    ApiQuery(q): ApiQuery<ResetQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let deleted = state.store.clear().map_err(ApiError::Store)?;
    if q.journal == Some(true) {
        state.journal.clear();
    }
    Ok(Json(Deleted { deleted }))
}

#[derive(Debug, Deserialize)]
struct JournalQuery {
    mailbox: Option<String>,
    message_id: Option<String>,
}

impl QueryParams for JournalQuery {
    const ACCEPTED: &'static [&'static str] = &["mailbox", "message_id"];
}

#[derive(Debug, Serialize)]
struct JournalPage {
    /// Entries let go because the journal is bounded.
    dropped: u64,
    entries: Vec<JournalEntry>,
}

async fn journal(State(state): AppState, ApiQuery(q): ApiQuery<JournalQuery>) -> Json<JournalPage> {
    let entries = state
        .journal
        .filter(q.mailbox.as_deref(), q.message_id.as_deref());
    Json(JournalPage {
        dropped: state.journal.dropped(),
        entries,
    })
}
