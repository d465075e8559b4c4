//! One SMTP session as a state machine: lines and DATA bytes in, replies out.
//!
//! The session knows the protocol (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
//! SMTPUTF8, ENHANCEDSTATUSCODES, DSN, STARTTLS, AUTH PLAIN/LOGIN), the world's
//! policies and the router; it does no I/O. It implements the
//! [`driver::Session`] contract: it frames its own input (command lines with a
//! hard cap, then DATA through [`DataReader`]), and asks the shared
//! [`crate::driver`] for everything else by returning [`Step`]s: a fault's
//! delay ([`Step::Pause`]) and tarpit ([`Step::Tarpit`]), the TLS upgrade
//! under the session's TLS fault, storing a message ([`Step::Blocking`]),
//! closing, and cutting the connection mid-DATA ([`Step::Abort`]).
//! Underneath, [`Session::line`], [`Session::data`] and [`Session::delivered`]
//! answer one command or one chunk of content each (benchmarks drive those).
//! Command lines are parsed by `smtp-proto`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Buf, Bytes, BytesMut};
use chrono::Utc;
use mailrig_core::fault::{Action as Fault, DisconnectPoint, Facts, Fired, Stage, TlsFault};
use mailrig_core::journal::{JournalEvent, JournalRecord};
use mailrig_core::routing::{self, RouteDecision};
use mailrig_core::world::{AuthMode, BareLfPolicy, MailboxId, VrfyPolicy};
use mailrig_core::{Address, Envelope, NewMessage};
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, MAIL_SMTPUTF8, Request};

use super::data::{BodyProblem, DataReader};
use super::trace::{DateCache, PeerText, Trace, push_hex, reply};
use crate::driver::lines::{Line, LineReader};
use crate::driver::{self, Step, TlsFaultOnce};
use crate::listener::Accepted;

mod auth;
mod authenticate;
mod fault_hooks;
use crate::faults::{Subject, message_id};
use crate::state::{Metrics, ServerState};
use fault_hooks::recipient_facts;

/// What the connection loop must do after a call into the session.
#[derive(Debug)]
pub enum Action {
    Continue,
    /// Flush, then run the TLS handshake (buffered input must be discarded).
    StartTls,
    /// Flush, then close the connection.
    Close,
    /// Store this message, then call [`Session::delivered`].
    Deliver(Delivery),
}

/// A message accepted by the protocol and waiting to be stored.
#[derive(Debug)]
pub struct Delivery {
    /// One entry per copy to store (fault rules may drop, add or redirect copies).
    pub copies: Vec<PlannedCopy>,
    pub queue_id: String,
    /// A fault wants the connection closed after storing: `true` = without a reply.
    pub close: Option<bool>,
}

/// One copy of a message, where it goes and when.
#[derive(Debug, Clone)]
pub struct PlannedCopy {
    pub mailbox: MailboxId,
    pub message: NewMessage,
    /// Store only after this long (late-delivery fault).
    pub after: Option<std::time::Duration>,
    /// Store into this folder instead of INBOX (misfile fault).
    pub folder: Option<String>,
}

#[derive(Debug)]
enum Mode {
    Command,
    Data(Box<DataReader>),
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword(String),
}

#[derive(Debug)]
struct Transaction {
    mail_from: String,
    smtputf8: bool,
    /// The size the client announced (`SIZE=`), 0 if none.
    size: usize,
    rcpts: Vec<String>,
    /// (recipient as written, target mailbox), one entry per mailbox.
    routes: Vec<(String, MailboxId)>,
}

/// The state of one SMTP conversation.
#[derive(Debug)]
pub struct Session {
    state: Arc<ServerState>,
    peer: SocketAddr,
    /// `peer` as text, formatted once for every message of the connection.
    peer_text: PeerText,
    /// The date of the `Received:` header, formatted once per second.
    dates: DateCache,
    tls: bool,
    /// Shared with the envelopes of the session's messages.
    helo: Option<mailrig_core::journal::Text>,
    esmtp: bool,
    auth_user: Option<mailrig_core::journal::Text>,
    tx: Option<Transaction>,
    mode: Mode,
    /// A delay a fault asked for: (length of `out` before the delayed reply, how long).
    delay: Option<(usize, std::time::Duration)>,
    /// Bytes per second for every further write (tarpit fault).
    tarpit: Option<u64>,
    /// A fault wants the connection closed after the current reply.
    close_after_reply: bool,
    /// The greeting was a refusal: only QUIT is accepted.
    refused: bool,
    /// A fault wants the connection cut once message content arrives.
    cut_in_data: bool,
    /// The TLS fault of this session, decided once.
    tls_fault: TlsFaultOnce,
    lines: LineReader,
    /// The step to return once the pending delay and tarpit are announced.
    after: Option<Step>,
    /// An accepted message waiting for [`driver::Session::run_blocking`].
    pending: Option<Delivery>,
    /// Failed AUTH attempts on this connection (see `max_auth_failures`).
    auth_failures: u32,
    /// Content bytes of this session's previous message: the room reserved
    /// for the next one when the client announces no `SIZE=` (bulk senders
    /// send messages of one size; growing a buffer by doubling would copy a
    /// 100 KiB body about once more).
    last_size: usize,
}

/// Longest command line accepted, CRLF included. SMTP's own limit is 512 for
/// commands; 1000 leaves room for long AUTH responses and parameters.
pub const MAX_COMMAND_LINE: usize = 1000;

static QUEUE_IDS: AtomicU64 = AtomicU64::new(1);

/// Stored messages at least this long keep the DATA buffer (shrunk to fit);
/// shorter ones are copied out of it (see `build_delivery`).
const SHRINK_IN_PLACE: usize = 128 * 1024;

impl Session {
    pub fn new(state: Arc<ServerState>, peer: SocketAddr, tls: bool) -> Session {
        Session {
            state,
            peer,
            peer_text: PeerText::new(peer),
            dates: DateCache::default(),
            tls,
            helo: None,
            esmtp: false,
            auth_user: None,
            tx: None,
            mode: Mode::Command,
            delay: None,
            tarpit: None,
            close_after_reply: false,
            refused: false,
            cut_in_data: false,
            tls_fault: TlsFaultOnce::default(),
            lines: LineReader::new(MAX_COMMAND_LINE),
            after: None,
            pending: None,
            auth_failures: 0,
            last_size: 0,
        }
    }

    /// A session for a connection the listener accepted.
    pub fn accepted(state: Arc<ServerState>, conn: Accepted) -> Session {
        let mut s = Session::new(state, conn.peer, conn.tls);
        s.tls_fault = conn.tls_fault;
        s
    }

    /// The greeting, after the connect and greeting fault stages.
    pub fn greeting(&mut self, out: &mut Vec<u8>) -> Action {
        for stage in [Stage::Connect, Stage::Greeting] {
            let fired = self.faults(stage, Facts::default(), None);
            if let Some(action) = self.apply_command_faults(&fired, out) {
                if matches!(action, Action::Close) {
                    return Action::Close;
                }
                // A reply instead of the greeting: 421 closes, others refuse commands.
                if out.starts_with(b"421") {
                    return Action::Close;
                }
                self.refused = true;
                return Action::Continue;
            }
        }
        reply(out, 220, "", &self.state.world.identity.banner);
        Action::Continue
    }

    /// The TLS fault for this session (decided at the first question).
    fn tls_fault(&self) -> Option<TlsFault> {
        self.tls_fault.get(&self.state, Some(self.peer))
    }

    /// Whether the session is reading message content (not command lines).
    pub fn in_data(&self) -> bool {
        matches!(self.mode, Mode::Data(_))
    }

    /// After a successful TLS handshake: forget everything said before (RFC 3207).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.esmtp = false;
        self.auth_user = None;
        self.tx = None;
        self.mode = Mode::Command;
        self.lines.reset();
    }

    /// A command line longer than the limit was received (and discarded).
    pub fn line_too_long(&mut self, out: &mut Vec<u8>) {
        self.mode = Mode::Command;
        reply(out, 500, "5.5.2", "Error: line too long");
    }

    /// Idle timeout: the last words before the connection closes.
    pub fn timed_out(&self, out: &mut Vec<u8>) {
        reply(
            out,
            421,
            "4.4.2",
            &format!("{} Error: timeout exceeded", self.hostname()),
        );
    }

    /// Server shutdown: the last words before the connection closes.
    pub fn shutting_down(&self, out: &mut Vec<u8>) {
        reply(
            out,
            421,
            "4.3.2",
            &format!("{} Service shutting down", self.hostname()),
        );
    }

    fn hostname(&self) -> &str {
        &self.state.world.identity.hostname
    }

    /// Feeds message content; returns bytes consumed and what to do next.
    pub fn data(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Action) {
        let Mode::Data(reader) = &mut self.mode else {
            return (0, Action::Continue);
        };
        let p = reader.feed(input);
        if !p.done {
            return (p.consumed, Action::Continue);
        }
        let Mode::Data(reader) = std::mem::replace(&mut self.mode, Mode::Command) else {
            return (p.consumed, Action::Continue);
        };
        let size = reader.size();
        self.last_size = size;
        let prefix = reader.prefix_len();
        Metrics::add(&self.state.metrics.bytes_received, size as u64);
        let tx = self.tx.take();
        let body = match reader.finish() {
            Ok(b) => b,
            Err(problem) => {
                Metrics::add(&self.state.metrics.messages_rejected, 1);
                let (code, enh, text) = match problem {
                    BodyProblem::TooBig => (552, "5.3.4", "Error: message file too big"),
                    BodyProblem::LineTooLong => {
                        (500, "5.5.2", "Error: line too long in message content")
                    }
                    BodyProblem::BareLf => {
                        (550, "5.6.2", "Error: bare <LF> received in message content")
                    }
                };
                if let Some(tx) = &tx {
                    self.journal_reject(tx, None, code, enh, text, Stage::EndOfData);
                }
                reply(out, code, enh, text);
                return (p.consumed, Action::Continue);
            }
        };
        let Some(tx) = tx else {
            reply(out, 503, "5.5.1", "Error: no transaction");
            return (p.consumed, Action::Continue);
        };
        // End-of-data faults: evaluated per recipient; the first reply wins.
        // The Message-ID only names the message in fault journal entries.
        let mid = if self.has_faults() {
            message_id(body.get(prefix..).unwrap_or_default())
        } else {
            None
        };
        let mut close = None;
        for (rcpt, mailbox) in &tx.routes {
            let base = recipient_facts(rcpt, *mailbox, Some(tx.mail_from.as_str()));
            let fired = self.faults(Stage::EndOfData, base, mid.as_deref());
            match self.apply_command_faults(&fired, out) {
                Some(Action::Close) => close = Some(true),
                Some(_) => {
                    Metrics::add(&self.state.metrics.messages_rejected, 1);
                    return (p.consumed, self.after_reply(Action::Continue));
                }
                None => {}
            }
        }
        if self.close_after_reply {
            close = close.or(Some(false));
            self.close_after_reply = false;
        }
        let auth = self.authenticate(&tx, body.get(prefix..).unwrap_or_default());
        if let Some((_, true)) = &auth {
            let (code, enh, text) = authenticate::DMARC_REJECT;
            Metrics::add(&self.state.metrics.messages_rejected, 1);
            self.journal_reject(&tx, None, code, enh, text, Stage::EndOfData);
            reply(out, code, enh, text);
            return (p.consumed, self.after_reply(Action::Continue));
        }
        let auth = auth.map(|(a, _)| a);
        let mut delivery = self.build_delivery(tx, body, prefix, mid.as_deref(), auth);
        delivery.close = close;
        (p.consumed, Action::Deliver(delivery))
    }

    fn after_reply(&mut self, action: Action) -> Action {
        if self.close_after_reply {
            self.close_after_reply = false;
            return Action::Close;
        }
        action
    }

    /// The protocol word of the `Received:` header's `with` clause.
    fn with_word(&self) -> &'static str {
        match (self.esmtp, self.tls, self.auth_user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        }
    }

    /// The message as stored: the trace headers, then the content. `body`
    /// is the content after a `prefix` of that many bytes, reserved at DATA
    /// for the headers: they are written there, so the content is not copied
    /// (unless the estimate missed, when the queue ID or the date grew or
    /// shrank a digit between DATA and the end of data).
    fn build_delivery(
        &mut self,
        tx: Transaction,
        mut body: Vec<u8>,
        prefix: usize,
        mid: Option<&str>,
        auth: Option<Arc<mailrig_core::sender_auth::AuthResults>>,
    ) -> Delivery {
        let now = Utc::now();
        let mut queue_id = String::with_capacity(16);
        push_hex(&mut queue_id, QUEUE_IDS.fetch_add(1, Ordering::Relaxed));
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let with = self.with_word();
        let trace = Trace {
            mail_from: &tx.mail_from,
            helo,
            peer_ip: &self.peer_text.ip,
            hostname: &self.state.world.identity.hostname,
            with,
            queue_id: &queue_id,
            for_rcpt: match tx.rcpts.as_slice() {
                [one] => Some(one),
                _ => None,
            },
            date: self.dates.get(now),
        };
        let prefix = prefix.min(body.len());
        let mut trace_end = prefix;
        if !trace.write_over(&mut body[..prefix]) {
            let mut head = Vec::with_capacity(trace.encoded_len());
            trace.write(&mut head);
            trace_end = head.len();
            body.splice(..prefix, head);
        }
        // The receiving host's results (RFC 8601) go on top of the content,
        // under our trace fields: Return-Path stays first, where a forwarding
        // host looks for it, as in the copies big providers store.
        if let Some(a) = &auth {
            body.splice(trace_end..trace_end, a.header.bytes());
        }
        // The buffer's spare room would stay allocated as long as the
        // message. A large buffer is its own mapping, which shrinks in place;
        // a small one is copied to a buffer of its size instead, because
        // shrinking it in the heap would leave a hole per message that later
        // (larger) buffers cannot reuse.
        let raw = if body.len() >= SHRINK_IN_PLACE || body.len() == body.capacity() {
            body.shrink_to_fit();
            body
        } else {
            body.as_slice().to_vec()
        };
        let envelope = Arc::new(Envelope {
            mail_from: tx.mail_from.as_str().into(),
            rcpt_to: tx.rcpts.into_boxed_slice(),
            peer: self.peer_text.addr.clone(),
            helo: self.helo.clone().unwrap_or_else(|| "unknown".into()),
            auth_user: self.auth_user.clone(),
            tls: self.tls,
            received_at: now,
            auth,
        });
        let message = NewMessage::received(Bytes::from(raw), envelope);
        let mut copies = Vec::with_capacity(tx.routes.len());
        for (rcpt, mailbox) in &tx.routes {
            self.plan_copies(rcpt, *mailbox, &tx.mail_from, &message, mid, &mut copies);
        }
        Delivery {
            copies,
            queue_id,
            close: None,
        }
    }

    /// Reports the outcome of storing a [`Delivery`].
    pub fn delivered(&mut self, queue_id: &str, result: Result<usize, String>, out: &mut Vec<u8>) {
        match result {
            Ok(copies) => {
                Metrics::add(&self.state.metrics.messages_accepted, 1);
                Metrics::add(&self.state.metrics.messages_delivered, copies as u64);
                out.extend_from_slice(b"250 2.0.0 Ok: queued as ");
                out.extend_from_slice(queue_id.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Err(e) => {
                tracing::error!(error = %e, "storing a message failed");
                reply(
                    out,
                    451,
                    "4.3.0",
                    "Error: local error in processing; try again later",
                );
            }
        }
    }

    /// Handles one command line (with its line ending).
    pub fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Action {
        if self.refused && !matches!(self.mode, Mode::Data(_)) {
            if trim_eol(line).eq_ignore_ascii_case(b"QUIT") {
                reply(out, 221, "2.0.0", "Bye");
                return Action::Close;
            }
            reply(
                out,
                503,
                "5.5.1",
                "Error: service refused; only QUIT is accepted",
            );
            return Action::Continue;
        }
        let action = self.line_inner(line, out);
        self.after_reply(action)
    }

    fn line_inner(&mut self, line: &[u8], out: &mut Vec<u8>) -> Action {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::Command => {}
            Mode::Data(r) => {
                self.mode = Mode::Data(r);
                return Action::Continue;
            }
            Mode::AuthPlain => {
                self.auth_plain_response(trim_eol(line), out);
                return Action::Continue;
            }
            Mode::AuthLoginUser => {
                let text = trim_eol(line);
                if text == b"*" {
                    reply(out, 501, "5.7.0", "Authentication aborted");
                    return Action::Continue;
                }
                match B64
                    .decode(text)
                    .ok()
                    .and_then(|u| String::from_utf8(u).ok())
                {
                    Some(user) => {
                        self.mode = Mode::AuthLoginPassword(user);
                        reply(out, 334, "", "UGFzc3dvcmQ6");
                    }
                    None => reply(out, 501, "5.5.2", "Error: invalid base64 data"),
                }
                return Action::Continue;
            }
            Mode::AuthLoginPassword(user) => {
                let text = trim_eol(line);
                if text == b"*" {
                    reply(out, 501, "5.7.0", "Authentication aborted");
                    return Action::Continue;
                }
                match B64
                    .decode(text)
                    .ok()
                    .and_then(|p| String::from_utf8(p).ok())
                {
                    Some(pass) => self.check_credentials(&user, &pass, out),
                    None => reply(out, 501, "5.5.2", "Error: invalid base64 data"),
                }
                return Action::Continue;
            }
        }

        let parsed = Request::parse(&mut line.iter());
        let request = match parsed {
            Ok(r) => r,
            Err(e) => return self.parse_error(line, e, out),
        };
        let stage = match &request {
            Request::Ehlo { .. } | Request::Helo { .. } => Some(Stage::Ehlo),
            Request::Mail { .. } => Some(Stage::Mail),
            Request::Data => Some(Stage::Data),
            _ => None,
        };
        if let Some(stage) = stage {
            let sender = match &request {
                Request::Mail { from } => Some(from.address.as_ref()),
                _ => None,
            };
            // At DATA the recipients are known: rules may select them, and
            // are asked once per routed recipient (the first that fires wins).
            let routes = match (stage, &self.tx) {
                (Stage::Data, Some(tx)) => tx.routes.as_slice(),
                _ => &[],
            };
            let mut fired = Vec::new();
            if routes.is_empty() {
                let base = Facts {
                    sender,
                    ..Facts::default()
                };
                fired = self.faults(stage, base, None);
            }
            for (rcpt, mailbox) in routes {
                fired = self.faults(stage, recipient_facts(rcpt, *mailbox, None), None);
                if !fired.is_empty() {
                    break;
                }
            }
            if let Some(action) = self.apply_command_faults(&fired, out) {
                return action;
            }
        }
        match request {
            Request::Ehlo { host } => self.ehlo(&host, true, out),
            Request::Helo { host } => self.ehlo(&host, false, out),
            Request::Lhlo { .. } => reply(out, 500, "5.5.1", "Error: LHLO is for LMTP; use EHLO"),
            Request::Mail { from } => self.mail(&from.address, from.flags, from.size, out),
            Request::Rcpt { to } => self.rcpt(&to.address, out),
            Request::Data => self.data_command(out),
            Request::Rset => {
                self.tx = None;
                reply(out, 250, "2.0.0", "Ok");
            }
            Request::Noop { .. } => reply(out, 250, "2.0.0", "Ok"),
            Request::Quit => {
                reply(out, 221, "2.0.0", "Bye");
                return Action::Close;
            }
            Request::Vrfy { value } => self.vrfy(&value, out),
            Request::Expn { .. } => reply(out, 502, "5.5.1", "Error: EXPN is not supported"),
            Request::Help { .. } => {
                out.extend_from_slice(
                    b"214-2.0.0 mailrig fake mail server; commands:\r\n214-2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT STARTTLS AUTH\r\n214 2.0.0 See RFC 5321\r\n",
                );
            }
            Request::StartTls => return self.starttls(out),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response, out),
            Request::Bdat { .. }
            | Request::Burl { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. } => reply(out, 502, "5.5.1", "Error: command not implemented"),
        }
        Action::Continue
    }

    fn parse_error(&mut self, line: &[u8], e: smtp_proto::Error, out: &mut Vec<u8>) -> Action {
        use smtp_proto::Error as E;
        let verb: Vec<u8> = line
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .map(u8::to_ascii_uppercase)
            .collect();
        match e {
            E::UnknownCommand | E::NeedsMoreData { .. } => {
                reply(out, 500, "5.5.2", "Error: command not recognized")
            }
            E::InvalidSenderAddress => reply(out, 501, "5.1.7", "Bad sender address syntax"),
            E::InvalidRecipientAddress => reply(out, 501, "5.1.3", "Bad recipient address syntax"),
            E::SyntaxError { syntax } => match verb.as_slice() {
                b"MAIL" if self.helo.is_none() => {
                    reply(out, 503, "5.5.1", "Error: send HELO/EHLO first")
                }
                b"MAIL" => reply(out, 501, "5.5.4", &format!("Syntax: {syntax}")),
                b"RCPT" if self.tx.is_none() => {
                    reply(out, 503, "5.5.1", "Error: need MAIL command")
                }
                b"RCPT" => reply(out, 501, "5.5.4", &format!("Syntax: {syntax}")),
                _ => reply(out, 501, "5.5.4", &format!("Syntax: {syntax}")),
            },
            E::InvalidParameter { param } => {
                reply(out, 501, "5.5.4", &format!("Bad parameter {param}"))
            }
            E::UnsupportedParameter { param } => {
                reply(out, 555, "5.5.4", &format!("Unsupported option: {param}"))
            }
            E::ResponseTooLong | E::InvalidResponse { .. } => {
                reply(out, 500, "5.5.2", "Error: command not recognized")
            }
        }
        Action::Continue
    }

    fn ehlo(&mut self, host: &str, esmtp: bool, out: &mut Vec<u8>) {
        let host = if host.trim().is_empty() {
            "unknown"
        } else {
            host.trim()
        };
        self.helo = Some(host.into());
        self.esmtp = esmtp;
        self.tx = None;
        let state = Arc::clone(&self.state);
        let id = &state.world.identity;
        if !esmtp {
            reply(out, 250, "", &id.hostname);
            return;
        }
        let mut lines: Vec<String> =
            vec![format!("{} Hello {host} [{}]", id.hostname, self.peer.ip())];
        for ext in &id.extensions {
            match ext.as_str() {
                "SIZE" => lines.push(format!("SIZE {}", self.state.world.limits.max_message_size)),
                "STARTTLS" => {
                    if !self.tls && self.starttls_offered() {
                        lines.push("STARTTLS".into());
                    }
                }
                "AUTH" => {
                    if self.auth_offered() {
                        lines.push("AUTH PLAIN LOGIN".into());
                    }
                }
                other => lines.push(other.to_string()),
            }
        }
        let last = lines.len() - 1;
        for (i, l) in lines.iter().enumerate() {
            out.extend_from_slice(if i == last { b"250 " } else { b"250-" });
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    fn starttls_offered(&mut self) -> bool {
        self.state.world.security.starttls
            && self.state.world.identity.advertises("STARTTLS")
            && self.tls_fault() != Some(TlsFault::NotOffered)
    }

    fn auth_offered(&self) -> bool {
        let sec = &self.state.world.security;
        sec.smtp_auth != AuthMode::Off
            && self.state.world.identity.advertises("AUTH")
            && (self.tls || sec.plaintext_auth)
    }

    fn starttls(&mut self, out: &mut Vec<u8>) -> Action {
        if self.tls {
            reply(out, 554, "5.5.1", "Error: TLS already active");
            Action::Continue
        } else if !self.state.world.security.starttls
            || !self.state.world.identity.advertises("STARTTLS")
            || self.tls_fault() == Some(TlsFault::NotOffered)
        {
            reply(out, 502, "5.5.1", "Error: command not implemented");
            Action::Continue
        } else {
            reply(out, 220, "2.0.0", "Ready to start TLS");
            Action::StartTls
        }
    }

    fn mail(&mut self, from: &str, flags: u64, size: usize, out: &mut Vec<u8>) {
        if self.helo.is_none() {
            return reply(out, 503, "5.5.1", "Error: send HELO/EHLO first");
        }
        if self.tx.is_some() {
            return reply(out, 503, "5.5.1", "Error: nested MAIL command");
        }
        if self.state.world.security.smtp_auth == AuthMode::Required && self.auth_user.is_none() {
            self.journal_sender_refused(from, 530, "5.7.0", "Authentication required");
            return reply(out, 530, "5.7.0", "Authentication required");
        }
        let smtputf8 = flags & MAIL_SMTPUTF8 != 0;
        if !from.is_ascii() && !smtputf8 {
            return reply(
                out,
                553,
                "5.6.7",
                "Must declare SMTPUTF8 to send unicode address",
            );
        }
        if !from.is_empty() && Address::parse(from).is_err() {
            return reply(out, 501, "5.1.7", "Bad sender address syntax");
        }
        if size > self.state.world.limits.max_message_size {
            Metrics::add(&self.state.metrics.messages_rejected, 1);
            self.journal_sender_refused(from, 552, "5.3.4", "Message size exceeds fixed limit");
            return reply(out, 552, "5.3.4", "Message size exceeds fixed limit");
        }
        self.tx = Some(Transaction {
            mail_from: from.to_string(),
            smtputf8,
            size,
            rcpts: Vec::new(),
            routes: Vec::new(),
        });
        reply(out, 250, "2.1.0", "Ok");
    }

    fn rcpt(&mut self, to: &str, out: &mut Vec<u8>) {
        let Some(tx) = &self.tx else {
            return reply(out, 503, "5.5.1", "Error: need MAIL command");
        };
        if tx.rcpts.len() >= self.state.world.limits.max_recipients {
            return reply(out, 452, "4.5.3", "Error: too many recipients");
        }
        if !to.is_ascii() && !tx.smtputf8 {
            return reply(
                out,
                553,
                "5.6.7",
                "Must declare SMTPUTF8 to send unicode address",
            );
        }
        let Ok(addr) = Address::parse(to) else {
            return reply(out, 501, "5.1.3", "Bad recipient address syntax");
        };
        let decision = routing::resolve(&self.state.world, &addr);
        let first = match &decision {
            RouteDecision::Deliver(t) => t.first().copied(),
            _ => None,
        };
        let base = Facts {
            mailbox: first,
            domain: Some(addr.domain()),
            rcpt: Some(to),
            ..Facts::default()
        };
        let fired = self.faults(Stage::Rcpt, base, None);
        if self.apply_command_faults(&fired, out).is_some() {
            Metrics::add(&self.state.metrics.recipients_rejected, 1);
            Metrics::add(&self.state.metrics.rcpt_domain(to).recipients_rejected, 1);
            if fired.iter().any(|f| {
                matches!(
                    f.action,
                    Fault::Disconnect {
                        point: DisconnectPoint::InsteadOfReply
                    }
                )
            }) {
                self.close_after_reply = true;
            }
            return;
        }
        match decision {
            RouteDecision::Deliver(targets) if self.over_quota(&targets) => {
                // As Dovecot's LMTP/LDA say it for a full mailbox.
                let text =
                    format!("<{to}>: Recipient address rejected: Mailbox full (quota exceeded)");
                self.rcpt_rejected(to, 552, "5.2.2", &text, out);
            }
            RouteDecision::Deliver(targets) => {
                if let Some(tx) = &mut self.tx {
                    for t in targets {
                        if !tx.routes.iter().any(|(_, m)| *m == t) {
                            tx.routes.push((to.to_string(), t));
                        }
                    }
                    tx.rcpts.push(to.to_string());
                }
                Metrics::add(&self.state.metrics.rcpt_domain(to).recipients_accepted, 1);
                reply(out, 250, "2.1.5", "Ok");
            }
            RouteDecision::UnknownMailbox => {
                let text = format!("<{to}>: Recipient address rejected: User unknown");
                self.rcpt_rejected(to, 550, "5.1.1", &text, out);
            }
            RouteDecision::NotOurDomain => {
                let text = format!("<{to}>: Relay access denied");
                self.rcpt_rejected(to, 554, "5.7.1", &text, out);
            }
        }
    }

    /// Whether a target mailbox is at or over the scenario's quota (see
    /// [`mailrig_core::world::Limits::quota_full`]).
    fn over_quota(&self, targets: &[MailboxId]) -> bool {
        let limits = &self.state.world.limits;
        limits.has_quota()
            && targets
                .iter()
                .any(|t| limits.quota_full(self.state.store.mailbox(*t).usage()))
    }

    fn rcpt_rejected(&self, to: &str, code: u16, enh: &str, text: &str, out: &mut Vec<u8>) {
        Metrics::add(&self.state.metrics.recipients_rejected, 1);
        Metrics::add(&self.state.metrics.rcpt_domain(to).recipients_rejected, 1);
        if let Some(tx) = &self.tx {
            self.journal_reject(tx, Some(to), code, enh, text, Stage::Rcpt);
        }
        reply(out, code, enh, text);
    }

    /// A message refused at MAIL, before any recipient is known.
    fn journal_sender_refused(&self, from: &str, code: u16, enh: &str, text: &str) {
        self.state.journal.record(JournalRecord {
            stage: Stage::Mail,
            rule: None,
            message_id: None,
            mail_from: Some(from.into()),
            rcpt: None,
            peer: Some(self.peer_text.addr.clone()),
            event: JournalEvent::Rejected {
                code,
                enhanced: enh.into(),
                text: text.into(),
            },
        });
    }

    fn journal_reject(
        &self,
        tx: &Transaction,
        rcpt: Option<&str>,
        code: u16,
        enh: &str,
        text: &str,
        stage: Stage,
    ) {
        let rcpts: Vec<&str> = match rcpt {
            Some(r) => vec![r],
            None => tx.rcpts.iter().map(String::as_str).collect(),
        };
        for r in rcpts {
            self.state.journal.record(JournalRecord {
                stage,
                rule: None,
                message_id: None,
                mail_from: Some(tx.mail_from.as_str().into()),
                rcpt: Some(r.into()),
                peer: Some(self.peer_text.addr.clone()),
                event: JournalEvent::Rejected {
                    code,
                    enhanced: enh.into(),
                    text: text.into(),
                },
            });
        }
    }

    fn data_command(&mut self, out: &mut Vec<u8>) {
        match &self.tx {
            None => reply(out, 503, "5.5.1", "Error: need MAIL command"),
            Some(tx) if tx.routes.is_empty() => {
                reply(out, 554, "5.5.1", "Error: no valid recipients")
            }
            Some(tx) => {
                // Room for the trace headers in front of the content, as long
                // as they would be now (see `build_delivery`), and for the
                // content: what the client announced, or 16 KiB to start with.
                let mut queue_id = String::with_capacity(16);
                push_hex(&mut queue_id, QUEUE_IDS.load(Ordering::Relaxed));
                let with = self.with_word();
                let prefix = Trace {
                    mail_from: &tx.mail_from,
                    helo: self.helo.as_deref().unwrap_or("unknown"),
                    peer_ip: &self.peer_text.ip,
                    hostname: &self.state.world.identity.hostname,
                    with,
                    queue_id: &queue_id,
                    for_rcpt: match tx.rcpts.as_slice() {
                        [one] => Some(one),
                        _ => None,
                    },
                    date: self.dates.get(Utc::now()),
                }
                .encoded_len();
                let content = match tx.size {
                    0 => self.last_size.max(16 * 1024),
                    n => n,
                };
                // Room for a few bare LFs made CRLF, so no regrowth.
                let content = content.saturating_add(content / 64 + 64);
                let limits = &self.state.world.limits;
                let reject_lf = self.state.world.identity.bare_lf == BareLfPolicy::Reject;
                let hint = prefix.saturating_add(content.min(limits.max_message_size));
                self.mode = Mode::Data(Box::new(
                    DataReader::new(limits.max_message_size, reject_lf, hint)
                        .with_max_line(limits.max_line_length)
                        .with_prefix(prefix),
                ));
                reply(out, 354, "", "End data with <CR><LF>.<CR><LF>");
            }
        }
    }

    fn vrfy(&self, value: &str, out: &mut Vec<u8>) {
        match self.state.world.identity.vrfy {
            VrfyPolicy::Disabled => reply(out, 502, "5.5.1", "VRFY command is disabled"),
            VrfyPolicy::CannotVerify => reply(
                out,
                252,
                "2.0.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            VrfyPolicy::Verify => {
                let v = value.trim().trim_start_matches('<').trim_end_matches('>');
                match Address::parse(v).map(|a| routing::resolve(&self.state.world, &a)) {
                    Ok(RouteDecision::Deliver(_)) => reply(out, 250, "2.0.0", &format!("<{v}>")),
                    Ok(_) => reply(
                        out,
                        550,
                        "5.1.1",
                        &format!("<{v}>: Recipient address rejected: User unknown"),
                    ),
                    Err(_) => reply(out, 501, "5.1.3", "Bad recipient address syntax"),
                }
            }
        }
    }
}

impl driver::Session for Session {
    const READ_CHUNK: usize = 16 * 1024;

    fn greeting(&mut self, out: &mut Vec<u8>) -> Step {
        if matches!(Session::greeting(self, out), Action::Close) {
            self.after = Some(Step::Close);
        }
        Step::Continue
    }

    fn input(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Step {
        loop {
            // What the last command asked for, in the order it must happen:
            // the tarpit applies to the replies before a delay, the delay
            // comes before the delayed reply, storing or closing after both.
            if let Some(bps) = self.tarpit.take() {
                return Step::Tarpit(bps);
            }
            if let Some((mark, delay)) = self.delay.take() {
                return Step::Pause {
                    send_first: mark,
                    delay,
                };
            }
            if let Some(step) = self.after.take() {
                return step;
            }
            if input.is_empty() {
                return Step::Read;
            }
            if self.in_data() {
                if self.cut_in_data {
                    // Disconnect fault in the middle of DATA: drop everything.
                    return Step::Abort;
                }
                let (used, action) = self.data(input, out);
                input.advance(used);
                match action {
                    Action::Deliver(d) => {
                        self.pending = Some(d);
                        self.after = Some(Step::Blocking);
                    }
                    Action::Close => self.after = Some(Step::Close),
                    Action::Continue | Action::StartTls if used == 0 => return Step::Read,
                    Action::Continue | Action::StartTls => {}
                }
                continue;
            }
            let action = match self.lines.next(input) {
                None => return Step::Read,
                Some(Line::TooLong) => {
                    self.line_too_long(out);
                    Action::Continue
                }
                Some(Line::Complete(line)) => self.line(&line, out),
            };
            match action {
                Action::Continue | Action::Deliver(_) => {}
                Action::Close => self.after = Some(Step::Close),
                Action::StartTls => self.after = Some(Step::StartTls(self.tls_fault())),
            }
            if out.len() >= driver::OUTPUT_HIGH_WATER && self.after.is_none() {
                return Step::Write;
            }
        }
    }

    /// Stores the accepted message and answers it.
    fn run_blocking(&mut self, out: &mut Vec<u8>) -> Step {
        let Some(d) = self.pending.take() else {
            return Step::Continue;
        };
        let close = d.close;
        let result = store(&self.state, d.copies);
        if close == Some(true) {
            // Disconnect after end of data, before the reply.
            return Step::Close;
        }
        self.delivered(&d.queue_id, result, out);
        if close == Some(false) {
            return Step::Close;
        }
        Step::Continue
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

/// Stores the copies of one accepted message: now, or (late-delivery fault)
/// after their delay, from a task of their own.
fn store(state: &Arc<ServerState>, copies: Vec<PlannedCopy>) -> Result<usize, String> {
    let mut n = 0;
    for c in copies {
        if let Some(delay) = c.after {
            store_later(state, c, delay);
            continue;
        }
        let noted = crate::delivered::Delivery::of(&c.message);
        let uid = deliver_copy(state, c.mailbox, c.folder.as_deref(), c.message)
            .map_err(|e| e.to_string())?;
        count_delivered(state, c.mailbox);
        noted.record(state, c.mailbox, uid);
        n += 1;
    }
    Ok(n)
}

fn store_later(state: &Arc<ServerState>, copy: PlannedCopy, delay: std::time::Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::error!("a late delivery needs a tokio runtime; copy not stored");
        return;
    };
    let st = Arc::clone(state);
    runtime.spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {
                let st2 = Arc::clone(&st);
                let mailbox = copy.mailbox;
                let noted = crate::delivered::Delivery::of(&copy.message);
                let stored = tokio::task::spawn_blocking(move || {
                    deliver_copy(&st2, copy.mailbox, copy.folder.as_deref(), copy.message)
                })
                .await;
                if let Ok(Ok(uid)) = stored {
                    count_delivered(&st, mailbox);
                    noted.record(&st, mailbox, uid);
                } else {
                    tracing::error!("a late delivery could not be stored");
                }
            }
            _ = st.shutdown.cancelled() => {}
        }
    });
}

/// Stores one copy: into INBOX, or into the folder a misfile fault chose.
fn deliver_copy(
    state: &ServerState,
    mailbox: MailboxId,
    folder: Option<&str>,
    message: NewMessage,
) -> Result<u32, mailrig_core::store::StoreError> {
    match folder {
        Some(f) => state.store.deliver_into(mailbox, f, message),
        None => state.store.deliver(mailbox, message),
    }
}

/// Counts a stored copy for its mailbox's domain.
fn count_delivered(state: &ServerState, mailbox: MailboxId) {
    let address = &state.world.mailbox(mailbox).address;
    Metrics::add(&state.metrics.by_domain.get(address.domain()).delivered, 1);
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests;
