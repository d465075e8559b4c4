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

    pub(super) fn list(
        &mut self,
        tag: &str,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
        out: &mut Vec<u8>,
    ) {
        let cmd = if lsub { "LSUB" } else { "LIST" };
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_string(),
            Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
        };
        let pattern = match pattern {
            ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
            ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
        };
        if pattern.is_empty() {
            // The hierarchy delimiter and root (RFC 3501 §6.3.8).
            if !lsub {
                out.extend_from_slice(b"* LIST (\\Noselect) \".\" \"\"\r\n");
            }
            self.sync_all(out);
            return tagged(out, tag, "OK", &format!("{cmd} completed"));
        }
        let full = format!("{reference}{pattern}");
        let Some(mb) = self.mailbox() else { return };
        let (folders, subscribed): (Vec<String>, Vec<String>) = {
            let data = mb.lock();
            (
                data.folders.keys().cloned().collect(),
                data.subscribed.iter().cloned().collect(),
            )
        };
        let names: &[String] = if lsub { &subscribed } else { &folders };
        for name in names {
            if !wildcard_match(&full, name) {
                continue;
            }
            let prefix = format!("{name}{DELIMITER}");
            let children = folders.iter().any(|f| f.starts_with(&prefix));
            let mut attrs = Vec::new();
            if lsub && !folders.contains(name) {
                attrs.push("\\Noselect");
            }
            attrs.push(if children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            out.extend_from_slice(
                format!("* {cmd} ({}) \"{DELIMITER}\" ", attrs.join(" ")).as_bytes(),
            );
            wire::astring(out, name.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.sync_all(out);
        tagged(out, tag, "OK", &format!("{cmd} completed"));
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
        // STATUS asks the imap-select stage too, so it agrees with SELECT.
        let fired = self.faults(Stage::ImapSelect);
        let hidden = fired.iter().any(|f| f.action == Fault::HideMessages);
        let state = Arc::clone(&self.state);
        let Some(mb) = self.user.map(|id| state.store.mailbox(id)) else {
            return;
        };
        let counts = mb.with_folder(&name, |f| {
            let deleted = f
                .messages
                .iter()
                .filter(|m| m.flags.has(SystemFlag::Deleted))
                .count();
            (
                f.messages.len(),
                f.recent(),
                f.uid_next,
                f.uid_validity,
                f.unseen(),
                deleted,
            )
        });
        let (mut messages, mut recent, uid_next, uid_validity, mut unseen, mut deleted) =
            match counts {
                Ok(c) => c,
                Err(e) => return tagged(out, tag, "NO", &store_error(&e)),
            };
        if hidden {
            (messages, recent, unseen, deleted) = (0, 0, 0, 0);
        }
        self.change_uid_validity(&fired, &name, uid_validity);
        let uid_validity = self.reported_uid_validity(&name, uid_validity);
        let mut parts = Vec::new();
        for item in items {
            match item {
                StatusDataItemName::Messages => parts.push(format!("MESSAGES {messages}")),
                StatusDataItemName::Recent => parts.push(format!("RECENT {recent}")),
                StatusDataItemName::UidNext => parts.push(format!("UIDNEXT {uid_next}")),
                StatusDataItemName::UidValidity => {
                    parts.push(format!("UIDVALIDITY {uid_validity}"))
                }
                StatusDataItemName::Unseen => parts.push(format!("UNSEEN {unseen}")),
                StatusDataItemName::Deleted => parts.push(format!("DELETED {deleted}")),
                _ => {}
            }
        }
        out.extend_from_slice(b"* STATUS ");
        wire::astring(out, name.as_bytes());
        out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.sync_all(out);
        tagged(out, tag, "OK", "Status completed");
    }
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
