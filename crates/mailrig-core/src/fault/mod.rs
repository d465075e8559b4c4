//! The fault plan: rules that make a stage of a session do something other than
//! the normal thing, to reproduce real mail misconfigurations on purpose.
//!
//! A rule is *where* (a [`Stage`]) + *to whom* (a [`selector::Selector`]) +
//! *what* (an [`Action`]) + *how often* (counters, time window, seeded
//! probability). Rules come from `[[fault]]` tables of a scenario file or, at
//! runtime, from the control API as JSON of the same shape ([`FaultRuleSpec`]).
//!
//! Servers ask [`FaultPlan::decide`] at each stage with the [`Facts`] they
//! know; the plan answers with the [`Fired`] rules, in rule order. Everything
//! is deterministic: the same rules, seed and traffic fire the same faults.

pub mod selector;
pub mod spec;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::world::{MailboxId, World};
use selector::Selector;
pub use spec::{FaultRuleSpec, FaultSpecError};

/// Where in a message's path a fault can act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// A client connected; nothing has been sent yet.
    Connect,
    /// The 220 greeting.
    Greeting,
    /// STARTTLS or the implicit-TLS handshake.
    Tls,
    Ehlo,
    Auth,
    Mail,
    Rcpt,
    /// The DATA command (before 354).
    Data,
    /// The end of the message, before the final reply.
    EndOfData,
    /// After the server accepted a recipient: where its copy goes.
    Route,
    /// Putting the copy into the store.
    Deliver,
    ImapLogin,
    ImapSelect,
    ImapFetch,
    Pop3,
    /// A collector fetching an account (selectors `user`: the account's
    /// login, `domain`: its domain, `client`: the source server's address).
    Collect,
    /// A query to the world's DNS server (selectors `qname`, `qtype`, `client`).
    Dns,
}

impl Stage {
    pub const ALL: [Stage; 16] = [
        Stage::Connect,
        Stage::Greeting,
        Stage::Tls,
        Stage::Ehlo,
        Stage::Auth,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::EndOfData,
        Stage::Route,
        Stage::Deliver,
        Stage::ImapLogin,
        Stage::ImapSelect,
        Stage::ImapFetch,
        Stage::Pop3,
        Stage::Dns,
    ];

    /// Whether a recipient (mailbox, domain) is known at this stage.
    pub fn knows_recipient(self) -> bool {
        matches!(
            self,
            Stage::Rcpt
                | Stage::Data
                | Stage::EndOfData
                | Stage::Route
                | Stage::Deliver
                | Stage::ImapLogin
                | Stage::ImapSelect
                | Stage::ImapFetch
                | Stage::Pop3
                | Stage::Collect
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Tls => "tls",
            Stage::Ehlo => "ehlo",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::EndOfData => "end-of-data",
            Stage::Route => "route",
            Stage::Deliver => "deliver",
            Stage::ImapLogin => "imap-login",
            Stage::ImapSelect => "imap-select",
            Stage::ImapFetch => "imap-fetch",
            Stage::Pop3 => "pop3",
            Stage::Collect => "collect",
            Stage::Dns => "dns",
        }
    }
}

/// When a `disconnect` cuts the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisconnectPoint {
    /// Instead of the reply to the command at the rule's stage (the default).
    InsteadOfReply,
    /// After the reply was sent.
    AfterReply,
    /// Only at stage `data`: after `354`, in the middle of the message
    /// content (nothing is stored; the client sees the connection reset).
    MidData,
}

/// What is wrong with TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsFault {
    /// STARTTLS is not advertised and refused.
    NotOffered,
    /// The handshake is cut off.
    HandshakeFails,
    /// The certificate expired yesterday.
    Expired,
    /// The certificate is for another host name.
    WrongHost,
    /// A self-signed certificate not issued by the local CA.
    SelfSigned,
}

/// What a DNS fault makes the server answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsFault {
    /// Answer SERVFAIL.
    ServFail,
    /// Send no answer at all (the client times out).
    Timeout,
    /// Over UDP, answer with the TC bit and no records, so the client retries
    /// over TCP (TCP queries are answered normally).
    Truncate,
    /// Answer these records (of the query's type) instead of the world's:
    /// a wrong MX, a stale A record, an old DKIM key.
    Answer(Vec<crate::dns::RecordData>),
}

/// How a stored message is changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alteration {
    /// Header fields to remove (case-insensitive names).
    #[serde(default)]
    pub strip_headers: Vec<String>,
    /// Keep only this many bytes of the message.
    #[serde(default)]
    pub truncate_to: Option<usize>,
}

/// What a fired rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Answer with this reply instead of the normal one (reject, defer, quota
    /// full, greylisting and rate limits all end up as a reply).
    Reply {
        code: u16,
        enhanced: String,
        text: String,
    },
    /// Wait before the normal reply.
    Delay { ms: u64 },
    /// Send every further byte of the session at this rate.
    Tarpit { bytes_per_sec: u64 },
    /// Close the connection.
    Disconnect { point: DisconnectPoint },
    /// Accept with 250 and store nothing.
    Drop,
    /// Store into another mailbox.
    Misroute { to: MailboxId, to_address: String },
    /// Store into another folder of the recipient's mailbox (created, with
    /// its special-use attribute, if missing).
    Misfile { folder: String },
    /// Store this many copies in all.
    Duplicate { copies: u32 },
    /// Store only after this long.
    Late { secs: u64 },
    /// Store a changed message.
    Alter(Alteration),
    /// Break TLS in this way.
    Tls(TlsFault),
    /// Refuse the login (SMTP AUTH, IMAP LOGIN, POP3 PASS) even with the right password.
    FailLogin,
    /// Show the mailbox as empty over IMAP/POP3 although messages are stored.
    HideMessages,
    /// Report a new UIDVALIDITY for the folder.
    ChangeUidValidity,
    /// Answer as if the folder's MODSEQ state was lost: SELECT says
    /// `NOMODSEQ` (RFC 7162 §3.1.2.2), STATUS `HIGHESTMODSEQ 0`, so a
    /// CONDSTORE or QRESYNC client must resynchronize in full.
    ForgetModseq,
    /// Answer a DNS query otherwise.
    Dns(DnsFault),
    /// A collector stops for the rest of its round.
    StopCollector,
    /// A collector loses the remembered UIDLs of the account.
    ForgetUidls,
}

impl Action {
    /// A short description for the journal and logs.
    pub fn describe(&self) -> String {
        match self {
            Action::Reply {
                code,
                enhanced,
                text,
            } => format!("reply {code} {enhanced} {text}"),
            Action::Delay { ms } => format!("delay {ms} ms"),
            Action::Tarpit { bytes_per_sec } => format!("tarpit {bytes_per_sec} bytes/s"),
            Action::Disconnect { point } => format!("disconnect {point:?}"),
            Action::Drop => "accepted and dropped silently".into(),
            Action::Misroute { to_address, .. } => format!("misrouted to {to_address}"),
            Action::Misfile { folder } => format!("filed into {folder}"),
            Action::Duplicate { copies } => format!("stored {copies} times"),
            Action::Late { secs } => format!("delivered {secs} s late"),
            Action::Alter(a) => format!("altered {a:?}"),
            Action::Tls(t) => format!("tls {t:?}"),
            Action::FailLogin => "login refused".into(),
            Action::HideMessages => "messages hidden".into(),
            Action::ChangeUidValidity => "UIDVALIDITY changed".into(),
            Action::ForgetModseq => "MODSEQ state forgotten".into(),
            Action::StopCollector => "collector stopped".into(),
            Action::ForgetUidls => "UIDL state lost".into(),
            Action::Dns(f) => match f {
                DnsFault::ServFail => "dns servfail".into(),
                DnsFault::Timeout => "dns no answer (timeout)".into(),
                DnsFault::Truncate => "dns truncated over UDP".into(),
                DnsFault::Answer(v) => format!(
                    "dns answer {}",
                    v.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        }
    }
}

/// Greylisting's key: (sender, recipient, client address).
type Triplet = (String, String, Option<IpAddr>);

/// Stateful actions that turn into a reply or into nothing.
#[derive(Debug)]
enum Behaviour {
    Fixed(Action),
    /// Defer the first attempt of each (sender, recipient, client) triplet
    /// until `secs` have passed since it was first seen.
    Greylist {
        secs: u64,
        seen: Mutex<HashMap<Triplet, Instant>>,
    },
    /// Refuse above `per_minute` matches in any 60 s window.
    RateLimit {
        per_minute: u64,
        code: u16,
        enhanced: String,
        text: String,
        window: Mutex<std::collections::VecDeque<Instant>>,
    },
}

/// One rule of the plan.
#[derive(Debug)]
pub struct FaultRule {
    pub name: String,
    pub stage: Stage,
    pub spec: FaultRuleSpec,
    selector: Selector,
    behaviour: Behaviour,
    enabled: AtomicBool,
    /// Evaluations whose selectors matched (drives nth/first/every/after).
    matched: AtomicU64,
    fired: AtomicU64,
}

impl FaultRule {
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// How many times this rule fired.
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
    }

    /// What the rule does when it fires, in words (for `scenario explain`).
    pub fn does(&self) -> String {
        match &self.behaviour {
            Behaviour::Greylist { secs, .. } => format!(
                "defer the first attempt of each (sender, recipient, client) with 450 4.2.0 until {secs} s have passed"
            ),
            Behaviour::RateLimit {
                per_minute,
                code,
                enhanced,
                text,
                ..
            } => {
                format!("allow {per_minute} a minute, answer the rest \"{code} {enhanced} {text}\"")
            }
            Behaviour::Fixed(a) => match a {
                Action::Reply {
                    code,
                    enhanced,
                    text,
                } => format!("answer \"{code} {enhanced} {text}\" instead of the normal reply"),
                Action::Delay { ms } => format!("wait {ms} ms before the normal reply"),
                Action::Tarpit { bytes_per_sec } => {
                    format!("send every further byte of the session at {bytes_per_sec} bytes/s")
                }
                Action::Disconnect {
                    point: DisconnectPoint::InsteadOfReply,
                } => "close the connection instead of replying".into(),
                Action::Disconnect {
                    point: DisconnectPoint::AfterReply,
                } => "close the connection after the normal reply".into(),
                Action::Disconnect {
                    point: DisconnectPoint::MidData,
                } => "answer 354, then close the connection in the middle of the message".into(),
                Action::Drop => "answer 250 as usual and store nothing".into(),
                Action::Misroute { to_address, .. } => {
                    format!("store the message in {to_address} instead")
                }
                Action::Misfile { folder } => {
                    format!("store the message in the mailbox's {folder} folder instead of INBOX")
                }
                Action::Duplicate { copies } => format!("store the message {copies} times"),
                Action::Late { secs } => format!("store the message only {secs} s later"),
                Action::Alter(a) => {
                    let mut parts = Vec::new();
                    if !a.strip_headers.is_empty() {
                        parts.push(format!("remove the headers {}", a.strip_headers.join(", ")));
                    }
                    if let Some(n) = a.truncate_to {
                        parts.push(format!("cut the message off after {n} bytes"));
                    }
                    format!("store a changed message: {}", parts.join("; "))
                }
                Action::Tls(t) => match t {
                    TlsFault::NotOffered => "do not offer STARTTLS (and refuse it)".into(),
                    TlsFault::HandshakeFails => "cut off the TLS handshake".into(),
                    TlsFault::Expired => "present a certificate that expired yesterday".into(),
                    TlsFault::WrongHost => "present a certificate for another host name".into(),
                    TlsFault::SelfSigned => {
                        "present a self-signed certificate not issued by the local CA".into()
                    }
                },
                Action::FailLogin => "refuse the login even with the right password".into(),
                Action::HideMessages => "show the mailbox as empty".into(),
                Action::ChangeUidValidity => "report a new UIDVALIDITY".into(),
                Action::ForgetModseq => {
                    "answer as if the folder's MODSEQ state was lost (NOMODSEQ), forcing a full resync"
                        .into()
                }
                Action::StopCollector => "stop the collector: fetch nothing more this round".into(),
                Action::ForgetUidls => {
                    "forget the account's remembered UIDLs: fetch everything again".into()
                }
                Action::Dns(f) => match f {
                    DnsFault::ServFail => "answer the DNS query with SERVFAIL".into(),
                    DnsFault::Timeout => {
                        "send no answer to the DNS query (the client times out)".into()
                    }
                    DnsFault::Truncate => {
                        "answer over UDP with the TC bit and no records, forcing a retry over TCP"
                            .into()
                    }
                    DnsFault::Answer(v) => format!(
                        "answer the DNS query with {} instead of the world's records",
                        v.iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            },
        }
    }
}

/// What a server knows at a stage.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub client: Option<IpAddr>,
    pub sender: Option<&'a str>,
    /// The recipient mailbox (after routing), if known.
    pub mailbox: Option<MailboxId>,
    /// The recipient domain, if known (also for addresses without a mailbox).
    pub domain: Option<&'a str>,
    /// The recipient address as written.
    pub rcpt: Option<&'a str>,
    /// The authenticated (or logging-in) user.
    pub user: Option<&'a str>,
    /// A DNS query's name (lower case, no trailing dot).
    pub qname: Option<&'a str>,
    /// A DNS query's type (`MX`, `A`, ...).
    pub qtype: Option<&'a str>,
}

/// A rule that fired, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub rule: String,
    pub action: Action,
}

/// The active fault rules of a world.
/// Cloning shares the rules and their counters; [`FaultPlan::rebuild`] makes
/// a fresh plan with counters at zero.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    rules: Vec<Arc<FaultRule>>,
    started: Instant,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            rules: Vec::new(),
            started: Instant::now(),
        }
    }
}

fn build_rule(
    spec: &FaultRuleSpec,
    stage: Stage,
    selector: Selector,
    name: &str,
) -> Result<FaultRule, String> {
    let behaviour = spec.behaviour()?;
    Ok(FaultRule {
        name: name.to_string(),
        stage,
        spec: spec.clone(),
        selector,
        behaviour,
        enabled: AtomicBool::new(spec.enabled.unwrap_or(true)),
        matched: AtomicU64::new(0),
        fired: AtomicU64::new(0),
    })
}

impl FaultPlan {
    /// Builds the plan from a scenario's rules; returns it and warnings about
    /// rules that can never fire.
    pub fn from_specs(
        specs: &[FaultRuleSpec],
        world: &World,
    ) -> Result<(FaultPlan, Vec<String>), FaultSpecError> {
        let mut plan = FaultPlan::default();
        let mut warnings = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let w = plan
                .add(spec.clone(), world)
                .map_err(|message| FaultSpecError { index: i, message })?;
            warnings.extend(w);
        }
        Ok((plan, warnings))
    }

    /// Adds a rule at the end; returns warnings (e.g. it can never fire).
    pub fn add(&mut self, spec: FaultRuleSpec, world: &World) -> Result<Vec<String>, String> {
        let mut spec = spec;
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("fault-{}", self.rules.len() + 1));
        spec.name = Some(name.clone());
        if self.rules.iter().any(|r| r.name == name) {
            return Err(format!("a fault rule named '{name}' already exists"));
        }
        let stage = spec.stage;
        let (selector, mut warnings) = Selector::build(&spec, world)?;
        spec.check_stage(stage)?;
        if selector.needs_recipient() && !stage.knows_recipient() {
            warnings.push(format!(
                "rule '{name}': a mailbox or domain selector can never match at stage '{}', where no recipient is known yet",
                stage.name()
            ));
        }
        if (spec.qname.is_some() || spec.qtype.is_some()) && stage != Stage::Dns {
            warnings.push(format!(
                "rule '{name}': a `qname` or `qtype` selector matches only at stage 'dns', not '{}'",
                stage.name()
            ));
        }
        let mut rule = build_rule(&spec, stage, selector, &name)?;
        if let Behaviour::Fixed(Action::Misroute { to, to_address }) = &mut rule.behaviour {
            let address = crate::address::Address::parse(to_address)
                .map_err(|e| format!("misroute target: {e}"))?;
            *to = world.mailbox_by_address(&address.key()).ok_or_else(|| {
                format!("misroute target '{to_address}' is not a mailbox of this world")
            })?;
        }
        for w in &mut warnings {
            if !w.starts_with("rule '") {
                *w = format!("rule '{name}': {w}");
            }
        }
        self.rules.push(Arc::new(rule));
        Ok(warnings)
    }

    /// The same rules with fresh counters and state, as at start-up.
    pub fn rebuild(&self, world: &World) -> FaultPlan {
        let mut plan = FaultPlan::default();
        for r in &self.rules {
            // These specs were valid for this world when they were added.
            if plan.add(r.spec.clone(), world).is_ok()
                && let Some(new) = plan.rules.last()
            {
                new.set_enabled(r.enabled());
            }
        }
        plan
    }

    /// Removes a rule by name; false if there is none.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.name != name);
        before != self.rules.len()
    }

    pub fn rule(&self, name: &str) -> Option<&Arc<FaultRule>> {
        self.rules.iter().find(|r| r.name == name)
    }

    pub fn rules(&self) -> &[Arc<FaultRule>] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any enabled rule acts at this stage (a cheap pre-check).
    pub fn has_stage(&self, stage: Stage) -> bool {
        self.rules.iter().any(|r| r.stage == stage && r.enabled())
    }

    /// The rules that would fire at `stage` for these facts if asked now, in
    /// rule order, without counting a match or a firing: a read-only look for
    /// answers a client did not ask for (NOTIFY's unsolicited STATUS), which
    /// must neither fire a rule nor move its `nth`/`first`/`every`/`after`
    /// counters. Greylist and rate-limit rules, whose answer depends on being
    /// asked, are left out.
    pub fn peek(&self, stage: Stage, facts: &Facts<'_>) -> Vec<Fired> {
        let elapsed = self.started.elapsed();
        self.rules
            .iter()
            .filter(|r| r.stage == stage && r.enabled() && r.selector.matches(facts, elapsed))
            .filter(|r| {
                r.selector
                    .counts_allow(r.matched.load(Ordering::Relaxed) + 1)
            })
            .filter_map(|r| match &r.behaviour {
                Behaviour::Fixed(a) => Some(Fired {
                    rule: r.name.clone(),
                    action: a.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// Whether a `quota-full` rule would refuse mail for these facts now
    /// (at `rcpt` or `end-of-data`), looked at with [`FaultPlan::peek`]: the
    /// fault's mailbox is full to whoever asks (IMAP's GETQUOTA), not only to
    /// SMTP. Facts are the recipient's; a rule that also names a sender or a
    /// client refuses only some deliveries and is not counted here.
    pub fn quota_full(&self, facts: &Facts<'_>) -> bool {
        [Stage::Rcpt, Stage::EndOfData].into_iter().any(|stage| {
            self.peek(stage, facts).iter().any(|f| {
                self.rule(&f.rule)
                    .is_some_and(|r| r.spec.action == spec::ActionKind::QuotaFull)
            })
        })
    }

    /// The rules that fire at `stage` for these facts, in rule order.
    pub fn decide(&self, stage: Stage, facts: &Facts<'_>) -> Vec<Fired> {
        let mut out = Vec::new();
        if self.rules.is_empty() {
            return out;
        }
        let elapsed = self.started.elapsed();
        for rule in &self.rules {
            if rule.stage != stage || !rule.enabled() || !rule.selector.matches(facts, elapsed) {
                continue;
            }
            let n = rule.matched.fetch_add(1, Ordering::Relaxed) + 1;
            if !rule.selector.counts_allow(n) {
                continue;
            }
            let action = match &rule.behaviour {
                Behaviour::Fixed(a) => Some(a.clone()),
                Behaviour::Greylist { secs, seen } => {
                    let key = (
                        facts.sender.unwrap_or("").to_lowercase(),
                        facts.rcpt.unwrap_or("").to_lowercase(),
                        facts.client,
                    );
                    let now = Instant::now();
                    let mut seen = seen.lock();
                    let first = *seen.entry(key).or_insert(now);
                    (now.duration_since(first) < Duration::from_secs(*secs)).then(|| Action::Reply {
                        code: 450,
                        enhanced: "4.2.0".into(),
                        text: format!("Recipient address rejected: Greylisted, try again in {secs} seconds"),
                    })
                }
                Behaviour::RateLimit {
                    per_minute,
                    code,
                    enhanced,
                    text,
                    window,
                } => {
                    let now = Instant::now();
                    let mut w = window.lock();
                    while w
                        .front()
                        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
                    {
                        w.pop_front();
                    }
                    if (w.len() as u64) < *per_minute {
                        w.push_back(now);
                        None
                    } else {
                        Some(Action::Reply {
                            code: *code,
                            enhanced: enhanced.clone(),
                            text: text.clone(),
                        })
                    }
                }
            };
            if let Some(action) = action {
                rule.fired.fetch_add(1, Ordering::Relaxed);
                out.push(Fired {
                    rule: rule.name.clone(),
                    action,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
