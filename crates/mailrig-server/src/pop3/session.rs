//! One POP3 session as a state machine: command lines in, responses out.
//!
//! The session knows the protocol (RFC 1939 with CAPA and RESP-CODES from
//! RFC 2449, STLS from RFC 2595, AUTH response codes from RFC 3206) and the
//! world's credentials and policies; it does no I/O. It implements the
//! [`driver::Session`] contract: it frames its own command lines (with a hard
//! cap on their length), answers each with [`Session::line`], and asks the
//! [`crate::driver`] for the TLS upgrade, the UPDATE state's removal of marked
//! messages (a blocking store effect) and closing by returning [`Step`]s.
//! Responses are handed to the driver as they pass
//! [`driver::OUTPUT_HIGH_WATER`], so pipelined RETRs never pile up.
//!
//! The maildrop is a snapshot taken at login: POP3 numbers messages 1..n for
//! the whole session, so messages delivered later stay invisible until the
//! next login, and DELE only marks. Only QUIT in the TRANSACTION state removes
//! the marked messages from the store (the UPDATE state); a connection that is
//! dropped, times out or is shut down removes nothing.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use mailrig_core::fault::{Action as Fault, Stage};
use mailrig_core::store::INBOX;
use mailrig_core::world::MailboxId;

use crate::driver::lines::{Line, LineReader};
use crate::driver::{self, Step, TlsFaultOnce};
use crate::listener::Accepted;
use crate::state::ServerState;

/// Longest command line accepted, CRLF included (RFC 2449 §4).
pub const MAX_COMMAND_LINE: usize = 255;

/// What the connection loop must do after a call into the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Flush, then run the TLS handshake (buffered input must be discarded).
    StartTls,
    /// Flush, then close the connection.
    Close,
    /// QUIT in TRANSACTION: remove these UIDs from the mailbox's INBOX, then
    /// call [`Session::updated`] (which answers and asks to close).
    Update {
        mailbox: MailboxId,
        uids: Vec<u32>,
    },
}

/// One message of the maildrop snapshot.
#[derive(Debug, Clone)]
struct Entry {
    uid: u32,
    raw: Bytes,
    deleted: bool,
}

/// The snapshot a logged-in session works on.
#[derive(Debug)]
struct Maildrop {
    mailbox: MailboxId,
    uid_validity: u32,
    entries: Vec<Entry>,
}

impl Maildrop {
    /// Messages not marked deleted, and their total size.
    fn stat(&self) -> (usize, usize) {
        self.live()
            .fold((0, 0), |(n, size), (_, e)| (n + 1, size + e.raw.len()))
    }

    /// (message number, entry) of every message not marked deleted.
    fn live(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.deleted)
            .map(|(i, e)| (i + 1, e))
    }

    /// The unique-id listing of a message: UIDVALIDITY and UID, so it stays
    /// the same across sessions for as long as the folder keeps its UIDs.
    fn unique_id(&self, e: &Entry) -> String {
        format!("{}.{}", self.uid_validity, e.uid)
    }
}

#[derive(Debug)]
enum Phase {
    /// Before login; `user` is the name given by USER.
    Authorization {
        user: Option<String>,
    },
    Transaction(Maildrop),
    /// After QUIT: nothing more is read.
    Done,
}

/// The state of one POP3 conversation.
#[derive(Debug)]
pub struct Session {
    state: Arc<ServerState>,
    tls: bool,
    /// The client's address (the `client` fact of fault rules).
    peer: Option<SocketAddr>,
    phase: Phase,
    auth_failures: u32,
    /// Messages left in the maildrop after QUIT's update, for its reply.
    kept: usize,
    lines: LineReader,
    /// The UPDATE state's removal, waiting for [`driver::Session::run_blocking`].
    update: Option<(MailboxId, Vec<u32>)>,
    /// This connection's TLS fault.
    tls_fault: TlsFaultOnce,
}

/// A message number argument that names no message.
enum MsgError {
    Syntax,
    NoSuchMessage,
    Deleted,
}

fn ok(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+OK ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn err(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"-ERR ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Removes the line ending (CRLF or a bare LF).
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl Session {
    pub fn new(state: Arc<ServerState>, tls: bool) -> Session {
        Session {
            state,
            tls,
            peer: None,
            phase: Phase::Authorization { user: None },
            auth_failures: 0,
            kept: 0,
            lines: LineReader::new(MAX_COMMAND_LINE),
            update: None,
            tls_fault: TlsFaultOnce::default(),
        }
    }

    /// A session for a connection the listener accepted.
    pub fn accepted(state: Arc<ServerState>, conn: Accepted) -> Session {
        let mut s = Session::new(state, conn.tls).with_peer(conn.peer);
        s.tls_fault = conn.tls_fault;
        s
    }

    /// The client's address, which fault rules may select on.
    pub fn with_peer(mut self, peer: SocketAddr) -> Session {
        self.peer = Some(peer);
        self
    }

    pub fn greeting(&self, out: &mut Vec<u8>) {
        ok(
            out,
            &format!("{} POP3 mailrig ready", self.state.world.identity.hostname),
        );
    }

    /// After a successful TLS handshake: forget the USER given before (RFC 2595 §4).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.phase = Phase::Authorization { user: None };
        self.lines.reset();
    }

    /// Whether the session is logged in.
    pub fn in_transaction(&self) -> bool {
        matches!(self.phase, Phase::Transaction(_))
    }

    /// A command line longer than [`MAX_COMMAND_LINE`] was received (and discarded).
    pub fn line_too_long(&mut self, out: &mut Vec<u8>) {
        err(out, "line too long");
    }

    /// Idle timeout: the last words before the connection closes (nothing is deleted).
    pub fn timed_out(&self, out: &mut Vec<u8>) {
        err(out, "idle timeout, closing connection");
    }

    /// Server shutdown: the last words before the connection closes (nothing is deleted).
    pub fn shutting_down(&self, out: &mut Vec<u8>) {
        err(out, "server shutting down");
    }

    /// Whether USER/PASS may be used now.
    fn plaintext_allowed(&self) -> bool {
        self.tls || self.state.world.security.plaintext_auth
    }

    /// Whether STLS may be used now.
    fn stls_offered(&self) -> bool {
        !self.tls && self.state.world.security.starttls && !self.tls_not_offered()
    }

    /// This connection's TLS fault (decided at the first question).
    fn tls_fault(&self) -> Option<mailrig_core::fault::TlsFault> {
        self.tls_fault.get(&self.state, self.peer)
    }

    /// A `not-offered` TLS fault hides STLS.
    fn tls_not_offered(&self) -> bool {
        self.tls_fault() == Some(mailrig_core::fault::TlsFault::NotOffered)
    }

    /// Handles one command line (with or without its line ending).
    pub fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Action {
        let line = trim_eol(line);
        let (verb, arg) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        let verb = verb.to_ascii_uppercase();
        if let Phase::Done = self.phase {
            return Action::Close;
        }
        match verb.as_slice() {
            b"CAPA" => self.capa(out),
            b"NOOP" => self.noop(out),
            b"QUIT" => return self.quit(out),
            b"STLS" => return self.stls(out),
            b"USER" => self.user(arg, out),
            b"PASS" => return self.pass(arg, out),
            b"APOP" | b"AUTH" => {
                if self.in_transaction() {
                    err(out, "already logged in");
                } else {
                    err(out, "not supported; use USER and PASS");
                }
            }
            b"STAT" | b"LIST" | b"UIDL" | b"RETR" | b"TOP" | b"DELE" | b"RSET" => {
                self.transaction_command(&verb, arg, out)
            }
            b"" => err(out, "empty command"),
            _ => err(out, "unknown command"),
        }
        Action::Continue
    }

    fn capa(&self, out: &mut Vec<u8>) {
        ok(out, "Capability list follows");
        let mut caps = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        if matches!(self.phase, Phase::Authorization { .. }) {
            if self.plaintext_allowed() {
                caps.push("USER");
            }
            if self.stls_offered() {
                caps.push("STLS");
            }
        }
        caps.push("EXPIRE NEVER");
        caps.push("IMPLEMENTATION mailrig");
        for c in caps {
            out.extend_from_slice(c.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }

    fn noop(&self, out: &mut Vec<u8>) {
        if self.in_transaction() {
            out.extend_from_slice(b"+OK\r\n");
        } else {
            err(out, "NOOP is only valid after login");
        }
    }

    fn quit(&mut self, out: &mut Vec<u8>) -> Action {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Transaction(md) => {
                let uids: Vec<u32> = md
                    .entries
                    .iter()
                    .filter(|e| e.deleted)
                    .map(|e| e.uid)
                    .collect();
                self.kept = md.entries.len() - uids.len();
                Action::Update {
                    mailbox: md.mailbox,
                    uids,
                }
            }
            _ => {
                ok(out, &self.signing_off());
                Action::Close
            }
        }
    }

    fn signing_off(&self) -> String {
        format!(
            "{} POP3 mailrig signing off",
            self.state.world.identity.hostname
        )
    }

    /// Reports the outcome of an [`Action::Update`]; the connection closes after it.
    pub fn updated(&mut self, result: Result<usize, String>, out: &mut Vec<u8>) -> Action {
        match result {
            Ok(_) => {
                let text = match self.kept {
                    0 => format!("{} (maildrop empty)", self.signing_off()),
                    n => format!("{} ({n} message(s) left)", self.signing_off()),
                };
                ok(out, &text);
            }
            Err(e) => {
                tracing::error!(error = %e, "POP3 update failed");
                err(out, "[SYS/TEMP] some deleted messages not removed");
            }
        }
        Action::Close
    }

    fn stls(&mut self, out: &mut Vec<u8>) -> Action {
        if self.tls {
            err(out, "command not permitted when TLS active");
        } else if !matches!(self.phase, Phase::Authorization { .. }) {
            err(out, "STLS is only valid before login");
        } else if !self.state.world.security.starttls || self.tls_not_offered() {
            err(out, "STLS not supported");
        } else {
            ok(out, "Begin TLS negotiation");
            return Action::StartTls;
        }
        Action::Continue
    }

    fn user(&mut self, arg: &[u8], out: &mut Vec<u8>) {
        let allowed = self.plaintext_allowed();
        let Phase::Authorization { user } = &mut self.phase else {
            err(out, "already logged in");
            return;
        };
        if !allowed {
            err(
                out,
                "[AUTH] plaintext authentication disallowed on non-secure connections; use STLS first",
            );
            return;
        }
        if arg.is_empty() {
            err(out, "USER needs a name");
            return;
        }
        // The name is kept as sent (lossy for non-UTF-8: such a name matches nobody).
        *user = Some(String::from_utf8_lossy(arg).into_owned());
        ok(out, "send PASS");
    }

    fn pass(&mut self, arg: &[u8], out: &mut Vec<u8>) -> Action {
        let allowed = self.plaintext_allowed();
        let Phase::Authorization { user } = &mut self.phase else {
            err(out, "already logged in");
            return Action::Continue;
        };
        if !allowed {
            err(
                out,
                "[AUTH] plaintext authentication disallowed on non-secure connections; use STLS first",
            );
            return Action::Continue;
        }
        let Some(name) = user.take() else {
            err(out, "send USER first");
            return Action::Continue;
        };
        // The password is the rest of the line and may contain spaces (RFC 1939 §7).
        let password = String::from_utf8_lossy(arg);
        // The pop3 stage is asked once per PASS, before the password is
        // checked: `fail-login` refuses it, `hide-messages` empties the snapshot.
        let owner = self.state.world.mailbox_by_login(&name);
        let fired = self
            .state
            .reader_faults(Stage::Pop3, self.peer, Some(&name), owner);
        let refused = fired.iter().any(|f| f.action == Fault::FailLogin);
        let hidden = fired.iter().any(|f| f.action == Fault::HideMessages);
        let authenticated = if refused {
            None
        } else {
            self.state.world.authenticate(&name, &password)
        };
        let Some(mailbox) = authenticated else {
            self.auth_failures += 1;
            if self.auth_failures >= self.state.world.limits.max_auth_failures {
                err(
                    out,
                    "[AUTH] authentication failed; too many failures, closing",
                );
                return Action::Close;
            }
            err(out, "[AUTH] authentication failed");
            return Action::Continue;
        };
        match self.snapshot(mailbox) {
            Ok(mut md) => {
                if hidden {
                    md.entries.clear();
                }
                let (n, size) = md.stat();
                self.phase = Phase::Transaction(md);
                ok(out, &format!("maildrop has {n} message(s) ({size} octets)"));
            }
            Err(e) => {
                tracing::error!(error = %e, "POP3 maildrop snapshot failed");
                err(out, "[SYS/TEMP] cannot open the maildrop; try again later");
            }
        }
        Action::Continue
    }

    /// Takes the maildrop snapshot: the INBOX as it is now.
    fn snapshot(&self, mailbox: MailboxId) -> Result<Maildrop, mailrig_core::StoreError> {
        self.state
            .store
            .mailbox(mailbox)
            .with_folder(INBOX, |f| Maildrop {
                mailbox,
                uid_validity: f.uid_validity,
                entries: f
                    .messages
                    .iter()
                    .map(|m| Entry {
                        uid: m.uid,
                        raw: m.raw.clone(),
                        deleted: false,
                    })
                    .collect(),
            })
    }

    fn transaction_command(&mut self, verb: &[u8], arg: &[u8], out: &mut Vec<u8>) {
        let Phase::Transaction(md) = &mut self.phase else {
            let verb = String::from_utf8_lossy(verb);
            err(out, &format!("{verb} is only valid after login"));
            return;
        };
        let args: Vec<&[u8]> = arg
            .split(|&b| b == b' ')
            .filter(|a| !a.is_empty())
            .collect();
        match verb {
            b"STAT" => {
                let (n, size) = md.stat();
                ok(out, &format!("{n} {size}"));
            }
            b"LIST" => match args.first() {
                None => {
                    let (n, size) = md.stat();
                    ok(out, &format!("{n} message(s) ({size} octets)"));
                    for (i, e) in md.live() {
                        let _ = write!(out, "{i} {}\r\n", e.raw.len());
                    }
                    out.extend_from_slice(b".\r\n");
                }
                Some(a) => match message(md, a) {
                    Ok(i) => ok(out, &format!("{i} {}", md.entries[i - 1].raw.len())),
                    Err(e) => msg_error(out, e),
                },
            },
            b"UIDL" => match args.first() {
                None => {
                    ok(out, "unique-id listing follows");
                    for (i, e) in md.live() {
                        let _ = write!(out, "{i} {}\r\n", md.unique_id(e));
                    }
                    out.extend_from_slice(b".\r\n");
                }
                Some(a) => match message(md, a) {
                    Ok(i) => ok(out, &format!("{i} {}", md.unique_id(&md.entries[i - 1]))),
                    Err(e) => msg_error(out, e),
                },
            },
            b"RETR" => {
                let Some(a) = args.first() else {
                    err(out, "RETR needs a message number");
                    return;
                };
                match message(md, a) {
                    Ok(i) => {
                        let raw = &md.entries[i - 1].raw;
                        ok(out, &format!("{} octets", raw.len()));
                        write_stuffed(out, raw, None);
                    }
                    Err(e) => msg_error(out, e),
                }
            }
            b"TOP" => {
                let (Some(a), Some(n)) = (args.first(), args.get(1)) else {
                    err(out, "TOP needs a message number and a line count");
                    return;
                };
                let Some(lines) = number(n) else {
                    err(out, "invalid line count");
                    return;
                };
                match message(md, a) {
                    Ok(i) => {
                        ok(out, "top of message follows");
                        write_stuffed(out, &md.entries[i - 1].raw, Some(lines));
                    }
                    Err(e) => msg_error(out, e),
                }
            }
            b"DELE" => {
                let Some(a) = args.first() else {
                    err(out, "DELE needs a message number");
                    return;
                };
                match message(md, a) {
                    Ok(i) => {
                        md.entries[i - 1].deleted = true;
                        ok(out, &format!("message {i} deleted"));
                    }
                    Err(e) => msg_error(out, e),
                }
            }
            b"RSET" => {
                for e in &mut md.entries {
                    e.deleted = false;
                }
                let (n, size) = md.stat();
                ok(out, &format!("maildrop has {n} message(s) ({size} octets)"));
            }
            _ => err(out, "unknown command"),
        }
    }
}

impl driver::Session for Session {
    const READ_CHUNK: usize = 4096;

    fn greeting(&mut self, out: &mut Vec<u8>) -> Step {
        Session::greeting(self, out);
        Step::Read
    }

    fn input(&mut self, input: &mut bytes::BytesMut, out: &mut Vec<u8>) -> Step {
        while let Some(line) = self.lines.next(input) {
            let action = match line {
                Line::TooLong => {
                    self.line_too_long(out);
                    Action::Continue
                }
                Line::Complete(l) => self.line(&l, out),
            };
            match action {
                Action::Continue => {}
                Action::Close => return Step::Close,
                Action::StartTls => return Step::StartTls(self.tls_fault()),
                Action::Update { mailbox, uids } => {
                    self.update = Some((mailbox, uids));
                    return Step::Blocking;
                }
            }
            if out.len() >= driver::OUTPUT_HIGH_WATER {
                return Step::Write;
            }
        }
        Step::Read
    }

    /// The UPDATE state: removes the messages marked with DELE from the INBOX.
    fn run_blocking(&mut self, out: &mut Vec<u8>) -> Step {
        let Some((mailbox, uids)) = self.update.take() else {
            return Step::Continue;
        };
        let result = if uids.is_empty() {
            Ok(0)
        } else {
            self.state
                .store
                .mailbox(mailbox)
                .delete_messages(INBOX, &uids)
                .map(|gone| gone.len())
                .map_err(|e| e.to_string())
        };
        match self.updated(result, out) {
            Action::Close => Step::Close,
            _ => Step::Continue,
        }
    }

    fn tls_started(&mut self) {
        Session::tls_started(self);
    }

    fn timed_out(&mut self, out: &mut Vec<u8>) {
        Session::timed_out(self, out);
    }

    fn shutting_down(&mut self, out: &mut Vec<u8>) {
        Session::shutting_down(self, out);
    }
}

/// Parses a decimal number argument (digits only, no sign, bounded).
fn number(arg: &[u8]) -> Option<usize> {
    if arg.is_empty() || arg.len() > 9 || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// Resolves a message-number argument to a live message's number.
fn message(md: &Maildrop, arg: &[u8]) -> Result<usize, MsgError> {
    let i = number(arg).ok_or(MsgError::Syntax)?;
    let e = i
        .checked_sub(1)
        .and_then(|k| md.entries.get(k))
        .ok_or(MsgError::NoSuchMessage)?;
    if e.deleted {
        return Err(MsgError::Deleted);
    }
    Ok(i)
}

fn msg_error(out: &mut Vec<u8>, e: MsgError) {
    match e {
        MsgError::Syntax => err(out, "invalid message number"),
        MsgError::NoSuchMessage => err(out, "no such message"),
        MsgError::Deleted => err(out, "message already deleted"),
    }
}

/// Writes a message as a multi-line response body: lines starting with '.'
/// get another '.', the last line gets a CRLF if it has none, and `.\r\n`
/// ends it. With `top = Some(n)`, only the header, the blank line and the
/// first `n` body lines are written (TOP).
fn write_stuffed(out: &mut Vec<u8>, raw: &[u8], top: Option<usize>) {
    out.reserve(raw.len() + raw.len() / 64 + 8);
    let mut in_body = false;
    let mut body_lines = 0usize;
    let mut rest = raw;
    while !rest.is_empty() {
        if in_body && top.is_some_and(|n| body_lines >= n) {
            break;
        }
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..=i], &rest[i + 1..]),
            None => (rest, &b""[..]),
        };
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        if in_body {
            body_lines += 1;
        } else if trim_eol(line).is_empty() {
            in_body = true;
        }
        rest = next;
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::script::{play, state};

    const WORLD: &str = "[server]\nhostname = 'mx.d.test'\n[[domain]]\nname = 'd.test'\nmailboxes = ['a']\npassword = 'p'\n";

    fn with_messages(raws: &[&str]) -> Arc<ServerState> {
        let st = state(WORLD);
        let id = st.world.mailbox_by_address("a@d.test").unwrap();
        for raw in raws {
            let msg = mailrig_core::NewMessage {
                raw: Bytes::copy_from_slice(raw.as_bytes()),
                envelope: None,
                flags: Default::default(),
                internal_date: chrono::Utc::now(),
            };
            st.store.mailbox(id).append(INBOX, msg).unwrap();
        }
        st
    }

    /// Whole conversations, sans I/O: client bytes in, server bytes and
    /// steps out.
    #[test]
    fn exchanges() {
        let st = with_messages(&["A: 1\r\n\r\n.hidden\r\nend\r\n", "B: 2\r\n\r\nx\r\n"]);
        let mut s = Session::new(Arc::clone(&st), false);
        play(
            &mut s,
            &[
                (b"", "+OK mx.d.test POP3 mailrig ready\r\n"),
                (
                    b"CAPA\r\n",
                    "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSTLS\r\nEXPIRE NEVER\r\nIMPLEMENTATION mailrig\r\n.\r\n",
                ),
                (b"STAT\r\n", "-ERR STAT is only valid after login\r\n"),
                // A command split over two reads, then a pipelined pair.
                (b"USER a@d", ""),
                (
                    b".test\r\nPASS p\r\nSTAT\r\n",
                    "+OK send PASS\r\n+OK maildrop has 2 message(s) (33 octets)\r\n+OK 2 33\r\n",
                ),
                (
                    b"RETR 1\r\n",
                    "+OK 22 octets\r\nA: 1\r\n\r\n..hidden\r\nend\r\n.\r\n",
                ),
                (
                    b"DELE 2\r\nLIST\r\n",
                    "+OK message 2 deleted\r\n+OK 1 message(s) (22 octets)\r\n1 22\r\n.\r\n",
                ),
                (&[b'X'; 300], ""),
                (b"X\r\nNOOP\r\n", "-ERR line too long\r\n+OK\r\n"),
                // QUIT removes the marked message as a blocking store effect.
                (
                    b"QUIT\r\n",
                    "[blocking]+OK mx.d.test POP3 mailrig signing off (1 message(s) left)\r\n[close]",
                ),
            ],
        );
        let id = st.world.mailbox_by_address("a@d.test").unwrap();
        assert_eq!(st.store.mailbox(id).messages(INBOX).unwrap().len(), 1);
    }

    #[test]
    fn stls_drops_what_was_said_before() {
        let mut s = Session::new(with_messages(&[]), false);
        play(
            &mut s,
            &[
                (b"", "+OK mx.d.test POP3 mailrig ready\r\n"),
                (
                    b"USER a@d.test\r\nSTLS\r\nPASS p\r\n",
                    "+OK send PASS\r\n+OK Begin TLS negotiation\r\n[starttls]",
                ),
                (b"PASS p\r\n", "-ERR send USER first\r\n"),
                (
                    b"STLS\r\n",
                    "-ERR command not permitted when TLS active\r\n",
                ),
            ],
        );
    }

    #[test]
    fn not_offered_tls_fault_hides_stls() {
        let st = state(&format!(
            "{WORLD}[[fault]]\nname = 'r'\nstage = 'tls'\naction = 'tls'\ntls = 'not-offered'\n"
        ));
        let mut s = Session::new(st, false).with_peer("127.0.0.1:9".parse().unwrap());
        play(
            &mut s,
            &[
                (b"", "+OK mx.d.test POP3 mailrig ready\r\n"),
                (b"STLS\r\n", "-ERR STLS not supported\r\n"),
            ],
        );
    }

    fn stuffed(raw: &[u8], top: Option<usize>) -> String {
        let mut out = Vec::new();
        write_stuffed(&mut out, raw, top);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn stuffing_and_termination() {
        assert_eq!(stuffed(b"", None), ".\r\n");
        assert_eq!(stuffed(b"A: b\r\n\r\nx", None), "A: b\r\n\r\nx\r\n.\r\n");
        assert_eq!(
            stuffed(b"A: b\r\n\r\n.\r\n..x\r\nend\r\n", None),
            "A: b\r\n\r\n..\r\n...x\r\nend\r\n.\r\n"
        );
    }

    #[test]
    fn top_counts_body_lines() {
        let m = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(stuffed(m, Some(0)), "A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(stuffed(m, Some(2)), "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n");
        assert_eq!(
            stuffed(m, Some(99)),
            "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n"
        );
        // No blank line at all: everything is header.
        assert_eq!(stuffed(b"A: 1\r\n", Some(0)), "A: 1\r\n.\r\n");
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"1"), Some(1));
        assert_eq!(number(b"0"), Some(0));
        assert_eq!(number(b"+1"), None);
        assert_eq!(number(b"-1"), None);
        assert_eq!(number(b"99999999999999999999"), None);
        assert_eq!(number(b""), None);
    }
}
