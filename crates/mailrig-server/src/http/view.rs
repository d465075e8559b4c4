//! What the API and the web page show of the world: mailboxes with their
//! counts and messages with the header fields people look for (From, To,
//! Subject, Message-ID, Date), parsed once per request with mail-parser.

use chrono::{DateTime, Utc};
use mail_parser::MessageParser;
use mailrig_core::store::{FolderInfo, StoredMessage};
use mailrig_core::world::MailboxId;
use mailrig_core::{Envelope, World};
use serde::Serialize;

use crate::state::ServerState;

/// A mailbox and how much mail it holds.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxSummary {
    pub address: String,
    pub domain: String,
    /// Messages in all folders.
    pub messages: usize,
    pub unseen: usize,
    pub folders: Vec<FolderSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FolderSummary {
    pub name: String,
    pub messages: usize,
    pub unseen: usize,
    pub uid_validity: u32,
    pub uid_next: u32,
}

impl From<FolderInfo> for FolderSummary {
    fn from(f: FolderInfo) -> Self {
        FolderSummary {
            name: f.name,
            messages: f.exists,
            unseen: f.unseen,
            uid_validity: f.uid_validity,
            uid_next: f.uid_next,
        }
    }
}

/// A domain with its mailboxes.
#[derive(Debug, Clone, Serialize)]
pub struct DomainSummary {
    pub name: String,
    pub messages: usize,
    pub catch_all: Option<String>,
    pub aliases: Vec<String>,
    pub mailboxes: Vec<MailboxSummary>,
}

pub fn mailbox_summary(state: &ServerState, id: MailboxId) -> MailboxSummary {
    let m = state.world.mailbox(id);
    let folders: Vec<FolderSummary> = state
        .store
        .mailbox(id)
        .folders()
        .into_iter()
        .map(FolderSummary::from)
        .collect();
    MailboxSummary {
        address: m.address.to_string(),
        domain: m.address.domain().to_string(),
        messages: folders.iter().map(|f| f.messages).sum(),
        unseen: folders.iter().map(|f| f.unseen).sum(),
        folders,
    }
}

pub fn domain_summaries(state: &ServerState) -> Vec<DomainSummary> {
    let world: &World = &state.world;
    world
        .domains
        .iter()
        .map(|d| {
            let mailboxes: Vec<MailboxSummary> = d
                .mailboxes
                .iter()
                .map(|id| mailbox_summary(state, *id))
                .collect();
            let mut aliases: Vec<String> = d
                .aliases
                .keys()
                .map(|local| format!("{local}@{}", d.name))
                .collect();
            aliases.sort();
            DomainSummary {
                name: d.name.clone(),
                messages: mailboxes.iter().map(|m| m.messages).sum(),
                catch_all: d.catch_all.map(|id| world.mailbox(id).address.to_string()),
                aliases,
                mailboxes,
            }
        })
        .collect()
}

/// One message as listed: header fields, flags, size and the SMTP envelope.
#[derive(Debug, Clone, Serialize)]
pub struct MessageSummary {
    pub uid: u32,
    pub mailbox: String,
    pub folder: String,
    pub size: usize,
    /// The From address (`None` when missing or unparsable).
    pub from: Option<String>,
    pub to: Vec<String>,
    pub subject: Option<String>,
    /// The Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// The Date header, RFC 3339.
    pub date: Option<String>,
    /// When the message was stored.
    pub internal_date: DateTime<Utc>,
    pub flags: Vec<String>,
    /// The SMTP envelope, for messages received over SMTP.
    pub envelope: Option<Envelope>,
}

impl MessageSummary {
    pub fn new(mailbox: &str, folder: &str, m: &StoredMessage) -> MessageSummary {
        let parsed = MessageParser::new().parse_headers(&m.raw[..]);
        let (from, to, subject, message_id, date) = match &parsed {
            Some(p) => (
                p.from()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .map(str::to_string),
                p.to()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.address().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                p.subject().map(str::to_string),
                p.message_id().map(str::to_string),
                p.date().map(|d| d.to_rfc3339()),
            ),
            None => (None, Vec::new(), None, None, None),
        };
        let mut flags: Vec<String> = m
            .flags
            .system()
            .map(|f| f.imap_name().to_string())
            .collect();
        flags.extend(m.flags.keywords().map(str::to_string));
        MessageSummary {
            uid: m.uid,
            mailbox: mailbox.to_string(),
            folder: folder.to_string(),
            size: m.size(),
            from,
            to,
            subject,
            message_id,
            date,
            internal_date: m.internal_date,
            flags,
            envelope: m.envelope.as_deref().cloned(),
        }
    }
}

/// The newest `limit` messages of every mailbox's INBOX together, newest first.
pub fn newest_messages(state: &ServerState, limit: usize) -> Vec<MessageSummary> {
    let mut all: Vec<(String, StoredMessage)> = Vec::new();
    for (_, b) in state.store.mailboxes() {
        if let Ok(msgs) = b.messages(mailrig_core::store::INBOX) {
            // Only the tail can be among the newest.
            let skip = msgs.len().saturating_sub(limit);
            all.extend(
                msgs.into_iter()
                    .skip(skip)
                    .map(|m| (b.address.to_string(), m)),
            );
        }
    }
    all.sort_by_key(|m| std::cmp::Reverse(m.1.internal_date));
    all.truncate(limit);
    all.iter()
        .map(|(addr, m)| MessageSummary::new(addr, mailrig_core::store::INBOX, m))
        .collect()
}
