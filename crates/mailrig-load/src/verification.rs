//! The result of checking, after a run, that accepted messages really arrived: per recipient mailbox how
//! many were accepted, seen and missing, and the delivery latency from the 250 to the first time a message
//! was seen. Only the result lives here (it is part of the [`crate::Report`], its JSON and its table);
//! reading the mailboxes is done by the caller (`mailrig load --verify-imap`, over IMAP with
//! `mailrig-probe`'s reader), so this crate stays an SMTP load driver.
//!
//! Dependencies go one way: `report` contains a verification; this module uses only histograms.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::histogram::{LatencySummary, latency_row};

/// What the delivery check of one run found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// How the mailboxes were read, e.g. `imap 127.0.0.1:1143`.
    pub method: String,
    /// How long the check waited for messages to show up, seconds.
    pub timeout_secs: f64,
    /// Expected deliveries (accepted messages × their accepted recipients) in the mailboxes checked.
    pub accepted: u64,
    /// Of those, seen in their mailbox.
    pub delivered: u64,
    /// Of those, never seen before the timeout: accepted with 250 and lost (or late).
    pub missing: u64,
    /// Expected deliveries that could not be checked (no credentials, or the mailbox could not be read).
    pub unverified: u64,
    /// Per recipient address.
    pub per_recipient: BTreeMap<String, MailboxVerification>,
    /// From the 250 to the first time a message was seen. `None` when nothing was seen or no accept times
    /// were kept.
    pub latency: Option<LatencySummary>,
    /// Set when some delivered messages had no recorded accept time (the bound of kept accept times was
    /// hit): the latency histogram covers only the others.
    pub latency_sampled: bool,
}

/// The check of one mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxVerification {
    /// Expected deliveries to this mailbox.
    pub accepted: u64,
    /// Seen.
    pub delivered: u64,
    /// Not seen before the timeout.
    pub missing: u64,
    /// Why the mailbox could not be checked (then `delivered` and `missing` are 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MailboxVerification {
    /// Whether this mailbox was read.
    pub fn verified(&self) -> bool {
        self.error.is_none()
    }
}

impl Verification {
    /// Whether every expected delivery was checked and seen.
    pub fn all_delivered(&self) -> bool {
        self.missing == 0 && self.unverified == 0
    }

    /// Adds up the totals from `per_recipient`.
    pub fn compute_totals(&mut self) {
        let (mut a, mut d, mut m, mut u) = (0, 0, 0, 0);
        for r in self.per_recipient.values() {
            a += r.accepted;
            d += r.delivered;
            m += r.missing;
            if !r.verified() {
                u += r.accepted;
            }
        }
        (self.accepted, self.delivered, self.missing, self.unverified) = (a, d, m, u);
    }

    /// The table section printed after the stage latencies.
    pub(crate) fn write_table(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "\ndelivery check ({}, waited up to {} s): accepted {}   delivered {}   missing {}{}",
            self.method,
            self.timeout_secs,
            self.accepted,
            self.delivered,
            self.missing,
            if self.unverified > 0 {
                format!("   unverified {}", self.unverified)
            } else {
                String::new()
            }
        );
        if let Some(l) = &self.latency {
            latency_row(t, "delivery", l);
            if self.latency_sampled {
                let _ = writeln!(
                    t,
                    "  (latency of the first messages only: accept-time bound hit)"
                );
            }
        }
        let short: Vec<_> = self
            .per_recipient
            .iter()
            .filter(|(_, r)| r.missing > 0 || !r.verified())
            .collect();
        if short.is_empty() {
            return;
        }
        let _ = writeln!(
            t,
            "{:<32}{:>10}{:>10}{:>10}",
            "mailbox", "accepted", "delivered", "missing"
        );
        for (addr, r) in short {
            let _ = write!(
                t,
                "{:<32}{:>10}{:>10}{:>10}",
                addr, r.accepted, r.delivered, r.missing
            );
            match &r.error {
                Some(e) => {
                    let _ = writeln!(t, "   not checked: {e}");
                }
                None => {
                    let _ = writeln!(t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_and_table_name_the_short_mailboxes() {
        let mut v = Verification {
            method: "imap 127.0.0.1:1143".into(),
            timeout_secs: 10.0,
            ..Verification::default()
        };
        v.per_recipient.insert(
            "a@x".into(),
            MailboxVerification {
                accepted: 2,
                delivered: 2,
                ..Default::default()
            },
        );
        v.per_recipient.insert(
            "b@x".into(),
            MailboxVerification {
                accepted: 3,
                delivered: 1,
                missing: 2,
                error: None,
            },
        );
        v.per_recipient.insert(
            "c@x".into(),
            MailboxVerification {
                accepted: 1,
                error: Some("no credentials".into()),
                ..Default::default()
            },
        );
        v.compute_totals();
        assert_eq!(
            (v.accepted, v.delivered, v.missing, v.unverified),
            (6, 3, 2, 1)
        );
        assert!(!v.all_delivered());
        let mut t = String::new();
        v.write_table(&mut t);
        assert!(t.contains("missing 2"), "{t}");
        assert!(t.contains("b@x"), "{t}");
        assert!(t.contains("not checked: no credentials"), "{t}");
        assert!(!t.contains("a@x"), "{t}");
        let json = serde_json::to_string(&v).unwrap();
        let back: Verification = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
    }
}
