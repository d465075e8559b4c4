//! The accept loop every protocol shares: bind with a large backlog, accept,
//! enforce the server-wide connection limit, run the implicit-TLS handshake
//! (under the connection's TLS fault), then run the protocol's session on the
//! one [`driver`](crate::driver), and stop accepting (letting sessions finish)
//! when the server shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::task::TaskTracker;

use crate::driver::{self, Session, TlsFaultOnce};
use crate::net::Stream;
use crate::state::{Metrics, ServerState};

/// How a listener greets and refuses.
#[derive(Debug, Clone, Copy)]
pub struct ListenerSpec {
    /// For logs: "smtp", "imaps", ...
    pub name: &'static str,
    /// TLS from the first byte (SMTPS, IMAPS, POP3S).
    pub implicit_tls: bool,
    /// Written to a client refused because of the connection limit, before closing.
    pub busy_reply: &'static [u8],
}

/// What a new session knows of its connection.
#[derive(Debug)]
pub struct Accepted {
    pub peer: SocketAddr,
    /// TLS from the first byte.
    pub tls: bool,
    /// The connection's TLS fault (already decided for implicit TLS).
    pub tls_fault: TlsFaultOnce,
}

/// Binds a TCP listener with a listen backlog of `backlog`.
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Counts a connection as active for as long as it lives.
struct Active<'a>(&'a ServerState);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0
            .metrics
            .connections_active
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections until shutdown and runs a session made by `make` for
/// each on `tracker`.
pub async fn accept_loop<S, M>(
    listener: TcpListener,
    spec: ListenerSpec,
    state: Arc<ServerState>,
    tracker: TaskTracker,
    make: M,
) where
    S: Session,
    M: Fn(Arc<ServerState>, Accepted) -> S + Send + Sync + 'static,
{
    let make = Arc::new(make);
    loop {
        let accepted = tokio::select! {
            _ = state.shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little, keep serving.
                tracing::warn!(listener = spec.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        Metrics::add(&state.metrics.connections_total, 1);
        if let Some(c) = state.metrics.listener(spec.name) {
            Metrics::add(c, 1);
        }
        // One limit for the whole server, whichever listener the client chose.
        let Ok(permit) = Arc::clone(&state.connection_slots).try_acquire_owned() else {
            Metrics::add(&state.metrics.connections_refused, 1);
            tracker.spawn(refuse(tcp, spec));
            continue;
        };
        let state = Arc::clone(&state);
        let make = Arc::clone(&make);
        tracker.spawn(async move {
            let _permit = permit;
            Metrics::add(&state.metrics.connections_active, 1);
            let _active = Active(&state);
            let (stream, tls_fault) = if spec.implicit_tls {
                // A TLS fault may break the handshake or swap the certificate.
                let fault = state.tls_fault(peer);
                let Some(config) = state.tls_config(fault) else {
                    return;
                };
                let limit = state
                    .world
                    .limits
                    .idle_timeout
                    .min(driver::HANDSHAKE_TIMEOUT);
                let hs = Stream::Plain(tcp).upgrade(config);
                let stream = tokio::select! {
                    r = tokio::time::timeout(limit, hs) => match r {
                        Ok(Ok(s)) => s,
                        _ => return,
                    },
                    _ = state.shutdown.cancelled() => return,
                };
                (stream, TlsFaultOnce::decided(fault))
            } else {
                (Stream::Plain(tcp), TlsFaultOnce::default())
            };
            let info = Accepted {
                peer,
                tls: stream.is_tls(),
                tls_fault,
            };
            let session = make(Arc::clone(&state), info);
            driver::run(session, stream, &state).await;
        });
    }
}

async fn refuse(mut tcp: TcpStream, spec: ListenerSpec) {
    let write = async {
        if spec.implicit_tls {
            return;
        }
        let _ = tcp.write_all(spec.busy_reply).await;
        let _ = tcp.shutdown().await;
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), write).await;
}
