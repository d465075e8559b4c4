//! What a folder remembers of its expunged messages: their UIDs with the
//! modseq of the expunge, so QRESYNC (RFC 7162 §3.2) can tell a client which
//! of the messages it knows are gone since the modseq it last saw.
//!
//! The record is bounded ([`KEPT`] entries). Below its *floor* (the highest
//! modseq it forgot, or the modseq a folder read back from disk started at)
//! it knows nothing, and says so: the caller then answers conservatively,
//! every UID it does not hold counting as vanished, as RFC 7162 §3.2.5.2
//! allows.

use std::collections::VecDeque;

/// How many expunged UIDs a folder remembers.
pub const KEPT: usize = 4096;

/// Expunged UIDs of one folder with the modseq of their expunge, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expunged {
    /// Nothing is known about expunges at or below this modseq.
    floor: u64,
    entries: VecDeque<(u32, u64)>,
}

/// What the record knows about the expunges after a modseq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VanishedSince {
    /// These UIDs (ascending) were expunged after the modseq; no others.
    Known(Vec<u32>),
    /// The modseq is below what the record remembers: any UID may have gone.
    Unknown,
}

impl Expunged {
    /// A record that knows nothing at or below `floor` (a folder read back
    /// from disk: the expunges of earlier runs are not stored).
    pub fn with_floor(floor: u64) -> Expunged {
        Expunged {
            floor,
            entries: VecDeque::new(),
        }
    }

    /// Remembers that `uids` went at `modseq` (higher than any before).
    pub fn record(&mut self, uids: &[u32], modseq: u64) {
        for &uid in uids {
            self.entries.push_back((uid, modseq));
        }
        while self.entries.len() > KEPT {
            if let Some((_, m)) = self.entries.pop_front() {
                self.floor = self.floor.max(m);
            }
        }
    }

    /// The UIDs expunged after `modseq`.
    pub fn since(&self, modseq: u64) -> VanishedSince {
        if modseq < self.floor {
            return VanishedSince::Unknown;
        }
        let start = self.entries.partition_point(|&(_, m)| m <= modseq);
        let mut uids: Vec<u32> = self.entries.range(start..).map(|&(u, _)| u).collect();
        uids.sort_unstable();
        uids.dedup();
        VanishedSince::Known(uids)
    }

    /// The modseq below which nothing is known.
    pub fn floor(&self) -> u64 {
        self.floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_since_a_modseq_and_forgets_below_its_floor() {
        let mut e = Expunged::with_floor(10);
        e.record(&[7, 3], 12);
        e.record(&[5], 15);
        assert_eq!(e.since(9), VanishedSince::Unknown);
        assert_eq!(e.since(10), VanishedSince::Known(vec![3, 5, 7]));
        assert_eq!(e.since(12), VanishedSince::Known(vec![5]));
        assert_eq!(e.since(15), VanishedSince::Known(vec![]));
    }

    #[test]
    fn stays_bounded_and_raises_its_floor() {
        let mut e = Expunged::default();
        for i in 0..(KEPT as u32 + 10) {
            e.record(&[i + 1], u64::from(i) + 2);
        }
        assert_eq!(e.entries.len(), KEPT);
        // The ten oldest (modseqs 2..=11) are forgotten.
        assert_eq!(e.floor(), 11);
        assert_eq!(e.since(5), VanishedSince::Unknown);
        match e.since(11) {
            VanishedSince::Known(v) => assert_eq!(v.len(), KEPT),
            other => panic!("{other:?}"),
        }
    }
}
