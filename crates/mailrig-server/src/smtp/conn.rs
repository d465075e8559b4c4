//! The I/O side of an SMTP session: reads bytes, frames command lines (with a
//! hard cap on their length), feeds the [`Session`], writes its replies in
//! order — all replies to a pipelined batch in one write — and carries out its
//! actions: TLS upgrade, storing a message, closing. Also enforces the idle
//! timeout and ends the session when the server shuts down.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::session::{Action, Delivery, PlannedCopy, Session};
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
    let first = session.greeting(&mut out);
    if let Some((_, d)) = session.take_delay()
        && !pause(&state, d).await
    {
        return;
    }
    if write_out(&mut stream, &out, session.tarpit(), &state)
        .await
        .is_err()
    {
        return;
    }
    out.clear();
    if matches!(first, Action::Close) {
        let _ = stream.shutdown().await;
        return;
    }
    let idle = state.world.limits.idle_timeout;
    let mut last_read = tokio::time::Instant::now();
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let shutdown = state.shutdown.cancelled();
    tokio::pin!(shutdown);

    loop {
        // Work through everything already buffered; replies accumulate in `out`.
        let mut action = Action::Continue;
        while !inbuf.is_empty() {
            if session.cut_in_data() {
                // Disconnect fault in the middle of DATA: drop everything.
                let _ = stream.shutdown().await;
                return;
            }
            if session.in_data() {
                let (used, a) = session.data(&inbuf, &mut out);
                inbuf.advance(used);
                if let Some((mark, d)) = session.take_delay() {
                    // An end-of-data delay: earlier replies go out, then the wait.
                    if write_out(&mut stream, &out[..mark], session.tarpit(), &state)
                        .await
                        .is_err()
                        || !pause(&state, d).await
                    {
                        return;
                    }
                    out.drain(..mark);
                }
                if let Action::Deliver(d) = a {
                    let id = d.queue_id.clone();
                    let close = d.close;
                    let result = deliver(&state, d).await;
                    if close == Some(true) {
                        // Disconnect after end of data, before the reply.
                        action = Action::Close;
                        break;
                    }
                    session.delivered(&id, result, &mut out);
                    if close == Some(false) {
                        action = Action::Close;
                        break;
                    }
                    continue;
                }
                if matches!(a, Action::Close) {
                    action = Action::Close;
                    break;
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
            if let Some((mark, d)) = session.take_delay() {
                // Everything before the delayed reply goes out now.
                if write_out(&mut stream, &out[..mark], session.tarpit(), &state)
                    .await
                    .is_err()
                    || !pause(&state, d).await
                {
                    return;
                }
                out.drain(..mark);
            }
            if !matches!(action, Action::Continue) {
                break;
            }
        }

        if !out.is_empty() {
            if write_out(&mut stream, &out, session.tarpit(), &state)
                .await
                .is_err()
            {
                return;
            }
            out.clear();
        }
        match action {
            Action::Close => break,
            Action::StartTls => {
                // Anything pipelined after STARTTLS is discarded (RFC 3207 §4.2).
                inbuf.clear();
                let Some(config) = state.tls_config(session.tls_fault()) else {
                    // Handshake-fails fault: drop the connection mid-negotiation.
                    return;
                };
                match stream.upgrade(config).await {
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
        // One shutdown waiter and one idle timer per connection, re-armed only
        // when they fire: no timer or waiter registration per read.
        let read = loop {
            tokio::select! {
                biased;
                r = stream.read_buf(&mut inbuf) => break Some(r),
                _ = &mut idle_timer => {
                    let deadline = last_read + idle;
                    if tokio::time::Instant::now() >= deadline {
                        break None;
                    }
                    idle_timer.as_mut().reset(deadline);
                }
                _ = &mut shutdown => {
                    session.shutting_down(&mut out);
                    let _ = stream.write_all(&out).await;
                    let _ = stream.shutdown().await;
                    return;
                }
            }
        };
        match read {
            Some(Ok(0)) | Some(Err(_)) => break,
            Some(Ok(_)) => last_read = tokio::time::Instant::now(),
            None => {
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

/// Waits for a delay fault; false if the server shut down meanwhile.
async fn pause(state: &ServerState, d: std::time::Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = state.shutdown.cancelled() => false,
    }
}

/// Writes bytes, slowly when a tarpit fault is active (and gives up when the
/// server shuts down).
async fn write_out(
    stream: &mut Stream,
    bytes: &[u8],
    tarpit: Option<u64>,
    state: &ServerState,
) -> std::io::Result<()> {
    match tarpit {
        None => stream.write_all(bytes).await,
        Some(bps) => {
            // Chunks of at most a tenth of a second's worth, then a pause.
            let chunk = (bps / 10).max(1) as usize;
            for part in bytes.chunks(chunk) {
                stream.write_all(part).await?;
                stream.flush().await?;
                let secs = part.len() as f64 / bps as f64;
                if !pause(state, std::time::Duration::from_secs_f64(secs)).await {
                    return Err(std::io::ErrorKind::Interrupted.into());
                }
            }
            Ok(())
        }
    }
}

/// Stores one accepted message: every planned copy, now or (late-delivery
/// fault) after its delay. With a Maildir the writes and fsyncs run on the
/// blocking pool so other sessions keep going.
async fn deliver(state: &Arc<ServerState>, d: Delivery) -> Result<usize, String> {
    let (now, later): (Vec<PlannedCopy>, Vec<PlannedCopy>) =
        d.copies.into_iter().partition(|c| c.after.is_none());
    for copy in later {
        let st = Arc::clone(state);
        let delay = copy.after.unwrap_or_default();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    let st2 = Arc::clone(&st);
                    let mailbox = copy.mailbox;
                    let stored = tokio::task::spawn_blocking(move || st2.store.deliver(copy.mailbox, copy.message)).await;
                    if matches!(stored, Ok(Ok(_))) {
                        count_delivered(&st, mailbox);
                    } else {
                        tracing::error!("a late delivery could not be stored");
                    }
                }
                _ = st.shutdown.cancelled() => {}
            }
        });
    }
    let store_all = |state: &ServerState, copies: Vec<PlannedCopy>| -> Result<usize, String> {
        let mut n = 0;
        for c in copies {
            state
                .store
                .deliver(c.mailbox, c.message)
                .map_err(|e| e.to_string())?;
            count_delivered(state, c.mailbox);
            n += 1;
        }
        Ok(n)
    };
    if state.store.maildir_root().is_some() {
        let st = Arc::clone(state);
        tokio::task::spawn_blocking(move || store_all(&st, now))
            .await
            .map_err(|e| e.to_string())?
    } else {
        store_all(state, now)
    }
}

/// Counts a stored copy for its mailbox's domain.
fn count_delivered(state: &ServerState, mailbox: mailrig_core::world::MailboxId) {
    let address = &state.world.mailbox(mailbox).address;
    crate::state::Metrics::add(&state.metrics.by_domain.get(address.domain()).delivered, 1);
}
