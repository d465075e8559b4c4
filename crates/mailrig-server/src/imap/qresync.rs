//! QRESYNC (RFC 7162 §3.2) arithmetic: which UIDs a client is told have
//! vanished, as ranges, never one entry per UID (a client may name
//! `1:4294967295`), and the checks of `SELECT (QRESYNC ...)`'s parameters
//! that `imap-codec` leaves to the server.

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mailrig_core::store::VanishedSince;

/// Inclusive UID ranges, ascending, neither overlapping nor touching.
pub type Ranges = Vec<(u32, u32)>;

/// A bad `QRESYNC` select parameter, in words for the tagged BAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("QRESYNC known UIDs must not contain '*' (RFC 7162 section 3.2.5)")]
    StarInKnownUids,
    #[error("QRESYNC sequence match data must not contain '*' (RFC 7162 section 3.2.5)")]
    StarInSeqMatch,
    #[error(
        "QRESYNC sequence match data names {seqs} message numbers but {uids} UIDs; they must pair up (RFC 7162 section 3.2.5)"
    )]
    SeqMatchLengths { seqs: u64, uids: u64 },
}

fn has_star(set: &SequenceSet) -> bool {
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(x) => matches!(x, SeqOrUid::Asterisk),
        Sequence::Range(a, b) => matches!(a, SeqOrUid::Asterisk) || matches!(b, SeqOrUid::Asterisk),
    })
}

/// How many numbers a set without `*` names (each range counted whole).
fn count(set: &SequenceSet) -> u64 {
    ranges(set, 0)
        .iter()
        .map(|(a, b)| u64::from(b - a) + 1)
        .sum()
}

/// Checks `known-uids` and `seq-match-data` (the codec parses their syntax only).
pub fn check_params(
    known_uids: Option<&SequenceSet>,
    seq_match: Option<&(SequenceSet, SequenceSet)>,
) -> Result<(), ParamError> {
    if known_uids.is_some_and(has_star) {
        return Err(ParamError::StarInKnownUids);
    }
    if let Some((seqs, uids)) = seq_match {
        if has_star(seqs) || has_star(uids) {
            return Err(ParamError::StarInSeqMatch);
        }
        let (s, u) = (count(seqs), count(uids));
        if s != u {
            return Err(ParamError::SeqMatchLengths { seqs: s, uids: u });
        }
    }
    Ok(())
}

/// The set as merged ranges; `*` stands for `largest`.
pub fn ranges(set: &SequenceSet, largest: u32) -> Ranges {
    let v = |x: &SeqOrUid| match x {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => largest,
    };
    let mut r: Ranges = set
        .0
        .as_ref()
        .iter()
        .map(|s| match s {
            Sequence::Single(x) => (v(x), v(x)),
            Sequence::Range(a, b) => (v(a).min(v(b)), v(a).max(v(b))),
        })
        .collect();
    r.sort_unstable();
    let mut merged: Ranges = Vec::with_capacity(r.len());
    for (a, b) in r {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// Whether `uid` is in `ranges`.
pub fn contains(ranges: &[(u32, u32)], uid: u32) -> bool {
    let i = ranges.partition_point(|&(_, b)| b < uid);
    ranges.get(i).is_some_and(|&(a, _)| a <= uid)
}

/// The UIDs to report as vanished: of those in `within` (below `uid_next`)
/// the ones `since` says were expunged, or, when it does not know, every
/// one that is not `present` (ascending UIDs the folder or the session
/// still holds, which are never reported).
pub fn vanished(
    since: &VanishedSince,
    within: &[(u32, u32)],
    uid_next: u32,
    present: &[u32],
) -> Ranges {
    let top = uid_next.saturating_sub(1);
    match since {
        VanishedSince::Known(uids) => {
            let mut out: Ranges = Vec::new();
            for &u in uids {
                if u > top || !contains(within, u) || present.binary_search(&u).is_ok() {
                    continue;
                }
                match out.last_mut() {
                    Some(last) if last.1.checked_add(1) == Some(u) => last.1 = u,
                    _ => out.push((u, u)),
                }
            }
            out
        }
        VanishedSince::Unknown => {
            let mut out: Ranges = Vec::new();
            for &(a, b) in within {
                if a > top {
                    break;
                }
                let b = b.min(top);
                // The gaps between present UIDs inside a..=b.
                let mut next = a;
                let start = present.partition_point(|&p| p < a);
                for &p in &present[start..] {
                    if p > b {
                        break;
                    }
                    if p > next {
                        out.push((next, p - 1));
                    }
                    next = p + 1;
                }
                if next <= b {
                    out.push((next, b));
                }
            }
            out
        }
    }
}

/// Writes ranges as a sequence set (`3:5,9`).
pub fn write_ranges(out: &mut Vec<u8>, ranges: &[(u32, u32)]) {
    for (i, &(a, b)) in ranges.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if a == b {
            out.extend_from_slice(a.to_string().as_bytes());
        } else {
            out.extend_from_slice(format!("{a}:{b}").as_bytes());
        }
    }
}

/// `* VANISHED (EARLIER) set` (nothing when the set is empty).
pub fn write_vanished_earlier(out: &mut Vec<u8>, ranges: &[(u32, u32)]) {
    if ranges.is_empty() {
        return;
    }
    out.extend_from_slice(b"* VANISHED (EARLIER) ");
    write_ranges(out, ranges);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        s.parse().unwrap_or_else(|_| panic!("bad set {s}"))
    }

    fn text(r: &[(u32, u32)]) -> String {
        let mut out = Vec::new();
        write_ranges(&mut out, r);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn ranges_merge_and_star_is_the_largest() {
        assert_eq!(text(&ranges(&set("9,1:3,4,7:*"), 8)), "1:4,7:9");
        assert!(contains(&ranges(&set("2:4,8"), 0), 8));
        assert!(!contains(&ranges(&set("2:4,8"), 0), 5));
        assert!(!contains(&ranges(&set("2:4,8"), 0), 1));
    }

    #[test]
    fn known_expunges_are_filtered_by_the_set_and_what_is_present() {
        let since = VanishedSince::Known(vec![2, 3, 4, 9, 12]);
        let within = ranges(&set("1:10"), 0);
        // 4 is still in the session's view (a ghost); 12 is outside the set.
        assert_eq!(text(&vanished(&since, &within, 20, &[1, 4, 5])), "2:3,9");
    }

    #[test]
    fn unknown_means_every_absent_uid_below_uidnext() {
        let within = ranges(&set("1:4294967295"), 0);
        let r = vanished(&VanishedSince::Unknown, &within, 11, &[2, 3, 7]);
        assert_eq!(text(&r), "1,4:6,8:10");
        let within = ranges(&set("3,5:6,20"), 0);
        let r = vanished(&VanishedSince::Unknown, &within, 11, &[2, 3, 7]);
        assert_eq!(text(&r), "5:6");
        let r = vanished(&VanishedSince::Unknown, &within, 1, &[]);
        assert!(r.is_empty());
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(
            check_params(Some(&set("1:*")), None),
            Err(ParamError::StarInKnownUids)
        );
        assert_eq!(
            check_params(None, Some(&(set("1:3"), set("5,7")))),
            Err(ParamError::SeqMatchLengths { seqs: 3, uids: 2 })
        );
        assert_eq!(
            check_params(Some(&set("1:9")), Some(&(set("1,3"), set("5,7")))),
            Ok(())
        );
    }
}
