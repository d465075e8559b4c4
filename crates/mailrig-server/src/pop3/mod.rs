//! The POP3 server: mail out of the fake world, over the same INBOX as IMAP.
//!
//! [`session`] is the protocol state machine (no I/O), run on a connection by
//! the shared [`crate::driver`]. [`serve`] runs the accept loop for
//! a plain (port 110 style, STLS offered) or implicit-TLS (port 995 style)
//! listener.

pub mod session;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::listener::{ListenerSpec, accept_loop};
use crate::state::ServerState;

/// Serves POP3 on `listener` until the server shuts down.
pub async fn serve(
    listener: TcpListener,
    implicit_tls: bool,
    state: Arc<ServerState>,
    tracker: TaskTracker,
) {
    let spec = ListenerSpec {
        name: if implicit_tls { "pop3s" } else { "pop3" },
        implicit_tls,
        busy_reply: b"-ERR [SYS/TEMP] too many connections; try again later\r\n",
    };
    accept_loop(listener, spec, state, tracker, session::Session::accepted).await
}
