//! One IMAP session as a state machine: bytes in, response bytes out, no I/O.
//!
//! [`Session::input`] frames the bytes (see [`super::framing`]), parses each
//! command with `imap-codec`, checks it against the state (RFC 3501 §3: not
//! authenticated, authenticated, selected, logout) and runs it. Commands on
//! folders live in [`super::folders`], commands on the selected folder in
//! [`super::selected`]. It implements the [`driver::Session`] contract: the
//! shared [`crate::driver`] writes what lands in `out` and carries out the
//! returned [`Step`]s; during IDLE the session registers with its mailbox's
//! direct fan-out ([`super::idlers`]) and answers [`Step::Lend`]: a delivery
//! is written to its client by the fan-out, and anything else wakes it.
//! (With NOTIFY or CONTEXT=SEARCH updates it answers [`Step::Watch`] with
//! the mailbox's change event instead, and catches up at every change.)
//! A benchmark can drive a session directly with [`Session::authenticated`]
//! and [`Session::input`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::BytesMut;
use imap_codec::CommandCodec;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::mailbox::Mailbox;
use mailrig_core::fault::{Action as Fault, Fired, Stage};
use mailrig_core::store::MailboxStore;
use mailrig_core::world::MailboxId;

use super::extended;
use super::framing::{CommandLimit, Frame, FrameLimits, Framer, tag_in};
use super::list_ext;
use super::view::{SyncRules, Synced, View};
use crate::driver::{self, Step, TlsFaultOnce};
use crate::listener::Accepted;
use crate::state::ServerState;

/// How long a client may stay in IDLE without a word (RFC 2177 asks clients
/// to re-issue IDLE at least every 29 minutes).
pub const IDLE_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(31 * 60);

/// What the connection loop must do after feeding input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Flush, then run the TLS handshake; buffered input must be dropped.
    StartTls,
    /// Flush, then close.
    Close,
    /// Output passed [`driver::OUTPUT_HIGH_WATER`]: write it, then call
    /// [`Session::input`] again (the rest of the input is still buffered).
    Flush,
    /// A command that writes to the store is waiting: call
    /// [`driver::Session::run_blocking`] where blocking is allowed.
    Blocking,
}

/// What `$` in a command became.
enum Dollars {
    None,
    Rewritten(Vec<u8>),
    /// `$` as the set of this command (its name), with nothing saved.
    EmptySet(String),
}

/// Input that is not a command.
#[derive(Debug)]
enum Mode {
    Command,
    /// Waiting for the client's AUTHENTICATE PLAIN response line.
    AuthPlain {
        tag: String,
    },
    /// In IDLE until `DONE`.
    Idle {
        tag: String,
    },
}

/// The state of one IMAP conversation.
#[derive(Debug)]
pub struct Session {
    pub(super) state: Arc<ServerState>,
    pub(super) tls: bool,
    pub(super) user: Option<MailboxId>,
    /// The login name the user logged in with (the `user` fact of fault rules).
    pub(super) login: Option<String>,
    /// The client's address (the `client` fact of fault rules).
    pub(super) peer: Option<SocketAddr>,
    /// UIDVALIDITY values a `change-uidvalidity` fault made this session
    /// report, by folder: once changed, SELECT, STATUS, APPENDUID and COPYUID
    /// all say the same for the rest of the session.
    pub(super) uid_validity: HashMap<String, u32>,
    pub(super) view: Option<View>,
    mode: Mode,
    framer: Framer,
    logged_out: bool,
    /// Failed LOGIN/AUTHENTICATE attempts (see `max_auth_failures`).
    auth_failures: u32,
    /// This connection's TLS fault.
    pub(super) tls_fault: TlsFaultOnce,
    /// A command that writes to the store (Maildir writes, renames, fsync),
    /// waiting for [`driver::Session::run_blocking`].
    blocking: Option<Command<'static>>,
    /// Running on the blocking pool now: store commands run at once.
    in_blocking: bool,
    /// The RETURN options of the SEARCH being run (ESEARCH).
    pub(super) search_return: Option<extended::ReturnOptions>,
    /// The UIDs a `SEARCH RETURN (SAVE)` kept for `$` (SEARCHRES).
    pub(super) saved: Vec<u32>,
    /// Searches kept up to date (CONTEXT=SEARCH's `RETURN (UPDATE)`).
    pub(super) updates: Vec<super::context::Update>,
    /// The store version the updates were last evaluated at, when nothing
    /// was left pending.
    pub(super) context_version: Option<u64>,
    /// A MULTIAPPEND waiting for [`driver::Session::run_blocking`].
    blocking_multi: Option<extended::MultiAppend>,
    /// CONDSTORE is on (RFC 7162 §3.1): ENABLEd, or a command used a
    /// modseq. FETCH responses about flag changes then carry MODSEQ.
    pub(super) condstore: bool,
    /// QRESYNC is ENABLEd (RFC 7162 §3.2.3; implies CONDSTORE): SELECT may
    /// resynchronize, removals are told as `* VANISHED`.
    pub(super) qresync: bool,
    /// The NOTIFY request in force (RFC 5465).
    pub(super) notify: Option<super::notify::Active>,
    /// In IDLE: the place on the mailbox's direct fan-out.
    idle_board: Option<super::idlers::Registration>,
}

/// Shorthand for a status line, tagged or (with tag `*`) untagged. The text
/// may echo what the client sent, so anything that is not printable ASCII (resp-text is 7-bit
/// TEXT-CHARs, RFC 3501 9) is written as `?`.
pub(super) fn tagged(out: &mut Vec<u8>, tag: &str, status: &str, text: &str) {
    out.extend_from_slice(tag.as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_bytes());
    out.push(b' ');
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        out.extend_from_slice(text.as_bytes());
    } else {
        out.extend(text.chars().map(|c| match c {
            ' '..='~' => c as u8,
            _ => b'?',
        }));
    }
    out.extend_from_slice(b"\r\n");
}

/// Which states a command may run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Any,
    NotAuthenticated,
    Authenticated,
    Selected,
}

impl Session {
    pub fn new(state: Arc<ServerState>, tls: bool) -> Session {
        Session {
            state,
            tls,
            user: None,
            login: None,
            peer: None,
            uid_validity: HashMap::new(),
            view: None,
            mode: Mode::Command,
            framer: Framer::new(FrameLimits::BEFORE_LOGIN),
            logged_out: false,
            auth_failures: 0,
            tls_fault: TlsFaultOnce::default(),
            blocking: None,
            in_blocking: false,
            search_return: None,
            saved: Vec::new(),
            updates: Vec::new(),
            context_version: None,
            blocking_multi: None,
            condstore: false,
            qresync: false,
            notify: None,
            idle_board: None,
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

    /// A session already logged in as `user` (benchmarks, tests).
    pub fn authenticated(state: Arc<ServerState>, user: MailboxId) -> Session {
        let mut s = Session::new(state, true);
        s.logged_in(user, None);
        s
    }

    pub fn greeting(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"* OK [CAPABILITY ");
        out.extend_from_slice(self.capabilities().as_bytes());
        out.extend_from_slice(b"] mailrig IMAP4rev1 ready\r\n");
    }

    /// The capability list for the current state.
    pub fn capabilities(&self) -> String {
        let mut caps = String::from(
            "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN ESEARCH SEARCHRES BINARY MULTIAPPEND LIST-EXTENDED LIST-STATUS SPECIAL-USE CONDSTORE QRESYNC CATENATE NOTIFY QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE SORT SORT=DISPLAY ESORT PARTIAL CONTEXT=SEARCH THREAD=ORDEREDSUBJECT THREAD=REFERENCES",
        );
        if self.user.is_none() {
            let sec = &self.state.world.security;
            if !self.tls && sec.starttls && !self.tls_not_offered() {
                caps.push_str(" STARTTLS");
            }
            if self.tls || sec.plaintext_auth {
                caps.push_str(" AUTH=PLAIN");
            } else {
                caps.push_str(" LOGINDISABLED");
            }
        }
        caps
    }

    /// The mailbox whose changes matter while idling.
    pub fn idle_mailbox(&self) -> Option<&MailboxStore> {
        match self.mode {
            Mode::Idle { .. } => self.user.map(|id| self.state.store.mailbox(id)),
            _ => None,
        }
    }

    /// Whether the session is in IDLE.
    pub fn idling(&self) -> bool {
        matches!(self.mode, Mode::Idle { .. })
    }

    /// The store version the selected view has caught up with.
    pub fn seen_version(&self) -> Option<u64> {
        self.view.as_ref().map(|v| v.version)
    }

    /// Tells an idling client what changed.
    pub fn idle_update(&mut self, out: &mut Vec<u8>) {
        self.sync(
            SyncRules {
                expunge: true,
                ..SyncRules::default()
            },
            out,
        );
    }

    pub fn tls_started(&mut self) {
        self.tls = true;
        self.framer.reset();
    }

    pub fn timed_out(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"* BYE Disconnected for inactivity\r\n");
    }

    pub fn shutting_down(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"* BYE Server shutting down\r\n");
    }

    /// Consumes what it can of `input`, appending responses to `out`.
    pub fn input(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Action {
        while let Some(frame) = self.framer.next(input) {
            let action = match frame {
                Frame::Continue => {
                    out.extend_from_slice(b"+ OK\r\n");
                    Action::Continue
                }
                Frame::Complete(bytes) => self.frame(&bytes, out),
                refused => self.refused(refused, out),
            };
            if action != Action::Continue {
                return action;
            }
            // Written as it is made: a pipelined batch never piles up its
            // responses (one FETCH's at most) in memory.
            if out.len() >= driver::OUTPUT_HIGH_WATER {
                return Action::Flush;
            }
        }
        Action::Continue
    }

    /// Answers input the framer refused (over a line, literal or command
    /// limit). A tag is echoed only if it is valid and short; inside an
    /// AUTHENTICATE exchange the refusal ends the exchange with a tagged BAD,
    /// so the next line is a command again.
    fn refused(&mut self, frame: Frame, out: &mut Vec<u8>) -> Action {
        let (tag, status, text, sync) = match frame {
            Frame::LiteralTooLarge {
                tag,
                size,
                limit,
                sync,
            } => {
                let text =
                    format!("[TOOBIG] Literal of {size} bytes exceeds the limit of {limit} bytes");
                (tag, "NO", text, sync)
            }
            Frame::CommandTooLarge { tag, limit, sync } => {
                let text = match limit {
                    CommandLimit::Bytes(n) => {
                        format!("[TOOBIG] Command exceeds the limit of {n} bytes with its literals")
                    }
                    CommandLimit::Literals(n) => {
                        format!("[LIMIT] Command has more than {n} literals")
                    }
                };
                (tag, "BAD", text, sync)
            }
            Frame::LineTooLong { tag } => (tag, "BAD", "Command line too long".to_string(), true),
            Frame::Continue | Frame::Complete(_) => return Action::Continue,
        };
        let tag = match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::AuthPlain { tag } => {
                tagged(
                    out,
                    &tag,
                    "BAD",
                    &format!("{text}; authentication exchange ended"),
                );
                if !sync {
                    out.extend_from_slice(b"* BYE Literal data follows that will not be read\r\n");
                    return Action::Close;
                }
                return Action::Continue;
            }
            mode => {
                self.mode = mode;
                tag
            }
        };
        if !sync {
            // The client sends the literal's bytes anyway; refuse to read them.
            tagged(out, "*", "BYE", &text);
            return Action::Close;
        }
        match tag {
            Some(t) => tagged(out, &t, status, &text),
            None => tagged(out, "*", "BAD", &text),
        }
        Action::Continue
    }

    fn frame(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Action {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::Idle { tag } => {
                self.idle_board = None;
                let line = trim_crlf(bytes);
                if line.eq_ignore_ascii_case(b"DONE") {
                    self.sync(
                        SyncRules {
                            expunge: true,
                            ..SyncRules::default()
                        },
                        out,
                    );
                    tagged(out, &tag, "OK", "Idle completed");
                } else {
                    tagged(out, &tag, "BAD", "Expected DONE");
                }
                Action::Continue
            }
            Mode::AuthPlain { tag } => {
                let line = trim_crlf(bytes);
                if line == b"*" {
                    tagged(out, &tag, "BAD", "Authentication aborted");
                    return Action::Continue;
                }
                match B64.decode(line) {
                    Ok(data) => self.auth_plain(&tag, &data, out),
                    Err(_) => {
                        tagged(out, &tag, "BAD", "Invalid base64 data");
                        Action::Continue
                    }
                }
            }
            Mode::Command => self.command_bytes(bytes, out),
        }
    }

    fn command_bytes(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Action {
        // Extension syntax imap-codec does not read is rewritten first.
        let bad = |out: &mut Vec<u8>, text: &str| {
            match tag_in(bytes) {
                Some(t) => tagged(out, &t, "BAD", text),
                None => out.extend_from_slice(b"* BAD Error in IMAP command: no valid tag\r\n"),
            }
            Action::Continue
        };
        if let Some((tag, req)) = super::quota::parse(bytes) {
            if self.user.is_none() {
                tagged(
                    out,
                    &tag,
                    "BAD",
                    "Not authenticated: quota commands not allowed in this state",
                );
            } else {
                self.quota_command(&tag, req, out);
            }
            return Action::Continue;
        }
        if let Some((tag, parsed)) = super::notify::parse(bytes) {
            if self.user.is_none() {
                tagged(
                    out,
                    &tag,
                    "BAD",
                    "Not authenticated: NOTIFY not allowed in this state",
                );
            } else {
                self.notify_command(&tag, parsed, out);
            }
            return Action::Continue;
        }
        match extended::multiappend(bytes) {
            Some(Ok(m)) if self.user.is_none() => {
                tagged(
                    out,
                    &m.tag,
                    "BAD",
                    "Not authenticated: APPEND not allowed in this state",
                );
                return Action::Continue;
            }
            Some(Ok(m)) => {
                // It writes the store: run where blocking is allowed.
                self.blocking_multi = Some(m);
                return Action::Blocking;
            }
            Some(Err(e)) => return bad(out, &e.to_string()),
            None => {}
        }
        match list_ext::parse(bytes) {
            Some(Ok(_)) if self.user.is_none() => {
                return bad(out, "Not authenticated: LIST not allowed in this state");
            }
            Some(Ok(req)) => {
                self.list_ext(&req, out);
                return Action::Continue;
            }
            Some(Err(e)) => return bad(out, &e.to_string()),
            None => {}
        }
        match extended::cancel_update(bytes) {
            Some(Ok((tag, tags))) => {
                if self.view.is_none() {
                    tagged(
                        out,
                        &tag,
                        "BAD",
                        "No folder selected: CANCELUPDATE not allowed in this state",
                    );
                } else if self.cancel_updates(&tags) {
                    tagged(out, &tag, "OK", "Updates cancelled");
                } else {
                    tagged(
                        out,
                        &tag,
                        "BAD",
                        "CANCELUPDATE names a tag whose search is not kept up to date",
                    );
                }
                return Action::Continue;
            }
            Some(Err(e)) => return bad(out, &e.to_string()),
            None => {}
        }
        let mut options = None;
        let mut rewritten = match extended::search_return(bytes) {
            Some(Ok((b, o))) => {
                options = Some(o);
                Some(b)
            }
            Some(Err(e)) => return bad(out, &e.to_string()),
            None => None,
        };
        match self.dollars(rewritten.as_deref().unwrap_or(bytes)) {
            Ok(Dollars::None) => {}
            Ok(Dollars::Rewritten(b)) => rewritten = Some(b),
            Ok(Dollars::EmptySet(word)) => {
                // Nothing saved: the command acts on no message (RFC 5182 §2.1).
                if let Some(t) = tag_in(bytes) {
                    tagged(out, &t, "OK", &format!("{word} completed (no messages)"));
                }
                return Action::Continue;
            }
            Err(e) => return bad(out, &e.to_string()),
        }
        let bytes = rewritten.as_deref().unwrap_or(bytes);
        self.search_return = options;
        let action = self.decoded(bytes, out);
        self.search_return = None;
        action
    }

    /// `$` (SEARCHRES) replaced by the saved result, in the selected state.
    fn dollars(&self, bytes: &[u8]) -> Result<Dollars, extended::SyntaxError> {
        let Some(view) = self.view.as_ref() else {
            return Ok(Dollars::None);
        };
        if !bytes.contains(&b'$') {
            return Ok(Dollars::None);
        }
        let found = extended::dollars(bytes)?;
        if found.is_empty() {
            return Ok(Dollars::None);
        }
        let seqs: Vec<u32> = self
            .saved
            .iter()
            .filter_map(|u| view.seq_of(*u).and_then(|s| u32::try_from(s).ok()))
            .collect();
        let uids: Vec<u32> = self
            .saved
            .iter()
            .copied()
            .filter(|u| view.seq_of(*u).is_some())
            .collect();
        let mut parts = Vec::new();
        for (range, use_) in found {
            let text = match use_ {
                extended::DollarUse::Set { uid } => {
                    let set = if uid { &uids } else { &seqs };
                    if set.is_empty() {
                        let toks = extended::tokens(bytes);
                        let word = toks
                            .iter()
                            .rev()
                            .find(|(_, r)| r.end <= range.start)
                            .map(|(_, r)| {
                                String::from_utf8_lossy(&bytes[r.clone()]).to_ascii_uppercase()
                            })
                            .unwrap_or_default();
                        return Ok(Dollars::EmptySet(word));
                    }
                    super::view::uid_set(set)
                }
                extended::DollarUse::SearchKey if uids.is_empty() => "NOT ALL".to_string(),
                extended::DollarUse::SearchKey => format!("UID {}", super::view::uid_set(&uids)),
            };
            parts.push((range, text));
        }
        Ok(Dollars::Rewritten(extended::replace(bytes, &parts)))
    }

    fn decoded(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Action {
        // imap-codec is not expected to panic on any input; if it ever does,
        // the client gets a BAD instead of a dropped connection.
        let decoded = std::panic::catch_unwind(|| match CommandCodec::default().decode(bytes) {
            Ok((b"", cmd)) => Ok(cmd.into_static()),
            Ok(_) => Err(true),
            Err(CommandDecodeError::Failed) | Err(CommandDecodeError::Incomplete) => Err(true),
            Err(CommandDecodeError::LiteralFound { .. }) => Err(true),
        });
        match decoded {
            Ok(Ok(cmd)) => self.command(cmd, out),
            _ => {
                match tag_in(bytes) {
                    Some(t) => tagged(out, &t, "BAD", "Error in IMAP command: could not parse it"),
                    None => out.extend_from_slice(b"* BAD Error in IMAP command: no valid tag\r\n"),
                }
                Action::Continue
            }
        }
    }

    fn needs(body: &CommandBody<'_>) -> Needs {
        use CommandBody as C;
        match body {
            C::Capability | C::Noop | C::Logout | C::Id { .. } => Needs::Any,
            C::StartTLS | C::Login { .. } | C::Authenticate { .. } => Needs::NotAuthenticated,
            C::Check
            | C::Close
            | C::Unselect
            | C::Expunge
            | C::ExpungeUid { .. }
            | C::Search { .. }
            | C::Sort { .. }
            | C::Thread { .. }
            | C::Fetch { .. }
            | C::Store { .. }
            | C::Copy { .. }
            | C::Move { .. } => Needs::Selected,
            _ => Needs::Authenticated,
        }
    }

    /// Commands that change the store (with a Maildir: write, rename or
    /// unlink files and fsync): they run as a blocking effect.
    fn writes_store(body: &CommandBody<'_>) -> bool {
        use CommandBody as C;
        matches!(
            body,
            C::Append { .. }
                | C::Copy { .. }
                | C::Move { .. }
                | C::Store { .. }
                | C::Expunge
                | C::ExpungeUid { .. }
                | C::Close
                | C::Select { .. }
                | C::Create { .. }
                | C::Delete { .. }
                | C::Rename { .. }
                | C::Subscribe { .. }
                | C::Unsubscribe { .. }
        )
    }

    fn command(&mut self, cmd: Command<'static>, out: &mut Vec<u8>) -> Action {
        let tag = cmd.tag.inner().to_string();
        let allowed = match Self::needs(&cmd.body) {
            Needs::Any => true,
            Needs::NotAuthenticated => self.user.is_none(),
            Needs::Authenticated => self.user.is_some(),
            Needs::Selected => self.view.is_some(),
        };
        if !allowed {
            let why = match Self::needs(&cmd.body) {
                Needs::NotAuthenticated => "Already authenticated",
                Needs::Authenticated => "Not authenticated",
                _ if self.user.is_none() => "Not authenticated",
                _ => "No mailbox selected",
            };
            tagged(
                out,
                &tag,
                "BAD",
                &format!("{why}: {} not allowed in this state", cmd.body.name()),
            );
            return Action::Continue;
        }
        if !self.in_blocking && Self::writes_store(&cmd.body) {
            self.blocking = Some(cmd);
            return Action::Blocking;
        }
        use CommandBody as C;
        match cmd.body {
            C::Capability => {
                out.extend_from_slice(
                    format!("* CAPABILITY {}\r\n", self.capabilities()).as_bytes(),
                );
                self.sync_all(out);
                tagged(out, &tag, "OK", "Capability completed");
            }
            C::Noop => {
                self.sync_all(out);
                tagged(out, &tag, "OK", "NOOP completed");
            }
            C::Logout => {
                out.extend_from_slice(b"* BYE Logging out\r\n");
                tagged(out, &tag, "OK", "Logout completed");
                self.logged_out = true;
                return Action::Close;
            }
            C::Id { .. } => {
                out.extend_from_slice(
                    format!(
                        "* ID (\"name\" \"mailrig\" \"version\" \"{}\")\r\n",
                        env!("CARGO_PKG_VERSION")
                    )
                    .as_bytes(),
                );
                tagged(out, &tag, "OK", "ID completed");
            }
            C::StartTLS => {
                if self.tls {
                    tagged(out, &tag, "BAD", "TLS is already active");
                } else if !self.state.world.security.starttls || self.tls_not_offered() {
                    tagged(out, &tag, "BAD", "STARTTLS is not offered");
                } else {
                    tagged(out, &tag, "OK", "Begin TLS negotiation now");
                    return Action::StartTls;
                }
            }
            C::Login { username, password } => {
                if !self.plaintext_allowed() {
                    tagged(
                        out,
                        &tag,
                        "NO",
                        "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections",
                    );
                } else {
                    let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                    let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                    return self.login(&tag, &user, &pass, out);
                }
            }
            C::Authenticate {
                mechanism,
                initial_response,
            } => {
                if !matches!(mechanism, AuthMechanism::Plain) {
                    tagged(out, &tag, "NO", "Unsupported authentication mechanism");
                } else if !self.plaintext_allowed() {
                    tagged(
                        out,
                        &tag,
                        "NO",
                        "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections",
                    );
                } else if let Some(ir) = initial_response {
                    return self.auth_plain(&tag, ir.declassify(), out);
                } else {
                    out.extend_from_slice(b"+ \r\n");
                    self.mode = Mode::AuthPlain { tag };
                }
            }
            C::Enable { capabilities } => {
                use imap_codec::imap_types::extensions::enable::CapabilityEnable;
                // Only what this server has is enabled, and only what this
                // command newly enabled is listed (RFC 5161 §3.2).
                let caps = capabilities.as_ref();
                let condstore = caps
                    .iter()
                    .any(|c| matches!(c, CapabilityEnable::CondStore));
                let qresync = caps
                    .iter()
                    .any(|c| c.to_string().eq_ignore_ascii_case("QRESYNC"));
                let mut enabled = String::from("* ENABLED");
                if condstore && !self.condstore {
                    enabled.push_str(" CONDSTORE");
                }
                if qresync && !self.qresync {
                    enabled.push_str(" QRESYNC");
                }
                let mut notes = Vec::new();
                if condstore {
                    self.enable_condstore(&mut notes);
                }
                if qresync {
                    self.enable_qresync(&mut notes);
                }
                // A folder selected learns its HIGHESTMODSEQ first (as before).
                out.extend_from_slice(&notes);
                out.extend_from_slice(enabled.as_bytes());
                out.extend_from_slice(b"\r\n");
                tagged(out, &tag, "OK", "Enabled");
            }
            C::Namespace => {
                out.extend_from_slice(b"* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
                tagged(out, &tag, "OK", "Namespace completed");
            }
            C::Idle => {
                out.extend_from_slice(b"+ idling\r\n");
                self.sync(
                    SyncRules {
                        expunge: true,
                        ..SyncRules::default()
                    },
                    out,
                );
                self.mode = Mode::Idle { tag };
            }
            C::Select {
                mailbox,
                parameters,
            } => self.select(&tag, &mailbox, false, &parameters, out),
            C::Examine {
                mailbox,
                parameters,
            } => self.select(&tag, &mailbox, true, &parameters, out),
            C::Create { mailbox } => self.create(&tag, &mailbox, out),
            C::Delete { mailbox } => self.delete(&tag, &mailbox, out),
            C::Rename { from, to } => self.rename(&tag, &from, &to, out),
            C::Subscribe { mailbox } => self.subscribe(&tag, &mailbox, true, out),
            C::Unsubscribe { mailbox } => self.subscribe(&tag, &mailbox, false, out),
            C::List {
                reference,
                mailbox_wildcard,
            } => self.list(&tag, &reference, &mailbox_wildcard, false, out),
            C::Lsub {
                reference,
                mailbox_wildcard,
            } => self.list(&tag, &reference, &mailbox_wildcard, true, out),
            C::Status {
                mailbox,
                item_names,
            } => self.status(&tag, &mailbox, &item_names, out),
            C::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(&tag, &mailbox, &flags, date, message, out),
            C::Check => {
                self.sync_all(out);
                tagged(out, &tag, "OK", "Check completed");
            }
            C::Close => self.close(&tag, true, out),
            C::Unselect => self.close(&tag, false, out),
            C::Expunge => self.expunge(&tag, None, out),
            C::ExpungeUid { sequence_set } => self.expunge(&tag, Some(&sequence_set), out),
            C::Search {
                charset,
                criteria,
                uid,
            } => self.search(&tag, charset.as_ref(), criteria, uid, out),
            C::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => self.sort(
                &tag,
                sort_criteria.as_ref(),
                &charset,
                search_criteria,
                uid,
                out,
            ),
            C::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => self.thread(&tag, &algorithm, &charset, search_criteria, uid, out),
            C::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => self.fetch(
                &tag,
                &sequence_set,
                macro_or_item_names,
                uid,
                &modifiers,
                out,
            ),
            C::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                // UNCHANGEDSINCE is CONDSTORE's one STORE modifier.
                let unchanged_since = modifiers
                    .iter()
                    .map(|m| match m {
                        imap_codec::imap_types::command::StoreModifier::UnchangedSince(n) => *n,
                    })
                    .next();
                let store = super::selected::StoreRequest {
                    kind,
                    response,
                    flags: &flags,
                    uid,
                    unchanged_since,
                };
                self.store(&tag, &sequence_set, store, out)
            }
            C::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&tag, &sequence_set, &mailbox, uid, false, out),
            C::Move {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&tag, &sequence_set, &mailbox, uid, true, out),
            other => {
                tagged(
                    out,
                    &tag,
                    "BAD",
                    &format!("Command not supported: {}", other.name()),
                );
            }
        }
        Action::Continue
    }

    fn plaintext_allowed(&self) -> bool {
        self.tls || self.state.world.security.plaintext_auth
    }

    fn login(&mut self, tag: &str, user: &str, pass: &str, out: &mut Vec<u8>) -> Action {
        // Asked at every attempt, before the password is checked (as SMTP AUTH does).
        let owner = self.state.world.mailbox_by_login(user);
        let fired = self
            .state
            .reader_faults(Stage::ImapLogin, self.peer, Some(user), owner);
        if fired.iter().any(|f| f.action == Fault::FailLogin) {
            return self.auth_failed(tag, "[AUTHENTICATIONFAILED] Authentication failed.", out);
        }
        match self.state.world.authenticate(user, pass) {
            Some(id) => {
                self.logged_in(id, Some(user.to_string()));
                let caps = self.capabilities();
                tagged(out, tag, "OK", &format!("[CAPABILITY {caps}] Logged in"));
                Action::Continue
            }
            None => self.auth_failed(tag, "[AUTHENTICATIONFAILED] Authentication failed.", out),
        }
    }

    /// A failed login: tagged `NO`, and after `max_auth_failures` of them
    /// `* BYE` and the connection closed (as SMTP AUTH and POP3 do).
    fn auth_failed(&mut self, tag: &str, text: &str, out: &mut Vec<u8>) -> Action {
        tagged(out, tag, "NO", text);
        self.auth_failures += 1;
        if self.auth_failures >= self.state.world.limits.max_auth_failures {
            out.extend_from_slice(b"* BYE Too many failed authentication attempts\r\n");
            return Action::Close;
        }
        Action::Continue
    }

    /// A PLAIN response, read by the rule SMTP AUTH uses too ([`crate::sasl`]).
    fn auth_plain(&mut self, tag: &str, data: &[u8], out: &mut Vec<u8>) -> Action {
        match crate::sasl::decode_plain(data) {
            Ok(c) => self.login(tag, &c.authcid, &c.password, out),
            Err(e) if e.is_failed_login() => {
                let text = format!("[AUTHORIZATIONFAILED] Authentication failed: {e}");
                self.auth_failed(tag, &text, out)
            }
            Err(e) => {
                let mut text = e.to_string();
                text[..1].make_ascii_uppercase();
                tagged(out, tag, "BAD", &text);
                Action::Continue
            }
        }
    }

    /// The session is authenticated as `user`: the framer's limits grow from
    /// the small ones before login to the world's.
    fn logged_in(&mut self, user: MailboxId, login: Option<String>) {
        self.user = Some(user);
        self.login = login;
        self.framer
            .set_limits(FrameLimits::logged_in(self.state.world.limits.max_literal));
    }

    /// Turns CONDSTORE on for the rest of the session (RFC 7162 §3.1). The
    /// first time, with a folder selected, the client learns the folder's
    /// HIGHESTMODSEQ (RFC 7162 §3.1.2.1).
    pub(super) fn enable_condstore(&mut self, out: &mut Vec<u8>) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        let Some(view) = self.view.as_mut() else {
            return;
        };
        if view.nomodseq {
            return;
        }
        view.condstore = true;
        let Some(id) = self.user else { return };
        if let Ok(highest) = self
            .state
            .store
            .mailbox(id)
            .with_folder(&view.folder, |f| f.highest_modseq)
        {
            out.extend_from_slice(format!("* OK [HIGHESTMODSEQ {highest}] Highest\r\n").as_bytes());
        }
    }

    /// Turns QRESYNC on for the rest of the session (RFC 7162 §3.2.3), and
    /// with it CONDSTORE.
    pub(super) fn enable_qresync(&mut self, out: &mut Vec<u8>) {
        self.enable_condstore(out);
        self.qresync = true;
        if let Some(view) = self.view.as_mut() {
            view.qresync = true;
        }
    }

    /// Catches the selected view up, all responses allowed.
    pub(super) fn sync_all(&mut self, out: &mut Vec<u8>) {
        self.sync(
            SyncRules {
                expunge: true,
                ..SyncRules::default()
            },
            out,
        );
    }

    pub(super) fn sync(&mut self, rules: SyncRules<'_>, out: &mut Vec<u8>) -> Synced {
        let current = self.context_before(rules.expunge, out);
        let (Some(id), Some(view)) = (self.user, self.view.as_mut()) else {
            return Synced::default();
        };
        let store = self.state.store.mailbox(id);
        let synced = match view.sync(store, rules, out) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "IMAP view sync failed");
                Synced::default()
            }
        };
        self.context_after(current, out);
        synced
    }

    /// The fault rules that fire at a stage of the logged-in session.
    pub(super) fn faults(&self, stage: Stage) -> Vec<Fired> {
        self.state
            .reader_faults(stage, self.peer, self.login.as_deref(), self.user)
    }

    /// The faults that would fire at `stage` for this session, without
    /// firing them (for answers the client did not ask for: NOTIFY).
    pub(super) fn faults_peek(&self, stage: Stage) -> Vec<Fired> {
        self.state
            .reader_faults_peek(stage, self.peer, self.login.as_deref(), self.user)
    }

    /// The UIDVALIDITY this session reports for a folder whose stored value is `stored`.
    pub(super) fn reported_uid_validity(&self, folder: &str, stored: u32) -> u32 {
        self.uid_validity.get(folder).copied().unwrap_or(stored)
    }

    /// Applies `change-uidvalidity` faults of `fired` to `folder` (stored value
    /// `stored`): the first time in this session, the folder's UIDVALIDITY
    /// becomes the stored one plus how often the rule has fired in all, so
    /// every session it fires in sees a new value; later it stays as it is.
    pub(super) fn change_uid_validity(&mut self, fired: &[Fired], folder: &str, stored: u32) {
        for f in fired {
            if f.action == Fault::ChangeUidValidity && !self.uid_validity.contains_key(folder) {
                let n = self.state.fault_fired(&f.rule).max(1);
                let mut v = stored.wrapping_add(u32::try_from(n).unwrap_or(u32::MAX));
                if v == 0 {
                    v = 1;
                }
                self.uid_validity.insert(folder.to_string(), v);
            }
        }
    }

    /// Refuses a command that needs mod-sequences in a folder a
    /// `forget-modseq` fault left without them (SELECT said `NOMODSEQ`);
    /// true when the tagged BAD was written.
    pub(super) fn nomodseq_refusal(&self, tag: &str, what: &str, out: &mut Vec<u8>) -> bool {
        if self.view.as_ref().is_some_and(|v| v.nomodseq) {
            let text = format!("{what} needs mod-sequences, and this folder has none (NOMODSEQ)");
            tagged(out, tag, "BAD", &text);
            return true;
        }
        false
    }

    /// The logged-in user's mailbox.
    pub(super) fn mailbox(&self) -> Option<&MailboxStore> {
        self.user.map(|id| self.state.store.mailbox(id))
    }
}

impl Session {
    /// This connection's TLS fault (decided at the first question).
    fn tls_fault(&self) -> Option<mailrig_core::fault::TlsFault> {
        self.tls_fault.get(&self.state, self.peer)
    }

    /// A `not-offered` TLS fault hides STARTTLS.
    fn tls_not_offered(&self) -> bool {
        self.tls_fault() == Some(mailrig_core::fault::TlsFault::NotOffered)
    }

    fn step(&mut self, action: Action, out: &mut Vec<u8>) -> Step {
        match action {
            Action::Continue => self.wait(out),
            Action::StartTls => Step::StartTls(self.tls_fault()),
            Action::Close => Step::Close,
            Action::Flush => Step::Write,
            Action::Blocking => Step::Blocking,
        }
    }

    /// What to wait for next: input, and while idling also the mailbox's
    /// change event (registered before the versions are compared, so no
    /// change is missed).
    fn wait(&mut self, out: &mut Vec<u8>) -> Step {
        loop {
            if !self.idling() && !self.notifying() {
                return Step::Read;
            }
            let Some(user) = self.user else {
                return Step::Read;
            };
            let state = Arc::clone(&self.state);
            let mailbox = state.store.mailbox(user);
            match self.wait_on_board(user, out) {
                OnBoard::Wait(step) => return step,
                OnBoard::CaughtUp => continue,
                OnBoard::Unable => {}
            }
            let listener = mailbox.listen();
            let version = mailbox.version();
            let mut told = false;
            if self.idling() && self.seen_version().is_some_and(|v| v != version) {
                self.idle_update(out);
                told = true;
            }
            if self.notify_version().is_some_and(|v| v != version) {
                self.notify_update(out);
                told = true;
            }
            if told {
                drop(listener);
                continue;
            }
            return Step::Watch(listener);
        }
    }
}

impl Session {
    /// What the client of an idling session has been told, when the fan-out
    /// can tell it more without the session: nothing but plain IDLE (no
    /// NOTIFY, no CONTEXT=SEARCH updates), a folder not hidden by a fault,
    /// and no expunge the client has yet to hear of.
    fn told(&self) -> Option<super::idlers::Told> {
        if !self.idling() || self.notifying() || !self.updates.is_empty() {
            return None;
        }
        let view = self.view.as_ref()?;
        if view.hidden || view.ghosts > 0 {
            return None;
        }
        let (validity, modseq, uid_next) = view.synced_at?;
        Some(super::idlers::Told {
            validity,
            modseq,
            uid_next,
            exists: u32::try_from(view.exists()).ok()?,
            recent: u32::try_from(view.recent_count()).ok()?,
        })
    }

    /// Waits on the mailbox's direct fan-out (see [`OnBoard`]).
    fn wait_on_board(&mut self, user: MailboxId, out: &mut Vec<u8>) -> OnBoard {
        let (Some(at), Some(view)) = (self.told(), self.view.as_ref()) else {
            self.idle_board = None;
            return OnBoard::Unable;
        };
        let registration = match self.idle_board.take() {
            Some(r) => r,
            None => {
                let state = &self.state;
                let Some(board) = state.idle_boards.of(&state.store, user, &state.shutdown) else {
                    return OnBoard::Unable;
                };
                let folder = board.folder_name(&view.folder);
                board.register(Arc::new(super::idlers::Idler::new(folder, !view.read_only)))
            }
        };
        let idler = Arc::clone(registration.idler());
        self.idle_board = Some(registration);
        let listener = idler.arm(at);
        // Armed before the versions are compared: a change after this is the
        // fan-out's, one before it is caught up with here.
        if self.seen_version() != Some(self.state.store.mailbox(user).version()) {
            self.absorb();
            self.idle_update(out);
            return OnBoard::CaughtUp;
        }
        OnBoard::Wait(Step::Lend(listener, idler))
    }

    /// The session runs again after waiting on the fan-out: it takes over
    /// its client again, and learns what the fan-out told it.
    fn absorb(&mut self) {
        let Some(reg) = &self.idle_board else {
            return;
        };
        let Some(told) = reg.idler().disarm() else {
            return;
        };
        if let (Some(user), Some(view)) = (self.user, self.view.as_mut()) {
            view.learn_told(self.state.store.mailbox(user), told.uid_next, told.modseq);
            debug_assert_eq!(
                view.exists(),
                told.exists as usize,
                "the view and what its client was told"
            );
        }
    }
}

/// What waiting on the direct fan-out came to.
enum OnBoard {
    /// The session cannot (see [`Session::told`]), or there is no runtime
    /// for the fan-out: it waits on the mailbox's event instead.
    Unable,
    /// It first caught up with a change made before it armed: wait again.
    CaughtUp,
    /// The step to wait with.
    Wait(Step),
}

impl driver::Session for Session {
    const READ_CHUNK: usize = 16 * 1024;

    fn greeting(&mut self, out: &mut Vec<u8>) -> Step {
        Session::greeting(self, out);
        Step::Read
    }

    fn input(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Step {
        self.absorb();
        let action = Session::input(self, input, out);
        self.step(action, out)
    }

    /// Runs the store command waiting in `blocking`.
    fn run_blocking(&mut self, out: &mut Vec<u8>) -> Step {
        if let Some(m) = self.blocking_multi.take() {
            self.multiappend(m, out);
            return Step::Continue;
        }
        let Some(cmd) = self.blocking.take() else {
            return Step::Continue;
        };
        self.in_blocking = true;
        let action = self.command(cmd, out);
        self.in_blocking = false;
        match action {
            Action::Continue => Step::Continue,
            other => self.step(other, out),
        }
    }

    fn woken(&mut self, out: &mut Vec<u8>) -> Step {
        self.absorb();
        if self.idling() {
            self.idle_update(out);
        }
        self.notify_update(out);
        self.wait(out)
    }

    fn tls_started(&mut self) {
        Session::tls_started(self);
    }

    fn read_timeout(&self, idle: std::time::Duration) -> std::time::Duration {
        if self.idling() {
            IDLE_COMMAND_TIMEOUT
        } else {
            idle
        }
    }

    fn timed_out(&mut self, out: &mut Vec<u8>) {
        self.idle_board = None;
        Session::timed_out(self, out);
    }

    fn shutting_down(&mut self, out: &mut Vec<u8>) {
        self.idle_board = None;
        Session::shutting_down(self, out);
    }
}

fn trim_crlf(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// A folder name from the wire, as the store spells it.
pub(super) fn folder_name(m: &Mailbox<'_>) -> Option<String> {
    match m {
        Mailbox::Inbox => Some(mailrig_core::store::INBOX.to_string()),
        Mailbox::Other(o) => std::str::from_utf8(o.as_ref())
            .ok()
            .map(mailrig_core::store::canonical_name),
    }
}

#[cfg(test)]
mod tests;
