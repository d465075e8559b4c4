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
use mailrig_core::journal::JournalQuery;
use mailrig_core::store::{INBOX, canonical_name};
use mailrig_core::world::MailboxId;
use mailrig_core::{JournalEntry, JournalEvent, StoreError};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, NoParams, QueryParams};
use super::parsed;
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
            "/mailboxes/{address}/messages/{uid}/parsed",
            get(parsed_message),
        )
        .route(
            "/mailboxes/{address}/messages/{uid}/html",
            get(message_html),
        )
        .route(
            "/mailboxes/{address}/messages/{uid}/attachments/{index}",
            get(attachment),
        )
        .route(
            "/messages",
            get(super::messages::list).delete(delete_every_message),
        )
        .route("/journal", get(journal).delete(clear_journal))
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
        mailbox: b.address.to_string(),
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
        mailbox: b.address.to_string(),
        folder: folder.to_string(),
        uid,
    })?;
    Ok((b.address.to_string(), m))
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

/// `?folder=`, and `?download=true` for `Content-Disposition: attachment`.
#[derive(Debug, Deserialize)]
struct RawQuery {
    folder: Option<String>,
    download: Option<bool>,
}

impl QueryParams for RawQuery {
    const ACCEPTED: &'static [&'static str] = &["folder", "download"];
}

async fn raw_message(
    State(state): AppState,
    ApiPath((address, uid)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<RawQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let folder = canonical_name(q.folder.as_deref().unwrap_or(INBOX));
    let (_, m) = find_message(&state, &address, &folder, &uid)?;
    let disposition = if q.download == Some(true) {
        format!("attachment; filename=\"message-{}.eml\"", m.uid)
    } else {
        "inline".to_string()
    };
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        m.raw,
    ))
}

/// A message taken apart: its summary and [`parsed::ParsedBody`].
#[derive(Debug, Serialize)]
struct ParsedMessage {
    message: MessageSummary,
    #[serde(flatten)]
    body: parsed::ParsedBody,
}

async fn parsed_message(
    State(state): AppState,
    ApiPath((address, uid)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<FolderQuery>,
) -> Result<Json<ParsedMessage>, ApiError> {
    let folder = q.folder();
    let (addr, m) = find_message(&state, &address, &folder, &uid)?;
    Ok(Json(ParsedMessage {
        message: MessageSummary::new(&addr, &folder, &m),
        body: parsed::parse(&m.raw),
    }))
}

/// `?folder=`, and `?remote=true` to let the HTML load remote images,
/// styles and fonts (never scripts).
#[derive(Debug, Deserialize)]
struct HtmlQuery {
    folder: Option<String>,
    remote: Option<bool>,
}

impl QueryParams for HtmlQuery {
    const ACCEPTED: &'static [&'static str] = &["folder", "remote"];
}

/// The policy a message's HTML is served under: a sandbox (no scripts, no
/// forms, an origin of its own), nothing fetched but inline styles and
/// `data:` images, unless the reader asked for remote content.
fn message_csp(remote: bool) -> &'static str {
    if remote {
        "sandbox; default-src 'none'; script-src 'none'; style-src * 'unsafe-inline'; img-src * data:; font-src * data:; media-src *"
    } else {
        "sandbox; default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
    }
}

async fn message_html(
    State(state): AppState,
    ApiPath((address, uid)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<HtmlQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let folder = canonical_name(q.folder.as_deref().unwrap_or(INBOX));
    let (_, m) = find_message(&state, &address, &folder, &uid)?;
    let body = parsed::parse(&m.raw);
    let html = match (body.html, body.text) {
        (Some(h), _) => h,
        (None, Some(t)) => maud::html! { pre style="white-space:pre-wrap" { (t) } }.into_string(),
        (None, None) => String::new(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                message_csp(q.remote == Some(true)),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    ))
}

async fn attachment(
    State(state): AppState,
    ApiPath((address, uid, index)): ApiPath<(String, String, String)>,
    ApiQuery(q): ApiQuery<FolderQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let folder = q.folder();
    let (addr, m) = find_message(&state, &address, &folder, &uid)?;
    let i = match index.parse::<usize>() {
        Ok(i) if index.bytes().all(|b| b.is_ascii_digit()) => i,
        _ => {
            return Err(ApiError::BadRequest(format!(
                "bad attachment index '{}': give 0, 1, ... as listed in `attachments` of .../parsed",
                index.chars().take(64).collect::<String>()
            )));
        }
    };
    let (name, content_type, bytes) =
        parsed::attachment(&m.raw, i).ok_or_else(|| ApiError::NoSuchAttachment {
            mailbox: addr.clone(),
            uid: m.uid,
            index: i,
        })?;
    let name = name.unwrap_or_else(|| format!("attachment-{i}"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type_header(&content_type)),
            (header::CONTENT_DISPOSITION, attachment_disposition(&name)),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    ))
}

/// A content type safe to send back: a sender's HTML or SVG would otherwise
/// run in this origin if opened, so anything but plain data is octets.
fn content_type_header(ct: &str) -> String {
    let ok = ct
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/.+-".contains(&b));
    let active = ct.contains("html")
        || ct.contains("svg")
        || ct.contains("xml")
        || ct.contains("javascript");
    if ok && !active {
        ct.to_string()
    } else {
        "application/octet-stream".to_string()
    }
}

/// `attachment; filename="..."; filename*=UTF-8''...` for any file name.
fn attachment_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
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
            mailbox: b.address.to_string(),
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

/// The journal's filters, named as the entry's JSON fields (`mailbox`: the
/// recipient or the mailbox it ended in; `kind`: the event's kind), a
/// `since` cursor (forward), a `before` cursor (back) and a `limit`.
#[derive(Debug, Deserialize)]
struct JournalParams {
    since: Option<u64>,
    before: Option<u64>,
    limit: Option<usize>,
    mailbox: Option<String>,
    rcpt: Option<String>,
    mail_from: Option<String>,
    message_id: Option<String>,
    rule: Option<String>,
    stage: Option<mailrig_core::fault::Stage>,
    peer: Option<String>,
    kind: Option<String>,
}

impl QueryParams for JournalParams {
    const ACCEPTED: &'static [&'static str] = &[
        "since",
        "before",
        "limit",
        "mailbox",
        "rcpt",
        "mail_from",
        "message_id",
        "rule",
        "stage",
        "peer",
        "kind",
    ];
}

/// Largest `limit` of `GET /journal`.
const JOURNAL_MAX_LIMIT: usize = 100_000;

#[derive(Debug, Serialize)]
struct JournalPage {
    /// Entries let go because the journal is bounded.
    dropped: u64,
    /// The `since` for the next page: the last entry's `seq`, or the
    /// request's `since` (the journal's newest `seq` without one) when
    /// nothing matched.
    next_since: u64,
    entries: Vec<JournalEntry>,
}

async fn journal(
    State(state): AppState,
    ApiQuery(q): ApiQuery<JournalParams>,
) -> Result<Json<JournalPage>, ApiError> {
    if let Some(l) = q.limit
        && !(1..=JOURNAL_MAX_LIMIT).contains(&l)
    {
        return Err(ApiError::BadValue {
            name: "limit".into(),
            value: l.to_string(),
            reason: "give 1 to 100000".into(),
        });
    }
    if let Some(k) = &q.kind
        && !JournalEvent::KINDS.contains(&k.as_str())
    {
        return Err(ApiError::BadValue {
            name: "kind".into(),
            value: k.chars().take(100).collect(),
            reason: format!("give one of {}", JournalEvent::KINDS.join(", ")),
        });
    }
    // Read the newest seq first: an entry recorded meanwhile is then after
    // the cursor, never skipped.
    let newest = state.journal.last_seq();
    let entries = state.journal.query(&JournalQuery {
        since: q.since,
        before: q.before,
        limit: q.limit,
        mailbox: q.mailbox,
        rcpt: q.rcpt,
        mail_from: q.mail_from,
        message_id: q.message_id,
        rule: q.rule,
        stage: q.stage,
        peer: q.peer,
        kind: q.kind,
    });
    let next_since = entries
        .last()
        .map_or_else(|| q.since.unwrap_or(0).max(newest), |e| e.seq);
    Ok(Json(JournalPage {
        dropped: state.journal.dropped(),
        next_since,
        entries,
    }))
}

async fn clear_journal(State(state): AppState, _: ApiQuery<NoParams>) -> Json<Deleted> {
    Json(Deleted {
        deleted: state.journal.clear(),
    })
}
