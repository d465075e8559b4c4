//! Commands on one folder: SELECT/EXAMINE, CLOSE/UNSELECT, EXPUNGE, SEARCH,
//! SORT, THREAD, FETCH, STORE, COPY/MOVE (with UIDPLUS' COPYUID), and APPEND
//! (APPENDUID).
//!
//! Each reads what it needs from the store under the mailbox lock, lets go of
//! the lock, and only then parses MIME or renders responses, so deliveries are
//! never held up by a large FETCH.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::{FetchModifier, SelectParameter};
use imap_codec::imap_types::core::{Charset, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;
use mailrig_core::fault::{Action as Fault, Stage};
use mailrig_core::store::{FlagOp, Flags, NewMessage, StoreError, StoredMessage, SystemFlag};

use super::binary;
use super::fetch::{self, FetchInput};
use super::folders::store_error;
use super::search::{self, Candidate, Parsed};
use super::session::{Session, folder_name, tagged};
use super::sort;
use super::thread;
use super::view::{Known, SyncRules, View, uid_set, write_flag_lists};
use super::wire;

/// A STORE's arguments besides the message set.
pub(super) struct StoreRequest<'a, 'f> {
    pub kind: StoreType,
    pub response: StoreResponse,
    pub flags: &'a [Flag<'f>],
    pub uid: bool,
    /// CONDSTORE's `UNCHANGEDSINCE` modifier.
    pub unchanged_since: Option<u64>,
}

/// The tagged text of a command that could not act on every message it
/// named because another session expunged some (RFC 5530).
const EXPUNGE_ISSUED: &str =
    "[EXPUNGEISSUED] Some of the messages were expunged by another session";

/// Converts wire flags to store flags (`\Recent` and unknown `\X` are dropped).
fn to_flags(flags: &[Flag<'_>]) -> Flags {
    let mut f = Flags::default();
    for flag in flags {
        match flag {
            Flag::Answered => f.set(SystemFlag::Answered, true),
            Flag::Deleted => f.set(SystemFlag::Deleted, true),
            Flag::Draft => f.set(SystemFlag::Draft, true),
            Flag::Flagged => f.set(SystemFlag::Flagged, true),
            Flag::Seen => f.set(SystemFlag::Seen, true),
            Flag::Keyword(k) => f.add_keyword(k.inner()),
            _ => {}
        }
    }
    f
}

/// A `SELECT (QRESYNC (...))`'s parameters, checked.
struct Resync {
    uid_validity: u32,
    modseq: u64,
    known_uids: Option<SequenceSet>,
}

/// The resynchronization part of a `SELECT (QRESYNC ...)` (RFC 7162
/// §3.2.5): `* VANISHED (EARLIER)` for the known UIDs that are gone since the
/// client's modseq, then a FETCH of UID, FLAGS and MODSEQ for every message
/// (of the known ones, when named) changed since.
fn write_resync(
    out: &mut Vec<u8>,
    r: &Resync,
    vanished: &mailrig_core::store::VanishedSince,
    uid_next: u32,
    msgs: &[Known],
    recent: &HashSet<u32>,
) {
    use super::qresync;
    let within = match &r.known_uids {
        Some(set) => qresync::ranges(set, 0),
        None => vec![(1, u32::MAX)],
    };
    let present: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
    qresync::write_vanished_earlier(
        out,
        &qresync::vanished(vanished, &within, uid_next, &present),
    );
    for (i, m) in msgs.iter().enumerate() {
        if m.modseq <= r.modseq || !qresync::contains(&within, m.uid) {
            continue;
        }
        out.extend_from_slice(format!("* {} FETCH (UID {} FLAGS ", i + 1, m.uid).as_bytes());
        wire::flags(out, &m.msg.flags, recent.contains(&m.uid));
        out.extend_from_slice(format!(" MODSEQ ({}))\r\n", m.modseq).as_bytes());
    }
}

impl Session {
    pub(super) fn select(
        &mut self,
        tag: &str,
        m: &Mailbox<'_>,
        read_only: bool,
        parameters: &[SelectParameter],
        out: &mut Vec<u8>,
    ) {
        // The parameters are checked before anything changes: a BAD
        // command leaves the selected folder selected.
        let mut resync = None;
        for p in parameters {
            if let SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                seq_match_data,
            } = p
            {
                if !self.qresync {
                    return tagged(
                        out,
                        tag,
                        "BAD",
                        "The QRESYNC parameter needs ENABLE QRESYNC first (RFC 7162 section 3.2.5)",
                    );
                }
                if let Err(e) =
                    super::qresync::check_params(known_uids.as_ref(), seq_match_data.as_ref())
                {
                    return tagged(out, tag, "BAD", &e.to_string());
                }
                resync = Some(Resync {
                    uid_validity: uid_validity.get(),
                    modseq: mod_sequence_value.get(),
                    known_uids: known_uids.clone(),
                });
            }
        }
        // SELECT deselects first, even when it then fails; the client is told
        // (RFC 7162 §3.2.11, as Dovecot does whether or not QRESYNC is on).
        if self.view.take().is_some() {
            out.extend_from_slice(b"* OK [CLOSED] Previous mailbox closed.\r\n");
        }
        self.saved.clear();
        self.updates.clear();
        if parameters
            .iter()
            .any(|p| matches!(p, SelectParameter::CondStore))
        {
            self.enable_condstore(out);
        }
        let Some(name) = folder_name(m) else {
            return tagged(out, tag, "NO", "[NONEXISTENT] No such folder");
        };
        // Asked once per SELECT/EXAMINE, before the folder is read.
        let fired = self.faults(Stage::ImapSelect);
        let hidden = fired.iter().any(|f| f.action == Fault::HideMessages);
        let nomodseq = fired.iter().any(|f| f.action == Fault::ForgetModseq);
        let state = Arc::clone(&self.state);
        let Some(mb) = self.user.map(|id| state.store.mailbox(id)) else {
            return;
        };
        let version = mb.version();
        let snapshot = mb.with_folder(&name, |f| {
            let msgs: Vec<Known> = f.messages.iter().map(Known::new).collect();
            let first_unseen = f
                .messages
                .iter()
                .position(|m| !m.flags.has(SystemFlag::Seen));
            let recent: HashSet<u32> = f
                .messages
                .iter()
                .filter(|m| m.uid >= f.first_recent_uid)
                .map(|m| m.uid)
                .collect();
            // Every keyword in use: FETCH may show any of them.
            let keywords: Vec<String> = {
                let mut k: Vec<String> = Vec::new();
                for m in &f.messages {
                    for kw in m.flags.keywords() {
                        if !k.iter().any(|x| x.eq_ignore_ascii_case(kw)) {
                            k.push(kw.to_string());
                        }
                    }
                }
                k
            };
            // What vanished since the client's modseq, read with the messages.
            let vanished = resync.as_ref().map(|r| f.vanished_since(r.modseq));
            (
                f.name.to_string(),
                (f.uid_validity, f.uid_next, f.highest_modseq),
                msgs,
                first_unseen,
                recent,
                (keywords, vanished),
            )
        });
        let (
            name,
            (uid_validity, uid_next, highest_modseq),
            mut msgs,
            mut first_unseen,
            mut recent,
            (keywords, vanished),
        ) = match snapshot {
            Ok(s) => s,
            Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
        };
        self.change_uid_validity(&fired, &name, uid_validity);
        let stored_validity = uid_validity;
        let uid_validity = self.reported_uid_validity(&name, uid_validity);
        if hidden {
            // The messages stay in the store (and stay \Recent for others).
            msgs.clear();
            first_unseen = None;
            recent.clear();
        } else if !read_only {
            recent = mb
                .claim_recent(&name)
                .unwrap_or_default()
                .into_iter()
                .collect();
        }
        write_flag_lists(out, &keywords, read_only);
        let recent_count = msgs.iter().filter(|m| recent.contains(&m.uid)).count();
        out.extend_from_slice(
            format!("* {} EXISTS\r\n* {recent_count} RECENT\r\n", msgs.len()).as_bytes(),
        );
        if let Some(i) = first_unseen {
            out.extend_from_slice(format!("* OK [UNSEEN {}] First unseen.\r\n", i + 1).as_bytes());
        }
        out.extend_from_slice(
            format!("* OK [UIDVALIDITY {uid_validity}] UIDs valid\r\n").as_bytes(),
        );
        out.extend_from_slice(
            format!("* OK [UIDNEXT {uid_next}] Predicted next UID\r\n").as_bytes(),
        );
        // Sent on every SELECT, CONDSTORE enabled or not (RFC 7162
        // §3.1.2.1); a forget-modseq fault says there are none (§3.1.2.2).
        if nomodseq {
            out.extend_from_slice(
                b"* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\r\n",
            );
        } else {
            out.extend_from_slice(
                format!("* OK [HIGHESTMODSEQ {highest_modseq}] Highest\r\n").as_bytes(),
            );
        }
        // QRESYNC: only for the UIDVALIDITY the client knew (RFC 7162
        // §3.2.5); with another one, the client must start over.
        if let (Some(r), Some(vanished)) = (resync, vanished)
            && r.uid_validity == uid_validity
            && !nomodseq
        {
            // Hidden messages vanish for the client as a whole.
            let vanished = if hidden {
                mailrig_core::store::VanishedSince::Unknown
            } else {
                vanished
            };
            write_resync(out, &r, &vanished, uid_next, &msgs, &recent);
        }
        self.view = Some(View {
            folder: name,
            read_only,
            uid_validity,
            msgs,
            recent,
            version,
            hidden,
            keywords,
            condstore: self.condstore && !nomodseq,
            qresync: self.qresync,
            nomodseq,
            // What the snapshot read (the view knows all of it) unless a
            // fault hides the folder.
            synced_at: (!hidden).then_some((stored_validity, highest_modseq, uid_next)),
            ghosts: 0,
        });
        // Anything that arrived since the snapshot.
        self.sync_all(out);
        let (code, what) = if read_only {
            ("[READ-ONLY]", "Examine")
        } else {
            ("[READ-WRITE]", "Select")
        };
        tagged(out, tag, "OK", &format!("{code} {what} completed"));
    }

    pub(super) fn close(&mut self, tag: &str, expunge: bool, out: &mut Vec<u8>) {
        self.saved.clear();
        self.updates.clear();
        if let (Some(view), Some(mb)) = (self.view.take(), self.mailbox())
            && expunge
            && !view.read_only
        {
            // CLOSE expunges silently.
            let _ = mb.expunge(&view.folder, None);
        }
        let _ = out;
        tagged(
            out,
            tag,
            "OK",
            if expunge {
                "Close completed"
            } else {
                "Unselect completed"
            },
        );
    }

    fn read_only_refusal(&self, tag: &str, out: &mut Vec<u8>) -> bool {
        if self.view.as_ref().is_some_and(|v| v.read_only) {
            tagged(out, tag, "NO", "[READ-ONLY] Mailbox is read-only");
            return true;
        }
        false
    }

    /// Resolves a set against the view, answering BAD when it names no message.
    fn resolve(
        &self,
        tag: &str,
        set: &SequenceSet,
        uid: bool,
        out: &mut Vec<u8>,
    ) -> Option<Vec<(usize, u32)>> {
        let view = self.view.as_ref()?;
        match view.resolve(set, uid) {
            Ok(v) => Some(v),
            Err(_) => {
                tagged(
                    out,
                    tag,
                    "BAD",
                    "Error in IMAP command: invalid message sequence number",
                );
                None
            }
        }
    }

    pub(super) fn expunge(&mut self, tag: &str, set: Option<&SequenceSet>, out: &mut Vec<u8>) {
        if self.read_only_refusal(tag, out) {
            return;
        }
        let only: Option<Vec<u32>> = match set {
            Some(s) => match self.resolve(tag, s, true, out) {
                Some(v) => Some(v.into_iter().map(|(_, u)| u).collect()),
                None => return,
            },
            None => None,
        };
        let (Some(mb), Some(view)) = (self.mailbox(), self.view.as_ref()) else {
            return;
        };
        // A hidden folder's messages are not the client's to remove.
        let only = if view.hidden { Some(Vec::new()) } else { only };
        let res = mb.expunge(&view.folder, only.as_deref());
        self.sync_all(out);
        match res {
            Ok(_) => tagged(out, tag, "OK", "Expunge completed"),
            Err(e) => tagged(out, tag, "NO", &store_error(&e)),
        }
    }

    /// Copies of the messages with these UIDs: from the store, or, for one
    /// the store no longer has (expunged by someone else, the EXPUNGE not
    /// yet sent), as this session last saw it.
    fn snapshot(&self, uids: &[(usize, u32)]) -> Result<Vec<(usize, StoredMessage)>, StoreError> {
        let (Some(mb), Some(view)) = (self.mailbox(), self.view.as_ref()) else {
            return Ok(Vec::new());
        };
        mb.with_folder(&view.folder, |f| {
            uids.iter()
                .filter_map(|&(seq, uid)| match f.position(uid) {
                    Some(p) => Some((seq, f.messages[p].clone())),
                    None => view.known(uid).map(|k| (seq, k.msg.clone())),
                })
                .collect()
        })
    }

    /// Whether a SEARCH, SORT or THREAD names a charset we read; if not,
    /// the tagged NO is written.
    fn charset_ok(tag: &str, charset: Option<&Charset<'_>>, out: &mut Vec<u8>) -> bool {
        let Some(cs) = charset else {
            return true;
        };
        let name = match cs {
            Charset::Atom(a) => a.inner().to_string(),
            Charset::Quoted(q) => q.inner().to_string(),
        };
        if name.eq_ignore_ascii_case("UTF-8") || name.eq_ignore_ascii_case("US-ASCII") {
            return true;
        }
        tagged(
            out,
            tag,
            "NO",
            "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset",
        );
        false
    }

    /// One criteria tree of a command's search keys (they are ANDed).
    fn criteria_key(criteria: Vec1<SearchKey<'_>>) -> SearchKey<'_> {
        let keys: Vec<SearchKey<'_>> = criteria.into_inner();
        if keys.len() == 1 {
            keys.into_iter().next().unwrap_or(SearchKey::All)
        } else {
            match Vec1::try_from(keys) {
                Ok(v) => SearchKey::And(v),
                Err(_) => SearchKey::All,
            }
        }
    }

    /// The messages of the selected folder that `key` matches, with their
    /// sequence numbers, ascending.
    fn matching(&mut self, key: &SearchKey<'_>) -> Result<Vec<(usize, StoredMessage)>, StoreError> {
        let hide = self
            .faults(Stage::ImapFetch)
            .iter()
            .any(|f| f.action == Fault::HideMessages);
        let Some(view) = self.view.as_ref() else {
            return Ok(Vec::new());
        };
        let all: Vec<(usize, u32)> = view
            .msgs
            .iter()
            .enumerate()
            .filter(|_| !hide)
            .map(|(i, m)| (i + 1, m.uid))
            .collect();
        let msgs = self.snapshot(&all)?;
        let Some(view) = self.view.as_ref() else {
            return Ok(Vec::new());
        };
        Ok(msgs
            .into_iter()
            .filter(|(seq, msg)| {
                let c = Candidate {
                    seq: *seq,
                    msg,
                    recent: view.recent.contains(&msg.uid),
                    view,
                };
                search::matches(key, &c, &mut Parsed::new())
            })
            .collect())
    }

    pub(super) fn search(
        &mut self,
        tag: &str,
        charset: Option<&Charset<'_>>,
        criteria: Vec1<SearchKey<'_>>,
        uid: bool,
        out: &mut Vec<u8>,
    ) {
        if !Self::charset_ok(tag, charset, out) {
            return;
        }
        let key = Self::criteria_key(criteria);
        let modseq_key = search::uses_modseq(&key);
        if modseq_key && self.nomodseq_refusal(tag, "SEARCH MODSEQ", out) {
            return;
        }
        if modseq_key {
            self.enable_condstore(out);
        }
        let msgs = match self.matching(&key) {
            Ok(m) => m,
            Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
        };
        // (sequence number, UID) of each message found, ascending.
        let found: Vec<(usize, u32)> = msgs.iter().map(|(seq, m)| (*seq, m.uid)).collect();
        // The modseq of each message found, in the same order.
        let modseqs: Vec<u64> = msgs.iter().map(|(_, m)| m.modseq).collect();
        let update = self.search_return.is_some_and(|o| o.update);
        self.results(tag, "SEARCH", uid, &found, &modseqs, modseq_key, out);
        if update {
            self.updates.push(super::context::Update {
                tag: tag.to_string(),
                key: key.into_static(),
                uid,
                found: found.iter().map(|f| f.1).collect(),
            });
            self.context_version = None;
        }
        self.sync_after_search(uid, out);
        tagged(out, tag, "OK", "Search completed");
    }

    /// Writes a SEARCH or SORT result: `* SEARCH`/`* SORT`, or `* ESEARCH`
    /// with what RETURN asked for. `found` is (sequence number, UID) in the
    /// result's order, `modseqs` theirs; `modseq_key` when a MODSEQ key was
    /// searched (RFC 7162 §3.1.5).
    #[allow(clippy::too_many_arguments)]
    fn results(
        &mut self,
        tag: &str,
        kind: &str,
        uid: bool,
        found: &[(usize, u32)],
        modseqs: &[u64],
        modseq_key: bool,
        out: &mut Vec<u8>,
    ) {
        let number = |f: &(usize, u32)| if uid { f.1 } else { f.0 as u32 };
        match self.search_return.take() {
            None => {
                out.extend_from_slice(format!("* {kind}").as_bytes());
                for f in found {
                    out.extend_from_slice(format!(" {}", number(f)).as_bytes());
                }
                if let (true, Some(highest)) = (modseq_key, modseqs.iter().max()) {
                    out.extend_from_slice(format!(" (MODSEQ {highest})").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            Some(o) => {
                if o.save {
                    // SAVE with only MIN and/or MAX keeps just those (RFC 5182 §2.4).
                    self.saved = if (o.min || o.max) && !o.all && !o.count {
                        let mut v: Vec<u32> = Vec::new();
                        if o.min {
                            v.extend(found.first().map(|f| f.1));
                        }
                        if o.max {
                            v.extend(found.last().map(|f| f.1).filter(|u| !v.contains(u)));
                        }
                        v
                    } else {
                        found.iter().map(|f| f.1).collect()
                    };
                }
                if o.answers() {
                    out.extend_from_slice(b"* ESEARCH (TAG ");
                    wire::string(out, tag.as_bytes());
                    out.push(b')');
                    if uid {
                        out.extend_from_slice(b" UID");
                    }
                    if let (true, Some(f)) = (o.min, found.first()) {
                        out.extend_from_slice(format!(" MIN {}", number(f)).as_bytes());
                    }
                    if let (true, Some(f)) = (o.max, found.last()) {
                        out.extend_from_slice(format!(" MAX {}", number(f)).as_bytes());
                    }
                    if o.all && !found.is_empty() {
                        let all: Vec<u32> = found.iter().map(number).collect();
                        out.extend_from_slice(format!(" ALL {}", uid_set(&all)).as_bytes());
                    }
                    if o.count {
                        out.extend_from_slice(format!(" COUNT {}", found.len()).as_bytes());
                    }
                    if let Some(p) = o.partial {
                        let part: Vec<u32> =
                            found[p.indexes(found.len())].iter().map(number).collect();
                        let set = if part.is_empty() {
                            "NIL".to_string()
                        } else {
                            uid_set(&part)
                        };
                        out.extend_from_slice(format!(" PARTIAL ({p} {set})").as_bytes());
                    }
                    // The highest modseq of what is returned: with only MIN
                    // and/or MAX, of those messages (RFC 7162 §3.1.5).
                    let returned = if (o.min || o.max) && !o.all && !o.count {
                        let min = modseqs.first().filter(|_| o.min);
                        let max = modseqs.last().filter(|_| o.max);
                        min.into_iter().chain(max).max()
                    } else {
                        modseqs.iter().max()
                    };
                    if let (true, Some(highest)) = (modseq_key, returned) {
                        out.extend_from_slice(format!(" MODSEQ {highest}").as_bytes());
                    }
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// SORT (RFC 5256, with RFC 5957's DISPLAY keys).
    pub(super) fn sort(
        &mut self,
        tag: &str,
        criteria: &[SortCriterion],
        charset: &Charset<'_>,
        search_criteria: Vec1<SearchKey<'_>>,
        uid: bool,
        out: &mut Vec<u8>,
    ) {
        if !Self::charset_ok(tag, Some(charset), out) {
            return;
        }
        let key = Self::criteria_key(search_criteria);
        let modseq_key = search::uses_modseq(&key);
        if modseq_key && self.nomodseq_refusal(tag, "SORT with MODSEQ", out) {
            return;
        }
        if modseq_key {
            self.enable_condstore(out);
        }
        let msgs = match self.matching(&key) {
            Ok(m) => m,
            Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
        };
        let mut items: Vec<sort::Item> = msgs
            .iter()
            .map(|(seq, m)| sort::Item::new(*seq, m, criteria))
            .collect();
        sort::sort(&mut items, criteria);
        let mut found = Vec::with_capacity(items.len());
        let mut modseqs = Vec::with_capacity(items.len());
        for item in &items {
            if let Ok(i) = msgs.binary_search_by_key(&item.seq, |(seq, _)| *seq) {
                found.push((item.seq, msgs[i].1.uid));
                modseqs.push(msgs[i].1.modseq);
            }
        }
        self.results(tag, "SORT", uid, &found, &modseqs, modseq_key, out);
        self.sync_after_search(uid, out);
        tagged(out, tag, "OK", "Sort completed");
    }

    /// THREAD (RFC 5256): ORDEREDSUBJECT or REFERENCES.
    pub(super) fn thread(
        &mut self,
        tag: &str,
        algorithm: &ThreadingAlgorithm<'_>,
        charset: &Charset<'_>,
        search_criteria: Vec1<SearchKey<'_>>,
        uid: bool,
        out: &mut Vec<u8>,
    ) {
        if let ThreadingAlgorithm::Other(other) = algorithm {
            let text = format!(
                "Unknown threading algorithm {:?}: this server has ORDEREDSUBJECT and REFERENCES",
                other.as_ref()
            );
            return tagged(out, tag, "BAD", &text);
        }
        if !Self::charset_ok(tag, Some(charset), out) {
            return;
        }
        let key = Self::criteria_key(search_criteria);
        let msgs = match self.matching(&key) {
            Ok(m) => m,
            Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
        };
        let msgs: Vec<thread::Msg> = msgs
            .iter()
            .map(|(seq, m)| thread::Msg {
                number: if uid { m.uid } else { *seq as u32 },
                seq: *seq,
                header: sort::Header::of(m),
            })
            .collect();
        let threads = match algorithm {
            ThreadingAlgorithm::OrderedSubject => thread::ordered_subject(&msgs),
            _ => thread::references(&msgs),
        };
        out.extend_from_slice(b"* THREAD");
        thread::write(out, &threads, &msgs);
        out.extend_from_slice(b"\r\n");
        self.sync_after_search(uid, out);
        tagged(out, tag, "OK", "Thread completed");
    }

    /// What a SEARCH-like command reports of other sessions' changes: no
    /// EXPUNGE unless it is the UID form (RFC 3501 §7.4.1).
    fn sync_after_search(&mut self, uid: bool, out: &mut Vec<u8>) {
        self.sync(
            SyncRules {
                expunge: uid,
                with_uid: uid,
                ..SyncRules::default()
            },
            out,
        );
    }

    pub(super) fn fetch(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
        out: &mut Vec<u8>,
    ) {
        let mut items: Vec<MessageDataItemName<'_>> = match items {
            MacroOrMessageDataItemNames::Macro(m) => {
                m.expand().into_iter().map(|i| i.into_static()).collect()
            }
            MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
        };
        let mut changed_since = None;
        let mut vanished = false;
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                FetchModifier::Vanished => vanished = true,
            }
        }
        // RFC 7162 §3.2.6: only UID FETCH, only with CHANGEDSINCE, only
        // after ENABLE QRESYNC.
        if vanished {
            let refusal = if !self.qresync {
                Some("The VANISHED modifier needs ENABLE QRESYNC first")
            } else if !uid {
                Some("The VANISHED modifier is only allowed in UID FETCH")
            } else if changed_since.is_none() {
                Some("The VANISHED modifier needs CHANGEDSINCE")
            } else {
                None
            };
            if let Some(text) = refusal {
                return tagged(out, tag, "BAD", text);
            }
        }
        let asks_modseq = items
            .iter()
            .any(|i| matches!(i, MessageDataItemName::ModSeq));
        if (changed_since.is_some() || asks_modseq)
            && self.nomodseq_refusal(tag, "FETCH MODSEQ or CHANGEDSINCE", out)
        {
            return;
        }
        if changed_since.is_some() || asks_modseq {
            self.enable_condstore(out);
        }
        if changed_since.is_some() && !asks_modseq {
            // CHANGEDSINCE answers with MODSEQ too (RFC 7162 §3.1.4.1).
            items.push(MessageDataItemName::ModSeq);
        }
        let Some(mut targets) = self.resolve(tag, set, uid, out) else {
            return;
        };
        if let (true, Some(n)) = (vanished, changed_since) {
            self.vanished_earlier(set, n, out);
        }
        if let Some(n) = changed_since {
            match self.snapshot(&targets) {
                Ok(m) => {
                    let newer: HashSet<u32> = m
                        .iter()
                        .filter(|(_, m)| m.modseq > n)
                        .map(|(_, m)| m.uid)
                        .collect();
                    targets.retain(|(_, u)| newer.contains(u));
                }
                Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
            }
        }
        // Asked once per FETCH: a hide-messages fault answers with no data.
        if self
            .faults(Stage::ImapFetch)
            .iter()
            .any(|f| f.action == Fault::HideMessages)
        {
            targets.clear();
        }
        let read_only = self.view.as_ref().is_none_or(|v| v.read_only);
        let mut marked: HashSet<u32> = HashSet::new();
        if fetch::sets_seen(&items) && !read_only {
            let unseen: Vec<u32> = match self.snapshot(&targets) {
                Ok(m) => m
                    .iter()
                    .filter(|(_, m)| !m.flags.has(SystemFlag::Seen))
                    .map(|(_, m)| m.uid)
                    .collect(),
                Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
            };
            if let (Some(mb), Some(view)) = (self.mailbox(), self.view.as_ref())
                && !unseen.is_empty()
            {
                let seen = Flags::default().with(SystemFlag::Seen);
                if let Ok(changed) = mb.store_flags(&view.folder, &unseen, FlagOp::Add, &seen) {
                    marked = changed.into_iter().map(|(u, _)| u).collect();
                }
            }
        }
        let msgs = match self.snapshot(&targets) {
            Ok(m) => m,
            Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
        };
        if let Some(e) = msgs
            .iter()
            .find_map(|(_, m)| fetch::binary_problem(&items, m))
        {
            return tagged(out, tag, "NO", &e.to_string());
        }
        let Some(view) = self.view.as_mut() else {
            return;
        };
        let shows_flags = !marked.is_empty()
            || items
                .iter()
                .any(|i| matches!(i, MessageDataItemName::Flags));
        if shows_flags {
            view.announce(msgs.iter().map(|(_, m)| &m.flags), out);
            for (_, m) in &msgs {
                view.saw_flags(m.uid, &m.flags, m.modseq);
            }
        }
        for (seq, msg) in &msgs {
            let input = FetchInput {
                seq: *seq,
                msg,
                recent: view.recent.contains(&msg.uid),
                force_uid: uid,
                force_flags: marked.contains(&msg.uid),
                // A \Seen set by this FETCH changed the modseq too.
                force_modseq: view.condstore && marked.contains(&msg.uid),
            };
            fetch::render(out, &items, &input);
        }
        let silent = (!marked.is_empty()).then_some(&marked);
        self.sync(
            SyncRules {
                expunge: uid,
                with_uid: uid,
                silent,
                ..SyncRules::default()
            },
            out,
        );
        tagged(out, tag, "OK", "Fetch completed");
    }

    /// `UID FETCH set ... (CHANGEDSINCE n VANISHED)`'s `* VANISHED
    /// (EARLIER)`: the UIDs of the set expunged since `n`. A message this
    /// session still shows (expunged, not yet told) is left to the
    /// `* VANISHED` that follows the command.
    fn vanished_earlier(&self, set: &SequenceSet, n: u64, out: &mut Vec<u8>) {
        use super::qresync;
        let (Some(mb), Some(view)) = (self.mailbox(), self.view.as_ref()) else {
            return;
        };
        let largest = view.msgs.last().map_or(0, |m| m.uid);
        let within = qresync::ranges(set, largest);
        let found = mb.with_folder(&view.folder, |f| {
            let since = if view.hidden {
                mailrig_core::store::VanishedSince::Unknown
            } else {
                f.vanished_since(n)
            };
            let mut present: Vec<u32> = if view.hidden {
                Vec::new()
            } else {
                f.messages.iter().map(|m| m.uid).collect()
            };
            present.extend(view.msgs.iter().map(|m| m.uid));
            present.sort_unstable();
            present.dedup();
            qresync::vanished(&since, &within, f.uid_next, &present)
        });
        if let Ok(r) = found {
            qresync::write_vanished_earlier(out, &r);
        }
    }

    pub(super) fn store(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        req: StoreRequest<'_, '_>,
        out: &mut Vec<u8>,
    ) {
        let StoreRequest {
            kind,
            response,
            flags,
            uid,
            unchanged_since,
        } = req;
        if self.read_only_refusal(tag, out) {
            return;
        }
        if unchanged_since.is_some() && self.nomodseq_refusal(tag, "STORE UNCHANGEDSINCE", out) {
            return;
        }
        if unchanged_since.is_some() {
            self.enable_condstore(out);
        }
        let Some(targets) = self.resolve(tag, set, uid, out) else {
            return;
        };
        let uids: Vec<u32> = targets.iter().map(|(_, u)| *u).collect();
        let op = match kind {
            StoreType::Replace => FlagOp::Replace,
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
        };
        let (Some(mb), Some(view)) = (self.mailbox(), self.view.as_ref()) else {
            return;
        };
        let modified = match mb.store_flags_unchanged_since(
            &view.folder,
            &uids,
            op,
            &to_flags(flags),
            unchanged_since,
        ) {
            Ok((_, modified)) => modified,
            Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
        };
        // The MODIFIED set names messages as the command did (RFC 7162 §3.1.3).
        let modified_numbers: Vec<u32> = modified
            .iter()
            .filter_map(|u| {
                if uid {
                    Some(*u)
                } else {
                    view.seq_of(*u).map(|s| s as u32)
                }
            })
            .collect();
        let set: HashSet<u32> = uids.into_iter().filter(|u| !modified.contains(u)).collect();
        let rules = match response {
            StoreResponse::Silent => SyncRules {
                silent: Some(&set),
                ..SyncRules::default()
            },
            StoreResponse::Answer => SyncRules {
                force: Some(&set),
                ..SyncRules::default()
            },
        };
        let synced = self.sync(
            SyncRules {
                expunge: uid,
                with_uid: uid,
                ..rules
            },
            out,
        );
        if !modified_numbers.is_empty() {
            let mut sorted = modified_numbers;
            sorted.sort_unstable();
            let text = format!("[MODIFIED {}] Conditional STORE failed", uid_set(&sorted));
            tagged(out, tag, "OK", &text);
        } else if synced.absent.is_empty() {
            tagged(out, tag, "OK", "Store completed");
        } else {
            tagged(out, tag, "NO", EXPUNGE_ISSUED);
        }
    }

    pub(super) fn copy(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        dest: &Mailbox<'_>,
        uid: bool,
        is_move: bool,
        out: &mut Vec<u8>,
    ) {
        if is_move && self.read_only_refusal(tag, out) {
            return;
        }
        let Some(targets) = self.resolve(tag, set, uid, out) else {
            return;
        };
        let Some(dest) = folder_name(dest) else {
            return tagged(out, tag, "NO", "[TRYCREATE] No such folder");
        };
        let (Some(mb), Some(view)) = (self.mailbox(), self.view.as_ref()) else {
            return;
        };
        let uids: Vec<u32> = targets.iter().map(|(_, u)| *u).collect();
        let copy_refused = format!("{EXPUNGE_ISSUED}; nothing copied");
        // All or nothing (RFC 3501 §6.4.7): a message expunged elsewhere
        // cannot be copied, so the whole COPY fails, visibly.
        if uids.iter().any(|u| view.known(*u).is_none_or(|k| k.gone)) {
            return tagged(out, tag, "NO", &copy_refused);
        }
        let (validity, pairs) = match mb.copy(&view.folder, &uids, &dest) {
            Ok(r) => r,
            Err(StoreError::NoSuchFolder(n)) if n == dest => {
                return tagged(
                    out,
                    tag,
                    "NO",
                    "[TRYCREATE] Destination folder does not exist",
                );
            }
            Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
        };
        if pairs.len() < uids.len() {
            // One went between the check and the copy: undo the others.
            let copied: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            let _ = mb.delete_messages(&dest, &copied);
            self.sync(SyncRules::default(), out);
            return tagged(out, tag, "NO", &copy_refused);
        }
        let validity = self.reported_uid_validity(&dest, validity);
        let code = if pairs.is_empty() {
            String::new()
        } else {
            let src: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            let dst: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            format!("[COPYUID {validity} {} {}] ", uid_set(&src), uid_set(&dst))
        };
        if !is_move {
            self.sync(
                SyncRules {
                    expunge: uid,
                    with_uid: uid,
                    ..SyncRules::default()
                },
                out,
            );
            return tagged(out, tag, "OK", &format!("{code}Copy completed"));
        }
        let moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let res = mb.delete_messages(&view.folder, &moved);
        out.extend_from_slice(format!("* OK {code}Moved\r\n").as_bytes());
        self.sync_all(out);
        match res {
            Ok(_) => tagged(out, tag, "OK", "Move completed"),
            Err(e) => tagged(out, tag, "NO", &store_error(&e)),
        }
    }

    /// The message a CATENATE list makes (RFC 4469): TEXT parts as sent,
    /// URL parts cut out of the user's messages. Err is the tagged NO's text.
    fn catenated(&self, parts: &[super::catenate::Part]) -> Result<Vec<u8>, String> {
        use super::catenate::{self, Part};
        let Some(mb) = self.mailbox() else {
            return Err("Not authenticated".into());
        };
        let limit = self.state.world.limits.max_literal;
        let mut data = Vec::new();
        for p in parts {
            match p {
                Part::Text(t) => data.extend_from_slice(t),
                Part::Url(u) => {
                    let bad = |why: &str| format!("[BADURL {u}] {why}");
                    let url = catenate::parse_url(u).map_err(|e| bad(&e.to_string()))?;
                    let name = if url.mailbox.eq_ignore_ascii_case("INBOX") {
                        mailrig_core::store::INBOX.to_string()
                    } else {
                        mailrig_core::store::canonical_name(&url.mailbox)
                    };
                    let (validity, raw) = mb
                        .with_folder(&name, |f| {
                            let raw = f.position(url.uid).map(|i| f.messages[i].raw.clone());
                            (f.uid_validity, raw)
                        })
                        .map_err(|_| bad(&format!("folder {} does not exist", url.mailbox)))?;
                    let validity = self.reported_uid_validity(&name, validity);
                    if let Some(v) = url.uid_validity
                        && v != validity
                    {
                        return Err(bad(&format!("UIDVALIDITY is {validity}, not {v}")));
                    }
                    let raw =
                        raw.ok_or_else(|| bad(&format!("no message with UID {}", url.uid)))?;
                    let bytes = catenate::section_bytes(&raw, &url.section).ok_or_else(|| {
                        bad(&format!("the message has no section {}", url.section))
                    })?;
                    data.extend_from_slice(&catenate::cut(bytes, url.partial));
                }
            }
            if data.len() > limit {
                return Err(format!(
                    "[TOOBIG] The CATENATE message exceeds the limit of {limit} bytes"
                ));
            }
        }
        Ok(data)
    }

    /// APPEND of several messages (RFC 3502): all or none.
    pub(super) fn multiappend(&mut self, m: super::extended::MultiAppend, out: &mut Vec<u8>) {
        let tag = m.tag.as_str();
        let name = if m.mailbox.eq_ignore_ascii_case("INBOX") {
            mailrig_core::store::INBOX.to_string()
        } else {
            mailrig_core::store::canonical_name(&m.mailbox)
        };
        // A missing destination is TRYCREATE before any URL is looked at
        // (RFC 4469 §5, as Dovecot answers).
        if self
            .mailbox()
            .is_some_and(|mb| mb.with_folder(&name, |_| ()).is_err())
        {
            return tagged(
                out,
                tag,
                "NO",
                "[TRYCREATE] Destination folder does not exist",
            );
        }
        // CATENATE's parts are put together first: a URL that names
        // nothing fails the whole command (RFC 4469 §5).
        let mut messages = m.messages;
        for msg in &mut messages {
            if let Some(parts) = msg.catenate.take() {
                match self.catenated(&parts) {
                    Ok(data) => msg.data = data,
                    Err(text) => return tagged(out, tag, "NO", &text),
                }
            }
        }
        let Some(mb) = self.mailbox() else { return };
        let mut uids = Vec::new();
        let mut validity = 0;
        let mut failure = None;
        for msg in messages {
            let data = if msg.literal8 {
                binary::encode_binary_parts(&msg.data).unwrap_or(msg.data)
            } else {
                msg.data
            };
            let mut flags = Flags::default();
            for f in &msg.flags {
                match f.to_ascii_lowercase().as_str() {
                    "\\answered" => flags.set(SystemFlag::Answered, true),
                    "\\flagged" => flags.set(SystemFlag::Flagged, true),
                    "\\deleted" => flags.set(SystemFlag::Deleted, true),
                    "\\seen" => flags.set(SystemFlag::Seen, true),
                    "\\draft" => flags.set(SystemFlag::Draft, true),
                    _ => flags.add_keyword(f),
                }
            }
            let new = NewMessage {
                raw: Bytes::from(data),
                envelope: None,
                flags,
                internal_date: msg.date.map_or_else(Utc::now, |d| wire::to_utc(&d)),
            };
            match mb.append(&name, new) {
                Ok((v, uid)) => {
                    validity = v;
                    uids.push(uid);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failure {
            // None of them, then (RFC 3502 §3).
            if !uids.is_empty() {
                let _ = mb.delete_messages(&name, &uids);
            }
            self.sync_all(out);
            return match e {
                StoreError::NoSuchFolder(_) => tagged(
                    out,
                    tag,
                    "NO",
                    "[TRYCREATE] Destination folder does not exist",
                ),
                e => tagged(out, tag, "NO", &store_error(&e)),
            };
        }
        let validity = self.reported_uid_validity(&name, validity);
        self.sync_all(out);
        tagged(
            out,
            tag,
            "OK",
            &format!("[APPENDUID {validity} {}] Append completed", uid_set(&uids)),
        );
    }

    pub(super) fn append(
        &mut self,
        tag: &str,
        m: &Mailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'_>,
        out: &mut Vec<u8>,
    ) {
        let Some(name) = folder_name(m) else {
            return tagged(out, tag, "NO", "[TRYCREATE] No such folder");
        };
        let raw = match &message {
            LiteralOrLiteral8::Literal(l) => Bytes::copy_from_slice(l.data()),
            // BINARY: binary parts are stored base64-encoded (RFC 3516 §4.4).
            LiteralOrLiteral8::Literal8(l) => match binary::encode_binary_parts(&l.data) {
                Some(v) => Bytes::from(v),
                None => Bytes::copy_from_slice(&l.data),
            },
        };
        let internal_date = date.map_or_else(Utc::now, |d| wire::to_utc(d.as_ref()));
        let Some(mb) = self.mailbox() else { return };
        let msg = NewMessage {
            raw,
            envelope: None,
            flags: to_flags(flags),
            internal_date,
        };
        match mb.append(&name, msg) {
            Ok((validity, uid)) => {
                let validity = self.reported_uid_validity(&name, validity);
                self.sync_all(out);
                tagged(
                    out,
                    tag,
                    "OK",
                    &format!("[APPENDUID {validity} {uid}] Append completed"),
                );
            }
            Err(StoreError::NoSuchFolder(_)) => tagged(
                out,
                tag,
                "NO",
                "[TRYCREATE] Destination folder does not exist",
            ),
            Err(e) => tagged(out, tag, "NO", &store_error(&e)),
        }
    }
}
