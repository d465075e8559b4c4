//! Collectors at work: every `interval`, each `[[collector]]` logs in to its
//! accounts over POP3 (the prober's client, [`mailrig_probe::Pop3Client`])
//! or IMAP ([`imap::ImapFetcher`]), fetches what is new, and stores it into
//! mailboxes of its target host: the account's own mailbox, or for
//! multidrop the mailboxes its headers name
//! ([`mailrig_core::collector::multidrop_recipients`]). With `keep` the
//! messages stay on the server and their UIDLs (IMAP: `UIDVALIDITY.UID`)
//! are remembered; without, they are deleted (POP3: DELE, committed by
//! QUIT; IMAP: `\Deleted` and EXPUNGE once every message was fetched).
//!
//! Every fetched message is journaled on the target host (`collected`, with
//! the mailboxes it went to: none means lost), every account that could not
//! be read too (`collect-failed`: wrong password, source down).
//!
//! Fault rules at stage `collect` (the target host's, and those the control
//! API adds) are asked once per account and round, with the account's login
//! as `user`, its domain as `domain` and the source's address as `client`:
//! `fail-login` (refused as with a wrong password), `disconnect` (the
//! session drops before QUIT / EXPUNGE: duplicates), `forget-uidls` (the
//! account's UIDL state is lost) and `stop-collector` (nothing more is
//! fetched this round). Each fired rule is journaled with its name.

pub mod imap;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use mailrig_core::collector::{
    CollectAccount, CollectProtocol, Collector, Delivery, UidlMemory, multidrop_recipients,
};
use mailrig_core::fault::{Action, Facts, Fired, Stage};
use mailrig_core::journal::{CollectFailed, Collected, JournalRecord};
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
    /// True when the collector is stopped (`enabled = false`: it did
    /// nothing; a `stop-collector` rule: it stopped at the account it matched).
    pub stopped: bool,
}

/// One collector with its memory of fetched UIDLs.
#[derive(Debug)]
pub struct CollectorRunner {
    pub spec: Collector,
    /// The source's POP3 or IMAP address (`None`: the source host is down or
    /// runs no such listener).
    source: Option<SocketAddr>,
    target: Arc<ServerState>,
    /// The state whose fault rules the control API edits, when it is not
    /// the target's (its `collect` rules apply too).
    api: Option<Arc<ServerState>>,
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
            api: None,
            memory: tokio::sync::Mutex::new(UidlMemory::default()),
        }
    }

    /// Also applies the `collect` rules of `api` (the world's first host,
    /// whose rules `POST /api/v1/faults` changes).
    pub fn with_rules_of(mut self, api: Arc<ServerState>) -> Self {
        if !Arc::ptr_eq(&api, &self.target) {
            self.api = Some(api);
        }
        self
    }

    /// The `collect` rules that fire for this account now.
    fn faults_for(&self, account: &CollectAccount) -> Vec<Fired> {
        let facts = Facts {
            client: self.source.map(|a| a.ip()),
            user: Some(&account.login),
            domain: account.login.rsplit_once('@').map(|(_, d)| d),
            ..Facts::default()
        };
        let mut fired = Vec::new();
        for st in std::iter::once(&self.target).chain(self.api.as_ref()) {
            let plan = st.faults.read();
            if plan.has_stage(Stage::Collect) {
                fired.extend(plan.decide(Stage::Collect, &facts));
            }
        }
        fired
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
            let mut drop_session = self.spec.drop_before_quit;
            let mut refused_by = None;
            let mut stop = false;
            for f in self.faults_for(account) {
                match f.action {
                    Action::StopCollector => stop = true,
                    Action::ForgetUidls => memory.forget_account(&account.login),
                    Action::Disconnect { .. } => drop_session = true,
                    Action::FailLogin => refused_by = Some(f.rule.clone()),
                    _ => {}
                }
                if f.action != Action::FailLogin {
                    self.journal_rule(
                        &account.login,
                        Some(f.rule.clone()),
                        JournalEvent::Fault {
                            action: Box::new(f.action),
                        },
                    );
                }
            }
            if stop {
                out.stopped = true;
                break;
            }
            let result = match &refused_by {
                Some(rule) => Err(format!(
                    "login refused by fault rule '{rule}' (as with a wrong password)"
                )),
                None => {
                    self.account(account, &mut memory, &mut out, drop_session)
                        .await
                }
            };
            if let Err(reason) = result {
                self.journal_rule(
                    &account.login,
                    refused_by,
                    JournalEvent::CollectFailed(Box::new(CollectFailed {
                        collector: self.spec.name.clone(),
                        account: account.login.clone(),
                        reason: reason.clone(),
                    })),
                );
                out.failed.push((account.login.clone(), reason));
            }
        }
        out
    }

    async fn account(
        &self,
        account: &CollectAccount,
        memory: &mut UidlMemory,
        out: &mut CollectRound,
        drop_session: bool,
    ) -> Result<(), String> {
        let addr = self.source.ok_or_else(|| {
            format!(
                "the source host is down or runs no {} listener",
                self.spec.protocol.name().to_ascii_uppercase()
            )
        })?;
        match self.spec.protocol {
            CollectProtocol::Pop3 => {
                self.account_pop3(addr, account, memory, out, drop_session)
                    .await
            }
            CollectProtocol::Imap => {
                self.account_imap(addr, account, memory, out, drop_session)
                    .await
            }
        }
    }

    async fn account_imap(
        &self,
        addr: SocketAddr,
        account: &CollectAccount,
        memory: &mut UidlMemory,
        out: &mut CollectRound,
        drop_session: bool,
    ) -> Result<(), String> {
        let mut imap =
            imap::ImapFetcher::connect(addr, &account.login, &account.password, LIMIT).await?;
        let validity = imap.uidvalidity;
        let listing: Vec<(u32, String)> = imap
            .uids()
            .await?
            .into_iter()
            .map(|u| (u, format!("{validity}.{u}")))
            .collect();
        let todo: Vec<(u32, String)> = if self.spec.keep {
            memory
                .new_messages(&account.login, &listing)
                .into_iter()
                .cloned()
                .collect()
        } else {
            listing
        };
        // Fetched in batches, each message stored as it arrives; a message
        // the server does not send (expunged meanwhile) fails the account,
        // as a connector's fetch error would.
        let mut fetched = Vec::new();
        for batch in todo.chunks(imap::FETCH_BATCH) {
            let uids: Vec<u32> = batch.iter().map(|(u, _)| *u).collect();
            let mut pending: std::collections::HashMap<u32, &String> =
                batch.iter().map(|(u, k)| (*u, k)).collect();
            imap.start_fetch(&uids).await?;
            while let Some((uid, raw)) = imap.next_fetched().await? {
                // A body not asked for (or sent twice) is passed over.
                let Some(key) = pending.remove(&uid) else {
                    continue;
                };
                self.store_fetched(addr, account, raw, key, out).await;
                if self.spec.keep {
                    memory.remember(&account.login, key);
                }
                fetched.push(uid);
            }
            if let Some(uid) = uids.iter().find(|u| pending.contains_key(u)) {
                return Err(format!(
                    "IMAP UID FETCH {uid}: the server sent no BODY[] for it"
                ));
            }
        }
        if drop_session {
            // The fault: the connection goes away before the fetched
            // messages are flagged and expunged.
            drop(imap);
            return Ok(());
        }
        if !self.spec.keep {
            imap.delete(&fetched).await?;
        }
        imap.logout().await
    }

    /// Stores one fetched message into the target host and journals it.
    async fn store_fetched(
        &self,
        addr: SocketAddr,
        account: &CollectAccount,
        raw: Vec<u8>,
        uidl: &str,
        out: &mut CollectRound,
    ) {
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
                mail_from: "".into(),
                rcpt_to: vec![a.clone()].into(),
                peer: addr.to_string().into(),
                helo: format!("collector {}", self.spec.name).into(),
                auth_user: None,
                tls: false,
                received_at: Utc::now(),
                auth: None,
            });
            let msg = NewMessage::received(raw.clone(), envelope);
            // On the blocking pool for a Maildir (writes, fsync), inline for
            // the memory store, as the sessions' driver does.
            let stored = if self.target.store.maildir_root().is_some() {
                let store = Arc::clone(&self.target.store);
                tokio::task::spawn_blocking(move || store.deliver(id, msg))
                    .await
                    .is_ok_and(|r| r.is_ok())
            } else {
                self.target.store.deliver(id, msg).is_ok()
            };
            if stored {
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
            JournalEvent::Collected(Box::new(Collected {
                collector: self.spec.name.clone(),
                account: account.login.clone(),
                uidl: uidl.to_string(),
                delivered_to,
            })),
        );
    }

    async fn account_pop3(
        &self,
        addr: SocketAddr,
        account: &CollectAccount,
        memory: &mut UidlMemory,
        out: &mut CollectRound,
        drop_session: bool,
    ) -> Result<(), String> {
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
            self.store_fetched(addr, account, raw, &uidl, out).await;
            if self.spec.keep {
                memory.remember(&account.login, &uidl);
            } else {
                pop.dele(n).await.map_err(|e| e.to_string())?;
            }
        }
        if drop_session {
            // The fault: the connection goes away without QUIT, so the
            // server never enters UPDATE and commits no DELE.
            drop(pop);
        } else {
            pop.quit().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn journal(&self, account: &str, message_id: Option<String>, event: JournalEvent) {
        self.journal_entry(account, None, message_id, event);
    }

    fn journal_rule(&self, account: &str, rule: Option<String>, event: JournalEvent) {
        self.journal_entry(account, rule, None, event);
    }

    fn journal_entry(
        &self,
        account: &str,
        rule: Option<String>,
        message_id: Option<String>,
        event: JournalEvent,
    ) {
        self.target.journal.record(JournalRecord {
            stage: Stage::Collect,
            rule: rule.map(Into::into),
            message_id: message_id.map(Into::into),
            mail_from: None,
            rcpt: Some(account.into()),
            peer: self.source.map(|a| a.to_string().into()),
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
