//! The accept loop every protocol shares: accept, enforce the connection limit,
//! optionally wrap in TLS, hand the stream to the protocol's handler, and stop
//! accepting (and let sessions finish) when the server shuts down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

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

/// Accepts connections until shutdown and runs `handler` for each on `tracker`.
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    spec: ListenerSpec,
    state: Arc<ServerState>,
    tracker: TaskTracker,
    handler: H,
) where
    H: Fn(Stream, SocketAddr, Arc<ServerState>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(state.world.limits.max_connections));
    let handler = Arc::new(handler);
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
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            Metrics::add(&state.metrics.connections_refused, 1);
            tracker.spawn(refuse(tcp, spec));
            continue;
        };
        let state = Arc::clone(&state);
        let handler = Arc::clone(&handler);
        tracker.spawn(async move {
            let _permit = permit;
            Metrics::add(&state.metrics.connections_active, 1);
            let stream = if spec.implicit_tls {
                // A TLS fault may break the handshake or swap the certificate.
                match state.tls_config(state.tls_fault(peer)) {
                    None => None,
                    Some(config) => {
                        let hs = Stream::Plain(tcp).upgrade(config);
                        match tokio::time::timeout(state.world.limits.idle_timeout, hs).await {
                            Ok(Ok(s)) => Some(s),
                            _ => None,
                        }
                    }
                }
            } else {
                Some(Stream::Plain(tcp))
            };
            if let Some(stream) = stream {
                handler(stream, peer, Arc::clone(&state)).await;
            }
            state
                .metrics
                .connections_active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
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
