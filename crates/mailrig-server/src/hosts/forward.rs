//! Store and forward: a backup MX or relay host keeps what it accepts in its
//! own store (its queue) and passes every copy on over SMTP to the host it
//! forwards to, with the original envelope sender; a copy leaves the queue
//! only when the other host answered 250, and is retried every `retry`
//! otherwise (the other host down, a 4xx). Every attempt is journaled on the
//! forwarding host: `forwarded`, or `forward-deferred` with the reason.
//!
//! A backup MX that never forwards is a host-level `blackhole` (or a `drop`
//! rule at `deliver`): nothing reaches the queue, so nothing leaves it.
//!
//! A pass keeps one SMTP session open for all its copies (a new one only after
//! a copy failed, since lettre closes a session on any error), over our own
//! socket with `TCP_NODELAY`: lettre writes a message and its final `.` in two
//! writes, and with Nagle on the `.` waits for the other host's delayed ACK,
//! 40 ms a copy (see `benches/examples/lettre_stall.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope as SmtpEnvelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
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
    let hello = ClientId::Domain(state.world.identity.hostname.clone());
    let mut session: Option<AsyncSmtpConnection> = None;
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
            let result = match to {
                None => Err(format!("host '{to_host}' is not listening for SMTP")),
                Some(addr) => send(&mut session, addr, &hello, &mail_from, &rcpt, raw).await,
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
    if let Some(mut conn) = session {
        let _ = tokio::time::timeout(LIMIT, conn.quit()).await;
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

/// How long the other host may take to accept a connection, greet, or answer a
/// command (lettre's transport had the same 10 s).
const LIMIT: Duration = Duration::from_secs(10);

/// A TCP connection to the other host with `TCP_NODELAY` set.
async fn connect_tcp(addr: SocketAddr) -> Result<tokio::net::TcpStream, String> {
    let tcp = tokio::time::timeout(LIMIT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("{addr}: no connection within {} s", LIMIT.as_secs()))?
        .map_err(|e| format!("{addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| format!("{addr}: {e}"))?;
    Ok(tcp)
}

/// Sends one copy over the pass's session, opening it first if there is none
/// (or the last copy broke it).
async fn send(
    session: &mut Option<AsyncSmtpConnection>,
    addr: SocketAddr,
    hello: &ClientId,
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
    let conn = match session {
        Some(conn) if !conn.has_broken() => conn,
        _ => {
            let tcp = connect_tcp(addr).await?;
            let conn = tokio::time::timeout(
                LIMIT,
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), hello),
            )
            .await
            .map_err(|_| format!("{addr}: no greeting within {} s", LIMIT.as_secs()))?
            .map_err(|e| e.to_string())?;
            session.insert(conn)
        }
    };
    match tokio::time::timeout(LIMIT, conn.send(&envelope, raw)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            // Mid-transaction: the session cannot be trusted any more.
            *session = None;
            Err(format!("{addr}: no reply within {} s", LIMIT.as_secs()))
        }
    }
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

    /// The regression check of the 40 ms stall per forwarded copy (lettre's
    /// two writes against Nagle): the forwarder's socket has `TCP_NODELAY`.
    #[tokio::test]
    async fn the_forwarders_socket_has_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = connect_tcp(listener.local_addr().unwrap()).await.unwrap();
        assert!(tcp.nodelay().unwrap());
    }

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
