//! Which messages the server accepted, kept compact so a verifier (e.g. a later `--verify-imap`) can check
//! afterwards that each one arrived in each recipient's mailbox.
//!
//! Every message carries `Message-ID: <load-RUNID-SEQ@mailrig>` and `X-Mailrig-Load: RUNID SEQ`, and its
//! recipients follow from `SEQ` ([`crate::recipients::recipient_index`]). So a run only needs to remember
//! the set of accepted sequence numbers, stored as ranges (a run without failures is a single range), plus
//! the rare recipients refused inside an accepted message. Memory stays bounded: past
//! [`MAX_RANGES`] ranges or [`MAX_REFUSED`] refusals the log stops growing and says it is truncated.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::recipients::recipient_index;

/// Most disjoint ranges of accepted sequence numbers kept per run (16 bytes each).
pub const MAX_RANGES: usize = 1_000_000;
/// Most refused recipients of accepted messages kept per run.
pub const MAX_REFUSED: usize = 100_000;

/// Most accept times kept per run (24 bytes each, about 24 MB): past this, later messages are verified
/// for delivery but their latency is not measured ([`AcceptTimes::truncated`]).
pub const MAX_ACCEPT_TIMES: usize = 1_000_000;

/// The `Message-ID` of message `seq` of run `run_id`, with angle brackets.
pub fn message_id(run_id: &str, seq: u64) -> String {
    format!("<load-{run_id}-{seq}@mailrig>")
}

/// The accepted messages of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedMessages {
    /// The run's id (in every Message-ID).
    pub run_id: String,
    /// The recipient pool, in order.
    pub recipients: Vec<String>,
    /// RCPTs per message.
    pub recipients_per_message: u32,
    /// Accepted sequence numbers as sorted, disjoint half-open ranges `[start, end)`.
    pub seq_ranges: Vec<[u64; 2]>,
    /// `[seq, slot]` of recipients refused by RCPT within accepted messages (not expected to arrive).
    pub refused_recipients: Vec<[u64; 2]>,
    /// Set when a bound was hit: some accepted messages or refusals are missing from the lists.
    pub truncated: bool,
    /// Accepted messages per recipient address (derived from the above; recipients with none omitted).
    pub per_recipient: BTreeMap<String, u64>,
}

impl AcceptedMessages {
    /// Number of accepted messages listed.
    pub fn count(&self) -> u64 {
        self.seq_ranges.iter().map(|[s, e]| e - s).sum()
    }

    /// Whether message `seq` was accepted.
    pub fn contains(&self, seq: u64) -> bool {
        let i = self.seq_ranges.partition_point(|[start, _]| *start <= seq);
        i > 0 && seq < self.seq_ranges[i - 1][1]
    }

    /// Accepted sequence numbers in order.
    pub fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.seq_ranges.iter().flat_map(|&[s, e]| s..e)
    }

    /// Every expected delivery as `(recipient address, seq)`: each accepted message to each of its
    /// recipients that was not refused. The Message-ID is [`message_id`]`(run_id, seq)`.
    pub fn deliveries(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        let k = self.recipients_per_message;
        self.seqs().flat_map(move |seq| {
            (0..k).filter_map(move |slot| {
                if self.is_refused(seq, slot) {
                    return None;
                }
                let i = recipient_index(self.recipients.len(), seq, k, slot);
                self.recipients.get(i).map(|r| (r.as_str(), seq))
            })
        })
    }

    fn is_refused(&self, seq: u64, slot: u32) -> bool {
        !self.refused_recipients.is_empty()
            && self
                .refused_recipients
                .binary_search(&[seq, u64::from(slot)])
                .is_ok()
    }

    fn compute_per_recipient(&mut self) {
        let mut counts = vec![0u64; self.recipients.len()];
        let k = self.recipients_per_message;
        for seq in self.seqs() {
            for slot in 0..k {
                if !self.is_refused(seq, slot) {
                    counts[recipient_index(self.recipients.len(), seq, k, slot)] += 1;
                }
            }
        }
        self.per_recipient = self
            .recipients
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.clone(), n))
            .collect();
    }
}

/// When each accepted message got its 250, kept in memory only (never in the JSON report) and only when
/// [`crate::LoadConfig::record_accept_times`] is set: a verifier subtracts it from the time it first sees
/// the message in a mailbox. `Instant`s, so the clock of this process alone is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptTimes {
    /// `(seq, time of the 250)`, sorted by `seq`.
    entries: Vec<(u64, Instant)>,
    /// Set when [`MAX_ACCEPT_TIMES`] was hit: later messages have no accept time.
    pub truncated: bool,
}

impl AcceptTimes {
    /// Records the 250 of message `seq`.
    pub fn record(&mut self, seq: u64, at: Instant) {
        if self.entries.len() < MAX_ACCEPT_TIMES {
            self.entries.push((seq, at));
        } else {
            self.truncated = true;
        }
    }

    /// Adds another set of the same run.
    pub fn absorb(&mut self, other: AcceptTimes) {
        for (seq, at) in other.entries {
            self.record(seq, at);
        }
        self.truncated |= other.truncated;
    }

    /// Sorts for lookups (called once the run is over).
    pub fn finish(mut self) -> AcceptTimes {
        self.entries.sort_unstable_by_key(|&(seq, _)| seq);
        self
    }

    /// When message `seq` was accepted, if recorded. Needs [`AcceptTimes::finish`] first.
    pub fn get(&self, seq: u64) -> Option<Instant> {
        self.entries
            .binary_search_by_key(&seq, |&(s, _)| s)
            .ok()
            .map(|i| self.entries[i].1)
    }

    /// Messages with an accept time.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The growing log of a running load: insert accepted sequence numbers in any order.
#[derive(Debug, Default)]
pub struct AcceptedLog {
    ranges: BTreeMap<u64, u64>,
    refused: Vec<[u64; 2]>,
    truncated: bool,
}

impl AcceptedLog {
    /// Records an accepted message, with the slots of any refused recipients.
    pub fn insert(&mut self, seq: u64, refused_slots: &[u32]) {
        for &slot in refused_slots {
            if self.refused.len() < MAX_REFUSED {
                self.refused.push([seq, u64::from(slot)]);
            } else {
                self.truncated = true;
            }
        }
        let below = self.ranges.range(..=seq).next_back().map(|(&s, &e)| (s, e));
        if let Some((_, end)) = below
            && end > seq
        {
            return; // already there
        }
        let next = seq + 1;
        let above_end = self.ranges.get(&next).copied();
        match (below, above_end) {
            (Some((start, end)), Some(a_end)) if end == seq => {
                self.ranges.remove(&next);
                self.ranges.insert(start, a_end);
            }
            (Some((start, end)), None) if end == seq => {
                self.ranges.insert(start, next);
            }
            (_, Some(a_end)) => {
                self.ranges.remove(&next);
                self.ranges.insert(seq, a_end);
            }
            _ => {
                if self.ranges.len() >= MAX_RANGES {
                    self.truncated = true;
                } else {
                    self.ranges.insert(seq, next);
                }
            }
        }
    }

    /// Adds another log of the same run.
    pub fn absorb(&mut self, other: AcceptedLog) {
        for (s, e) in other.ranges {
            for seq in s..e {
                self.insert(seq, &[]);
            }
        }
        self.refused.extend(other.refused);
        self.truncated |= other.truncated;
    }

    /// The report form.
    pub fn finish(
        mut self,
        run_id: String,
        recipients: Vec<String>,
        recipients_per_message: u32,
    ) -> AcceptedMessages {
        self.refused.sort_unstable();
        self.refused.dedup();
        let mut out = AcceptedMessages {
            run_id,
            recipients,
            recipients_per_message,
            seq_ranges: self.ranges.into_iter().map(|(s, e)| [s, e]).collect(),
            refused_recipients: self.refused,
            truncated: self.truncated,
            per_recipient: BTreeMap::new(),
        };
        out.compute_per_recipient();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_inserts_collapse_into_ranges() {
        let mut log = AcceptedLog::default();
        for seq in [5, 3, 4, 0, 1, 9, 2, 2, 8] {
            log.insert(seq, &[]);
        }
        let acc = log.finish("r".into(), vec!["a@x".into(), "b@x".into()], 1);
        assert_eq!(acc.seq_ranges, [[0, 6], [8, 10]]);
        assert_eq!(acc.count(), 8);
        assert!(acc.contains(0) && acc.contains(5) && acc.contains(9));
        assert!(!acc.contains(6) && !acc.contains(7) && !acc.contains(10));
        assert_eq!(acc.per_recipient["a@x"], 4); // 0 2 4 8
        assert_eq!(acc.per_recipient["b@x"], 4); // 1 3 5 9
    }

    #[test]
    fn deliveries_skip_refused_recipients() {
        let mut log = AcceptedLog::default();
        log.insert(0, &[]);
        log.insert(1, &[1]);
        let acc = log.finish(
            "r".into(),
            vec!["a@x".into(), "b@x".into(), "c@x".into()],
            2,
        );
        let d: Vec<_> = acc.deliveries().collect();
        assert_eq!(d, [("a@x", 0), ("b@x", 0), ("c@x", 1)]);
        assert_eq!(acc.per_recipient.get("a@x"), Some(&1));
        assert_eq!(message_id("r", 7), "<load-r-7@mailrig>");
    }

    #[test]
    fn accept_times_are_looked_up_by_seq() {
        let t0 = Instant::now();
        let mut times = AcceptTimes::default();
        times.record(5, t0);
        times.record(2, t0 + std::time::Duration::from_millis(3));
        let times = times.finish();
        assert_eq!(times.get(5), Some(t0));
        assert_eq!(times.get(2), Some(t0 + std::time::Duration::from_millis(3)));
        assert_eq!(times.get(3), None);
        assert_eq!(times.len(), 2);
    }
}
