//! The world's hosts on the network: one [`ServerState`] per `[[host]]` of
//! the scenario (its own world, store, fault rules and certificate from the
//! one local CA), its listeners on its own loopback address, and for a backup
//! MX or relay the task that forwards its queue ([`forward`]).
//!
//! Every host records into the world's one journal through its own handle,
//! so each entry names its host. A host that is `down` binds nothing (a
//! client's connection is refused); a `blackhole` host has one more fault
//! rule, `host-blackhole`: every copy accepted with 250 and dropped.
//! [`arrivals`] reports what every host holds and the way each copy came.

pub mod arrivals;
pub mod forward;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use mailrig_core::fault::spec::ActionKind;
use mailrig_core::fault::{FaultRuleSpec, Stage};
use mailrig_core::host::Host;
use mailrig_core::store::{INBOX, StoredMessage};
use mailrig_core::{Journal, Store, World};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::mock::StartError;
use crate::state::ServerState;
use crate::tls::TlsMaterial;

/// The name of the rule a `blackhole = true` host gets.
pub const BLACKHOLE_RULE: &str = "host-blackhole";

/// The addresses a host listens on (`None`: off, or the host is down).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostAddresses {
    pub smtp: Option<SocketAddr>,
    pub smtps: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
}

/// One running host of the world.
#[derive(Debug)]
pub struct HostServer {
    /// The host as the scenario describes it.
    pub host: Host,
    state: Arc<ServerState>,
    addrs: HostAddresses,
    /// Held by a forwarding pass, so the retry task and `forward_now` never
    /// send the same queued copy twice.
    pub(crate) forward_lock: Arc<tokio::sync::Mutex<()>>,
}

impl HostServer {
    pub fn name(&self) -> &str {
        &self.host.name
    }

    pub fn addresses(&self) -> HostAddresses {
        self.addrs
    }

    /// The SMTP address (panics if the host runs no SMTP listener or is down).
    pub fn smtp_addr(&self) -> SocketAddr {
        self.addrs.smtp.expect("this host runs no SMTP listener")
    }

    /// The POP3 address (panics if the host runs no POP3 listener or is down).
    pub fn pop3_addr(&self) -> SocketAddr {
        self.addrs.pop3.expect("this host runs no POP3 listener")
    }

    /// The IMAP address (panics if the host runs no IMAP listener or is down).
    pub fn imap_addr(&self) -> SocketAddr {
        self.addrs.imap.expect("this host runs no IMAP listener")
    }

    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// The host's own world: its domains and the mailboxes it stores.
    pub fn world(&self) -> &World {
        &self.state.world
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The INBOX of this host's mailbox with this address; `None` when the
    /// host stores no such mailbox.
    pub fn inbox(&self, address: &str) -> Option<Vec<StoredMessage>> {
        let id = self.state.world.mailbox_by_address(address)?;
        self.state.store.mailbox(id).messages(INBOX).ok()
    }

    /// Messages held by this host, all mailboxes together (a backup MX's queue).
    pub fn total_messages(&self) -> usize {
        self.state.store.total_messages()
    }
}

/// The state of one host: its store (memory, or Maildir under `maildir/NAME`),
/// its rules, its certificate and its handle on the world's journal.
pub(crate) fn state_for(
    host: &Host,
    tls: Arc<TlsMaterial>,
    journal: &Journal,
    maildir: Option<&Path>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<Arc<ServerState>, StartError> {
    let world = Arc::clone(&host.world);
    let store = Arc::new(match maildir {
        Some(dir) => Store::open_maildir(&world, &dir.join(&host.name))?,
        None => Store::memory(&world),
    });
    let mut faults = host.faults.rebuild(&world);
    if host.blackhole {
        let mut spec = FaultRuleSpec::new(Stage::Deliver, ActionKind::Drop);
        spec.name = Some(BLACKHOLE_RULE.to_string());
        spec.description =
            Some("host-level fault: every message accepted with 250 and stored nowhere".into());
        // A drop at delivery is valid in every world.
        let _ = faults.add(spec, &world);
    }
    Ok(ServerState::with_journal(
        world,
        store,
        tls,
        faults,
        journal.for_host(&host.name),
        shutdown,
    ))
}

/// A host's listeners, bound and not yet accepting.
#[derive(Debug, Default)]
pub(crate) struct BoundHost {
    smtp: Option<TcpListener>,
    smtps: Option<TcpListener>,
    submission: Option<TcpListener>,
    imap: Option<TcpListener>,
    pop3: Option<TcpListener>,
}

/// Binds a host's listeners at its address (port 0 everywhere with
/// `free_ports`); a host that is down binds nothing.
pub(crate) fn bind_host(
    host: &Host,
    free_ports: bool,
    backlog: u32,
) -> Result<BoundHost, StartError> {
    if host.down {
        return Ok(BoundHost::default());
    }
    let ports = if free_ports {
        host.listeners.on_free_ports()
    } else {
        host.listeners
    };
    let bind = |what: &'static str, port: Option<u16>| -> Result<Option<TcpListener>, StartError> {
        match port {
            None => Ok(None),
            Some(p) => {
                let addr = SocketAddr::from((host.address, p));
                crate::listener::bind(addr, backlog)
                    .map(Some)
                    .map_err(|e| StartError::Bind {
                        what,
                        addr,
                        reason: format!("{e} (host '{}')", host.name),
                    })
            }
        }
    };
    Ok(BoundHost {
        smtp: bind("SMTP", ports.smtp)?,
        smtps: bind("SMTPS", ports.smtps)?,
        submission: bind("submission", ports.submission)?,
        imap: bind("IMAP", ports.imap)?,
        pop3: bind("POP3", ports.pop3)?,
    })
}

/// Starts serving a bound host.
pub(crate) fn serve_host(
    host: Host,
    bound: BoundHost,
    state: Arc<ServerState>,
    tracker: &TaskTracker,
) -> HostServer {
    let local = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
    let addrs = HostAddresses {
        smtp: local(&bound.smtp),
        smtps: local(&bound.smtps),
        submission: local(&bound.submission),
        imap: local(&bound.imap),
        pop3: local(&bound.pop3),
    };
    for (l, tls) in [
        (bound.smtp, false),
        (bound.submission, false),
        (bound.smtps, true),
    ] {
        if let Some(l) = l {
            tracker.spawn(crate::smtp::serve(
                l,
                tls,
                Arc::clone(&state),
                tracker.clone(),
            ));
        }
    }
    if let Some(l) = bound.imap {
        tracker.spawn(crate::imap::serve(
            l,
            false,
            Arc::clone(&state),
            tracker.clone(),
        ));
    }
    if let Some(l) = bound.pop3 {
        tracker.spawn(crate::pop3::serve(
            l,
            false,
            Arc::clone(&state),
            tracker.clone(),
        ));
    }
    HostServer {
        host,
        state,
        addrs,
        forward_lock: Arc::default(),
    }
}
