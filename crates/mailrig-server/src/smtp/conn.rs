//! The I/O side of an SMTP session: reads bytes, frames command lines (with a
//! hard cap on their length), feeds the [`Session`], writes its replies in
//! order — all replies to a pipelined batch in one write — and carries out its
//! actions: TLS upgrade, storing a message, closing. Also enforces the idle
//! timeout and ends the session when the server shuts down.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::session::{Action, Delivery, Session};
use crate::net::Stream;
use crate::state::ServerState;

/// Longest command line accepted, CRLF included. SMTP's own limit is 512 for
/// commands; 1000 leaves room for long AUTH responses and parameters.
pub const MAX_COMMAND_LINE: usize = 1000;

/// Runs one SMTP connection to its end.
pub async fn handle(mut stream: Stream, peer: SocketAddr, state: Arc<ServerState>) {
    let tls = stream.is_tls();
    let mut session = Session::new(Arc::clone(&state), peer, tls);
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut discarding = false;
    session.greeting(&mut out);
    if stream.write_all(&out).await.is_err() {
        return;
    }
    out.clear();
    let idle = state.world.limits.idle_timeout;

    loop {
        // Work through everything already buffered; replies accumulate in `out`.
        let mut action = Action::Continue;
        while !inbuf.is_empty() {
            if session.in_data() {
                let (used, a) = session.data(&inbuf, &mut out);
                inbuf.advance(used);
                if let Action::Deliver(d) = a {
                    let id = d.queue_id.clone();
                    let result = deliver(&state, d).await;
                    session.delivered(&id, result, &mut out);
                    continue;
                }
                if used == 0 {
                    break;
                }
                continue;
            }
            let Some(end) = memchr::memchr(b'\n', &inbuf) else {
                if inbuf.len() > MAX_COMMAND_LINE {
                    discarding = true;
                    inbuf.clear();
                }
                break;
            };
            let line = inbuf.split_to(end + 1);
            if discarding || line.len() > MAX_COMMAND_LINE {
                discarding = false;
                session.line_too_long(&mut out);
                continue;
            }
            action = session.line(&line, &mut out);
            if !matches!(action, Action::Continue) {
                break;
            }
        }

        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match action {
            Action::Close => break,
            Action::StartTls => {
                // Anything pipelined after STARTTLS is discarded (RFC 3207 §4.2).
                inbuf.clear();
                match stream.upgrade(Arc::clone(&state.tls.config)).await {
                    Ok(s) => {
                        stream = s;
                        session.tls_started();
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                }
                continue;
            }
            Action::Continue | Action::Deliver(_) => {}
        }

        if inbuf.capacity() - inbuf.len() < 4096 {
            inbuf.reserve(16 * 1024);
        }
        let read = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_buf(&mut inbuf)) => r,
            _ = state.shutdown.cancelled() => {
                session.shutting_down(&mut out);
                let _ = stream.write_all(&out).await;
                break;
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
        if discarding {
            // Drop the rest of an over-long line up to its end.
            match memchr::memchr(b'\n', &inbuf) {
                Some(i) => {
                    inbuf.advance(i + 1);
                    discarding = false;
                    session.line_too_long(&mut out);
                }
                None => inbuf.clear(),
            }
        }
    }
    let _ = stream.shutdown().await;
}

/// Stores one accepted message into every target mailbox. With a Maildir the
/// writes and fsyncs run on the blocking pool so other sessions keep going.
async fn deliver(state: &Arc<ServerState>, d: Delivery) -> Result<usize, String> {
    let store_all = |state: &ServerState, d: Delivery| -> Result<usize, String> {
        let mut n = 0;
        for id in &d.targets {
            state
                .store
                .deliver(*id, d.message.clone())
                .map_err(|e| e.to_string())?;
            n += 1;
        }
        Ok(n)
    };
    if state.store.maildir_root().is_some() {
        let st = Arc::clone(state);
        tokio::task::spawn_blocking(move || store_all(&st, d))
            .await
            .map_err(|e| e.to_string())?
    } else {
        store_all(state, d)
    }
}
