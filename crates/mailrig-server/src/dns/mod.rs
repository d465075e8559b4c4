//! The world's DNS server (`mailrig serve --dns ADDR`, `MockServer`'s
//! `.dns(addr)`): authoritative for the scenario's zones over UDP and TCP,
//! on hickory-server.
//!
//! * [`answer`] — what to answer, as a pure function of the zones, the query
//!   and the fault that fired (no sockets), and its conversion to hickory
//!   records;
//! * [`handler`] — hickory's `RequestHandler`: asks the fault plan (stage
//!   `dns`), sends the answer, journals the query and counts it;
//! * [`metrics`] — the counters `/metrics` shows, by answer code and transport.
//!
//! UDP and TCP listen on the same port; an answer that does not fit the
//! client's UDP payload is truncated (TC) by hickory, and the `truncate` fault
//! sets TC on purpose so the client retries over TCP.

pub mod answer;
pub mod handler;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use mailrig_core::dns::Zones;
use tokio::net::{TcpListener, UdpSocket};

use crate::state::ServerState;
pub use handler::DnsHandler;
pub use metrics::DnsMetrics;

/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The UDP socket and TCP listener of one DNS server, bound on one port.
#[derive(Debug)]
pub struct DnsSockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
}

impl DnsSockets {
    /// Binds UDP at `addr`, then TCP on the same address and port (with port
    /// 0, the port UDP got; retried a few times if TCP finds it taken).
    pub async fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<DnsSockets> {
        let mut last = None;
        for _ in 0..8 {
            let udp = UdpSocket::bind(addr).await?;
            let local = udp.local_addr()?;
            match crate::listener::bind(local, backlog) {
                Ok(tcp) => return Ok(DnsSockets { udp, tcp }),
                Err(e) if addr.port() == 0 => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no port free for UDP and TCP")))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// Serves DNS until the server's shutdown signal.
pub async fn serve(sockets: DnsSockets, zones: Arc<Zones>, state: Arc<ServerState>) {
    let shutdown = state.shutdown.clone();
    let mut server = Server::new(DnsHandler::new(zones, state));
    server.register_socket(sockets.udp);
    server.register_listener(sockets.tcp, TCP_IDLE, 64 * 1024);
    tokio::select! {
        r = server.block_until_done() => {
            if let Err(e) = r {
                tracing::warn!(error = %e, "the DNS server stopped");
            }
        }
        _ = shutdown.cancelled() => {
            if let Err(e) = server.shutdown_gracefully().await {
                tracing::debug!(error = %e, "DNS server shutdown");
            }
        }
    }
}
