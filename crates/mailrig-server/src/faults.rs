//! The servers' side of fault injection: ask the world's fault plan at a stage,
//! write every fired rule to the journal, pick the TLS configuration a TLS
//! fault calls for, and change the rules at run time ([`FaultInfo`] and the
//! `*_fault*` methods, which the HTTP API and `MockServer` both use). The
//! rules themselves live in `mailrig_core::fault`.

use std::net::SocketAddr;
use std::sync::Arc;

use mailrig_core::fault::spec::ActionKind;
use mailrig_core::fault::{Action, Facts, FaultRule, FaultRuleSpec, Fired, Stage, TlsFault};
use mailrig_core::journal::{JournalEvent, JournalRecord};
use mailrig_core::world::MailboxId;
use rustls::ServerConfig;
use serde::Serialize;

use crate::state::ServerState;

/// What the journal should say about the message a fault concerns.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    pub message_id: Option<&'a str>,
    pub mail_from: Option<&'a str>,
    pub rcpt: Option<&'a str>,
    pub peer: Option<SocketAddr>,
}

/// One fault rule as the control API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultInfo {
    pub name: String,
    pub stage: Stage,
    pub action: ActionKind,
    pub enabled: bool,
    /// How many times the rule fired since it was added.
    pub fired: u64,
    /// The rule as written (same keys as a `[[fault]]` table); its `name` is
    /// filled in and `enabled` is the current state.
    pub spec: FaultRuleSpec,
}

impl FaultInfo {
    pub fn of(rule: &FaultRule) -> FaultInfo {
        let mut spec = rule.spec.clone();
        spec.enabled = Some(rule.enabled());
        FaultInfo {
            name: rule.name.clone(),
            stage: rule.stage,
            action: rule.spec.action,
            enabled: rule.enabled(),
            fired: rule.fired(),
            spec,
        }
    }
}

/// Why a fault rule could not be added or found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The rule is not valid for this world (stage, action, parameters, targets).
    #[error("invalid fault rule: {0}")]
    Invalid(String),
    /// A rule with this name exists already.
    #[error("a fault rule named '{0}' already exists")]
    Exists(String),
    #[error("no fault rule named '{0}'")]
    Unknown(String),
}

impl ServerState {
    /// Adds a rule at the end of the plan; returns it and warnings (e.g. a
    /// selector that matches nothing). A rule without a name gets `fault-N`.
    pub fn add_fault(&self, spec: FaultRuleSpec) -> Result<(FaultInfo, Vec<String>), FaultError> {
        let mut spec = spec;
        let mut plan = self.faults.write();
        match &spec.name {
            Some(n) if plan.rule(n).is_some() => return Err(FaultError::Exists(n.clone())),
            Some(n) if n.trim().is_empty() => {
                return Err(FaultError::Invalid("`name` must not be empty".into()));
            }
            Some(_) => {}
            None => {
                let mut n = plan.len() + 1;
                while plan.rule(&format!("fault-{n}")).is_some() {
                    n += 1;
                }
                spec.name = Some(format!("fault-{n}"));
            }
        }
        let name = spec.name.clone().unwrap_or_default();
        let warnings = plan.add(spec, &self.world).map_err(FaultError::Invalid)?;
        let info = plan
            .rule(&name)
            .map(|r| FaultInfo::of(r))
            .ok_or_else(|| FaultError::Unknown(name.clone()))?;
        for w in &warnings {
            tracing::warn!(rule = %name, "{w}");
        }
        Ok((info, warnings))
    }

    /// Every rule, in plan order.
    pub fn fault_infos(&self) -> Vec<FaultInfo> {
        self.faults
            .read()
            .rules()
            .iter()
            .map(|r| FaultInfo::of(r))
            .collect()
    }

    pub fn fault_info(&self, name: &str) -> Result<FaultInfo, FaultError> {
        self.faults
            .read()
            .rule(name)
            .map(|r| FaultInfo::of(r))
            .ok_or_else(|| FaultError::Unknown(name.to_string()))
    }

    /// Turns a rule on or off (its counters are kept).
    pub fn set_fault_enabled(&self, name: &str, on: bool) -> Result<FaultInfo, FaultError> {
        let plan = self.faults.read();
        let rule = plan
            .rule(name)
            .ok_or_else(|| FaultError::Unknown(name.to_string()))?;
        rule.set_enabled(on);
        Ok(FaultInfo::of(rule))
    }

    pub fn remove_fault(&self, name: &str) -> Result<(), FaultError> {
        if self.faults.write().remove(name) {
            Ok(())
        } else {
            Err(FaultError::Unknown(name.to_string()))
        }
    }

    /// Removes every rule; returns how many there were.
    pub fn clear_faults(&self) -> usize {
        // Rule by rule, so the plan keeps its start time (`from_secs`/`until_secs`).
        let mut plan = self.faults.write();
        let names: Vec<String> = plan.rules().iter().map(|r| r.name.clone()).collect();
        for n in &names {
            plan.remove(n);
        }
        names.len()
    }

    /// The rules that fire at `stage`, each already written to the journal.
    pub fn faults_at(&self, stage: Stage, facts: &Facts<'_>, subject: &Subject<'_>) -> Vec<Fired> {
        let fired = {
            let plan = self.faults.read();
            if plan.is_empty() {
                return Vec::new();
            }
            plan.decide(stage, facts)
        };
        for f in &fired {
            let event = match &f.action {
                Action::Reply {
                    code,
                    enhanced,
                    text,
                } => JournalEvent::Rejected {
                    code: *code,
                    enhanced: enhanced.as_str().into(),
                    text: text.as_str().into(),
                },
                Action::Drop => {
                    let domain = facts
                        .domain
                        .or_else(|| {
                            subject
                                .rcpt
                                .and_then(|r| r.rsplit_once('@'))
                                .map(|(_, d)| d)
                        })
                        .unwrap_or("");
                    crate::state::Metrics::add(&self.metrics.by_domain.get(domain).dropped, 1);
                    JournalEvent::Dropped
                }
                Action::Misroute { to_address, .. } => JournalEvent::Misrouted {
                    intended: subject.rcpt.unwrap_or("").into(),
                    actual: to_address.as_str().into(),
                },
                other => JournalEvent::Fault {
                    action: Box::new(other.clone()),
                },
            };
            self.journal.record(JournalRecord {
                stage,
                rule: Some(f.rule.as_str().into()),
                message_id: subject.message_id.map(Into::into),
                mail_from: subject.mail_from.map(Into::into),
                rcpt: subject.rcpt.or(facts.rcpt).map(Into::into),
                peer: subject.peer.map(|p| p.to_string().into()),
                event,
            });
        }
        fired
    }

    /// The rules that fire at a read-side stage (`imap-login`, `imap-select`,
    /// `imap-fetch`, `pop3`): the facts are the client, the login name and
    /// the mailbox it belongs to (with its domain). The journal entry names
    /// the mailbox's address as `rcpt`, so `journal?mailbox=` finds it.
    pub fn reader_faults(
        &self,
        stage: Stage,
        peer: Option<SocketAddr>,
        user: Option<&str>,
        mailbox: Option<MailboxId>,
    ) -> Vec<Fired> {
        self.reader_faults_as(stage, peer, user, mailbox, false)
    }

    /// The rules that would fire at a read-side stage for these facts, looked
    /// at without firing them: no counter moves and nothing is journalled
    /// ([`FaultPlan::peek`](mailrig_core::fault::FaultPlan::peek)). For
    /// answers the client did not ask for, such as NOTIFY's STATUS.
    pub fn reader_faults_peek(
        &self,
        stage: Stage,
        peer: Option<SocketAddr>,
        user: Option<&str>,
        mailbox: Option<MailboxId>,
    ) -> Vec<Fired> {
        self.reader_faults_as(stage, peer, user, mailbox, true)
    }

    fn reader_faults_as(
        &self,
        stage: Stage,
        peer: Option<SocketAddr>,
        user: Option<&str>,
        mailbox: Option<MailboxId>,
        peek: bool,
    ) -> Vec<Fired> {
        if !self.faults.read().has_stage(stage) {
            return Vec::new();
        }
        let address = mailbox.map(|id| self.world.mailbox(id).address.to_string());
        let domain = address
            .as_deref()
            .and_then(|a| a.rsplit_once('@'))
            .map(|(_, d)| d);
        let facts = Facts {
            client: peer.map(|p| p.ip()),
            mailbox,
            domain,
            user,
            ..Facts::default()
        };
        let subject = Subject {
            rcpt: address.as_deref(),
            peer,
            ..Subject::default()
        };
        if peek {
            return self.faults.read().peek(stage, &facts);
        }
        self.faults_at(stage, &facts, &subject)
    }

    /// Whether a `quota-full` fault would refuse mail to `mailbox` now, so
    /// that IMAP's QUOTA shows it full as SMTP's `552 5.2.2` says
    /// ([`FaultPlan::quota_full`](mailrig_core::fault::FaultPlan::quota_full));
    /// nothing fires or is journalled.
    pub fn quota_full_fault(&self, mailbox: MailboxId) -> bool {
        let plan = self.faults.read();
        if !plan.has_stage(Stage::Rcpt) && !plan.has_stage(Stage::EndOfData) {
            return false;
        }
        let address = self.world.mailbox(mailbox).address.to_string();
        let facts = Facts {
            mailbox: Some(mailbox),
            domain: address.rsplit_once('@').map(|(_, d)| d),
            rcpt: Some(&address),
            ..Facts::default()
        };
        plan.quota_full(&facts)
    }

    /// How many times the rule named `name` fired so far (0 if it is gone).
    pub fn fault_fired(&self, name: &str) -> u64 {
        self.faults.read().rule(name).map_or(0, |r| r.fired())
    }

    /// The TLS fault for a connection from `peer`, if a rule fires.
    pub fn tls_fault(&self, peer: SocketAddr) -> Option<TlsFault> {
        let facts = Facts {
            client: Some(peer.ip()),
            ..Facts::default()
        };
        let subject = Subject {
            peer: Some(peer),
            ..Subject::default()
        };
        self.faults_at(Stage::Tls, &facts, &subject)
            .into_iter()
            .find_map(|f| match f.action {
                Action::Tls(t) => Some(t),
                _ => None,
            })
    }

    /// The configuration for a TLS handshake under a fault: `None` means the
    /// handshake must fail (or TLS is not offered).
    pub fn tls_config(&self, fault: Option<TlsFault>) -> Option<Arc<ServerConfig>> {
        match fault {
            None => Some(Arc::clone(&self.tls.config)),
            Some(TlsFault::NotOffered | TlsFault::HandshakeFails) => None,
            Some(kind) => match self.tls.broken(kind) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "cannot make a broken certificate");
                    None
                }
            },
        }
    }
}

/// Parses one fault rule written as TOML: the keys of a `[[fault]]` table,
/// without the table header (a single `[fault]` or `[[fault]]` header is
/// accepted too). The error names the unknown key, stage or action.
pub fn parse_toml_spec(text: &str) -> Result<FaultRuleSpec, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Table {
        fault: FaultRuleSpec,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Array {
        fault: Vec<FaultRuleSpec>,
    }
    let header = |h: &str| text.lines().any(|l| l.trim() == h);
    let msg = |e: toml::de::Error| e.message().to_string();
    if header("[[fault]]") {
        let mut v = toml::from_str::<Array>(text).map_err(msg)?.fault;
        if v.len() != 1 {
            return Err(format!("give exactly one fault rule, not {}", v.len()));
        }
        Ok(v.remove(0))
    } else if header("[fault]") {
        Ok(toml::from_str::<Table>(text).map_err(msg)?.fault)
    } else {
        toml::from_str::<FaultRuleSpec>(text).map_err(msg)
    }
}

/// Finds the Message-ID header of a message (for the journal).
pub fn message_id(raw: &[u8]) -> Option<String> {
    let end = memchr::memmem::find(raw, b"\r\n\r\n").unwrap_or(raw.len());
    let head = &raw[..end];
    let mut pos = 0;
    while pos < head.len() {
        let line_end = memchr::memchr(b'\n', &head[pos..]).map_or(head.len(), |i| pos + i);
        let line = &head[pos..line_end];
        if line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            let v = String::from_utf8_lossy(&line[11..]).trim().to_string();
            if !v.is_empty() {
                return Some(v);
            }
        }
        pos = line_end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_toml_rules() {
        let s = super::parse_toml_spec("stage = \"rcpt\"\naction = \"reject\"\nmailbox = \"a\"")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.stage, mailrig_core::fault::Stage::Rcpt);
        let s = super::parse_toml_spec("[[fault]]\nstage = \"pop3\"\naction = \"fail-login\"")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.stage, mailrig_core::fault::Stage::Pop3);
        let e = super::parse_toml_spec("stage = \"rcpt\"\naction = \"rejekt\"").unwrap_err();
        assert!(e.contains("rejekt"), "{e}");
        let e =
            super::parse_toml_spec("stage = \"rcpt\"\naction = \"reject\"\nfoo = 1").unwrap_err();
        assert!(e.contains("foo"), "{e}");
    }

    #[test]
    fn finds_message_id() {
        let raw = b"Subject: x\r\nMessage-ID: <a@b>\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(super::message_id(raw).as_deref(), Some("<a@b>"));
        assert_eq!(super::message_id(b"Subject: y\r\n\r\n"), None);
    }
}
