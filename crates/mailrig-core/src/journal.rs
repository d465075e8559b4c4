//! The journal: a bounded, ordered record of every decision that changed a
//! message's fate — delivered, rejected, dropped, misrouted, deferred — with the
//! time, the stage and the rule that caused it.
//!
//! It is the ground truth a test or a trainer compares against ("what happened
//! to the message with this Message-ID?"). It keeps the newest
//! [`Journal::DEFAULT_CAPACITY`] entries so a long load run cannot grow memory
//! without bound; `dropped()` says how many old entries were let go.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

use crate::fault::{Action, Stage};
use crate::signal::ChangeSignal;

/// A string of a journal entry. Shared, not copied, where the same text is
/// held elsewhere already: the world's address of a mailbox, a session's
/// peer, a message's envelope sender. The journal keeps
/// [`Journal::DEFAULT_CAPACITY`] entries, one per delivered copy, so every
/// byte of an entry counts against the store's memory figure.
pub type Text = Arc<str>;

/// What happened.
///
/// The variants that a busy server writes once per message (delivered,
/// rejected, dropped, misrouted) hold their data inline; the rest hold it
/// boxed, so that an entry stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JournalEvent {
    /// Stored into a mailbox folder with this UID.
    Delivered { mailbox: Text, uid: u32 },
    /// Refused with an SMTP reply.
    Rejected {
        code: u16,
        enhanced: Text,
        text: Text,
    },
    /// Accepted with 250 and thrown away.
    Dropped,
    /// Stored into a mailbox other than the one addressed.
    Misrouted { intended: Text, actual: Text },
    /// Anything else a fault did: the fault plan's own [`Action`] (a type to
    /// match on, never a string to match by prefix), serialized as its
    /// description (`"delay 400 ms"`, `"tls NotOffered"`) so the HTTP JSON
    /// (`{"kind": "fault", "action": "..."}`) stays what it always was.
    Fault {
        #[serde(serialize_with = "action_description")]
        action: Box<Action>,
    },
    /// A collector fetched a message and delivered it (see [`Collected`]).
    Collected(Box<Collected>),
    /// A collector could not fetch an account (see [`CollectFailed`]).
    CollectFailed(Box<CollectFailed>),
    /// A backup MX or relay passed a queued message on to another host.
    Forwarded { to_host: Text },
    /// A forwarding attempt failed; the message stays queued for the next one.
    ForwardDeferred { to_host: Text, reason: Text },
    /// A query to the world's DNS server and its answer (see [`DnsQuery`]).
    Dns(Box<DnsQuery>),
    /// The sender authentication checks (SPF, DKIM, DMARC, ARC) of a message
    /// at the end of DATA, before it is stored or refused.
    Authenticated {
        #[serde(flatten)]
        results: Arc<crate::sender_auth::AuthResults>,
    },
}

/// A collector fetched a message (POP3 UIDL or IMAP UID `uidl` of `account`)
/// and delivered it into these mailboxes of its target host (none: lost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collected {
    pub collector: String,
    pub account: String,
    pub uidl: String,
    pub delivered_to: Vec<String>,
}

/// A collector could not fetch an account (login refused, no connection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectFailed {
    pub collector: String,
    pub account: String,
    pub reason: String,
}

/// A query to the world's DNS server and its answer (the client is the
/// entry's `peer`; a fault that changed the answer is its `rule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsQuery {
    pub qname: String,
    pub qtype: String,
    /// `NOERROR`, `NXDOMAIN`, `REFUSED`, `SERVFAIL`, or `none` when no
    /// answer was sent.
    pub rcode: String,
    /// Records in the answer section.
    pub answers: usize,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The TC bit was set.
    pub truncated: bool,
}

fn action_description<S: serde::Serializer>(action: &Action, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&action.describe())
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    pub seq: u64,
    /// The host of the world the event happened on (`None` in a one-server world).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Text>,
    pub time: DateTime<Utc>,
    pub stage: Stage,
    /// Name of the fault rule that decided, if a rule did.
    pub rule: Option<Text>,
    pub message_id: Option<Text>,
    pub mail_from: Option<Text>,
    pub rcpt: Option<Text>,
    pub peer: Option<Text>,
    pub event: JournalEvent,
}

/// What a caller fills in; the journal adds the sequence number and time.
#[derive(Debug, Clone)]
pub struct JournalRecord {
    pub stage: Stage,
    pub rule: Option<Text>,
    pub message_id: Option<Text>,
    pub mail_from: Option<Text>,
    pub rcpt: Option<Text>,
    pub peer: Option<Text>,
    pub event: JournalEvent,
}

/// The bounded journal, shared by all sessions — and by every host of a
/// world: each host records through its own handle ([`Journal::for_host`]),
/// which names the host in every entry, into the one ordered list.
#[derive(Debug)]
pub struct Journal {
    inner: Arc<Inner>,
    host: Option<Text>,
}

#[derive(Debug)]
struct Inner {
    entries: Mutex<VecDeque<JournalEntry>>,
    capacity: usize,
    next_seq: AtomicU64,
    /// Bumped by every new entry and by `clear`.
    changed: ChangeSignal,
}

/// Which entries [`Journal::query`] returns: every field given must match.
/// The names are those of the entry's JSON fields, except `mailbox` (the
/// recipient or the mailbox a delivery or misroute ended in) and `kind`
/// (the event's `kind`).
#[derive(Debug, Clone, Default)]
pub struct JournalQuery {
    /// Only entries after this sequence number (a cursor: the `seq` of the
    /// last entry seen).
    pub since: Option<u64>,
    /// Only entries before this sequence number (a cursor for paging back:
    /// the `seq` of the oldest entry seen).
    pub before: Option<u64>,
    /// At most this many entries: the oldest that match, or with `before`
    /// the newest (the page just older than the cursor).
    pub limit: Option<usize>,
    pub mailbox: Option<String>,
    pub rcpt: Option<String>,
    pub mail_from: Option<String>,
    pub message_id: Option<String>,
    pub rule: Option<String>,
    pub stage: Option<Stage>,
    pub peer: Option<String>,
    pub kind: Option<String>,
}

impl JournalQuery {
    /// Whether `e` passes every filter but `since`, `before` and `limit`.
    pub fn matches(&self, e: &JournalEntry) -> bool {
        let eq = |a: &Option<String>, b: &Option<Text>| {
            a.as_ref().is_none_or(|a| {
                b.as_deref()
                    .is_some_and(|b| b.eq_ignore_ascii_case(a.as_str()))
            })
        };
        let strip = |s: &str| s.trim_matches(|c| c == '<' || c == '>').to_string();
        let mailbox_ok = self.mailbox.as_ref().is_none_or(|m| {
            e.rcpt.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(m))
                || match &e.event {
                    JournalEvent::Delivered { mailbox, .. } => mailbox.eq_ignore_ascii_case(m),
                    JournalEvent::Misrouted { intended, actual } => {
                        intended.eq_ignore_ascii_case(m) || actual.eq_ignore_ascii_case(m)
                    }
                    JournalEvent::Collected(c) => {
                        c.account.eq_ignore_ascii_case(m)
                            || c.delivered_to.iter().any(|d| d.eq_ignore_ascii_case(m))
                    }
                    JournalEvent::CollectFailed(c) => c.account.eq_ignore_ascii_case(m),
                    _ => false,
                }
        });
        let mid_ok = self.message_id.as_ref().is_none_or(|m| {
            e.message_id.as_deref().map(strip).as_deref() == Some(strip(m).as_str())
        });
        // The peer is `ip:port`; a bare IP matches every port.
        let peer_ok = self.peer.as_ref().is_none_or(|p| {
            e.peer.as_deref().is_some_and(|have| {
                have == p
                    || have.rsplit_once(':').is_some_and(|(ip, _)| {
                        ip.trim_matches(['[', ']']) == p.trim_matches(['[', ']'])
                    })
            })
        });
        mailbox_ok
            && mid_ok
            && peer_ok
            && eq(&self.rcpt, &e.rcpt)
            && eq(&self.mail_from, &e.mail_from)
            && self
                .rule
                .as_ref()
                .is_none_or(|r| e.rule.as_deref() == Some(r.as_str()))
            && self.stage.is_none_or(|s| e.stage == s)
            && self.kind.as_ref().is_none_or(|k| e.event.kind() == k)
    }
}

impl JournalEvent {
    /// The `kind` of its JSON form.
    pub fn kind(&self) -> &'static str {
        match self {
            JournalEvent::Delivered { .. } => "delivered",
            JournalEvent::Rejected { .. } => "rejected",
            JournalEvent::Dropped => "dropped",
            JournalEvent::Misrouted { .. } => "misrouted",
            JournalEvent::Fault { .. } => "fault",
            JournalEvent::Collected(_) => "collected",
            JournalEvent::CollectFailed(_) => "collect-failed",
            JournalEvent::Forwarded { .. } => "forwarded",
            JournalEvent::ForwardDeferred { .. } => "forward-deferred",
            JournalEvent::Dns(_) => "dns",
            JournalEvent::Authenticated { .. } => "authenticated",
        }
    }

    /// The kinds there are.
    pub const KINDS: &'static [&'static str] = &[
        "delivered",
        "rejected",
        "dropped",
        "misrouted",
        "fault",
        "collected",
        "collect-failed",
        "forwarded",
        "forward-deferred",
        "dns",
        "authenticated",
    ];
}

impl Default for Journal {
    fn default() -> Self {
        Journal::with_capacity(Journal::DEFAULT_CAPACITY)
    }
}

impl Journal {
    pub const DEFAULT_CAPACITY: usize = 100_000;

    pub fn with_capacity(capacity: usize) -> Journal {
        Journal {
            inner: Arc::new(Inner {
                entries: Mutex::new(VecDeque::new()),
                capacity: capacity.max(1),
                next_seq: AtomicU64::new(1),
                changed: ChangeSignal::new(),
            }),
            host: None,
        }
    }

    /// A handle on the same journal that names `host` in every entry it records.
    pub fn for_host(&self, host: &str) -> Journal {
        Journal {
            inner: Arc::clone(&self.inner),
            host: Some(host.into()),
        }
    }

    /// The host this handle records for.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Appends an entry and returns its sequence number.
    pub fn record(&self, r: JournalRecord) -> u64 {
        let inner = &*self.inner;
        let mut entries = inner.entries.lock();
        let seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
        if entries.len() == inner.capacity {
            entries.pop_front();
        }
        entries.push_back(JournalEntry {
            seq,
            host: self.host.clone(),
            time: Utc::now(),
            stage: r.stage,
            rule: r.rule,
            message_id: r.message_id,
            mail_from: r.mail_from,
            rcpt: r.rcpt,
            peer: r.peer,
            event: r.event,
        });
        drop(entries);
        inner.changed.bump();
        seq
    }

    /// The change counter: bumped by every new entry and by `clear`.
    pub fn changes(&self) -> &ChangeSignal {
        &self.inner.changed
    }

    /// The sequence number of the newest entry ever recorded (0 for none),
    /// kept or not: a cursor for "everything from now on".
    pub fn last_seq(&self) -> u64 {
        self.inner
            .next_seq
            .load(Ordering::Relaxed)
            .saturating_sub(1)
    }

    /// The entries `q` selects, oldest first.
    pub fn query(&self, q: &JournalQuery) -> Vec<JournalEntry> {
        let entries = self.inner.entries.lock();
        let since = q.since.unwrap_or(0);
        // Sequence numbers ascend, so the start is found by bisection.
        let start = entries.partition_point(|e| e.seq <= since);
        let limit = q.limit.unwrap_or(usize::MAX);
        let Some(before) = q.before else {
            return entries
                .range(start..)
                .filter(|e| q.matches(e))
                .take(limit)
                .cloned()
                .collect();
        };
        let end = entries.partition_point(|e| e.seq < before).max(start);
        let mut page: Vec<JournalEntry> = entries
            .range(start..end)
            .rev()
            .filter(|e| q.matches(e))
            .take(limit)
            .cloned()
            .collect();
        page.reverse();
        page
    }

    /// All entries kept, oldest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.inner.entries.lock().iter().cloned().collect()
    }

    /// Entries that concern a mailbox address (as recipient or target) or a Message-ID.
    pub fn filter(&self, mailbox: Option<&str>, message_id: Option<&str>) -> Vec<JournalEntry> {
        self.query(&JournalQuery {
            mailbox: mailbox.map(str::to_string),
            message_id: message_id.map(str::to_string),
            ..JournalQuery::default()
        })
    }

    /// How many entries were let go because the journal was full.
    pub fn dropped(&self) -> u64 {
        let kept = self.inner.entries.lock().len() as u64;
        (self.inner.next_seq.load(Ordering::Relaxed) - 1).saturating_sub(kept)
    }

    /// Empties the journal; sequence numbers keep counting up, so a cursor
    /// stays valid. Returns how many entries were removed.
    pub fn clear(&self) -> usize {
        let n = {
            let mut entries = self.inner.entries.lock();
            let n = entries.len();
            entries.clear();
            n
        };
        self.inner.changed.bump();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rcpt: &str, mid: &str) -> JournalRecord {
        JournalRecord {
            stage: Stage::Deliver,
            rule: None,
            message_id: Some(mid.into()),
            mail_from: Some("s@x".into()),
            rcpt: Some(rcpt.into()),
            peer: None,
            event: JournalEvent::Dropped,
        }
    }

    #[test]
    fn bounded_and_filtered() {
        let j = Journal::with_capacity(2);
        j.record(rec("a@x", "<1@x>"));
        j.record(rec("b@x", "<2@x>"));
        j.record(rec("A@x", "<3@x>"));
        assert_eq!(j.entries().len(), 2);
        assert_eq!(j.dropped(), 1);
        assert_eq!(j.filter(Some("a@X"), None).len(), 1);
        assert_eq!(j.filter(None, Some("2@x")).len(), 1);
        assert_eq!(j.entries()[1].seq, 3);
        assert_eq!(j.entries()[1].host, None);
    }

    #[test]
    fn host_handles_share_one_journal_and_name_their_host() {
        let j = Journal::default();
        let a = j.for_host("provider");
        a.record(rec("a@x", "<1@x>"));
        j.record(rec("b@x", "<2@x>"));
        let e = j.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].host.as_deref(), Some("provider"));
        assert_eq!(serde_json::to_value(&e[0]).unwrap()["host"], "provider");
        assert!(serde_json::to_value(&e[1]).unwrap().get("host").is_none());
        assert_eq!(a.entries().len(), 2);
    }

    #[test]
    fn a_query_pages_with_a_cursor_and_filters_by_field_name() {
        let j = Journal::with_capacity(10);
        for i in 0..5 {
            let mut r = rec(if i % 2 == 0 { "a@x" } else { "b@x" }, &format!("<{i}@x>"));
            r.peer = Some(format!("127.0.0.1:{}", 1000 + i).into());
            j.record(r);
        }
        let q = |f: &dyn Fn(&mut JournalQuery)| {
            let mut q = JournalQuery::default();
            f(&mut q);
            j.query(&q).iter().map(|e| e.seq).collect::<Vec<_>>()
        };
        assert_eq!(q(&|q| q.since = Some(3)), vec![4, 5]);
        assert_eq!(q(&|q| q.limit = Some(2)), vec![1, 2]);
        assert_eq!(
            q(&|q| {
                q.since = Some(1);
                q.limit = Some(1);
                q.rcpt = Some("A@x".into());
            }),
            vec![3]
        );
        assert_eq!(q(&|q| q.peer = Some("127.0.0.1".into())).len(), 5);
        assert_eq!(q(&|q| q.peer = Some("127.0.0.1:1002".into())), vec![3]);
        assert_eq!(q(&|q| q.kind = Some("dropped".into())).len(), 5);
        assert_eq!(q(&|q| q.kind = Some("delivered".into())).len(), 0);
        assert_eq!(q(&|q| q.stage = Some(Stage::Rcpt)).len(), 0);
        assert_eq!(q(&|q| q.message_id = Some("4@x".into())), vec![5]);
        assert_eq!(q(&|q| q.rule = Some("r".into())).len(), 0);
        // Paging back from the newest: the newest `limit` before the cursor, oldest first.
        assert_eq!(
            q(&|q| {
                q.before = Some(u64::MAX);
                q.limit = Some(2);
            }),
            vec![4, 5]
        );
        assert_eq!(
            q(&|q| {
                q.before = Some(4);
                q.limit = Some(2);
            }),
            vec![2, 3]
        );
        assert_eq!(
            q(&|q| {
                q.before = Some(2);
                q.limit = Some(2);
            }),
            vec![1]
        );
        assert_eq!(
            q(&|q| {
                q.before = Some(5);
                q.rcpt = Some("a@x".into());
            }),
            vec![1, 3]
        );
        assert_eq!(
            q(&|q| {
                q.since = Some(3);
                q.before = Some(2);
            }),
            Vec::<u64>::new()
        );
        let before = j.changes().version();
        assert_eq!(j.clear(), 5);
        assert!(j.changes().version() > before);
        assert_eq!(j.last_seq(), 5);
        j.record(rec("a@x", "<9@x>"));
        assert_eq!(q(&|q| q.since = Some(5)), vec![6]);
    }

    #[test]
    fn a_fault_event_is_a_type_and_serializes_as_its_description() {
        let event = JournalEvent::Fault {
            action: Box::new(Action::Delay { ms: 400 }),
        };
        assert!(matches!(
            &event,
            JournalEvent::Fault { action } if **action == Action::Delay { ms: 400 }
        ));
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"kind": "fault", "action": "delay 400 ms"})
        );
        let tls = JournalEvent::Fault {
            action: Box::new(Action::Tls(crate::fault::TlsFault::NotOffered)),
        };
        assert_eq!(
            serde_json::to_value(&tls).unwrap()["action"],
            "tls NotOffered"
        );
    }
}
