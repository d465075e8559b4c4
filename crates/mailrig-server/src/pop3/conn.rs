//! The I/O side of a POP3 session: reads bytes, frames command lines (with a
//! hard cap on their length), feeds the [`Session`], writes its responses and
//! carries out its actions: TLS upgrade, the UPDATE state's removal of marked
//! messages, closing. Also enforces the idle timeout (on reads and on writes,
//! so a client that stops reading cannot hold a session forever) and ends the
//! session when the server shuts down.
//!
//! Memory stays bounded whatever the client sends: input is read only after
//! every complete buffered line was handled, an unfinished line longer than the
//! cap is discarded, and responses are written out after each command once
//! they pass [`FLUSH_AT`], so pipelined RETRs never pile up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::session::{Action, MAX_COMMAND_LINE, Session};
use crate::net::Stream;
use crate::state::ServerState;

/// Pending output larger than this is written before the next command is handled.
pub const FLUSH_AT: usize = 64 * 1024;

/// Runs one POP3 connection to its end.
pub async fn handle(mut stream: Stream, peer: SocketAddr, state: Arc<ServerState>) {
    let idle = state.world.limits.idle_timeout;
    let mut session = Session::new(Arc::clone(&state), stream.is_tls()).with_peer(peer);
    let mut inbuf = BytesMut::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut discarding = false;
    session.greeting(&mut out);
    if !flush(&mut stream, &mut out, idle, Some(&state.shutdown)).await {
        return;
    }

    'conn: loop {
        // Handle every complete line already buffered.
        let mut action = Action::Continue;
        while let Some(end) = memchr::memchr(b'\n', &inbuf) {
            let line = inbuf.split_to(end + 1);
            if discarding || line.len() > MAX_COMMAND_LINE {
                discarding = false;
                session.line_too_long(&mut out);
            } else {
                action = session.line(&line, &mut out);
            }
            if let Action::Update { mailbox, uids } = action {
                let result = update(&state, mailbox, uids).await;
                action = session.updated(result, &mut out);
            }
            if action != Action::Continue {
                break;
            }
            if out.len() > FLUSH_AT
                && !flush(&mut stream, &mut out, idle, Some(&state.shutdown)).await
            {
                break 'conn;
            }
        }
        if !discarding && inbuf.len() >= MAX_COMMAND_LINE {
            // An unfinished line already over the cap: drop it up to its end.
            discarding = true;
        }
        if discarding {
            inbuf.clear();
        }
        if !flush(&mut stream, &mut out, idle, Some(&state.shutdown)).await {
            break;
        }
        match action {
            Action::Close => break,
            Action::StartTls => {
                // Anything pipelined after STLS is discarded (RFC 2595 §4).
                inbuf.clear();
                match stream.upgrade(Arc::clone(&state.tls.config)).await {
                    Ok(s) => {
                        stream = s;
                        session.tls_started();
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "POP3 TLS handshake failed");
                        return;
                    }
                }
                continue;
            }
            Action::Continue | Action::Update { .. } => {}
        }

        inbuf.reserve(4096);
        let read = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_buf(&mut inbuf)) => r,
            _ = state.shutdown.cancelled() => {
                session.shutting_down(&mut out);
                let _ = flush(&mut stream, &mut out, Duration::from_secs(1), None).await;
                break;
            }
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => {
                session.timed_out(&mut out);
                let _ = flush(&mut stream, &mut out, Duration::from_secs(1), None).await;
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
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

/// Writes and clears `out`; false when the client is gone, stopped reading
/// for `limit`, or (with `shutdown`) the server is shutting down meanwhile.
async fn flush(
    stream: &mut Stream,
    out: &mut Vec<u8>,
    limit: Duration,
    shutdown: Option<&CancellationToken>,
) -> bool {
    if out.is_empty() {
        return true;
    }
    let write = tokio::time::timeout(limit, stream.write_all(out));
    let written = match shutdown {
        Some(token) => tokio::select! {
            w = write => w,
            _ = token.cancelled() => {
                out.clear();
                return false;
            }
        },
        None => write.await,
    };
    out.clear();
    if out.capacity() > 4 * FLUSH_AT {
        // A big RETR was just written: give the memory back.
        out.shrink_to(FLUSH_AT);
    }
    matches!(written, Ok(Ok(())))
}

/// The UPDATE state: removes the messages marked with DELE from the INBOX.
/// With a Maildir the unlinks run on the blocking pool.
async fn update(
    state: &Arc<ServerState>,
    mailbox: mailrig_core::MailboxId,
    uids: Vec<u32>,
) -> Result<usize, String> {
    if uids.is_empty() {
        return Ok(0);
    }
    let remove = move |state: &ServerState| {
        state
            .store
            .mailbox(mailbox)
            .delete_messages(mailrig_core::store::INBOX, &uids)
            .map(|gone| gone.len())
            .map_err(|e| e.to_string())
    };
    if state.store.maildir_root().is_some() {
        let st = Arc::clone(state);
        tokio::task::spawn_blocking(move || remove(&st))
            .await
            .map_err(|e| e.to_string())?
    } else {
        remove(state)
    }
}
