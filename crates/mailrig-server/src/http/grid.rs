//! `GET /api/v1/grid`: the world at a glance, as the page's grid draws it —
//! every mailbox of every domain with its message count, its last delivery,
//! and what went wrong for it (rejected, dropped, misrouted, or another fault
//! fired), with the rule and reply of the latest problem. Read from the store
//! and one pass over the journal.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use mailrig_core::fault::Stage;
use mailrig_core::{JournalEntry, JournalEvent};
use serde::Serialize;

use super::extract::{ApiQuery, NoParams};
use crate::state::ServerState;

/// The latest thing that went wrong for a mailbox.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `rejected`, `dropped`, `misrouted` or `fault`.
    pub kind: &'static str,
    pub stage: Stage,
    pub rule: Option<String>,
    /// The reply, the misroute target or the fault's action.
    pub detail: String,
    pub time: DateTime<Utc>,
    pub seq: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxCell {
    pub address: String,
    pub messages: usize,
    /// Copies stored, as the journal still knows them.
    pub delivered: u64,
    pub last_delivery: Option<DateTime<Utc>>,
    /// Journal entries of a problem for this mailbox.
    pub problems: u64,
    pub last_problem: Option<Problem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DomainRow {
    pub name: String,
    pub messages: usize,
    pub problem_mailboxes: usize,
    pub mailboxes: Vec<MailboxCell>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Grid {
    pub hostname: String,
    /// The journal's newest `seq` this grid includes.
    pub journal_seq: u64,
    pub domains: Vec<DomainRow>,
}

/// The mailbox a journal entry is about, lowercased.
fn subject_of(e: &JournalEntry) -> Option<String> {
    match &e.event {
        JournalEvent::Delivered { mailbox, .. } => Some(mailbox.to_lowercase()),
        JournalEvent::Misrouted { intended, .. } => Some(intended.to_lowercase()),
        JournalEvent::Collected(c) => Some(c.account.to_lowercase()),
        JournalEvent::CollectFailed(c) => Some(c.account.to_lowercase()),
        _ => e.rcpt.as_deref().map(str::to_lowercase),
    }
}

fn problem_of(e: &JournalEntry) -> Option<Problem> {
    let (kind, detail) = match &e.event {
        JournalEvent::Delivered { .. } => return None,
        JournalEvent::Rejected {
            code,
            enhanced,
            text,
        } => (
            "rejected",
            format!("{code} {enhanced} {text}").trim().to_string(),
        ),
        JournalEvent::Dropped => ("dropped", "accepted with 250 and thrown away".to_string()),
        JournalEvent::Misrouted { actual, .. } => ("misrouted", format!("stored in {actual}")),
        JournalEvent::Fault { action } => ("fault", action.describe()),
        JournalEvent::CollectFailed(c) => (
            "collect-failed",
            format!("collector {}: {}", c.collector, c.reason),
        ),
        JournalEvent::Collected(c) if c.delivered_to.is_empty() => (
            "collected-nowhere",
            format!(
                "collector {} fetched it and delivered it to no mailbox",
                c.collector
            ),
        ),
        // Not about a mailbox going wrong: a queue passing mail on, a DNS query.
        JournalEvent::Collected(_)
        | JournalEvent::Forwarded { .. }
        | JournalEvent::ForwardDeferred { .. }
        | JournalEvent::Dns(_)
        | JournalEvent::Authenticated { .. } => return None,
    };
    Some(Problem {
        kind,
        stage: e.stage,
        rule: e.rule.as_deref().map(str::to_string),
        detail,
        time: e.time,
        seq: e.seq,
    })
}

/// Builds the grid from the world, the store and the journal.
pub fn grid(state: &ServerState) -> Grid {
    let journal_seq = state.journal.last_seq();
    let mut by_mailbox: HashMap<String, MailboxCell> = HashMap::new();
    for e in state.journal.entries() {
        let Some(who) = subject_of(&e) else { continue };
        let cell = by_mailbox.entry(who).or_default();
        match problem_of(&e) {
            None => {
                cell.delivered += 1;
                cell.last_delivery = Some(e.time);
            }
            Some(p) => {
                cell.problems += 1;
                cell.last_problem = Some(p);
            }
        }
    }
    let domains = state
        .world
        .domains
        .iter()
        .map(|d| {
            let mailboxes: Vec<MailboxCell> = d
                .mailboxes
                .iter()
                .map(|id| {
                    let address = state.world.mailbox(*id).address.to_string();
                    let messages = state
                        .store
                        .mailbox(*id)
                        .lock()
                        .folders
                        .values()
                        .map(|f| f.messages.len())
                        .sum();
                    let seen = by_mailbox
                        .remove(&address.to_lowercase())
                        .unwrap_or_default();
                    MailboxCell {
                        address,
                        messages,
                        ..seen
                    }
                })
                .collect();
            DomainRow {
                name: d.name.clone(),
                messages: mailboxes.iter().map(|m| m.messages).sum(),
                problem_mailboxes: mailboxes.iter().filter(|m| m.problems > 0).count(),
                mailboxes,
            }
        })
        .collect();
    Grid {
        hostname: state.world.identity.hostname.clone(),
        journal_seq,
        domains,
    }
}

pub async fn get_grid(State(state): State<Arc<ServerState>>, _: ApiQuery<NoParams>) -> Json<Grid> {
    Json(grid(&state))
}
