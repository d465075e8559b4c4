//! The journal entry of a stored copy (`{"kind": "delivered"}`): what the
//! page's grid, a message's history and the event stream show as "arrived".
//! Faults journal what they did in [`crate::faults`]; this is the normal end
//! of a message's path.

use mailrig_core::fault::Stage;
use mailrig_core::journal::{JournalRecord, Text};
use mailrig_core::world::MailboxId;
use mailrig_core::{JournalEvent, NewMessage};

use crate::state::ServerState;

/// What is noted of a copy before the store takes it.
pub struct Delivery {
    message_id: Option<Text>,
    mail_from: Option<Text>,
    peer: Option<Text>,
}

impl Delivery {
    pub fn of(m: &NewMessage) -> Delivery {
        Delivery {
            message_id: message_id(&m.raw).map(Into::into),
            mail_from: m.envelope.as_ref().map(|e| e.mail_from.clone()),
            peer: m.envelope.as_ref().map(|e| e.peer.clone()),
        }
    }

    /// Journals the copy stored with `uid` into `mailbox`'s INBOX.
    pub fn record(self, state: &ServerState, mailbox: MailboxId, uid: u32) {
        // The store's copy of the address, shared rather than copied: a
        // big world journals one entry per delivered copy.
        let address = state.store.mailbox(mailbox).address.clone();
        state.journal.record(JournalRecord {
            stage: Stage::Deliver,
            rule: None,
            message_id: self.message_id,
            mail_from: self.mail_from,
            rcpt: Some(address.clone()),
            peer: self.peer,
            event: JournalEvent::Delivered {
                mailbox: address,
                uid,
            },
        });
    }
}

/// The Message-ID of a message's header (without angle brackets), found by
/// a scan of the header lines rather than a full parse: this runs once per
/// stored copy, also under load.
pub fn message_id(raw: &[u8]) -> Option<String> {
    const NAME: &[u8] = b"message-id:";
    let mut rest = raw;
    loop {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        if line == b"\r\n" || line == b"\n" || line.is_empty() {
            return None;
        }
        if line.len() > NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME) {
            // The value may be folded onto the next line.
            let mut value = line[NAME.len()..].to_vec();
            let mut next = &rest[end..];
            while let Some(b' ' | b'\t') = next.first() {
                let e = memchr::memchr(b'\n', next).map_or(next.len(), |i| i + 1);
                value.extend_from_slice(&next[..e]);
                next = &next[e..];
            }
            let v = String::from_utf8_lossy(&value);
            let v = v.trim().trim_start_matches('<');
            let v = v.split('>').next().unwrap_or("").trim();
            return (!v.is_empty()).then(|| v.to_string());
        }
        rest = &rest[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::message_id;

    #[test]
    fn the_message_id_is_found_in_the_header_only() {
        assert_eq!(
            message_id(b"Subject: x\r\nMessage-ID: <a@b.test>\r\n\r\nbody").as_deref(),
            Some("a@b.test")
        );
        assert_eq!(
            message_id(b"message-id:\r\n <folded@b.test>\r\n\r\n").as_deref(),
            Some("folded@b.test")
        );
        assert_eq!(
            message_id(b"Subject: x\r\n\r\nMessage-ID: <no@b>\r\n"),
            None
        );
        assert_eq!(message_id(b"Subject: x"), None);
        assert_eq!(message_id(b"Message-ID: <>\r\n\r\n"), None);
    }
}
