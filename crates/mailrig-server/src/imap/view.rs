//! A session's view of its selected folder: the sequence-number → UID map it
//! has told the client about, and how it catches up with the store.
//!
//! Other sessions (and SMTP deliveries) change the store at any time; a session
//! tells its client only at defined points (RFC 3501 §5.2, §7.4.1): new
//! messages as `EXISTS`/`RECENT`, flag changes as `FETCH (FLAGS ...)`, and
//! removals as `EXPUNGE` — the latter never while answering a sequence-number
//! FETCH, STORE or SEARCH, so a removed message keeps its sequence number (as a
//! "ghost") until the next command that may report it. A ghost stays readable
//! (RFC 2180 §4.1.2, as Dovecot does): the view keeps its own copy of every
//! message it shows (the raw bytes are shared with the store, not copied), and
//! FETCH and SEARCH answer from it once the store no longer has the message.
//!
//! Keywords are mailbox state the client is told too (RFC 3501 §7.2.6): the
//! view remembers the `FLAGS` list it sent, and announces a new `* FLAGS` and
//! `* OK [PERMANENTFLAGS]` before the first response that shows a keyword
//! missing from it, whoever set the keyword.

use std::collections::HashSet;
use std::num::NonZeroU32;

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mailrig_core::store::{Flags, MailboxStore, StoreError, StoredMessage};

use super::wire;

/// One message as the session knows it.
#[derive(Debug, Clone)]
pub struct Known {
    pub uid: u32,
    /// The message's modseq when the client last heard about its flags.
    pub modseq: u64,
    /// Gone from the store, EXPUNGE not yet sent.
    pub gone: bool,
    /// The message as this session last saw it, flags included: what a
    /// FETCH or SEARCH of it answers from once the store no longer has it.
    pub msg: StoredMessage,
}

impl Known {
    pub fn new(m: &StoredMessage) -> Known {
        Known {
            uid: m.uid,
            modseq: m.modseq,
            gone: false,
            msg: m.clone(),
        }
    }
}

/// The selected folder.
#[derive(Debug)]
pub struct View {
    pub folder: String,
    pub read_only: bool,
    pub uid_validity: u32,
    /// Index + 1 = sequence number.
    pub msgs: Vec<Known>,
    pub recent: HashSet<u32>,
    /// The store version this view has caught up with.
    pub version: u64,
    /// A `hide-messages` fault fired at SELECT: the folder looks empty for
    /// as long as it stays selected, whatever the store holds or receives.
    pub hidden: bool,
    /// The keywords of the last `* FLAGS` response, in the order sent.
    pub keywords: Vec<String>,
    /// CONDSTORE is on: FETCH responses about flags carry MODSEQ.
    pub condstore: bool,
    /// QRESYNC is on (RFC 7162 §3.2): removals are told as `* VANISHED`
    /// with UIDs, and FETCH responses about flags carry the UID.
    pub qresync: bool,
    /// A `forget-modseq` fault fired at SELECT: the folder has no
    /// mod-sequences for as long as it stays selected (`NOMODSEQ`).
    pub nomodseq: bool,
    /// The stored folder's UIDVALIDITY, `highest_modseq` and UIDNEXT at the
    /// last catch-up: while its `changed_modseq` stays at or below that
    /// modseq, only new messages arrived (those at or above that UIDNEXT), and
    /// the known ones need no look. (With 10,000 sessions idling on one
    /// mailbox, even reading each session's last known message is a cache
    /// miss that shows in the fan-out.)
    pub synced_at: Option<(u32, u64, u32)>,
    /// How many of `msgs` are `gone` (so that a catch-up need not scan them
    /// to find out whether there are any).
    pub ghosts: usize,
}

/// What a catch-up may say.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyncRules<'a> {
    /// EXPUNGE responses allowed now.
    pub expunge: bool,
    /// Report the flags of these UIDs even if unchanged (a STORE's own FETCHes).
    pub force: Option<&'a HashSet<u32>>,
    /// Do not report flag changes of these UIDs (STORE .SILENT).
    pub silent: Option<&'a HashSet<u32>>,
    /// Include `UID n` in FETCH responses (UID commands).
    pub with_uid: bool,
}

/// What a catch-up found out beyond what it reported.
#[derive(Debug, Default)]
pub struct Synced {
    /// UIDs of `force` or `silent` that the store no longer has: a STORE
    /// could not change them (or they went right after), so no FETCH of
    /// them was sent.
    pub absent: Vec<u32>,
}

/// The system flags every folder offers.
pub const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// Writes `* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]` for these
/// keywords (Dovecot's wording; a read-only folder has no permanent flags).
pub fn write_flag_lists(out: &mut Vec<u8>, keywords: &[String], read_only: bool) {
    let mut list = SYSTEM_FLAGS.to_string();
    for k in keywords {
        list.push(' ');
        list.push_str(k);
    }
    out.extend_from_slice(format!("* FLAGS ({list})\r\n").as_bytes());
    if read_only {
        out.extend_from_slice(b"* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n");
    } else {
        out.extend_from_slice(
            format!("* OK [PERMANENTFLAGS ({list} \\*)] Flags permitted.\r\n").as_bytes(),
        );
    }
}

/// Adds the keywords of `flags` that are neither in `told` nor in `new` to `new`.
fn collect_new_keywords(flags: &Flags, told: &[String], new: &mut Vec<String>) {
    for k in flags.keywords() {
        let known = |x: &String| x.eq_ignore_ascii_case(k);
        if !told.iter().any(known) && !new.iter().any(known) {
            new.push(k.to_string());
        }
    }
}

/// Numbers in a set that are not messages of the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSequence;

impl View {
    /// Number of messages the client believes exist.
    pub fn exists(&self) -> usize {
        self.msgs.len()
    }

    /// The UID of sequence number `seq` (1-based).
    pub fn uid(&self, seq: usize) -> Option<u32> {
        self.msgs.get(seq.checked_sub(1)?).map(|m| m.uid)
    }

    /// The sequence number of a UID.
    pub fn seq_of(&self, uid: u32) -> Option<usize> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i + 1)
    }

    /// Resolves a sequence set (message numbers or UIDs) to `(seq, uid)` pairs,
    /// ascending, without duplicates. Ghosts are included.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<(usize, u32)>, BadSequence> {
        let n = self.msgs.len();
        let largest = if uid {
            self.msgs.last().map_or(0, |m| m.uid)
        } else {
            n as u32
        };
        let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(set.0.as_ref().len());
        for s in set.0.as_ref() {
            let v = |x: &SeqOrUid| match x {
                SeqOrUid::Value(v) => v.get(),
                SeqOrUid::Asterisk => largest,
            };
            let (a, b, star) = match s {
                Sequence::Single(x) => (v(x), v(x), matches!(x, SeqOrUid::Asterisk)),
                Sequence::Range(x, y) => {
                    let (a, b) = (v(x), v(y));
                    let star = matches!(x, SeqOrUid::Asterisk) || matches!(y, SeqOrUid::Asterisk);
                    (a.min(b), a.max(b), star)
                }
            };
            if n == 0 && star {
                continue;
            }
            if !uid && (b as usize > n || a == 0) {
                return Err(BadSequence);
            }
            ranges.push((a, b));
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut out = Vec::new();
        for (a, b) in merged {
            if uid {
                let start = self.msgs.partition_point(|m| m.uid < a);
                for (i, m) in self.msgs[start..].iter().enumerate() {
                    if m.uid > b {
                        break;
                    }
                    out.push((start + i + 1, m.uid));
                }
            } else {
                for seq in a.max(1)..=b {
                    let seq = seq as usize;
                    if let Some(m) = self.msgs.get(seq - 1) {
                        out.push((seq, m.uid));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The message this session knows under `uid`.
    pub fn known(&self, uid: u32) -> Option<&Known> {
        let i = self.msgs.binary_search_by_key(&uid, |m| m.uid).ok()?;
        self.msgs.get(i)
    }

    fn known_mut(&mut self, uid: u32) -> Option<&mut Known> {
        let i = self.msgs.binary_search_by_key(&uid, |m| m.uid).ok()?;
        self.msgs.get_mut(i)
    }

    /// Remembers the flags (as of `modseq`) the client is about to be shown
    /// for `uid` by a FETCH: the next catch-up reports only later changes,
    /// and a ghost shows the same flags.
    pub fn saw_flags(&mut self, uid: u32, flags: &Flags, modseq: u64) {
        if let Some(k) = self.known_mut(uid)
            && !k.gone
        {
            k.modseq = modseq;
            if k.msg.flags != *flags {
                k.msg.flags = flags.clone();
            }
        }
    }

    /// Announces the keywords of `flags` the client has not been told of:
    /// one `* FLAGS` and `* OK [PERMANENTFLAGS]` with the whole new list.
    pub fn announce<'f>(&mut self, flags: impl IntoIterator<Item = &'f Flags>, out: &mut Vec<u8>) {
        let mut new = Vec::new();
        for f in flags {
            collect_new_keywords(f, &self.keywords, &mut new);
        }
        self.announce_new(new, out);
    }

    fn announce_new(&mut self, new: Vec<String>, out: &mut Vec<u8>) {
        if new.is_empty() {
            return;
        }
        self.keywords.extend(new);
        write_flag_lists(out, &self.keywords, self.read_only);
    }

    /// Catches up with the store, appending the untagged responses to `out`.
    pub fn sync(
        &mut self,
        store: &MailboxStore,
        rules: SyncRules<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Synced, StoreError> {
        let version = store.version();
        if self.hidden {
            self.version = version;
            return Ok(Synced::default());
        }
        let has_ghosts = self.ghosts > 0;
        let asked = |uid: u32| {
            rules.force.is_some_and(|f| f.contains(&uid))
                || rules.silent.is_some_and(|s| s.contains(&uid))
        };
        if version == self.version
            && rules.force.is_none()
            && rules.silent.is_none()
            && !(rules.expunge && has_ghosts)
        {
            return Ok(Synced::default());
        }
        let mut synced = Synced::default();
        let mut fresh = Vec::new();
        let mut changed = Vec::new();
        let mut new_keywords = Vec::new();
        let unclaimed;
        {
            let data = store.lock();
            let folder = match data.folder(&self.folder) {
                Ok(f) => f,
                // Deleted or renamed away under us: every message is gone.
                Err(_) => {
                    drop(data);
                    for m in &mut self.msgs {
                        if asked(m.uid) {
                            synced.absent.push(m.uid);
                        }
                        m.gone = true;
                    }
                    self.ghosts = self.msgs.len();
                    self.finish(version, rules, Vec::new(), false, out);
                    return Ok(synced);
                }
            };
            let stored = &folder.messages;
            // Only the first session to see new messages claims them as
            // \Recent; the others need not take the lock again to learn so.
            unclaimed = folder.first_recent_uid < folder.uid_next;
            let arrivals_from = match self.synced_at {
                Some((validity, modseq, uid_next))
                    if rules.force.is_none()
                        && rules.silent.is_none()
                        && validity == folder.uid_validity
                        && folder.changed_modseq <= modseq =>
                {
                    Some(uid_next)
                }
                _ => None,
            };
            self.synced_at = Some((folder.uid_validity, folder.highest_modseq, folder.uid_next));
            let mut j = 0;
            let mut ghosts = 0;
            let known_to_check = if arrivals_from.is_some() {
                &mut [][..]
            } else {
                &mut self.msgs[..]
            };
            for (i, known) in known_to_check.iter_mut().enumerate() {
                if known.gone {
                    if asked(known.uid) {
                        synced.absent.push(known.uid);
                    }
                    continue;
                }
                while j < stored.len() && stored[j].uid < known.uid {
                    j += 1;
                }
                if j < stored.len() && stored[j].uid == known.uid {
                    let m = &stored[j];
                    let forced = rules.force.is_some_and(|f| f.contains(&m.uid));
                    if m.modseq != known.modseq || forced {
                        known.modseq = m.modseq;
                        known.msg.modseq = m.modseq;
                        if known.msg.flags != m.flags {
                            known.msg.flags = m.flags.clone();
                        }
                        collect_new_keywords(&m.flags, &self.keywords, &mut new_keywords);
                        let quiet = rules.silent.is_some_and(|s| s.contains(&m.uid));
                        if !quiet {
                            changed.push((i + 1, m.uid));
                        }
                    }
                } else {
                    if asked(known.uid) {
                        synced.absent.push(known.uid);
                    }
                    known.gone = true;
                    ghosts += 1;
                }
            }
            self.ghosts += ghosts;
            let start = match arrivals_from {
                Some(uid_next) => stored.partition_point(|m| m.uid < uid_next),
                None => {
                    let last = self.msgs.last().map_or(0, |m| m.uid);
                    stored.partition_point(|m| m.uid <= last)
                }
            };
            for m in &stored[start..] {
                collect_new_keywords(&m.flags, &self.keywords, &mut new_keywords);
                fresh.push(Known::new(m));
            }
        }
        // The keywords first: the FETCHes below may show them.
        self.announce_new(new_keywords, out);
        for (seq, uid) in changed {
            out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
            if rules.with_uid || self.qresync {
                out.extend_from_slice(format!("UID {uid} ").as_bytes());
            }
            out.extend_from_slice(b"FLAGS ");
            wire::flags(
                out,
                &self.msgs[seq - 1].msg.flags,
                self.recent.contains(&uid),
            );
            if self.condstore {
                let modseq = self.msgs[seq - 1].modseq;
                out.extend_from_slice(format!(" MODSEQ ({modseq})").as_bytes());
            }
            out.extend_from_slice(b")\r\n");
        }
        let grew = !fresh.is_empty();
        if grew && !self.read_only && unclaimed {
            for uid in store.claim_recent(&self.folder).unwrap_or_default() {
                self.recent.insert(uid);
            }
        }
        self.finish(version, rules, fresh, grew, out);
        Ok(synced)
    }

    fn finish(
        &mut self,
        version: u64,
        rules: SyncRules<'_>,
        fresh: Vec<Known>,
        grew: bool,
        out: &mut Vec<u8>,
    ) {
        if rules.expunge && self.qresync && self.ghosts > 0 {
            // One `* VANISHED` with every UID instead of one EXPUNGE each
            // (RFC 7162 §3.2.10).
            let mut gone: super::qresync::Ranges = Vec::new();
            for m in self.msgs.iter().filter(|m| m.gone) {
                self.recent.remove(&m.uid);
                match gone.last_mut() {
                    Some(last) if last.1.checked_add(1) == Some(m.uid) => last.1 = m.uid,
                    _ => gone.push((m.uid, m.uid)),
                }
            }
            out.extend_from_slice(b"* VANISHED ");
            super::qresync::write_ranges(out, &gone);
            out.extend_from_slice(b"\r\n");
            self.msgs.retain(|m| !m.gone);
        } else if rules.expunge && self.ghosts > 0 {
            for i in (0..self.msgs.len()).rev() {
                if self.msgs[i].gone {
                    wire::untagged_number(out, i + 1, b"EXPUNGE");
                    self.recent.remove(&self.msgs[i].uid);
                }
            }
            self.msgs.retain(|m| !m.gone);
        }
        if rules.expunge {
            self.ghosts = 0;
        }
        self.msgs.extend(fresh);
        if grew {
            // Written in place: an IDLE fan-out does this once per session.
            wire::untagged_number(out, self.msgs.len(), b"EXISTS");
            wire::untagged_number(out, self.recent_count(), b"RECENT");
        }
        self.version = version;
    }

    /// How many of the messages shown are `\Recent` for this session.
    pub fn recent_count(&self) -> usize {
        if self.recent.is_empty() {
            return 0;
        }
        self.msgs
            .iter()
            .filter(|m| self.recent.contains(&m.uid))
            .count()
    }

    /// The IDLE fan-out told the client that every message below `uid_next`
    /// exists (`super::idlers`), as of the folder's `modseq`: the view adds
    /// the new ones, and any expunged since as ghosts whose EXPUNGE is still
    /// to be sent. Nothing is written: the client was told.
    pub fn learn_told(&mut self, store: &MailboxStore, uid_next: u32, modseq: u64) {
        let Some((validity, _, from)) = self.synced_at else {
            return;
        };
        if uid_next <= from {
            return;
        }
        {
            let data = store.lock();
            let stored = data
                .folder(&self.folder)
                .ok()
                .filter(|f| f.uid_validity == validity)
                .map_or(&[][..], |f| &f.messages[..]);
            let mut stored = stored[stored.partition_point(|m| m.uid < from)..]
                .iter()
                .peekable();
            for uid in from..uid_next {
                match stored.next_if(|m| m.uid == uid) {
                    Some(m) => self.msgs.push(Known::new(m)),
                    None => {
                        self.msgs.push(Known {
                            uid,
                            modseq: 0,
                            gone: true,
                            msg: StoredMessage::expunged(uid),
                        });
                        self.ghosts += 1;
                    }
                }
            }
        }
        self.synced_at = Some((validity, modseq, uid_next));
    }
}

/// A sequence set of UIDs for COPYUID / APPENDUID, compressed into ranges.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// `NonZeroU32` from a count, for `imap-types` APIs.
pub fn nz(n: usize) -> Option<NonZeroU32> {
    NonZeroU32::new(u32::try_from(n).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view of messages with these UIDs (stored in a memory store first).
    fn view(uids: &[u32]) -> View {
        let s = mailrig_core::Scenario::parse(
            "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a']\n",
            "t",
        )
        .unwrap();
        let store = mailrig_core::Store::memory(&s.world);
        let (id, mb) = store.mailboxes().next().unwrap();
        let _ = id;
        for _ in 0..uids.iter().copied().max().unwrap_or(0) {
            append(mb);
        }
        let stored = mb.messages("INBOX").unwrap();
        View {
            folder: "INBOX".into(),
            read_only: false,
            uid_validity: 1,
            msgs: stored
                .iter()
                .filter(|m| uids.contains(&m.uid))
                .map(Known::new)
                .collect(),
            recent: HashSet::new(),
            version: 0,
            hidden: false,
            keywords: Vec::new(),
            condstore: false,
            qresync: false,
            nomodseq: false,
            synced_at: None,
            ghosts: 0,
        }
    }

    #[test]
    fn resolves_sequence_and_uid_sets() {
        let v = view(&[3, 5, 9, 10]);
        let set: SequenceSet = "2:*".parse().map_err(|_| ()).unwrap_or_else(|_| panic!());
        assert_eq!(v.resolve(&set, false), Ok(vec![(2, 5), (3, 9), (4, 10)]));
        let set: SequenceSet = "4:9,1".parse().unwrap_or_else(|_| panic!());
        assert_eq!(v.resolve(&set, true), Ok(vec![(2, 5), (3, 9)]));
        let set: SequenceSet = "5".parse().unwrap_or_else(|_| panic!());
        assert_eq!(v.resolve(&set, false), Err(BadSequence));
        let set: SequenceSet = "11:*".parse().unwrap_or_else(|_| panic!());
        assert_eq!(v.resolve(&set, true), Ok(vec![(4, 10)]));
    }

    /// A store with one mailbox holding `n` messages, and a view of them all.
    fn store_and_view(n: usize) -> (mailrig_core::Store, View) {
        let s = mailrig_core::Scenario::parse(
            "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a']\n",
            "t",
        )
        .unwrap();
        let store = mailrig_core::Store::memory(&s.world);
        let mut v = view(&[]);
        {
            let (_, mb) = store.mailboxes().next().unwrap();
            for _ in 0..n {
                append(mb);
            }
            v.msgs = mb
                .messages("INBOX")
                .unwrap()
                .iter()
                .map(Known::new)
                .collect();
            v.uid_validity = mb.with_folder("INBOX", |f| f.uid_validity).unwrap();
        }
        (store, v)
    }

    fn append(mb: &MailboxStore) {
        let msg = mailrig_core::store::NewMessage {
            raw: bytes::Bytes::from_static(b"x"),
            envelope: None,
            flags: Flags::default(),
            internal_date: chrono::Utc::now(),
        };
        mb.append("INBOX", msg).unwrap();
    }

    fn sync(v: &mut View, mb: &MailboxStore) -> String {
        let mut out = Vec::new();
        let rules = SyncRules {
            expunge: true,
            ..SyncRules::default()
        };
        v.sync(mb, rules, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn after_arrivals_only_the_known_messages_are_not_looked_at_again() {
        let (store, mut v) = store_and_view(2);
        let (_, mb) = store.mailboxes().next().unwrap();
        assert_eq!(sync(&mut v, mb), "");
        // Only arrivals since: a known message the view holds a stale modseq
        // for is not even compared (this is what makes an IDLE fan-out to
        // many sessions cheap), and the arrival is told.
        v.msgs[0].modseq = 0;
        append(mb);
        let told = sync(&mut v, mb);
        assert!(told.starts_with("* 3 EXISTS\r\n"), "{told}");
        assert!(!told.contains("FETCH"), "{told}");
        v.msgs[0].modseq = mb.messages("INBOX").unwrap()[0].modseq;
        // A flag change: the known messages are looked at, and it is told.
        let seen = Flags::default().with(mailrig_core::store::SystemFlag::Seen);
        mb.store_flags("INBOX", &[1], mailrig_core::store::FlagOp::Add, &seen)
            .unwrap();
        append(mb);
        let told = sync(&mut v, mb);
        assert!(told.contains("* 1 FETCH (FLAGS (\\Seen"), "{told}");
        assert!(told.contains("* 4 EXISTS\r\n"), "{told}");
        // An expunge by another session is told too, after an arrival-only
        // catch-up in between.
        append(mb);
        assert!(sync(&mut v, mb).starts_with("* 5 EXISTS"));
        mb.delete_messages("INBOX", &[2]).unwrap();
        assert_eq!(sync(&mut v, mb), "* 2 EXPUNGE\r\n");
        assert_eq!(v.msgs.len(), 4);
    }

    #[test]
    fn uid_sets_compress() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
    }
}
