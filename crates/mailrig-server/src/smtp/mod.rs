//! The SMTP server: mail into the fake world.
//!
//! [`session`] is the protocol state machine (no I/O), [`data`] the
//! DATA-phase byte machine and [`trace`] the trace headers and reply lines;
//! the shared [`crate::driver`] runs them on a connection. [`serve`] runs the
//! accept loop for a plain (port 25/587 style) or implicit-TLS (port 465
//! style) listener.

pub mod data;
pub mod session;
pub mod trace;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::listener::{ListenerSpec, accept_loop};
use crate::state::ServerState;

/// Serves SMTP on `listener` until the server shuts down.
pub async fn serve(
    listener: TcpListener,
    implicit_tls: bool,
    state: Arc<ServerState>,
    tracker: TaskTracker,
) {
    let spec = ListenerSpec {
        name: if implicit_tls { "smtps" } else { "smtp" },
        implicit_tls,
        busy_reply: b"421 4.7.0 Error: too many connections; try again later\r\n",
    };
    accept_loop(listener, spec, state, tracker, session::Session::accepted).await
}
