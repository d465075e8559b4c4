//! CONTEXT=SEARCH (RFC 5267 §4): `SEARCH RETURN (UPDATE)` keeps a search
//! result up to date; the server tells the client what joined and left it
//! (`ADDTO`, `REMOVEFROM`) until `CANCELUPDATE` or the folder is closed.
//!
//! The result is evaluated again whenever the session catches up with the
//! store ([`Session::sync`]): what left it is told before the EXPUNGE
//! responses (sequence numbers still valid), what joined it after the
//! EXISTS that announces it. A message expunged while EXPUNGE cannot be sent
//! (during a non-UID FETCH, STORE or SEARCH) leaves a sequence-number result
//! only when the EXPUNGE goes out.

use std::collections::{BTreeSet, HashSet};

use imap_codec::imap_types::search::SearchKey;
use mailrig_core::store::StoredMessage;

use super::search::{self, Candidate, Parsed};
use super::session::Session;
use super::view::uid_set;
use super::wire;

/// One search kept up to date.
#[derive(Debug)]
pub struct Update {
    /// The tag of the SEARCH that asked for it.
    pub tag: String,
    pub key: SearchKey<'static>,
    /// UID SEARCH: the updates name UIDs.
    pub uid: bool,
    /// The UIDs the client knows to be in the result.
    pub found: BTreeSet<u32>,
}

/// What each update's search finds in the store now, and which UIDs the
/// folder still has.
pub struct Current {
    sets: Vec<BTreeSet<u32>>,
}

impl Session {
    /// Before the view catches up: evaluates every update's search against
    /// the store and tells what left each result. `expunge`: EXPUNGE
    /// responses may be sent now.
    pub(super) fn context_before(&mut self, expunge: bool, out: &mut Vec<u8>) -> Option<Current> {
        if self.updates.is_empty() {
            return None;
        }
        let view = self.view.as_ref()?;
        let mailbox = self.mailbox()?;
        // Nothing changed since the last evaluation left nothing pending.
        let version = mailbox.version();
        if self.context_version == Some(version) {
            return None;
        }
        let messages: Vec<StoredMessage> = mailbox
            .with_folder(&view.folder, |f| f.messages.clone())
            .ok()?;
        let present: HashSet<u32> = messages.iter().map(|m| m.uid).collect();
        let sets: Vec<BTreeSet<u32>> = self
            .updates
            .iter()
            .map(|u| {
                messages
                    .iter()
                    .filter(|m| {
                        let c = Candidate {
                            seq: view.seq_of(m.uid).unwrap_or(0),
                            msg: m,
                            recent: view.recent.contains(&m.uid),
                            view,
                        };
                        search::matches(&u.key, &c, &mut Parsed::new())
                    })
                    .map(|m| m.uid)
                    .collect()
            })
            .collect();
        let mut lines = Vec::new();
        let mut pending = false;
        for (u, now) in self.updates.iter_mut().zip(&sets) {
            let left: Vec<u32> = u
                .found
                .difference(now)
                .copied()
                // A sequence number may only go with its EXPUNGE.
                .filter(|uid| u.uid || expunge || present.contains(uid))
                .collect();
            let numbers: Vec<u32> = left
                .iter()
                .filter_map(|&uid| number(u.uid, uid, view.seq_of(uid)))
                .collect();
            for uid in &left {
                u.found.remove(uid);
            }
            pending |= u.found.iter().any(|uid| !now.contains(uid));
            if !numbers.is_empty() {
                lines.push(line(&u.tag, u.uid, "REMOVEFROM", &numbers));
            }
        }
        for l in lines {
            out.extend_from_slice(&l);
        }
        self.context_version = (!pending).then_some(version);
        Some(Current { sets })
    }

    /// After the view caught up: tells what joined each result (messages the
    /// client has been told exist).
    pub(super) fn context_after(&mut self, current: Option<Current>, out: &mut Vec<u8>) {
        let (Some(current), Some(view)) = (current, self.view.as_ref()) else {
            return;
        };
        for (u, now) in self.updates.iter_mut().zip(current.sets) {
            let joined: Vec<u32> = now
                .difference(&u.found)
                .copied()
                .filter(|&uid| view.seq_of(uid).is_some())
                .collect();
            let mut numbers: Vec<u32> = joined
                .iter()
                .filter_map(|&uid| number(u.uid, uid, view.seq_of(uid)))
                .collect();
            numbers.sort_unstable();
            u.found.extend(joined);
            if !numbers.is_empty() {
                out.extend_from_slice(&line(&u.tag, u.uid, "ADDTO", &numbers));
            }
        }
    }

    /// CANCELUPDATE: ends the updates of these searches. `false` when one of
    /// the tags names no search kept up to date (nothing is cancelled then).
    pub(super) fn cancel_updates(&mut self, tags: &[String]) -> bool {
        if !tags
            .iter()
            .all(|t| self.updates.iter().any(|u| &u.tag == t))
        {
            return false;
        }
        self.updates.retain(|u| !tags.contains(&u.tag));
        true
    }
}

fn number(uid_mode: bool, uid: u32, seq: Option<usize>) -> Option<u32> {
    if uid_mode {
        Some(uid)
    } else {
        seq.and_then(|s| u32::try_from(s).ok())
    }
}

/// `* ESEARCH (TAG "t") [UID] ADDTO (0 set)`: position 0, the result is
/// not sorted (RFC 5267 §4.3).
fn line(tag: &str, uid: bool, what: &str, numbers: &[u32]) -> Vec<u8> {
    let mut out = b"* ESEARCH (TAG ".to_vec();
    wire::string(&mut out, tag.as_bytes());
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
    out.extend_from_slice(format!(" {what} (0 {})\r\n", uid_set(numbers)).as_bytes());
    out
}
