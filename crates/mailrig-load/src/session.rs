//! One SMTP session task: the I/O around the protocol logic of [`crate::client`].
//!
//! A session takes tickets from the shared [`Schedule`], opens a connection when it has none (connect, TLS,
//! greeting, EHLO, STARTTLS, AUTH), runs each message's [`Transaction`] over it, times every reply, and
//! records the outcome in the shared [`Tally`] once per message. Any failure that leaves the connection in
//! doubt drops it; the next message opens a fresh one.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::client::{self, Auth, AuthStep, Capabilities, Outcome, Step, Transaction};
use crate::config::LoadConfig;
use crate::errors::{ErrorKind, Failure};
use crate::message::MessageFactory;
use crate::pacing::{Schedule, Ticket};
use crate::reply::{Reply, parse_reply};
use crate::report::Tally;
use crate::stage::Stage;
use crate::tls::TlsSetup;

/// Live counters for the progress line (cheap atomics, separate from the tally's lock).
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub attempted: AtomicU64,
    pub accepted: AtomicU64,
    pub failed: AtomicU64,
}

/// Everything the sessions of a run share.
pub(crate) struct Shared {
    pub config: LoadConfig,
    pub addrs: Vec<SocketAddr>,
    pub tls: Option<TlsSetup>,
    pub schedule: Schedule,
    pub factory: MessageFactory,
    pub live: Arc<Live>,
    pub tally: Mutex<Tally>,
}

impl Shared {
    pub(crate) fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Timings and side counts gathered while one message is in flight, recorded under the lock once.
#[derive(Default)]
struct Pending {
    samples: Vec<(Stage, Duration)>,
    connections: u64,
    wire_bytes: u64,
    /// Content bytes of the message, set when it is accepted.
    message_bytes: u64,
}

/// A TCP connection opened before the run (to see that the target answers) and how long that took.
pub(crate) type Preconnected = (TcpStream, Duration);

/// Where a session connects: its address, and the pre-run connection to use first, if it got it.
struct Dial {
    addr: SocketAddr,
    first: Option<Preconnected>,
}

/// Runs one session until the schedule has no more tickets. `first` is used for its first connection.
pub(crate) async fn run_session(shared: Arc<Shared>, index: u32, first: Option<Preconnected>) {
    let mut conn: Option<Connection> = None;
    let mut on_conn = 0u64;
    let mut pending = Pending::default();
    let mut content = Vec::new();
    let mut cmd = Vec::new();
    let limit = shared.config.messages_per_connection;
    let mut dial = Dial {
        addr: shared.addrs[index as usize % shared.addrs.len()],
        first,
    };
    while let Some(ticket) = shared.schedule.next_ticket(Instant::now()) {
        if ticket.due > Instant::now() {
            tokio::time::sleep_until(ticket.due).await;
        }
        shared.live.attempted.fetch_add(1, Ordering::Relaxed);
        let result = send_one(
            &shared,
            &mut dial,
            &mut conn,
            ticket,
            &mut pending,
            &mut content,
            &mut cmd,
        )
        .await;
        let usable = record(&shared, ticket, result, &mut pending);
        if !usable {
            conn = None;
            on_conn = 0;
            continue;
        }
        on_conn += 1;
        if limit > 0 && on_conn >= limit {
            if let Some(c) = conn.take() {
                c.quit_in_background(shared.config.timeout);
            }
            on_conn = 0;
        }
    }
    if let Some(c) = conn.take() {
        c.quit_in_background(shared.config.timeout);
    }
}

/// Records one message's outcome; returns whether the connection is still usable.
fn record(
    shared: &Shared,
    ticket: Ticket,
    result: Result<Outcome, Failure>,
    pending: &mut Pending,
) -> bool {
    let k = shared.config.recipients_per_message;
    let mut tally = shared.tally();
    for (stage, d) in pending.samples.drain(..) {
        tally.latency.record(stage, d);
    }
    tally.counts.attempted += 1;
    tally.counts.connections += std::mem::take(&mut pending.connections);
    tally.counts.wire_bytes_sent += std::mem::take(&mut pending.wire_bytes);
    match result {
        Ok(Outcome::Accepted {
            refused_slots,
            refused_code,
        }) => {
            tally
                .latency
                .record(Stage::Message, ticket.latency(Instant::now()));
            tally.counts.accepted += 1;
            let refused = refused_slots.len() as u64;
            tally.counts.recipients_accepted += u64::from(k) - refused;
            tally.counts.recipients_refused += refused;
            if let Some(code) = refused_code {
                for _ in 0..refused {
                    tally.record_code(Stage::Rcpt, code);
                }
            }
            tally.counts.message_bytes += std::mem::take(&mut pending.message_bytes);
            tally.accepted.insert(ticket.seq, &refused_slots);
            if shared.config.record_accept_times {
                tally
                    .accept_times
                    .record(ticket.seq, Instant::now().into_std());
            }
            drop(tally);
            shared.live.accepted.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok(Outcome::Failed {
            stage,
            code,
            needs_rset: _,
        }) => {
            if stage == Stage::Rcpt {
                tally.counts.recipients_refused += u64::from(k);
            }
            let kind = ErrorKind::of_reply_code(code).unwrap_or(ErrorKind::Protocol);
            tally.record_failure(
                kind,
                Some((stage, code)),
                &format!("{stage} answered {code}"),
            );
            drop(tally);
            shared.live.failed.fetch_add(1, Ordering::Relaxed);
            // A failed RSET (sent inside send_one) came back as an Err; 421 means the server is closing.
            code != 421
        }
        Err(f) => {
            tally.record_failure(f.kind, f.code, &f.detail);
            drop(tally);
            shared.live.failed.fetch_add(1, Ordering::Relaxed);
            f.connection_usable
        }
    }
}

/// Sends one message, opening a connection first if needed.
async fn send_one(
    shared: &Shared,
    dial: &mut Dial,
    conn: &mut Option<Connection>,
    ticket: Ticket,
    pending: &mut Pending,
    content: &mut Vec<u8>,
    cmd: &mut Vec<u8>,
) -> Result<Outcome, Failure> {
    if conn.is_none() {
        *conn = Some(Connection::open(shared, dial.addr, dial.first.take(), pending).await?);
    }
    let Some(c) = conn.as_mut() else {
        return Err(Failure::protocol("no connection"));
    };
    let cfg = &shared.config;
    let k = cfg.recipients_per_message;
    let seq = ticket.seq;
    let rcpt = |slot: u32| cfg.recipients.recipient(seq, k, slot);
    shared.factory.write(seq, rcpt(0), content);
    let content_len = content.len();
    content.extend_from_slice(client::END_OF_DATA);
    let size = c.caps.size.is_some().then_some(content_len);
    let pipelined = cfg.pipelining && c.caps.pipelining;
    cmd.clear();
    let mut tx = Transaction::start(&cfg.from, k, rcpt, size, pipelined, cmd);
    let mut sent_at = c.write(cmd, pending).await?;
    loop {
        let stage = tx.stage();
        let code = c.read_reply(cfg.timeout, stage.as_str()).await?;
        let now = Instant::now();
        pending.samples.push((stage, now - sent_at));
        cmd.clear();
        match tx.on_reply(code, rcpt, cmd) {
            Step::Read => {}
            Step::Write => sent_at = c.write(cmd, pending).await?,
            Step::WriteContent => sent_at = c.write(content, pending).await?,
            Step::Done(outcome) => {
                if let Outcome::Failed {
                    needs_rset: true,
                    code,
                    ..
                } = outcome
                    && code != 421
                {
                    // Leave the connection clean for the next message; if that fails, drop it.
                    c.write(client::RSET, pending).await?;
                    let rset = c.read_reply(cfg.timeout, "RSET").await?;
                    if rset / 100 != 2 {
                        return Err(Failure::rejected(
                            Stage::Mail,
                            rset,
                            false,
                            format!("RSET answered {rset}"),
                        ));
                    }
                }
                if matches!(outcome, Outcome::Accepted { .. }) {
                    pending.message_bytes = content_len as u64;
                }
                return Ok(outcome);
            }
        }
    }
}

/// A TCP or TLS byte stream.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Between taking the TCP stream out for the TLS handshake and putting the TLS stream back.
    Upgrading,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Upgrading => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// An open, greeted (and possibly TLS-upgraded and authenticated) SMTP connection.
struct Connection {
    stream: Stream,
    caps: Capabilities,
    /// Received bytes; replies are parsed from `rbuf[rpos..]`.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Where the last reply sits in `rbuf`, for reading its text.
    last: (usize, usize),
}

impl Connection {
    async fn open(
        shared: &Shared,
        addr: SocketAddr,
        first: Option<Preconnected>,
        pending: &mut Pending,
    ) -> Result<Connection, Failure> {
        let cfg = &shared.config;
        let (tcp, took) = match first {
            Some(pre) => pre,
            None => {
                let t0 = Instant::now();
                match timeout(cfg.timeout, TcpStream::connect(addr)).await {
                    Err(_) => return Err(Failure::timeout("connect")),
                    Ok(Err(e)) => return Err(Failure::io(&e)),
                    Ok(Ok(s)) => (s, t0.elapsed()),
                }
            }
        };
        pending.samples.push((Stage::Connect, took));
        pending.connections += 1;
        // Each write is a whole command group; never let Nagle hold it back.
        let _ = tcp.set_nodelay(true);
        let mut c = Connection {
            stream: Stream::Plain(tcp),
            caps: Capabilities::default(),
            rbuf: Vec::with_capacity(4096),
            rpos: 0,
            last: (0, 0),
        };
        if cfg.target.implicit_tls {
            c.upgrade(shared, pending).await?;
        }
        let t = Instant::now();
        let code = c.read_reply(cfg.timeout, "the greeting").await?;
        pending.samples.push((Stage::Greeting, t.elapsed()));
        if code != 220 {
            return Err(Failure::rejected(
                Stage::Greeting,
                code,
                false,
                format!("greeting {code} {}", c.last_text()),
            ));
        }
        c.ehlo(shared, pending).await?;
        if cfg.starttls {
            if !c.caps.starttls {
                return Err(Failure::tls(
                    "--starttls was given but the server does not offer STARTTLS",
                ));
            }
            let t = c.write(client::STARTTLS, pending).await?;
            let code = c.read_reply(cfg.timeout, "STARTTLS").await?;
            pending.samples.push((Stage::StartTls, t.elapsed()));
            if code != 220 {
                return Err(Failure::rejected(
                    Stage::StartTls,
                    code,
                    false,
                    format!("STARTTLS answered {code} {}", c.last_text()),
                ));
            }
            if c.rpos < c.rbuf.len() {
                return Err(Failure::protocol(
                    "server sent data after its STARTTLS reply (response injection?)",
                ));
            }
            c.upgrade(shared, pending).await?;
            c.ehlo(shared, pending).await?;
        }
        if let Some(creds) = &cfg.auth {
            let mut out = Vec::new();
            let Some(mut auth) = Auth::start(&c.caps, creds, &mut out) else {
                return Err(Failure::protocol(
                    "--auth was given but the server offers neither AUTH PLAIN nor AUTH LOGIN",
                ));
            };
            let t = Instant::now();
            loop {
                c.write(&out, pending).await?;
                out.clear();
                let code = c.read_reply(cfg.timeout, "AUTH").await?;
                match auth.on_reply(code, creds, &mut out) {
                    AuthStep::Write => {}
                    AuthStep::Done => break,
                    AuthStep::Failed(code) => {
                        return Err(Failure::rejected(
                            Stage::Auth,
                            code,
                            false,
                            format!("AUTH answered {code} {}", c.last_text()),
                        ));
                    }
                }
            }
            pending.samples.push((Stage::Auth, t.elapsed()));
        }
        Ok(c)
    }

    async fn ehlo(&mut self, shared: &Shared, pending: &mut Pending) -> Result<(), Failure> {
        let cfg = &shared.config;
        let mut out = Vec::with_capacity(64);
        client::write_ehlo(&cfg.ehlo, &mut out);
        let t = self.write(&out, pending).await?;
        let code = self.read_reply(cfg.timeout, "EHLO").await?;
        pending.samples.push((Stage::Ehlo, t.elapsed()));
        if code == 250 {
            self.caps = Capabilities::from_ehlo(&self.last_reply()?);
            return Ok(());
        }
        if code / 100 == 5 && code != 554 {
            // An old server without ESMTP: HELO, no extensions.
            out.clear();
            client::write_helo(&cfg.ehlo, &mut out);
            self.write(&out, pending).await?;
            let code = self.read_reply(cfg.timeout, "HELO").await?;
            if code == 250 {
                self.caps = Capabilities::default();
                return Ok(());
            }
        }
        Err(Failure::rejected(
            Stage::Ehlo,
            code,
            false,
            format!("EHLO answered {code} {}", self.last_text()),
        ))
    }

    async fn upgrade(&mut self, shared: &Shared, pending: &mut Pending) -> Result<(), Failure> {
        let Some(tls) = &shared.tls else {
            return Err(Failure::tls("TLS requested but not configured"));
        };
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Err(Failure::protocol("TLS started twice on one connection"));
        };
        let t = Instant::now();
        let stream = match timeout(
            shared.config.timeout,
            tls.connector.connect(tls.server_name.clone(), tcp),
        )
        .await
        {
            Err(_) => return Err(Failure::timeout("the TLS handshake")),
            Ok(Err(e)) => {
                let mut f = Failure::io(&e);
                f.kind = ErrorKind::Tls;
                return Err(f);
            }
            Ok(Ok(s)) => s,
        };
        pending.samples.push((Stage::TlsHandshake, t.elapsed()));
        self.stream = Stream::Tls(Box::new(stream));
        Ok(())
    }

    /// Writes all of `bytes` and returns the moment the write completed (replies are timed from here).
    async fn write(&mut self, bytes: &[u8], pending: &mut Pending) -> Result<Instant, Failure> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| Failure::io(&e))?;
        if matches!(self.stream, Stream::Tls(_)) {
            self.stream.flush().await.map_err(|e| Failure::io(&e))?;
        }
        pending.wire_bytes += bytes.len() as u64;
        Ok(Instant::now())
    }

    /// Reads the next reply (from the buffer if already there) and returns its code.
    async fn read_reply(&mut self, limit: Duration, what: &str) -> Result<u16, Failure> {
        if let Some(code) = self.take_buffered()? {
            return Ok(code);
        }
        match timeout(limit, self.read_until_reply()).await {
            Err(_) => Err(Failure::timeout(what)),
            Ok(r) => r,
        }
    }

    async fn read_until_reply(&mut self) -> Result<u16, Failure> {
        loop {
            if self.rpos > 0 && self.rpos == self.rbuf.len() {
                self.rbuf.clear();
                self.rpos = 0;
            } else if self.rpos > 16 * 1024 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            self.rbuf.reserve(4096);
            let n = self
                .stream
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|e| Failure::io(&e))?;
            if n == 0 {
                return Err(Failure {
                    kind: ErrorKind::Reset,
                    code: None,
                    connection_usable: false,
                    detail: "the server closed the connection".into(),
                });
            }
            if let Some(code) = self.take_buffered()? {
                return Ok(code);
            }
        }
    }

    fn take_buffered(&mut self) -> Result<Option<u16>, Failure> {
        match parse_reply(&self.rbuf[self.rpos..]) {
            Ok(Some((reply, used))) => {
                let code = reply.code;
                self.last = (self.rpos, self.rpos + used);
                self.rpos += used;
                Ok(Some(code))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(Failure::protocol(e.to_string())),
        }
    }

    fn last_reply(&self) -> Result<Reply<'_>, Failure> {
        let (s, e) = self.last;
        match parse_reply(&self.rbuf[s..e]) {
            Ok(Some((reply, _))) => Ok(reply),
            _ => Err(Failure::protocol("lost the last reply")),
        }
    }

    fn last_text(&self) -> String {
        self.last_reply().map(|r| r.text()).unwrap_or_default()
    }

    /// Says QUIT and closes, without making the session wait for the goodbye.
    fn quit_in_background(mut self, limit: Duration) {
        tokio::spawn(async move {
            let _ = timeout(limit.min(Duration::from_secs(2)), async {
                if self.stream.write_all(client::QUIT).await.is_ok() {
                    let _ = self.stream.flush().await;
                    let mut buf = [0u8; 256];
                    let _ = self.stream.read(&mut buf).await;
                }
                let _ = self.stream.shutdown().await;
            })
            .await;
        });
    }
}
