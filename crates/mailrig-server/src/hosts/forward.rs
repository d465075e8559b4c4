//! Store and forward: a backup MX or relay host keeps what it accepts in its
//! own store (its queue) and passes every copy on over SMTP to the host it
//! forwards to, with the original envelope sender; a copy leaves the queue
//! only when the other host answered 250, and is retried every `retry`
//! otherwise (the other host down, a 4xx). Every attempt is journaled on the
//! forwarding host: `forwarded`, or `forward-deferred` with the reason.
//!
//! A backup MX that never forwards is a host-level `blackhole` (or a `drop`
//! rule at `deliver`): nothing reaches the queue, so nothing leaves it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope as SmtpEnvelope;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailrig_core::JournalEvent;
use mailrig_core::fault::Stage;
use mailrig_core::journal::JournalRecord;
use mailrig_core::store::INBOX;

use crate::state::ServerState;

/// What one forwarding pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardPass {
    pub forwarded: usize,
    pub deferred: usize,
}

/// Forwards every queued copy once; `to` is the other host's SMTP address
/// (`None`: it is down or runs no SMTP, so everything is deferred).
pub async fn forward_queue(
    state: &Arc<ServerState>,
    to_host: &str,
    to: Option<SocketAddr>,
) -> ForwardPass {
    let mut pass = ForwardPass::default();
    let transport = to.map(|addr| {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(addr.port())
            .hello_name(ClientId::Domain(state.world.identity.hostname.clone()))
            .timeout(Some(Duration::from_secs(10)))
            .build()
    });
    for (id, mailbox) in state.store.mailboxes() {
        let Ok(messages) = mailbox.messages(INBOX) else {
            continue;
        };
        let rcpt = state.world.mailbox(id).address.to_string();
        for m in messages {
            let mail_from = m
                .envelope
                .as_ref()
                .map(|e| e.mail_from.to_string())
                .unwrap_or_default();
            let raw = without_return_path(&m.raw);
            let result = match &transport {
                None => Err(format!("host '{to_host}' is not listening for SMTP")),
                Some(t) => send(t, &mail_from, &rcpt, raw).await,
            };
            let record = |event| JournalRecord {
                stage: Stage::Deliver,
                rule: None,
                message_id: crate::faults::message_id(&m.raw).map(Into::into),
                mail_from: Some(mail_from.as_str().into()),
                rcpt: Some(rcpt.as_str().into()),
                peer: to.map(|a| a.to_string().into()),
                event,
            };
            match result {
                Ok(()) => {
                    let _ = mailbox.delete_messages(INBOX, &[m.uid]);
                    state.journal.record(record(JournalEvent::Forwarded {
                        to_host: to_host.into(),
                    }));
                    pass.forwarded += 1;
                }
                Err(reason) => {
                    state.journal.record(record(JournalEvent::ForwardDeferred {
                        to_host: to_host.into(),
                        reason: reason.into(),
                    }));
                    pass.deferred += 1;
                }
            }
        }
    }
    pass
}

/// Forwards the queue every `retry` until the server shuts down.
pub(crate) async fn run(
    state: Arc<ServerState>,
    to_host: String,
    to: Option<SocketAddr>,
    retry: Duration,
    lock: Arc<tokio::sync::Mutex<()>>,
) {
    let shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = async {
                let _pass = lock.lock().await;
                forward_queue(&state, &to_host, to).await
            } => {}
        }
    }
}

async fn send(
    t: &AsyncSmtpTransport<Tokio1Executor>,
    mail_from: &str,
    rcpt: &str,
    raw: &[u8],
) -> Result<(), String> {
    let from = if mail_from.is_empty() {
        None
    } else {
        Some(
            mail_from
                .parse()
                .map_err(|e| format!("sender {mail_from}: {e}"))?,
        )
    };
    let to = rcpt.parse().map_err(|e| format!("recipient {rcpt}: {e}"))?;
    let envelope = SmtpEnvelope::new(from, vec![to]).map_err(|e| e.to_string())?;
    t.send_raw(&envelope, raw)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The message without the `Return-Path:` line our store put on top (the
/// receiving host writes its own).
fn without_return_path(raw: &[u8]) -> &[u8] {
    if raw.len() >= 12 && raw[..12].eq_ignore_ascii_case(b"Return-Path:") {
        match memchr::memchr(b'\n', raw) {
            Some(i) => &raw[i + 1..],
            None => raw,
        }
    } else {
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_is_taken_off_the_top_only() {
        assert_eq!(
            without_return_path(b"Return-Path: <a@b>\r\nSubject: x\r\n\r\n"),
            b"Subject: x\r\n\r\n"
        );
        assert_eq!(
            without_return_path(b"Subject: x\r\nReturn-Path: <a@b>\r\n"),
            b"Subject: x\r\nReturn-Path: <a@b>\r\n"
        );
    }
}
