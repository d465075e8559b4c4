//! How the SMTP session consults the fault plan: the facts it knows at each
//! stage, the command-stage effects (reply, delay, tarpit, disconnect), and
//! the route/deliver effects that decide where each copy of a message goes.

use super::*;

/// What is known about one routed recipient: its address, domain and mailbox.
pub(super) fn recipient_facts<'a>(
    rcpt: &'a str,
    mailbox: MailboxId,
    sender: Option<&'a str>,
) -> Facts<'a> {
    Facts {
        mailbox: Some(mailbox),
        domain: rcpt.rsplit_once('@').map(|(_, d)| d),
        rcpt: Some(rcpt),
        sender,
        ..Facts::default()
    }
}

impl Session {
    /// Whether the world has fault rules at all (work done only for faults
    /// is skipped when it has none).
    pub(super) fn has_faults(&self) -> bool {
        !self.state.faults.read().is_empty()
    }

    pub(super) fn facts<'a>(&'a self, base: Facts<'a>) -> Facts<'a> {
        Facts {
            client: Some(self.peer.ip()),
            sender: base
                .sender
                .or(self.tx.as_ref().map(|t| t.mail_from.as_str())),
            user: base.user.or(self.auth_user.as_deref()),
            ..base
        }
    }

    pub(super) fn faults(
        &self,
        stage: Stage,
        base: Facts<'_>,
        message_id: Option<&str>,
    ) -> Vec<Fired> {
        let facts = self.facts(base);
        let subject = Subject {
            message_id,
            mail_from: facts.sender,
            rcpt: facts.rcpt,
            peer: Some(self.peer),
        };
        self.state.faults_at(stage, &facts, &subject)
    }

    /// Applies delay, tarpit, disconnect and reply faults of a command stage.
    /// `Some(action)` means the command was answered (or the connection must
    /// close) and its normal handling must be skipped.
    pub(super) fn apply_command_faults(
        &mut self,
        fired: &[Fired],
        out: &mut Vec<u8>,
    ) -> Option<Action> {
        for f in fired {
            match &f.action {
                Fault::Delay { ms } => {
                    let d = std::time::Duration::from_millis(*ms);
                    self.delay = Some(match self.delay {
                        Some((mark, prev)) => (mark, prev + d),
                        None => (out.len(), d),
                    });
                }
                Fault::Tarpit { bytes_per_sec } => self.tarpit = Some(*bytes_per_sec),
                Fault::Disconnect {
                    point: DisconnectPoint::InsteadOfReply,
                } => return Some(Action::Close),
                Fault::Disconnect {
                    point: DisconnectPoint::AfterReply,
                } => self.close_after_reply = true,
                Fault::Disconnect {
                    point: DisconnectPoint::MidData,
                } => self.cut_in_data = true,
                Fault::Reply {
                    code,
                    enhanced,
                    text,
                } => {
                    reply(out, *code, enhanced, text);
                    if *code == 421 {
                        return Some(Action::Close);
                    }
                    return Some(Action::Continue);
                }
                _ => {}
            }
        }
        None
    }

    /// Route and deliver faults for one recipient: where its copies go.
    pub(super) fn plan_copies(
        &self,
        rcpt: &str,
        mailbox: MailboxId,
        mail_from: &str,
        message: &NewMessage,
        mid: Option<&str>,
        out: &mut Vec<PlannedCopy>,
    ) {
        let mut copy = PlannedCopy {
            mailbox,
            message: message.clone(),
            after: None,
            folder: None,
        };
        let mut copies = 1u32;
        for stage in [Stage::Route, Stage::Deliver] {
            let base = recipient_facts(rcpt, copy.mailbox, Some(mail_from));
            for f in self.faults(stage, base, mid) {
                match f.action {
                    Fault::Drop => return,
                    Fault::Misroute { to, .. } => copy.mailbox = to,
                    Fault::Misfile { folder } => copy.folder = Some(folder),
                    Fault::Duplicate { copies: n } => copies = copies.max(n),
                    Fault::Late { secs } => copy.after = Some(std::time::Duration::from_secs(secs)),
                    Fault::Alter(a) => copy.message.raw = alter(&copy.message.raw, &a),
                    _ => {}
                }
            }
        }
        for _ in 0..copies {
            out.push(copy.clone());
        }
    }
}

/// Applies an alteration fault to a stored message.
fn alter(raw: &Bytes, a: &mailrig_core::fault::Alteration) -> Bytes {
    let mut v: Vec<u8> = Vec::with_capacity(raw.len());
    if a.strip_headers.is_empty() {
        v.extend_from_slice(raw);
    } else {
        let end = memchr::memmem::find(raw, b"\r\n\r\n").map_or(raw.len(), |i| i + 2);
        let (head, body) = raw.split_at(end);
        let mut skipping = false;
        for line in head.split_inclusive(|b| *b == b'\n') {
            let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
            if !continuation {
                skipping = a.strip_headers.iter().any(|h| {
                    line.len() > h.len()
                        && line[..h.len()].eq_ignore_ascii_case(h.as_bytes())
                        && line[h.len()] == b':'
                });
            }
            if !skipping {
                v.extend_from_slice(line);
            }
        }
        v.extend_from_slice(body);
    }
    if let Some(n) = a.truncate_to {
        v.truncate(n);
    }
    Bytes::from(v)
}
