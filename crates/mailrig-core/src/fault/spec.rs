//! The written form of a fault rule: a `[[fault]]` table in a scenario file, or
//! the same object as JSON in the control API. Unknown keys, stages and actions
//! are errors that name them; parameters are checked against the action.

use serde::{Deserialize, Serialize};

use super::{Action, Alteration, Behaviour, DisconnectPoint, DnsFault, Stage, TlsFault};

/// One value or a list of values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// What a rule does, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// A permanent reply (default `550 5.7.1`).
    Reject,
    /// A temporary reply (default `451 4.3.0`).
    Defer,
    /// Wait `ms` before the normal reply.
    Delay,
    /// Slow every further byte to `bytes_per_sec`.
    Tarpit,
    /// Close the connection (`when` = instead-of-reply | after-reply).
    Disconnect,
    /// Accept with 250, store nothing.
    Drop,
    /// Store into the mailbox `to` instead.
    Misroute,
    /// Store into another folder of the same mailbox (`folder`, default
    /// `Junk`), as a spam filter or a Sieve rule does.
    Misfile,
    /// Store `copies` copies.
    Duplicate,
    /// Store only after `secs` seconds.
    Late,
    /// Store a changed message (`strip_headers`, `truncate_to`).
    Alter,
    /// Mailbox full: `552 5.2.2` (or `452 4.2.2` with `permanent = false`).
    QuotaFull,
    /// Defer the first attempt of each sender/recipient/client for `secs`.
    Greylist,
    /// Refuse above `per_minute` (default reply `421 4.7.0`).
    RateLimit,
    /// Break TLS (`tls` = not-offered | handshake-fails | expired | wrong-host | self-signed).
    Tls,
    /// Refuse logins even with the right password.
    FailLogin,
    /// Show the mailbox as empty over IMAP/POP3.
    HideMessages,
    /// Report a new UIDVALIDITY on SELECT.
    ChangeUidvalidity,
    /// Answer SELECT as if the folder's MODSEQ state was lost (`NOMODSEQ`).
    ForgetModseq,
    /// DNS: answer SERVFAIL.
    Servfail,
    /// DNS: send no answer.
    Timeout,
    /// DNS: answer over UDP with the TC bit, forcing TCP.
    Truncate,
    /// DNS: answer `answer = [...]` (records of the one `qtype`) instead.
    Answer,
    /// Collector: stop fetching for the rest of the round (a stopped service).
    StopCollector,
    /// Collector: lose the remembered UIDLs of the account before fetching.
    ForgetUidls,
}

/// One fault rule as written. Selector keys are all optional and all must
/// match; action keys depend on `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What real-world misconfiguration this rule models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub stage: Stage,
    pub action: ActionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    // ---- selectors ----
    /// Recipient domains (globs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<OneOrMany>,
    /// Recipient mailboxes: names, full addresses, globs (`user0*`) or ranges (`user03..user25`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<OneOrMany>,
    /// Mailboxes excluded from `mailbox`/`domain`, same forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<OneOrMany>,
    /// Envelope senders (globs; `<>` for the null sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<OneOrMany>,
    /// Client IP addresses (globs such as `127.0.0.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<OneOrMany>,
    /// Authenticated (or logging-in) users (globs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<OneOrMany>,
    /// DNS query names (globs, `*.example.test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qname: Option<OneOrMany>,
    /// DNS query types (`MX`, `A`, `TXT`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qtype: Option<OneOrMany>,
    /// Only the n-th match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u64>,
    /// Only the first n matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// Every n-th match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// Only after n matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// Active from this many seconds after start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_secs: Option<u64>,
    /// Active until this many seconds after start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_secs: Option<u64>,
    /// Fire with this probability (0..1), decided by a seeded generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,

    // ---- action parameters ----
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<DisconnectPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Action `misfile`: the folder the message lands in (default `Junk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_to: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFault>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permanent: Option<bool>,
    /// Action `answer`: the records' values, zone-file style (`"10 mx.wrong.test"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Vec<String>>,
}

/// A fault rule of a scenario file that cannot be used (`index` counts the
/// `[[fault]]` tables from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpecError {
    pub index: usize,
    pub message: String,
}

const SMTP_COMMAND_STAGES: &[Stage] = &[
    Stage::Connect,
    Stage::Greeting,
    Stage::Ehlo,
    Stage::Auth,
    Stage::Mail,
    Stage::Rcpt,
    Stage::Data,
    Stage::EndOfData,
];

fn names(stages: &[Stage]) -> String {
    stages
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl ActionKind {
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Reject => "reject",
            ActionKind::Defer => "defer",
            ActionKind::Delay => "delay",
            ActionKind::Tarpit => "tarpit",
            ActionKind::Disconnect => "disconnect",
            ActionKind::Drop => "drop",
            ActionKind::Misroute => "misroute",
            ActionKind::Misfile => "misfile",
            ActionKind::Duplicate => "duplicate",
            ActionKind::Late => "late",
            ActionKind::Alter => "alter",
            ActionKind::QuotaFull => "quota-full",
            ActionKind::Greylist => "greylist",
            ActionKind::RateLimit => "rate-limit",
            ActionKind::Tls => "tls",
            ActionKind::FailLogin => "fail-login",
            ActionKind::HideMessages => "hide-messages",
            ActionKind::ChangeUidvalidity => "change-uidvalidity",
            ActionKind::ForgetModseq => "forget-modseq",
            ActionKind::Servfail => "servfail",
            ActionKind::Timeout => "timeout",
            ActionKind::Truncate => "truncate",
            ActionKind::Answer => "answer",
            ActionKind::StopCollector => "stop-collector",
            ActionKind::ForgetUidls => "forget-uidls",
        }
    }

    /// The stages where this action can act.
    pub fn stages(self) -> &'static [Stage] {
        match self {
            ActionKind::Reject | ActionKind::Defer | ActionKind::Delay | ActionKind::Tarpit => {
                SMTP_COMMAND_STAGES
            }
            ActionKind::Disconnect => &[
                Stage::Connect,
                Stage::Greeting,
                Stage::Tls,
                Stage::Ehlo,
                Stage::Auth,
                Stage::Mail,
                Stage::Rcpt,
                Stage::Data,
                Stage::EndOfData,
                Stage::Collect,
            ],
            ActionKind::Drop
            | ActionKind::Misroute
            | ActionKind::Misfile
            | ActionKind::Duplicate
            | ActionKind::Late
            | ActionKind::Alter => &[Stage::Route, Stage::Deliver],
            ActionKind::QuotaFull => &[Stage::Rcpt, Stage::EndOfData],
            ActionKind::Greylist => &[Stage::Rcpt],
            ActionKind::RateLimit => &[Stage::Connect, Stage::Mail, Stage::Rcpt],
            ActionKind::Tls => &[Stage::Tls],
            ActionKind::FailLogin => &[Stage::Auth, Stage::ImapLogin, Stage::Pop3, Stage::Collect],
            ActionKind::HideMessages => &[Stage::ImapSelect, Stage::ImapFetch, Stage::Pop3],
            ActionKind::ChangeUidvalidity | ActionKind::ForgetModseq => &[Stage::ImapSelect],
            ActionKind::Servfail
            | ActionKind::Timeout
            | ActionKind::Truncate
            | ActionKind::Answer => &[Stage::Dns],
            ActionKind::StopCollector | ActionKind::ForgetUidls => &[Stage::Collect],
        }
    }
}

impl FaultRuleSpec {
    /// A rule with only stage and action set (for building rules in code).
    pub fn new(stage: Stage, action: ActionKind) -> FaultRuleSpec {
        FaultRuleSpec {
            name: None,
            description: None,
            stage,
            action,
            enabled: None,
            domain: None,
            mailbox: None,
            except: None,
            sender: None,
            client: None,
            user: None,
            qname: None,
            qtype: None,
            nth: None,
            first: None,
            every: None,
            after: None,
            from_secs: None,
            until_secs: None,
            probability: None,
            seed: None,
            code: None,
            enhanced: None,
            text: None,
            ms: None,
            bytes_per_sec: None,
            when: None,
            to: None,
            folder: None,
            copies: None,
            secs: None,
            per_minute: None,
            strip_headers: None,
            truncate_to: None,
            tls: None,
            permanent: None,
            answer: None,
        }
    }

    pub(super) fn check_stage(&self, stage: Stage) -> Result<(), String> {
        if self.when == Some(DisconnectPoint::MidData) && stage != Stage::Data {
            return Err(format!(
                "disconnect `when = \"mid-data\"` works only at stage 'data', not '{}'",
                stage.name()
            ));
        }
        let allowed = self.action.stages();
        if allowed.contains(&stage) {
            Ok(())
        } else {
            Err(format!(
                "action '{}' cannot act at stage '{}'; it works at: {}",
                self.action.name(),
                stage.name(),
                names(allowed)
            ))
        }
    }

    fn need<T: Clone>(&self, v: &Option<T>, key: &str) -> Result<T, String> {
        v.clone()
            .ok_or_else(|| format!("action '{}' needs `{key}`", self.action.name()))
    }

    fn reply(&self, code: u16, enhanced: &str, text: &str, class: u16) -> Result<Action, String> {
        let code = self.code.unwrap_or(code);
        if code / 100 != class {
            return Err(format!(
                "action '{}' needs a {class}xx code, not {code}",
                self.action.name()
            ));
        }
        let enhanced = self
            .enhanced
            .clone()
            .unwrap_or_else(|| enhanced.to_string());
        check_enhanced(&enhanced, code)?;
        Ok(Action::Reply {
            code,
            enhanced,
            text: self.text.clone().unwrap_or_else(|| text.to_string()),
        })
    }

    /// Checks parameters against the action and builds the runtime behaviour.
    pub(super) fn behaviour(&self) -> Result<Behaviour, String> {
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("probability must be between 0 and 1, not {p}"));
        }
        for (v, key) in [(self.nth, "nth"), (self.every, "every")] {
            if v == Some(0) {
                return Err(format!("`{key}` must be at least 1"));
            }
        }
        if let (Some(a), Some(b)) = (self.from_secs, self.until_secs)
            && a >= b
        {
            return Err(format!(
                "from_secs ({a}) must be less than until_secs ({b})"
            ));
        }
        let fixed = |a| Ok(Behaviour::Fixed(a));
        match self.action {
            ActionKind::Reject => fixed(self.reply(550, "5.7.1", "Error: message refused", 5)?),
            ActionKind::Defer => {
                fixed(self.reply(451, "4.3.0", "Error: temporary failure, try again later", 4)?)
            }
            ActionKind::Delay => fixed(Action::Delay {
                ms: self.need(&self.ms, "ms")?,
            }),
            ActionKind::Tarpit => {
                let b = self.need(&self.bytes_per_sec, "bytes_per_sec")?;
                if b == 0 {
                    return Err("bytes_per_sec must be at least 1".into());
                }
                fixed(Action::Tarpit { bytes_per_sec: b })
            }
            ActionKind::Disconnect => fixed(Action::Disconnect {
                point: self.when.unwrap_or(DisconnectPoint::InsteadOfReply),
            }),
            ActionKind::Drop => fixed(Action::Drop),
            ActionKind::Misroute => {
                // The target is resolved against the world by the plan.
                let to = self.need(&self.to, "to")?;
                fixed(Action::Misroute {
                    to: crate::world::MailboxId(u32::MAX),
                    to_address: to,
                })
            }
            ActionKind::Misfile => {
                let folder = crate::store::canonical_name(self.folder.as_deref().unwrap_or("Junk"));
                crate::store::validate_name(&folder).map_err(|e| format!("`folder`: {e}"))?;
                if folder == crate::store::INBOX {
                    return Err(
                        "misfile needs a `folder` other than INBOX (mail lands in INBOX anyway)"
                            .into(),
                    );
                }
                fixed(Action::Misfile { folder })
            }
            ActionKind::Duplicate => {
                let copies = self.copies.unwrap_or(2);
                if copies < 2 {
                    return Err("duplicate needs `copies` of at least 2".into());
                }
                fixed(Action::Duplicate { copies })
            }
            ActionKind::Late => fixed(Action::Late {
                secs: self.need(&self.secs, "secs")?,
            }),
            ActionKind::Alter => {
                if self.strip_headers.is_none() && self.truncate_to.is_none() {
                    return Err("alter needs `strip_headers` or `truncate_to`".into());
                }
                fixed(Action::Alter(Alteration {
                    strip_headers: self.strip_headers.clone().unwrap_or_default(),
                    truncate_to: self.truncate_to,
                }))
            }
            ActionKind::QuotaFull => fixed(if self.permanent.unwrap_or(true) {
                self.reply(552, "5.2.2", "Error: mailbox full", 5)?
            } else {
                self.reply(452, "4.2.2", "Error: mailbox full, try again later", 4)?
            }),
            ActionKind::Greylist => Ok(Behaviour::Greylist {
                secs: self.secs.unwrap_or(300),
                seen: Default::default(),
            }),
            ActionKind::RateLimit => {
                let per_minute = self.need(&self.per_minute, "per_minute")?;
                let Action::Reply {
                    code,
                    enhanced,
                    text,
                } = self.reply_any(421, "4.7.0", "Error: too many messages, slow down")?
                else {
                    unreachable!("reply_any builds a reply")
                };
                Ok(Behaviour::RateLimit {
                    per_minute,
                    code,
                    enhanced,
                    text,
                    window: Default::default(),
                })
            }
            ActionKind::Tls => fixed(Action::Tls(self.need(&self.tls, "tls")?)),
            ActionKind::FailLogin => fixed(Action::FailLogin),
            ActionKind::HideMessages => fixed(Action::HideMessages),
            ActionKind::StopCollector => fixed(Action::StopCollector),
            ActionKind::ForgetUidls => fixed(Action::ForgetUidls),
            ActionKind::ChangeUidvalidity => fixed(Action::ChangeUidValidity),
            ActionKind::ForgetModseq => fixed(Action::ForgetModseq),
            ActionKind::Servfail => fixed(Action::Dns(DnsFault::ServFail)),
            ActionKind::Timeout => fixed(Action::Dns(DnsFault::Timeout)),
            ActionKind::Truncate => fixed(Action::Dns(DnsFault::Truncate)),
            ActionKind::Answer => {
                let values = self.need(&self.answer, "answer")?;
                let types = self.qtype.as_ref().map(|q| q.items()).unwrap_or_default();
                let [t] = types.as_slice() else {
                    return Err(
                        "action 'answer' needs exactly one `qtype` (the type of the records in `answer`)"
                            .into(),
                    );
                };
                let rtype = crate::dns::RecordType::parse(t)
                    .filter(|t| crate::dns::RecordType::WRITABLE.contains(t))
                    .ok_or_else(|| {
                        format!(
                            "`qtype` '{t}': answer records of type A, AAAA, MX, TXT, PTR or CNAME"
                        )
                    })?;
                let data = values
                    .iter()
                    .map(|v| {
                        crate::dns::RecordData::parse(rtype, v)
                            .map_err(|e| format!("`answer`: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                fixed(Action::Dns(DnsFault::Answer(data)))
            }
        }
    }

    fn reply_any(&self, code: u16, enhanced: &str, text: &str) -> Result<Action, String> {
        let c = self.code.unwrap_or(code);
        if !(400..600).contains(&c) {
            return Err(format!("`code` must be a 4xx or 5xx reply code, not {c}"));
        }
        self.reply(code, enhanced, text, c / 100)
    }
}

fn check_enhanced(enhanced: &str, code: u16) -> Result<(), String> {
    let parts: Vec<&str> = enhanced.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()));
    if !ok {
        return Err(format!("`enhanced` must look like 5.7.1, not '{enhanced}'"));
    }
    if parts[0] != (code / 100).to_string() {
        return Err(format!(
            "enhanced code {enhanced} does not agree with reply code {code}"
        ));
    }
    Ok(())
}
