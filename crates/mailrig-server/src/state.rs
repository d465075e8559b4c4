//! What every server of one fake world shares: the world, the store, the
//! journal, TLS material, counters, and the shutdown signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mailrig_core::fault::FaultPlan;
use mailrig_core::{Journal, Store, World};
use parking_lot::RwLock;
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
    /// The active fault rules; the control API changes them at runtime.
    pub faults: RwLock<FaultPlan>,
    /// Cancelled when the server shuts down; every session watches it.
    pub shutdown: CancellationToken,
}

impl ServerState {
    pub fn new(
        world: Arc<World>,
        store: Arc<Store>,
        tls: Arc<TlsMaterial>,
        faults: FaultPlan,
    ) -> Arc<ServerState> {
        Arc::new(ServerState {
            world,
            store,
            journal: Arc::new(Journal::default()),
            tls,
            metrics: Metrics::default(),
            faults: RwLock::new(faults),
            shutdown: CancellationToken::new(),
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
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
