//! What every server of one fake world shares: the world, the store, the
//! journal, TLS material, counters, and the shutdown signal.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mailrig_core::fault::FaultPlan;
use mailrig_core::{Journal, Store, World};
use parking_lot::RwLock;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::tls::TlsMaterial;

/// Shared state of one running fake world; cheap to clone behind an `Arc`.
#[derive(Debug)]
pub struct ServerState {
    pub world: Arc<World>,
    pub store: Arc<Store>,
    pub journal: Arc<Journal>,
    pub tls: Arc<TlsMaterial>,
    pub metrics: Metrics,
    /// Counters of the DNS server (`serve --dns`).
    pub dns: crate::dns::DnsMetrics,
    /// The active fault rules; the control API changes them at runtime.
    pub faults: RwLock<FaultPlan>,
    /// Cancelled when the server shuts down; every session watches it.
    pub shutdown: CancellationToken,
    /// One slot per open connection, shared by every listener: the world's
    /// `max_connections` is one limit for the whole server.
    pub connection_slots: Arc<Semaphore>,
    /// In a world of `[[host]]`s, set on the first host (the one the HTTP API
    /// serves): every host by name, so `/metrics` can report each one.
    pub world_hosts: std::sync::OnceLock<Vec<(String, std::sync::Weak<ServerState>)>>,
    /// Likewise: every host with its hostname and role, for the report of
    /// what arrived where (`GET /api/v1/world/arrivals`).
    pub world_directory: std::sync::OnceLock<Vec<crate::hosts::arrivals::HostEntry>>,
    /// The store's messages as the HTTP list and search see them (a view of
    /// `store`, kept in step by [`crate::search::follow`]).
    pub search: Arc<crate::search::SearchIndex>,
    /// The sender authentication checker, set at start when the world's
    /// `sender_auth` is on (unset: the SMTP path does not look further).
    pub sender_auth: std::sync::OnceLock<Arc<crate::sender_auth::SenderAuth>>,
    /// Counters of the checks (`/metrics`).
    pub auth: crate::sender_auth::metrics::AuthMetrics,
    /// The training lab whose panel `GET /api/v1/lab` and the page show (`serve --lab DIR`).
    pub lab_dir: std::sync::OnceLock<std::path::PathBuf>,
    /// IMAP IDLE's direct fan-out: a board per mailbox idled on now.
    pub idle_boards: Arc<crate::imap::idlers::Boards>,
}

impl ServerState {
    pub fn new(
        world: Arc<World>,
        store: Arc<Store>,
        tls: Arc<TlsMaterial>,
        faults: FaultPlan,
    ) -> Arc<ServerState> {
        Self::with_journal(
            world,
            store,
            tls,
            faults,
            Journal::default(),
            CancellationToken::new(),
        )
    }

    /// A server whose journal is a handle on a shared one and whose shutdown
    /// signal is shared too (each host of a world records into the world's
    /// journal through its own handle, and stops with the world).
    pub fn with_journal(
        world: Arc<World>,
        store: Arc<Store>,
        tls: Arc<TlsMaterial>,
        faults: FaultPlan,
        journal: Journal,
        shutdown: CancellationToken,
    ) -> Arc<ServerState> {
        let metrics = Metrics::for_world(&world);
        let slots = world.limits.max_connections.min(Semaphore::MAX_PERMITS);
        Arc::new(ServerState {
            connection_slots: Arc::new(Semaphore::new(slots)),
            world,
            store,
            journal: Arc::new(journal),
            tls,
            metrics,
            dns: crate::dns::DnsMetrics::default(),
            faults: RwLock::new(faults),
            shutdown,
            world_hosts: std::sync::OnceLock::new(),
            world_directory: std::sync::OnceLock::new(),
            search: Arc::new(crate::search::SearchIndex::new()),
            sender_auth: std::sync::OnceLock::new(),
            auth: Default::default(),
            lab_dir: std::sync::OnceLock::new(),
            idle_boards: Arc::default(),
        })
    }
}

/// Counters exported at `/metrics` and used by tests.
#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_total: AtomicU64,
    pub connections_active: AtomicU64,
    pub connections_refused: AtomicU64,
    /// Messages accepted with 250 at end of data.
    pub messages_accepted: AtomicU64,
    /// Copies stored into mailboxes (one per target mailbox).
    pub messages_delivered: AtomicU64,
    pub messages_rejected: AtomicU64,
    pub recipients_rejected: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Connections accepted, by listener (see [`Metrics::LISTENERS`]).
    pub connections_by_listener: [AtomicU64; 6],
    /// Recipient counters by domain of the world (plus one for all others).
    pub by_domain: DomainMetrics,
}

/// What happened to recipients of one domain.
#[derive(Debug, Default)]
pub struct DomainCounters {
    /// Recipients accepted with 250 at RCPT.
    pub recipients_accepted: AtomicU64,
    /// Recipients refused at RCPT (unknown user, relay, or a fault).
    pub recipients_rejected: AtomicU64,
    /// Copies stored into the domain's mailboxes.
    pub delivered: AtomicU64,
    /// Copies accepted and thrown away by a `drop` fault.
    pub dropped: AtomicU64,
}

/// [`DomainCounters`] for each domain of the world, and one shared by every
/// other domain (so a client cannot grow the table with made-up domains).
#[derive(Debug, Default)]
pub struct DomainMetrics {
    index: HashMap<String, usize>,
    names: Vec<String>,
    counters: Vec<DomainCounters>,
    other: DomainCounters,
}

impl DomainMetrics {
    /// The label of the shared counters of domains that are not the world's.
    pub const OTHER: &'static str = "(other)";

    /// The counters of a domain (case-insensitive).
    pub fn get(&self, domain: &str) -> &DomainCounters {
        let i = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
            self.index.get(&domain.to_ascii_lowercase())
        } else {
            self.index.get(domain)
        };
        i.map_or(&self.other, |&i| &self.counters[i])
    }

    /// (label, counters) for every domain of the world, then the others.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DomainCounters)> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.counters.iter())
            .chain(std::iter::once((Self::OTHER, &self.other)))
    }
}

impl Metrics {
    /// Listener names, in the order of `connections_by_listener`.
    pub const LISTENERS: [&'static str; 6] = ["smtp", "smtps", "imap", "imaps", "pop3", "pop3s"];

    /// Counters with one row per domain of `world`.
    pub fn for_world(world: &World) -> Metrics {
        let names: Vec<String> = world
            .domains
            .iter()
            .map(|d| d.name.to_ascii_lowercase())
            .collect();
        Metrics {
            by_domain: DomainMetrics {
                index: names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), i))
                    .collect(),
                counters: names.iter().map(|_| DomainCounters::default()).collect(),
                names,
                other: DomainCounters::default(),
            },
            ..Metrics::default()
        }
    }

    /// The connection counter of a listener, by its name.
    pub fn listener(&self, name: &str) -> Option<&AtomicU64> {
        let i = Self::LISTENERS.iter().position(|l| *l == name)?;
        Some(&self.connections_by_listener[i])
    }

    /// The counters of a recipient address's domain.
    pub fn rcpt_domain(&self, address: &str) -> &DomainCounters {
        self.by_domain
            .get(address.rsplit_once('@').map_or("", |(_, d)| d))
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
