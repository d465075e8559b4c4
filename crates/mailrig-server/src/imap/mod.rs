//! The IMAP4rev1 server (RFC 3501): mail out of the fake world, over the store.
//!
//! * [`framing`] — bytes to whole commands, with line and literal limits;
//! * [`session`] — the sans-I/O state machine, run on a connection by the
//!   shared [`crate::driver`] (TLS, IDLE wake-ups, timeouts); commands in [`folders`]
//!   (LIST, CREATE, STATUS, ...) and [`selected`] (SELECT, FETCH, STORE,
//!   SEARCH, COPY/MOVE, APPEND, EXPUNGE);
//! * [`view`] — a session's sequence-number view and how it catches up with
//!   changes made by other sessions and deliveries; [`idlers`] — IDLE's
//!   direct fan-out, which tells idling sessions of deliveries itself;
//! * [`fetch`], [`mime`], [`search`] — FETCH rendering, the MIME tree with
//!   ENVELOPE/BODYSTRUCTURE, and SEARCH evaluation; [`binary`] — BINARY's
//!   decoded parts;
//! * [`catenate`] — CATENATE's URLs and the bytes they name;
//! * [`sort`], [`thread`] — SORT keys and order, THREAD's two algorithms;
//!   [`context`] — searches kept up to date (CONTEXT=SEARCH);
//! * [`wire`] — response syntax helpers; [`qresync`] — VANISHED's UID
//!   ranges and the checks of `SELECT (QRESYNC ...)`;
//! * [`extended`] — extension syntax `imap-codec` does not parse (SEARCH
//!   RETURN, `$`, MULTIAPPEND), rewritten into syntax it does;
//! * [`notify`] — NOTIFY's filters and events, and what a session is told
//!   unasked;
//! * [`quota`] — QUOTA's commands over the scenario's quotas;
//! * [`list_ext`] — LIST-EXTENDED, LIST-STATUS and SPECIAL-USE, read from the
//!   command's tokens, and the one LIST implementation;
//!
//! Commands are parsed by `imap-codec`; responses are written directly.
//! Extensions: LITERAL+, SASL-IR, ID, ENABLE, IDLE, NAMESPACE, UIDPLUS, MOVE,
//! UNSELECT, CHILDREN, STARTTLS, AUTH=PLAIN, ESEARCH, SEARCHRES, BINARY, MULTIAPPEND,
//! LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CONDSTORE, SORT, SORT=DISPLAY,
//! ESORT, PARTIAL, CONTEXT=SEARCH, THREAD=ORDEREDSUBJECT, THREAD=REFERENCES,
//! QRESYNC, CATENATE, NOTIFY, QUOTA.

pub mod binary;
pub mod catenate;
pub mod context;
pub mod extended;
pub mod fetch;
pub mod folders;
pub mod framing;
pub mod idlers;
pub mod list_ext;
pub mod mime;
pub mod notify;
pub mod qresync;
pub mod quota;
pub mod search;
pub mod selected;
pub mod session;
pub mod sort;
pub mod thread;
pub mod view;
pub mod wire;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::listener::{ListenerSpec, accept_loop};
use crate::state::ServerState;

pub use session::{Action, Session};

/// Serves IMAP on `listener` (implicit TLS for IMAPS) until the server shuts down.
pub async fn serve(
    listener: TcpListener,
    implicit_tls: bool,
    state: Arc<ServerState>,
    tracker: TaskTracker,
) {
    let spec = ListenerSpec {
        name: if implicit_tls { "imaps" } else { "imap" },
        implicit_tls,
        busy_reply: b"* BYE Too many connections; try again later\r\n",
    };
    accept_loop(listener, spec, state, tracker, Session::accepted).await
}
