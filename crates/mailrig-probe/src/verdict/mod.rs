//! Verdicts: what happened to each mailbox's probe, judged from what the SMTP
//! server answered and what every probed mailbox was seen to hold.
//!
//! Pure logic, no I/O, so every rule is tested on its own. The rule that
//! matters most: nothing is `delivered` unless a message with its token was
//! read back from its own mailbox, exactly once, with its body hash and
//! identifying headers intact.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::message::SeenHeaders;

/// The verdict for one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Seen in its mailbox, once, unaltered.
    Delivered,
    /// Accepted by SMTP, never seen in any probed mailbox before the timeout.
    Missing,
    /// SMTP refused it with a permanent (5xx) reply.
    Rejected,
    /// SMTP refused it for now (4xx), or the connection failed while sending.
    Deferred,
    /// Not in its mailbox, but found in another probed mailbox.
    Misrouted,
    /// Seen more than once in its mailbox.
    Duplicated,
    /// Seen once, but its body or identifying headers changed.
    Altered,
    /// The mailbox could not be read (connect, TLS or login failed).
    Unreadable,
    /// Not in INBOX, but in another folder of its own mailbox (`Junk`):
    /// delivered where the user will not look, so not delivered.
    Misfiled,
    /// Not in its mailbox, but at its upstream (the provider's mailbox it is
    /// collected from): the chain broke between the two hops.
    #[serde(rename = "stuck-upstream")]
    StuckUpstream,
    /// Seen once, unaltered, but its `Authentication-Results` fail a
    /// requirement (`--require dkim=pass`): not delivered for the exit code.
    #[serde(rename = "delivered-unauthenticated")]
    DeliveredUnauthenticated,
}

impl Verdict {
    pub const ALL: [Verdict; 11] = [
        Verdict::Delivered,
        Verdict::Missing,
        Verdict::Rejected,
        Verdict::Deferred,
        Verdict::Misrouted,
        Verdict::Duplicated,
        Verdict::Altered,
        Verdict::Unreadable,
        Verdict::Misfiled,
        Verdict::StuckUpstream,
        Verdict::DeliveredUnauthenticated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Missing => "missing",
            Verdict::Rejected => "rejected",
            Verdict::Deferred => "deferred",
            Verdict::Misrouted => "misrouted",
            Verdict::Duplicated => "duplicated",
            Verdict::Altered => "altered",
            Verdict::Unreadable => "unreadable",
            Verdict::Misfiled => "misfiled",
            Verdict::StuckUpstream => "stuck-upstream",
            Verdict::DeliveredUnauthenticated => "delivered-unauthenticated",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An SMTP reply: the one that refused a probe, or the `250` that took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpReply {
    /// Three-digit reply code (`550`).
    pub code: u16,
    /// Enhanced status code (`5.1.1`) when the server sent one.
    pub enhanced: Option<String>,
    /// The reply text (lines joined with a space), without code and enhanced code.
    pub text: String,
    /// `true` for 5xx, `false` otherwise (4xx, and the 2xx of an accepted probe).
    pub permanent: bool,
}

impl SmtpReply {
    /// From a code and lettre's joined reply text (`5.1.1 <x>: Recipient ...`).
    pub fn from_code_and_text(code: u16, text: &str) -> SmtpReply {
        let text = text.trim();
        let (enhanced, rest) = match text.split_once(' ') {
            Some((first, rest)) if is_enhanced(first) => (Some(first.to_string()), rest.trim()),
            None if is_enhanced(text) => (Some(text.to_string()), ""),
            _ => (None, text),
        };
        SmtpReply {
            code,
            enhanced,
            text: rest.to_string(),
            permanent: code >= 500,
        }
    }
}

impl std::fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = &self.enhanced {
            write!(f, " {e}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

fn is_enhanced(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// What SMTP did with one probe.
#[derive(Debug, Clone)]
pub(crate) enum SendOutcome {
    /// Not sent (the mailbox was unreadable before sending, so a probe
    /// could be neither judged nor cleaned up).
    NotSent,
    /// Only RCPT was tried (the mailbox cannot be read) and it was accepted.
    RcptAccepted,
    /// `250` after DATA, at this moment, with that reply (`None` only in
    /// tests that do not care).
    Accepted {
        at: Instant,
        reply: Option<SmtpReply>,
    },
    /// Refused with a reply, or failed without one (connection lost).
    Failed {
        reply: Option<SmtpReply>,
        reason: String,
    },
}

/// One run-tagged message found in a mailbox.
#[derive(Debug, Clone)]
pub(crate) struct Sighting {
    /// The folder it is in (`INBOX`, or another folder of the mailbox).
    pub folder: String,
    /// IMAP UID or POP3 UIDL in its folder.
    pub key: String,
    /// The token it carries.
    pub token: String,
    pub headers: SeenHeaders,
    pub body_hash: String,
    pub first_seen: Instant,
}

/// What the prober knows about reading one mailbox.
#[derive(Debug, Clone, Default)]
pub(crate) enum ReadState {
    /// Not read yet.
    #[default]
    Pending,
    /// Read at least once; `last_error` if the latest attempt failed.
    Read { last_error: Option<String> },
    /// Never read successfully.
    Failed(String),
}

/// What was sent to one mailbox, to compare against.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub address: String,
    pub token: String,
    pub message_id: String,
    pub subject: String,
    pub body_hash: String,
    /// What the delivered copy's authentication results must show (`--require`).
    pub require: std::sync::Arc<[crate::auth::Requirement]>,
}

/// What was observed in one probed mailbox.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observation {
    pub read: ReadState,
    pub seen: Vec<Sighting>,
}

/// The judged result for one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxResult {
    pub address: String,
    pub domain: String,
    pub verdict: Verdict,
    /// The probe token sent to this mailbox.
    pub token: String,
    /// Milliseconds from the SMTP `250` to the message being seen
    /// (delivered, duplicated, altered).
    pub latency_ms: Option<u64>,
    /// The refusing reply (rejected, deferred).
    pub smtp: Option<SmtpReply>,
    /// The reply that accepted the probe after DATA (`250 2.0.0 Ok: queued
    /// as 4B7F...`: the queue id to look for in the server's log); `None`
    /// when it was not accepted.
    #[serde(default)]
    pub accepted: Option<SmtpReply>,
    /// Other probed mailboxes where this mailbox's probe was found.
    pub found_in: Vec<String>,
    /// Copies found in this mailbox.
    pub copies: u32,
    /// What changed (altered).
    pub differences: Vec<String>,
    /// A sentence a person can act on.
    pub reason: String,
    /// How this mailbox was read (`IMAP 127.0.0.1:1143`).
    pub read_via: String,
    /// Folders of this mailbox other than INBOX that held its probe
    /// (misfiled; also a stray copy beside the one in INBOX).
    #[serde(default)]
    pub folders: Vec<String>,
    /// The MX host this probe was sent through (`--each-mx`), else `null`.
    #[serde(default)]
    pub via: Option<String>,
    /// With an upstream: where the probe was looked for, in order (the
    /// upstream, then its own mailbox), and when it was seen there; else empty.
    #[serde(default)]
    pub hops: Vec<Hop>,
    /// spf/dkim/dmarc as the copy read back says (`Authentication-Results`,
    /// `Received-SPF`, `DKIM-Signature`); `null` when no copy was read.
    #[serde(default)]
    pub auth: Option<crate::auth::AuthResults>,
}

/// One hop of a mailbox with an upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    /// `upstream` (the provider's mailbox) or `mailbox` (its own).
    pub hop: String,
    /// How it was read there (`POP3 127.0.0.2:110`).
    pub read_via: String,
    /// Milliseconds from the SMTP `250` to the probe being seen there; `null`: never seen.
    pub latency_ms: Option<u64>,
}

impl Hop {
    /// `upstream 0.12 s`, `mailbox not seen`.
    pub fn label(&self) -> String {
        match self.latency_ms {
            Some(ms) => format!("{} {:.2} s", self.hop, ms as f64 / 1000.0),
            None => format!("{} not seen", self.hop),
        }
    }
}

impl MailboxResult {
    /// The verdict as a table shows it: `misfiled (Junk)`.
    pub fn verdict_label(&self) -> String {
        let label = match self.verdict {
            Verdict::Misfiled if !self.folders.is_empty() => {
                format!("misfiled ({})", self.folders.join(", "))
            }
            v => v.as_str().to_string(),
        };
        match &self.via {
            Some(mx) => format!("{label} via {mx}"),
            None => label,
        }
    }
}

/// Token → the mailboxes (indices) where it was seen, built once per round
/// so judging every mailbox stays linear.
pub(crate) type SeenIndex = HashMap<String, Vec<usize>>;

pub(crate) fn seen_index(observed: &[Observation]) -> SeenIndex {
    let mut index: SeenIndex = HashMap::new();
    for (j, o) in observed.iter().enumerate() {
        for s in &o.seen {
            let at = index.entry(s.token.clone()).or_default();
            if at.last() != Some(&j) {
                at.push(j);
            }
        }
    }
    index
}

/// What was seen at a mailbox's upstream, and how it was read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpstreamView<'a> {
    pub observed: &'a Observation,
    pub read_via: &'a str,
}

/// Judges mailbox `i` (`observed` holds every probed mailbox, `upstream`
/// what was seen at its upstream, if it has one). Returns the result and
/// whether it is final (could not change by waiting longer: only `missing`
/// and `stuck-upstream` can, when the mail moves on).
pub(crate) fn judge(
    i: usize,
    expected: &[Expected],
    sent: &SendOutcome,
    observed: &[Observation],
    index: &SeenIndex,
    read_via: String,
    upstream: Option<UpstreamView<'_>>,
) -> (MailboxResult, bool) {
    let exp = &expected[i];
    let mut r = MailboxResult {
        address: exp.address.clone(),
        domain: crate::target::domain_of(&exp.address),
        verdict: Verdict::Missing,
        token: exp.token.clone(),
        latency_ms: None,
        smtp: None,
        accepted: None,
        found_in: Vec::new(),
        copies: 0,
        differences: Vec::new(),
        reason: String::new(),
        read_via,
        folders: Vec::new(),
        via: None,
        hops: Vec::new(),
        auth: None,
    };
    let (own, elsewhere): (Vec<&Sighting>, Vec<&Sighting>) = observed[i]
        .seen
        .iter()
        .filter(|s| s.token == exp.token)
        .partition(|s| s.folder.eq_ignore_ascii_case("INBOX"));
    for s in &elsewhere {
        if !r.folders.contains(&s.folder) {
            r.folders.push(s.folder.clone());
        }
    }
    r.copies = (own.len() + elsewhere.len()) as u32;
    r.auth = own
        .first()
        .or(elsewhere.first())
        .map(|s| s.headers.auth.clone());
    // Other mailboxes only: with --each-mx a mailbox is probed more than
    // once, and its other probes see the same observation.
    r.found_in = index
        .get(&exp.token)
        .map(|at| {
            let mut found: Vec<String> = Vec::new();
            for j in at.iter().filter(|j| **j != i) {
                let a = &expected[*j].address;
                if *a != exp.address && !found.contains(a) {
                    found.push(a.clone());
                }
            }
            found
        })
        .unwrap_or_default();

    let accepted_at = match sent {
        SendOutcome::NotSent | SendOutcome::RcptAccepted => {
            r.verdict = Verdict::Unreadable;
            let why = match &observed[i].read {
                ReadState::Failed(why) => why.clone(),
                _ => "the mailbox could not be read".to_string(),
            };
            r.reason = if matches!(sent, SendOutcome::RcptAccepted) {
                format!(
                    "{why}; RCPT TO was accepted but no probe was sent (it could be neither read back nor cleaned up)"
                )
            } else {
                format!("{why}; no probe was sent")
            };
            return (r, true);
        }
        SendOutcome::Failed { reply, reason } => {
            r.smtp = reply.clone();
            r.verdict = match reply {
                Some(reply) if reply.permanent => Verdict::Rejected,
                _ => Verdict::Deferred,
            };
            r.reason = reason.clone();
            if !own.is_empty() {
                r.reason.push_str(" (yet a copy arrived in the mailbox)");
            }
            return (r, true);
        }
        SendOutcome::Accepted { at, reply } => {
            r.accepted = reply.clone();
            *at
        }
    };
    if let Some(up) = upstream {
        r.hops = vec![
            Hop {
                hop: "upstream".into(),
                read_via: up.read_via.to_string(),
                latency_ms: first_seen_since(
                    up.observed.seen.iter().filter(|s| s.token == exp.token),
                    accepted_at,
                ),
            },
            Hop {
                hop: "mailbox".into(),
                read_via: r.read_via.clone(),
                latency_ms: first_seen_since(own.iter().chain(&elsewhere).copied(), accepted_at),
            },
        ];
    }

    if own.is_empty() && !elsewhere.is_empty() {
        r.verdict = Verdict::Misfiled;
        r.latency_ms = elsewhere
            .iter()
            .map(|s| s.first_seen)
            .min()
            .map(|t| millis(t.saturating_duration_since(accepted_at)));
        r.reason = format!(
            "accepted, but filed into {} instead of INBOX",
            r.folders.join(", ")
        );
        if !r.found_in.is_empty() {
            r.reason
                .push_str(&format!("; also found in {}", r.found_in.join(", ")));
        }
        return (r, true);
    }
    if own.is_empty() {
        if let ReadState::Failed(why) = &observed[i].read {
            r.verdict = Verdict::Unreadable;
            r.reason = why.clone();
            return (r, true);
        }
        if !r.found_in.is_empty() {
            r.verdict = Verdict::Misrouted;
            r.reason = format!("accepted, but delivered to {}", r.found_in.join(", "));
            return (r, true);
        }
        if let (Some(up), Some(ms)) = (upstream, r.hops.first().and_then(|h| h.latency_ms)) {
            r.verdict = Verdict::StuckUpstream;
            r.reason = format!(
                "accepted with 250 and at the upstream {} after {:.2} s, but never collected into {}",
                up.read_via,
                ms as f64 / 1000.0,
                r.read_via
            );
            return (r, false);
        }
        r.verdict = Verdict::Missing;
        r.reason = match &observed[i].read {
            ReadState::Read {
                last_error: Some(e),
            } => {
                format!("accepted with 250 but not seen (last read failed: {e})")
            }
            ReadState::Pending => "accepted with 250 but the mailbox was never read".to_string(),
            _ if upstream.is_some() => {
                "accepted with 250 but seen neither at its upstream nor in any probed mailbox"
                    .to_string()
            }
            _ => "accepted with 250 but never seen in any probed mailbox".to_string(),
        };
        if let Some(up) = upstream {
            match &up.observed.read {
                ReadState::Failed(e)
                | ReadState::Read {
                    last_error: Some(e),
                } => r.reason.push_str(&format!(
                    " (the upstream {} could not be read: {e})",
                    up.read_via
                )),
                ReadState::Pending => r
                    .reason
                    .push_str(&format!(" (the upstream {} was never read)", up.read_via)),
                ReadState::Read { last_error: None } => {}
            }
        }
        return (r, false);
    }

    let first_seen = own
        .iter()
        .map(|s| s.first_seen)
        .min()
        .unwrap_or(accepted_at);
    r.latency_ms = Some(millis(first_seen.saturating_duration_since(accepted_at)));
    for s in &own {
        for d in differences(exp, s) {
            if !r.differences.contains(&d) {
                r.differences.push(d);
            }
        }
    }
    if own.len() + elsewhere.len() > 1 {
        r.verdict = Verdict::Duplicated;
        r.reason = if elsewhere.is_empty() {
            format!("{} copies in the mailbox", own.len())
        } else {
            format!(
                "{} copies in the mailbox ({} in INBOX, more in {})",
                own.len() + elsewhere.len(),
                own.len(),
                r.folders.join(", ")
            )
        };
    } else if !r.differences.is_empty() {
        r.verdict = Verdict::Altered;
        r.reason = r.differences.join("; ");
    } else {
        let unmet = own[0].headers.auth.unmet(&exp.require);
        if unmet.is_empty() {
            r.verdict = Verdict::Delivered;
            r.reason = "seen with its token and body hash".to_string();
        } else {
            r.verdict = Verdict::DeliveredUnauthenticated;
            r.reason = format!(
                "delivered, but its Authentication-Results say {}",
                unmet.join(", ")
            );
        }
    }
    if !r.found_in.is_empty() {
        r.reason
            .push_str(&format!("; also found in {}", r.found_in.join(", ")));
    }
    (r, true)
}

/// Milliseconds from `at` to the first of these sightings.
fn first_seen_since<'s>(seen: impl Iterator<Item = &'s Sighting>, at: Instant) -> Option<u64> {
    seen.map(|s| s.first_seen)
        .min()
        .map(|t| millis(t.saturating_duration_since(at)))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How a seen message differs from what was sent.
fn differences(exp: &Expected, s: &Sighting) -> Vec<String> {
    let mut out = Vec::new();
    if s.body_hash != exp.body_hash {
        out.push(format!(
            "body hash differs (sent sha256:{}, read sha256:{})",
            short(&exp.body_hash),
            short(&s.body_hash)
        ));
    }
    match &s.headers.probe {
        Some(p) if p.trim() == exp.token => {}
        Some(p) => out.push(format!(
            "{} header changed to '{p}'",
            crate::message::PROBE_HEADER
        )),
        None => out.push(format!("{} header missing", crate::message::PROBE_HEADER)),
    }
    match &s.headers.subject {
        Some(sub) if sub.trim() == exp.subject => {}
        Some(sub) => out.push(format!("subject changed to '{sub}'")),
        None => out.push("subject missing".to_string()),
    }
    match &s.headers.message_id {
        Some(id) if id.trim() == exp.message_id => {}
        Some(id) => out.push(format!("Message-ID changed to '{id}'")),
        None => out.push("Message-ID missing".to_string()),
    }
    out
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

#[cfg(test)]
mod tests;
