//! Commands on folders of the logged-in user's mailbox: LIST/LSUB, CREATE,
//! DELETE, RENAME, (UN)SUBSCRIBE and STATUS.
//!
//! Names go through the store's `canonical_name` and `validate_name`, so a
//! name can never reach outside the user's own folders, on disk or in memory.

use std::sync::Arc;

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;
use mailrig_core::fault::{Action as Fault, Stage};
use mailrig_core::store::{DELIMITER, StoreError, SystemFlag};

use super::list_ext::ListRequest;
use super::session::{Session, folder_name, tagged};
use super::wire;

/// The response code and text for a store error.
pub(super) fn store_error(e: &StoreError) -> String {
    let code = match e {
        StoreError::NoSuchFolder(_) => "[NONEXISTENT] ",
        StoreError::FolderExists(_) => "[ALREADYEXISTS] ",
        StoreError::InvalidName { .. } | StoreError::CannotDeleteInbox => "[CANNOT] ",
        StoreError::NoSuchMessage(_) => "",
        StoreError::Io { .. } => "[SERVERBUG] ",
    };
    format!("{code}{e}")
}

impl Session {
    pub(super) fn create(&mut self, tag: &str, m: &Mailbox<'_>, out: &mut Vec<u8>) {
        let Some(mut name) = folder_name(m) else {
            return tagged(out, tag, "NO", "[CANNOT] Folder names must be UTF-8");
        };
        // A trailing delimiter only says the client intends children.
        if name.len() > 1 && name.ends_with(DELIMITER) {
            name.pop();
        }
        let Some(mb) = self.mailbox() else { return };
        match mb.create_folder(&name) {
            Ok(()) => tagged(out, tag, "OK", "Create completed"),
            Err(e) => tagged(out, tag, "NO", &store_error(&e)),
        }
        self.sync_all(out);
    }

    pub(super) fn delete(&mut self, tag: &str, m: &Mailbox<'_>, out: &mut Vec<u8>) {
        let Some(name) = folder_name(m) else {
            return tagged(out, tag, "NO", "[NONEXISTENT] No such folder");
        };
        let Some(mb) = self.mailbox() else { return };
        let res = mb.delete_folder(&name);
        self.sync_all(out);
        match res {
            Ok(()) => tagged(out, tag, "OK", "Delete completed"),
            Err(e) => tagged(out, tag, "NO", &store_error(&e)),
        }
    }

    pub(super) fn rename(
        &mut self,
        tag: &str,
        from: &Mailbox<'_>,
        to: &Mailbox<'_>,
        out: &mut Vec<u8>,
    ) {
        let (Some(from), Some(to)) = (folder_name(from), folder_name(to)) else {
            return tagged(out, tag, "NO", "[CANNOT] Folder names must be UTF-8");
        };
        let Some(mb) = self.mailbox() else { return };
        let res = mb.rename_folder(&from, &to);
        self.sync_all(out);
        match res {
            Ok(()) => tagged(out, tag, "OK", "Rename completed"),
            Err(e) => tagged(out, tag, "NO", &store_error(&e)),
        }
    }

    pub(super) fn subscribe(&mut self, tag: &str, m: &Mailbox<'_>, on: bool, out: &mut Vec<u8>) {
        let Some(name) = folder_name(m) else {
            return tagged(out, tag, "NO", "[CANNOT] Folder names must be UTF-8");
        };
        let Some(mb) = self.mailbox() else { return };
        let what = if on { "Subscribe" } else { "Unsubscribe" };
        match mb.subscribe(&name, on) {
            Ok(()) => tagged(out, tag, "OK", &format!("{what} completed")),
            Err(e) => tagged(out, tag, "NO", &store_error(&e)),
        }
    }

    /// LIST in the RFC 3501 form (answered as [`super::list_ext`] does) and LSUB.
    pub(super) fn list(
        &mut self,
        tag: &str,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
        out: &mut Vec<u8>,
    ) {
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
        };
        let pattern = match pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        if !lsub {
            let req = ListRequest {
                tag: tag.to_string(),
                reference,
                patterns: vec![pattern],
                ..ListRequest::default()
            };
            return self.list_ext(&req, out);
        }
        if pattern.is_empty() {
            self.sync_all(out);
            return tagged(out, tag, "OK", "LSUB completed");
        }
        let full = format!("{reference}{pattern}");
        let Some(mb) = self.mailbox() else { return };
        let (folders, subscribed): (Vec<String>, Vec<String>) = {
            let data = mb.lock();
            (
                data.folders.keys().map(str::to_string).collect(),
                data.subscribed.iter().cloned().collect(),
            )
        };
        for (name, parent_only) in &lsub_names(&subscribed, &full) {
            let prefix = format!("{name}{DELIMITER}");
            let children = folders.iter().any(|f| f.starts_with(&prefix));
            let mut attrs = Vec::new();
            if *parent_only || !folders.contains(name) {
                attrs.push("\\Noselect");
            }
            attrs.push(if children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            out.extend_from_slice(
                format!("* LSUB ({}) \"{DELIMITER}\" ", attrs.join(" ")).as_bytes(),
            );
            wire::astring(out, name.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.sync_all(out);
        tagged(out, tag, "OK", "LSUB completed");
    }

    pub(super) fn status(
        &mut self,
        tag: &str,
        m: &Mailbox<'_>,
        items: &[StatusDataItemName],
        out: &mut Vec<u8>,
    ) {
        let Some(name) = folder_name(m) else {
            return tagged(out, tag, "NO", "[NONEXISTENT] No such folder");
        };
        let items: Vec<StatusItem> = items.iter().filter_map(StatusItem::from_codec).collect();
        if let Err(e) = self.status_line(&name, &items, Asked::ByClient, out) {
            return tagged(out, tag, "NO", &e);
        }
        self.sync_all(out);
        tagged(out, tag, "OK", "Status completed");
    }

    /// Writes `* STATUS name (...)` for a folder of the user's mailbox (for
    /// STATUS, LIST-STATUS and NOTIFY); the error text when it does not exist.
    pub(super) fn status_line(
        &mut self,
        name: &str,
        items: &[StatusItem],
        asked: Asked,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        // STATUS asks the imap-select stage too, so it agrees with SELECT; an
        // unsolicited one (NOTIFY) only looks, so it fires and journals nothing.
        let fired = match asked {
            Asked::ByClient => self.faults(Stage::ImapSelect),
            Asked::Unsolicited => self.faults_peek(Stage::ImapSelect),
        };
        let hidden = fired.iter().any(|f| f.action == Fault::HideMessages);
        // No mod-sequences: HIGHESTMODSEQ 0 (RFC 7162 §3.1.2.2).
        let nomodseq = fired.iter().any(|f| f.action == Fault::ForgetModseq);
        let state = Arc::clone(&self.state);
        let Some(mb) = self.user.map(|id| state.store.mailbox(id)) else {
            return Err("Not authenticated".into());
        };
        let counts = mb.with_folder(name, |f| {
            let deleted = f
                .messages
                .iter()
                .filter(|m| m.flags.has(SystemFlag::Deleted))
                .count();
            (
                (f.messages.len(), f.recent(), f.unseen(), deleted),
                (f.uid_next, f.uid_validity, f.highest_modseq),
            )
        });
        let (
            (mut messages, mut recent, mut unseen, mut deleted),
            (uid_next, uid_validity, highest),
        ) = counts.map_err(|e| store_error(&e))?;
        if items.contains(&StatusItem::HighestModSeq) {
            self.enable_condstore(out);
        }
        if hidden {
            (messages, recent, unseen, deleted) = (0, 0, 0, 0);
        }
        self.change_uid_validity(&fired, name, uid_validity);
        let uid_validity = self.reported_uid_validity(name, uid_validity);
        let parts: Vec<String> = items
            .iter()
            .map(|item| match item {
                StatusItem::Messages => format!("MESSAGES {messages}"),
                StatusItem::Recent => format!("RECENT {recent}"),
                StatusItem::UidNext => format!("UIDNEXT {uid_next}"),
                StatusItem::UidValidity => format!("UIDVALIDITY {uid_validity}"),
                StatusItem::Unseen => format!("UNSEEN {unseen}"),
                StatusItem::Deleted => format!("DELETED {deleted}"),
                StatusItem::HighestModSeq if nomodseq => "HIGHESTMODSEQ 0".to_string(),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {highest}"),
            })
            .collect();
        out.extend_from_slice(b"* STATUS ");
        wire::astring(out, name.as_bytes());
        out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        Ok(())
    }
}

/// Who a `* STATUS` line is for: a command of the client (STATUS,
/// LIST-STATUS), which fires the imap-select fault rules as SELECT does, or
/// the server on its own (NOTIFY), which only looks at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Asked {
    ByClient,
    Unsolicited,
}

/// A STATUS data item this server answers (RFC 3501 §6.3.10, DELETED from RFC 9051).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    /// CONDSTORE (RFC 7162 §3.1.2.3).
    HighestModSeq,
}

impl StatusItem {
    /// From an item name as a client writes it (any case).
    pub fn from_name(name: &str) -> Option<StatusItem> {
        Some(match name.to_ascii_uppercase().as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            _ => return None,
        })
    }

    fn from_codec(item: &StatusDataItemName) -> Option<StatusItem> {
        Some(match item {
            StatusDataItemName::Messages => StatusItem::Messages,
            StatusDataItemName::Recent => StatusItem::Recent,
            StatusDataItemName::UidNext => StatusItem::UidNext,
            StatusDataItemName::UidValidity => StatusItem::UidValidity,
            StatusDataItemName::Unseen => StatusItem::Unseen,
            StatusDataItemName::Deleted => StatusItem::Deleted,
            StatusDataItemName::HighestModSeq => StatusItem::HighestModSeq,
            _ => return None,
        })
    }
}

/// The names LSUB reports for `pattern`: the subscribed ones that match, and
/// (flagged `true`, to be sent as `\\Noselect`) an unsubscribed parent that
/// matches when its subscribed child does not — RFC 3501 §6.3.9: with
/// `foo/bar` subscribed, `LSUB "" %` returns `foo`, not `foo/bar`.
fn lsub_names(subscribed: &[String], pattern: &str) -> Vec<(String, bool)> {
    let mut names = std::collections::BTreeMap::new();
    for name in subscribed {
        if wildcard_match(pattern, name) {
            names.insert(name.clone(), false);
            continue;
        }
        let mut parent = name.as_str();
        while let Some((up, _)) = parent.rsplit_once(DELIMITER) {
            parent = up;
            if wildcard_match(pattern, parent) && !subscribed.iter().any(|s| s == parent) {
                names.entry(parent.to_string()).or_insert(true);
            }
        }
    }
    names.into_iter().collect()
}

/// LIST pattern matching: `*` matches anything, `%` anything but the
/// delimiter; INBOX matches case-insensitively.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = canonical_pattern(pattern).chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with memo (patterns come from the client: no exponential blow-up).
    let mut memo = vec![vec![None; n.len() + 1]; p.len() + 1];
    fn go(p: &[char], n: &[char], i: usize, j: usize, memo: &mut Vec<Vec<Option<bool>>>) -> bool {
        if let Some(r) = memo[i][j] {
            return r;
        }
        let r = if i == p.len() {
            j == n.len()
        } else {
            match p[i] {
                '*' => go(p, n, i + 1, j, memo) || (j < n.len() && go(p, n, i, j + 1, memo)),
                '%' => {
                    go(p, n, i + 1, j, memo)
                        || (j < n.len() && n[j] != DELIMITER && go(p, n, i, j + 1, memo))
                }
                c => j < n.len() && n[j] == c && go(p, n, i + 1, j + 1, memo),
            }
        };
        memo[i][j] = Some(r);
        r
    }
    if p.len() > 1024 || n.len() > 1024 {
        return false;
    }
    go(&p, &n, 0, 0, &mut memo)
}

fn canonical_pattern(p: &str) -> String {
    let upper = p
        .get(..5)
        .map(|s| s.eq_ignore_ascii_case("INBOX"))
        .unwrap_or(false);
    if upper && (p.len() == 5 || p[5..].starts_with(DELIMITER)) {
        format!("INBOX{}", &p[5..])
    } else {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn list_wildcards() {
        assert!(wildcard_match("*", "INBOX"));
        assert!(wildcard_match("inbox", "INBOX"));
        assert!(wildcard_match("%", "Sent"));
        assert!(!wildcard_match("%", "Sent.Old"));
        assert!(wildcard_match("Sent.%", "Sent.Old"));
        assert!(wildcard_match("S*d", "Sent.Old"));
    }
}
