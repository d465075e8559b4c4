//! Collectors at work: every `interval`, each `[[collector]]` logs in to its
//! accounts over POP3 (the prober's client, [`mailrig_probe::Pop3Client`]),
//! fetches what is new, and stores it into mailboxes of its target host:
//! the account's own mailbox, or for multidrop the mailboxes its headers
//! name ([`mailrig_core::collector::multidrop_recipients`]). With `keep` the
//! messages stay on the server and their UIDLs are remembered; without, they
//! are deleted (DELE, committed by QUIT).
//!
//! Every fetched message is journaled on the target host (`collected`, with
//! the mailboxes it went to: none means lost), every account that could not
//! be read too (`collect-failed`: wrong password, source down).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use mailrig_core::collector::{Collector, Delivery, UidlMemory, multidrop_recipients};
use mailrig_core::fault::Stage;
use mailrig_core::journal::JournalRecord;
use mailrig_core::{Envelope, JournalEvent, NewMessage};
use mailrig_probe::Pop3Client;

use crate::state::{Metrics, ServerState};

/// What one round of a collector did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CollectRound {
    /// Messages fetched (RETR) from all accounts.
    pub fetched: usize,
    /// Copies stored into the target host's mailboxes.
    pub delivered: usize,
    /// Fetched messages that went nowhere (multidrop without a recipient in its headers).
    pub lost: usize,
    /// Accounts that could not be read, with the reason.
    pub failed: Vec<(String, String)>,
    /// True when the collector is stopped and did nothing.
    pub stopped: bool,
}

/// One collector with its memory of fetched UIDLs.
#[derive(Debug)]
pub struct CollectorRunner {
    pub spec: Collector,
    /// The source's POP3 address (`None`: the source host is down or runs no POP3).
    source: Option<SocketAddr>,
    target: Arc<ServerState>,
    memory: tokio::sync::Mutex<UidlMemory>,
}

/// How long one POP3 exchange may take.
const LIMIT: Duration = Duration::from_secs(10);

impl CollectorRunner {
    pub fn new(spec: Collector, source: Option<SocketAddr>, target: Arc<ServerState>) -> Self {
        CollectorRunner {
            spec,
            source,
            target,
            memory: tokio::sync::Mutex::new(UidlMemory::default()),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Runs one round now (rounds never overlap: the interval task and a
    /// caller take turns).
    pub async fn round(&self) -> CollectRound {
        let mut memory = self.memory.lock().await;
        let mut out = CollectRound::default();
        if !self.spec.enabled {
            out.stopped = true;
            return out;
        }
        if self.spec.forget_uidls {
            memory.forget();
        }
        for account in &self.spec.accounts {
            if let Err(reason) = self.account(account, &mut memory, &mut out).await {
                self.journal(
                    &account.login,
                    None,
                    JournalEvent::CollectFailed {
                        collector: self.spec.name.clone(),
                        account: account.login.clone(),
                        reason: reason.clone(),
                    },
                );
                out.failed.push((account.login.clone(), reason));
            }
        }
        out
    }

    async fn account(
        &self,
        account: &mailrig_core::collector::CollectAccount,
        memory: &mut UidlMemory,
        out: &mut CollectRound,
    ) -> Result<(), String> {
        let addr = self
            .source
            .ok_or_else(|| "the source host is down or runs no POP3 listener".to_string())?;
        let mut pop = Pop3Client::connect_plain(addr, &account.login, &account.password, LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        let listing = pop.uidl_listing().await.map_err(|e| e.to_string())?;
        let todo: Vec<(u32, String)> = if self.spec.keep {
            memory
                .new_messages(&account.login, &listing)
                .into_iter()
                .cloned()
                .collect()
        } else {
            listing
        };
        for (n, uidl) in todo {
            let raw = pop.retrieve(n).await.map_err(|e| e.to_string())?;
            out.fetched += 1;
            let to: Vec<String> = match &account.delivery {
                Delivery::Mailbox(a) => vec![a.clone()],
                Delivery::Multidrop { domains } => multidrop_recipients(&raw, domains)
                    .into_iter()
                    .filter(|a| self.target.world.mailbox_by_address(a).is_some())
                    .collect(),
            };
            let raw = Bytes::from(raw);
            let mut delivered_to = Vec::new();
            for a in &to {
                let Some(id) = self.target.world.mailbox_by_address(a) else {
                    continue;
                };
                let envelope = Arc::new(Envelope {
                    mail_from: String::new(),
                    rcpt_to: vec![a.clone()],
                    peer: addr.to_string(),
                    helo: format!("collector {}", self.spec.name),
                    auth_user: None,
                    tls: false,
                    received_at: Utc::now(),
                    auth: None,
                });
                let store = Arc::clone(&self.target.store);
                let msg = NewMessage::received(raw.clone(), envelope);
                let stored = tokio::task::spawn_blocking(move || store.deliver(id, msg)).await;
                if matches!(stored, Ok(Ok(_))) {
                    delivered_to.push(a.clone());
                    Metrics::add(&self.target.metrics.messages_delivered, 1);
                    Metrics::add(&self.target.metrics.rcpt_domain(a).delivered, 1);
                }
            }
            out.delivered += delivered_to.len();
            if delivered_to.is_empty() {
                out.lost += 1;
            }
            self.journal(
                &account.login,
                crate::faults::message_id(&raw),
                JournalEvent::Collected {
                    collector: self.spec.name.clone(),
                    account: account.login.clone(),
                    uidl: uidl.clone(),
                    delivered_to,
                },
            );
            if self.spec.keep {
                memory.remember(&account.login, &uidl);
            } else {
                pop.dele(n).await.map_err(|e| e.to_string())?;
            }
        }
        if self.spec.drop_before_quit {
            // The fault: the connection goes away without QUIT, so the
            // server never enters UPDATE and commits no DELE.
            drop(pop);
        } else {
            pop.quit().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn journal(&self, account: &str, message_id: Option<String>, event: JournalEvent) {
        self.target.journal.record(JournalRecord {
            stage: Stage::Collect,
            rule: None,
            message_id,
            mail_from: None,
            rcpt: Some(account.to_string()),
            peer: self.source.map(|a| a.to_string()),
            event,
        });
    }

    /// Rounds every `interval` until the server shuts down.
    pub(crate) async fn run(self: Arc<Self>) {
        let shutdown = self.target.shutdown.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.spec.interval) => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.round() => {}
            }
        }
    }
}
