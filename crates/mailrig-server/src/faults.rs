//! The servers' side of fault injection: ask the world's fault plan at a stage,
//! write every fired rule to the journal, and pick the TLS configuration a
//! TLS fault calls for. The rules themselves live in `mailrig_core::fault`.

use std::net::SocketAddr;
use std::sync::Arc;

use mailrig_core::fault::{Action, Facts, Fired, Stage, TlsFault};
use mailrig_core::journal::{JournalEvent, JournalRecord};
use rustls::ServerConfig;

use crate::state::ServerState;

/// What the journal should say about the message a fault concerns.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    pub message_id: Option<&'a str>,
    pub mail_from: Option<&'a str>,
    pub rcpt: Option<&'a str>,
    pub peer: Option<SocketAddr>,
}

impl ServerState {
    /// The rules that fire at `stage`, each already written to the journal.
    pub fn faults_at(&self, stage: Stage, facts: &Facts<'_>, subject: &Subject<'_>) -> Vec<Fired> {
        let fired = {
            let plan = self.faults.read();
            if plan.is_empty() {
                return Vec::new();
            }
            plan.decide(stage, facts)
        };
        for f in &fired {
            let event = match &f.action {
                Action::Reply {
                    code,
                    enhanced,
                    text,
                } => JournalEvent::Rejected {
                    code: *code,
                    enhanced: enhanced.clone(),
                    text: text.clone(),
                },
                Action::Drop => JournalEvent::Dropped,
                Action::Misroute { to_address, .. } => JournalEvent::Misrouted {
                    intended: subject.rcpt.unwrap_or("").to_string(),
                    actual: to_address.clone(),
                },
                other => JournalEvent::Fault {
                    action: other.describe(),
                },
            };
            self.journal.record(JournalRecord {
                stage,
                rule: Some(f.rule.clone()),
                message_id: subject.message_id.map(str::to_string),
                mail_from: subject.mail_from.map(str::to_string),
                rcpt: subject.rcpt.or(facts.rcpt).map(str::to_string),
                peer: subject.peer.map(|p| p.to_string()),
                event,
            });
        }
        fired
    }

    /// The TLS fault for a connection from `peer`, if a rule fires.
    pub fn tls_fault(&self, peer: SocketAddr) -> Option<TlsFault> {
        let facts = Facts {
            client: Some(peer.ip()),
            ..Facts::default()
        };
        let subject = Subject {
            peer: Some(peer),
            ..Subject::default()
        };
        self.faults_at(Stage::Tls, &facts, &subject)
            .into_iter()
            .find_map(|f| match f.action {
                Action::Tls(t) => Some(t),
                _ => None,
            })
    }

    /// The configuration for a TLS handshake under a fault: `None` means the
    /// handshake must fail (or TLS is not offered).
    pub fn tls_config(&self, fault: Option<TlsFault>) -> Option<Arc<ServerConfig>> {
        match fault {
            None => Some(Arc::clone(&self.tls.config)),
            Some(TlsFault::NotOffered | TlsFault::HandshakeFails) => None,
            Some(kind) => match self.tls.broken(kind) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "cannot make a broken certificate");
                    None
                }
            },
        }
    }
}

/// Finds the Message-ID header of a message (for the journal).
pub fn message_id(raw: &[u8]) -> Option<String> {
    let end = memchr::memmem::find(raw, b"\r\n\r\n").unwrap_or(raw.len());
    let head = &raw[..end];
    let mut pos = 0;
    while pos < head.len() {
        let line_end = memchr::memchr(b'\n', &head[pos..]).map_or(head.len(), |i| pos + i);
        let line = &head[pos..line_end];
        if line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            let v = String::from_utf8_lossy(&line[11..]).trim().to_string();
            if !v.is_empty() {
                return Some(v);
            }
        }
        pos = line_end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_message_id() {
        let raw = b"Subject: x\r\nMessage-ID: <a@b>\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(super::message_id(raw).as_deref(), Some("<a@b>"));
        assert_eq!(super::message_id(b"Subject: y\r\n\r\n"), None);
    }
}
