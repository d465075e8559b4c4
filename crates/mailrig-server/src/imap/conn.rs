//! The I/O side of an IMAP session: reads bytes, feeds the [`Session`], writes
//! its responses, runs the TLS upgrade, and, while the client idles, waits on
//! the mailbox's change event so a delivery is announced the moment it lands.
//! Also enforces the idle timeout and says `* BYE` when the server shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::session::{Action, Session};
use crate::net::Stream;
use crate::state::ServerState;

/// How long a client may stay in IDLE without a word (RFC 2177 asks clients
/// to re-issue IDLE at least every 29 minutes).
const IDLE_COMMAND_TIMEOUT: Duration = Duration::from_secs(31 * 60);

/// Runs one IMAP connection to its end.
pub async fn handle(mut stream: Stream, peer: SocketAddr, state: Arc<ServerState>) {
    let mut session = Session::new(Arc::clone(&state), stream.is_tls()).with_peer(peer);
    let mut inbuf = BytesMut::with_capacity(8 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(4 * 1024);
    session.greeting(&mut out);
    if stream.write_all(&out).await.is_err() {
        return;
    }
    out.clear();
    let idle = state.world.limits.idle_timeout;

    loop {
        let action = session.input(&mut inbuf, &mut out);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
            if out.capacity() > 1 << 20 {
                out.shrink_to(64 * 1024);
            }
        }
        match action {
            Action::Close => break,
            Action::StartTls => {
                // Anything pipelined after STARTTLS is dropped (RFC 3501 §6.2.1).
                inbuf.clear();
                match stream.upgrade(Arc::clone(&state.tls.config)).await {
                    Ok(s) => {
                        stream = s;
                        session.tls_started();
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "IMAP TLS handshake failed");
                        return;
                    }
                }
                continue;
            }
            Action::Continue => {}
        }

        if inbuf.capacity() - inbuf.len() < 4096 {
            inbuf.reserve(16 * 1024);
        }
        let read = if session.idling() {
            // Register for the wake-up before comparing versions, so no change is missed.
            let Some(mailbox) = session.idle_mailbox() else {
                continue;
            };
            let listener = mailbox.listen();
            let changed = session
                .seen_version()
                .is_some_and(|v| v != mailbox.version());
            if changed {
                drop(listener);
                session.idle_update(&mut out);
                continue;
            }
            tokio::select! {
                r = tokio::time::timeout(IDLE_COMMAND_TIMEOUT, stream.read_buf(&mut inbuf)) => r,
                _ = listener => {
                    session.idle_update(&mut out);
                    continue;
                }
                _ = state.shutdown.cancelled() => {
                    session.shutting_down(&mut out);
                    let _ = stream.write_all(&out).await;
                    break;
                }
            }
        } else {
            tokio::select! {
                r = tokio::time::timeout(idle, stream.read_buf(&mut inbuf)) => r,
                _ = state.shutdown.cancelled() => {
                    session.shutting_down(&mut out);
                    let _ = stream.write_all(&out).await;
                    break;
                }
            }
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => {
                session.timed_out(&mut out);
                let _ = stream.write_all(&out).await;
                break;
            }
        }
    }
    let _ = stream.shutdown().await;
}
