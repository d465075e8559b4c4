//! The one session contract every protocol implements, and the one tokio
//! driver that runs it on a connection.
//!
//! # The contract
//!
//! A protocol session ([`Session`]) is a sans-I/O state machine: the driver
//! hands it the bytes read so far, it consumes what it can (it owns its
//! framing: command lines, IMAP literals, SMTP DATA), appends its replies to
//! an output buffer and answers with a [`Step`] saying what the connection must
//! do next. After every step except [`Step::Close`] and [`Step::Abort`] the
//! driver calls [`Session::input`] again (with the bytes still buffered and,
//! after [`Step::Read`], the new ones), so a session that stops in the middle of
//! a pipelined batch resumes where it stopped. The only ways a session acts on
//! the world outside its own state are the steps:
//!
//! | step | the driver |
//! |---|---|
//! | [`Step::Read`] | writes pending output, then waits for more input |
//! | [`Step::Watch`] | the same, but also wakes the session ([`Session::woken`]) when the event fires (IMAP IDLE) |
//! | [`Step::Lend`] | the same as `Watch`, and meanwhile lends a plain-TCP socket to the [`Borrower`] (IMAP IDLE's direct fan-out; not a TLS one, nor while tarpitted) |
//! | [`Step::Continue`] | calls `input` again at once (nothing to write yet) |
//! | [`Step::Write`] | writes pending output, then calls `input` before reading (back-pressure: the session stops at [`OUTPUT_HIGH_WATER`]) |
//! | [`Step::Pause`] | writes the output before the delayed reply, waits, then resumes (delay faults) |
//! | [`Step::Tarpit`] | from now on writes at most so many bytes per second |
//! | [`Step::StartTls`] | writes pending output, drops buffered input, runs the handshake with the TLS fault given, then [`Session::tls_started`] |
//! | [`Step::Blocking`] | runs [`Session::run_blocking`] (the session's pending store effect) on the blocking pool when the store is a Maildir, inline for the memory store |
//! | [`Step::Close`] | writes pending output and closes |
//! | [`Step::Abort`] | closes without writing what is pending (disconnect faults) |
//!
//! # The driver
//!
//! [`run`] owns the stream and carries the steps out, the same way for SMTP,
//! IMAP and POP3: every state has a deadline (a read waits at most
//! [`Session::read_timeout`], a write that makes no progress and a TLS
//! handshake at most the idle timeout), the server's shutdown ends every wait
//! with the session's last words ([`Session::shutting_down`]), and a TLS fault
//! applies to STARTTLS/STLS as it does to implicit TLS. One idle timer and
//! one shutdown waiter serve a whole connection (re-armed only when they fire),
//! and the buffers are reused, so the driver adds no allocation or system call
//! per command.

pub mod lines;
#[cfg(test)]
pub mod script;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use event_listener::EventListener;
use mailrig_core::fault::TlsFault;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

use crate::net::{Lent, Stream};
use crate::state::ServerState;

/// A session stops handling input once this much output is pending and
/// returns [`Step::Write`]: output is written as it is produced, never built
/// up for a whole pipelined read.
pub const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// Longest TLS handshake allowed (the idle timeout, if that is shorter).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the last words (timeout, shutdown) may take to write.
const LAST_WORDS_TIMEOUT: Duration = Duration::from_secs(1);

/// Someone outside the session that may write to its plain-TCP socket while
/// the session waits ([`Step::Lend`]): IMAP IDLE's fan-out, which writes
/// `* n EXISTS` to thousands of idling sessions without waking each one
/// (`imap::idlers`). The driver lends the socket after it has written all
/// pending output and reclaims it as soon as the wait ends, before it gives
/// the session its input or writes or closes anything; a TLS connection is
/// never lent (its bytes must go through the TLS session).
pub trait Borrower: Send + Sync + std::fmt::Debug {
    /// The socket is the borrower's to write to until [`Borrower::reclaim`].
    fn lend(&self, socket: Lent);
    /// The driver takes the socket back: the borrower returns it, with the
    /// bytes of a line it could only partly write (the driver writes them
    /// before anything else).
    fn reclaim(&self) -> Reclaimed;
}

/// What a [`Borrower`] gives back.
#[derive(Debug, Default)]
pub struct Reclaimed {
    pub socket: Option<Lent>,
    pub residue: Vec<u8>,
}

/// What the connection must do next; see the module documentation.
#[derive(Debug)]
pub enum Step {
    /// Write pending output, then read more input.
    Read,
    /// Read more input, or wake the session when this event fires first.
    Watch(EventListener),
    /// As [`Step::Watch`], lending a plain-TCP socket to the borrower
    /// while waiting.
    Lend(EventListener, Arc<dyn Borrower>),
    /// Call [`Session::input`] again right away.
    Continue,
    /// Write pending output, then call [`Session::input`] again before reading.
    Write,
    /// Write the first `send_first` bytes of pending output, wait `delay`,
    /// then resume (the rest is written with what follows).
    Pause { send_first: usize, delay: Duration },
    /// Write at most this many bytes per second from now on.
    Tarpit(u64),
    /// Write pending output, discard buffered input, run the TLS handshake
    /// (under this TLS fault), then call [`Session::tls_started`].
    StartTls(Option<TlsFault>),
    /// Run [`Session::run_blocking`] where blocking is allowed, then resume.
    Blocking,
    /// Write pending output, then close.
    Close,
    /// Close at once; pending output is dropped.
    Abort,
}

/// One protocol's session, as the driver sees it.
pub trait Session: Send + 'static {
    /// Bytes reserved for each read.
    const READ_CHUNK: usize;

    /// Starts the conversation (the greeting).
    fn greeting(&mut self, out: &mut Vec<u8>) -> Step;

    /// Consumes what it can of `input`, appending replies to `out`.
    fn input(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Step;

    /// Carries out the store effect that made the session return
    /// [`Step::Blocking`]; may block (Maildir writes, fsync).
    fn run_blocking(&mut self, out: &mut Vec<u8>) -> Step {
        let _ = out;
        Step::Continue
    }

    /// The event of a [`Step::Watch`] fired.
    fn woken(&mut self, out: &mut Vec<u8>) -> Step {
        let _ = out;
        Step::Continue
    }

    /// The TLS handshake succeeded: forget what was said in plain text.
    fn tls_started(&mut self);

    /// How long to wait for input now (`idle` is the world's idle timeout).
    fn read_timeout(&self, idle: Duration) -> Duration {
        idle
    }

    /// Last words when the client was silent too long.
    fn timed_out(&mut self, out: &mut Vec<u8>);

    /// Last words when the server shuts down.
    fn shutting_down(&mut self, out: &mut Vec<u8>);
}

/// The TLS fault of one connection, decided at the first question (so a
/// rule fires once per connection, whether EHLO, CAPABILITY or STARTTLS asks).
#[derive(Debug, Default)]
pub struct TlsFaultOnce(std::sync::OnceLock<Option<TlsFault>>);

impl TlsFaultOnce {
    /// Already decided (implicit TLS: the listener asked).
    pub fn decided(fault: Option<TlsFault>) -> TlsFaultOnce {
        let cell = std::sync::OnceLock::new();
        let _ = cell.set(fault);
        TlsFaultOnce(cell)
    }

    pub fn get(&self, state: &ServerState, peer: Option<std::net::SocketAddr>) -> Option<TlsFault> {
        *self.0.get_or_init(|| peer.and_then(|p| state.tls_fault(p)))
    }
}

/// Why the connection ended early.
enum End {
    /// Gone, or a write failed.
    Closed,
    /// No progress within the deadline.
    TimedOut,
    Shutdown,
}

/// The stream with its one deadline timer.
struct Io {
    stream: Stream,
    idle: Duration,
    /// When the connection last made progress.
    last: Instant,
    timer: Pin<Box<Sleep>>,
    tarpit: Option<u64>,
    shutdown: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    /// Bytes to reserve for the next read: the session's chunk, doubled
    /// (up to [`MAX_READ_CHUNK`]) while reads fill all the room they get, as
    /// a large message body streams in; back to the session's chunk when a
    /// read comes up short. Fewer, larger reads for a 1 MiB body, and idle
    /// sessions keep their small buffer.
    chunk: usize,
}

/// The most [`Io::chunk`] grows to.
pub const MAX_READ_CHUNK: usize = 256 * 1024;

impl Io {
    /// Arms the timer for a wait of at most `limit` since the last progress.
    /// A later deadline is left to [`Io::expired`], so the timer is re-armed
    /// only when it fires or a shorter limit begins, not at every read.
    fn arm(&mut self, limit: Duration) {
        let deadline = self.last + limit;
        if deadline < self.timer.deadline() {
            self.timer.as_mut().reset(deadline);
        }
    }

    /// The timer fired: true when `limit` really passed since the last progress.
    fn expired(&mut self, limit: Duration) -> bool {
        let deadline = self.last + limit;
        if Instant::now() >= deadline {
            return true;
        }
        self.timer.as_mut().reset(deadline);
        false
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), End> {
        if let Some(bps) = self.tarpit {
            return self.write_slowly(bytes, bps).await;
        }
        let idle = self.idle;
        self.arm(idle);
        while !bytes.is_empty() {
            tokio::select! {
                biased;
                w = self.stream.write(bytes) => match w {
                    Ok(0) | Err(_) => return Err(End::Closed),
                    Ok(n) => {
                        bytes = &bytes[n..];
                        self.last = Instant::now();
                    }
                },
                _ = &mut self.timer => if self.expired(idle) { return Err(End::TimedOut) },
                _ = &mut self.shutdown => return Err(End::Shutdown),
            }
        }
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), End> {
        if !self.stream.is_tls() {
            return Ok(());
        }
        let idle = self.idle;
        loop {
            tokio::select! {
                biased;
                f = self.stream.flush() => return f.map_err(|_| End::Closed),
                _ = &mut self.timer => if self.expired(idle) { return Err(End::TimedOut) },
                _ = &mut self.shutdown => return Err(End::Shutdown),
            }
        }
    }

    /// Tarpit: chunks of at most a tenth of a second's worth, then a pause.
    async fn write_slowly(&mut self, bytes: &[u8], bps: u64) -> Result<(), End> {
        let chunk = (bps / 10).max(1) as usize;
        for part in bytes.chunks(chunk) {
            self.tarpit = None;
            let written = Box::pin(self.write_all(part)).await;
            self.tarpit = Some(bps);
            written?;
            let secs = part.len() as f64 / bps as f64;
            self.pause(Duration::from_secs_f64(secs)).await?;
            self.last = Instant::now();
        }
        Ok(())
    }

    async fn pause(&mut self, d: Duration) -> Result<(), End> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = &mut self.shutdown => Err(End::Shutdown),
        }
    }

    /// Reads more input; `Ok(false)` means the watched event fired first.
    async fn read(
        &mut self,
        inbuf: &mut BytesMut,
        limit: Duration,
        watch: Option<&mut EventListener>,
    ) -> Result<bool, End> {
        self.arm(limit);
        let mut watch = watch;
        loop {
            let woken = async {
                match watch.as_deref_mut() {
                    Some(l) => Pin::new(l).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                r = self.stream.read_buf(inbuf) => match r {
                    Ok(0) | Err(_) => return Err(End::Closed),
                    Ok(_) => {
                        self.last = Instant::now();
                        return Ok(true);
                    }
                },
                _ = woken => return Ok(false),
                _ = &mut self.timer => if self.expired(limit) { return Err(End::TimedOut) },
                _ = &mut self.shutdown => return Err(End::Shutdown),
            }
        }
    }

    /// Upgrades to TLS; false if the handshake failed, timed out or the
    /// server shut down.
    async fn start_tls(&mut self, config: Arc<rustls::ServerConfig>) -> bool {
        let plain = std::mem::replace(&mut self.stream, Stream::Closed);
        let limit = self.idle.min(HANDSHAKE_TIMEOUT);
        self.last = Instant::now();
        self.arm(limit);
        let handshake = plain.upgrade(config);
        tokio::pin!(handshake);
        loop {
            tokio::select! {
                biased;
                r = &mut handshake => match r {
                    Ok(s) => {
                        self.stream = s;
                        self.last = Instant::now();
                        return true;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return false;
                    }
                },
                _ = &mut self.timer => if self.expired(limit) { return false },
                _ = &mut self.shutdown => return false,
            }
        }
    }

    /// Writes last words without waiting long, then closes.
    async fn last_words(&mut self, out: &[u8]) {
        let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, self.stream.write_all(out)).await;
        let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, self.stream.flush()).await;
    }
}

/// Runs `session` on `stream` to the end of the connection.
pub async fn run<S: Session>(mut session: S, stream: Stream, state: &Arc<ServerState>) {
    let idle = state.world.limits.idle_timeout;
    // A child token: polling a clone of the server's token locks the one
    // tree node all sessions share, which 10,000 sessions woken at once by an
    // IDLE fan-out contend for; a child's node is this connection's own.
    let shutdown = Box::pin(state.shutdown.child_token().cancelled_owned());
    let now = Instant::now();
    let mut io = Io {
        stream,
        idle,
        last: now,
        timer: Box::pin(tokio::time::sleep_until(now + idle)),
        tarpit: None,
        shutdown,
        chunk: S::READ_CHUNK,
    };
    let blocking_pool = state.store.maildir_root().is_some();
    let mut inbuf = BytesMut::with_capacity(S::READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut step = session.greeting(&mut out);
    let end = loop {
        step = match step {
            Step::Continue => session.input(&mut inbuf, &mut out),
            Step::Read => {
                match read(&mut io, &mut session, &mut inbuf, &mut out, None, None).await {
                    Ok(step) => step,
                    Err(e) => break Some(e),
                }
            }
            Step::Watch(mut l) => {
                match read(
                    &mut io,
                    &mut session,
                    &mut inbuf,
                    &mut out,
                    Some(&mut l),
                    None,
                )
                .await
                {
                    Ok(step) => step,
                    Err(e) => break Some(e),
                }
            }
            Step::Lend(mut l, borrower) => {
                let r = read(
                    &mut io,
                    &mut session,
                    &mut inbuf,
                    &mut out,
                    Some(&mut l),
                    Some(&*borrower),
                )
                .await;
                match r {
                    Ok(step) => step,
                    Err(e) => break Some(e),
                }
            }
            Step::Write => {
                if let Err(e) = write(&mut io, &mut out).await {
                    break Some(e);
                }
                session.input(&mut inbuf, &mut out)
            }
            Step::Pause { send_first, delay } => {
                let first = send_first.min(out.len());
                if let Err(e) = io.write_all(&out[..first]).await {
                    break Some(e);
                }
                out.drain(..first);
                if let Err(e) = io.pause(delay).await {
                    break Some(e);
                }
                session.input(&mut inbuf, &mut out)
            }
            Step::Tarpit(bps) => {
                io.tarpit = Some(bps.max(1));
                session.input(&mut inbuf, &mut out)
            }
            Step::StartTls(fault) => {
                if let Err(e) = write(&mut io, &mut out).await {
                    break Some(e);
                }
                // Anything pipelined after STARTTLS/STLS is dropped
                // (RFC 3207 §4.2, RFC 3501 §6.2.1, RFC 2595 §4).
                inbuf.clear();
                // A handshake-fails fault drops the connection mid-negotiation.
                let Some(config) = state.tls_config(fault) else {
                    break None;
                };
                if !io.start_tls(config).await {
                    break None;
                }
                session.tls_started();
                Step::Read
            }
            Step::Blocking => {
                if blocking_pool {
                    let mut buf = std::mem::take(&mut out);
                    let done = tokio::task::spawn_blocking(move || {
                        let step = session.run_blocking(&mut buf);
                        (session, buf, step)
                    })
                    .await;
                    match done {
                        Ok((s, buf, step)) => {
                            session = s;
                            out = buf;
                            step
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "a store effect failed");
                            let _ = io.stream.shutdown().await;
                            return;
                        }
                    }
                } else {
                    session.run_blocking(&mut out)
                }
            }
            Step::Close => {
                let _ = write(&mut io, &mut out).await;
                break None;
            }
            Step::Abort => break None,
        };
    };
    // What is still in `out` goes first: the rest of a line a borrower
    // could only partly write, or output a pause left.
    match end {
        Some(End::TimedOut) => {
            session.timed_out(&mut out);
            io.last_words(&out).await;
        }
        Some(End::Shutdown) => {
            session.shutting_down(&mut out);
            io.last_words(&out).await;
        }
        Some(End::Closed) | None => {}
    }
    let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, io.stream.shutdown()).await;
}

/// Writes pending output, reads (lending the socket to `borrower` while it
/// waits), and hands the new input to the session.
async fn read<S: Session>(
    io: &mut Io,
    session: &mut S,
    inbuf: &mut BytesMut,
    out: &mut Vec<u8>,
    watch: Option<&mut EventListener>,
    borrower: Option<&dyn Borrower>,
) -> Result<Step, End> {
    write(io, out).await?;
    if inbuf.capacity() - inbuf.len() < 4096 {
        inbuf.reserve(io.chunk);
    }
    let limit = session.read_timeout(io.idle);
    let mut lending = Lending(None);
    // Not while tarpitted: every byte must go through the slow writer.
    if let (Some(b), Stream::Plain(tcp), None) = (borrower, &io.stream, io.tarpit) {
        b.lend(Lent::of(tcp));
        lending.0 = Some(b);
    }
    let read = io.read(inbuf, limit, watch).await;
    if let Some(b) = lending.0.take() {
        // Back before anything else happens on the connection; the socket
        // must not outlive the wait (see `Lent::try_write`).
        let back = b.reclaim();
        debug_assert!(back.socket.is_some(), "a borrower kept the socket");
        out.extend_from_slice(&back.residue);
    }
    Ok(match read? {
        true => {
            io.chunk = if inbuf.len() == inbuf.capacity() {
                (io.chunk * 2).min(MAX_READ_CHUNK)
            } else {
                S::READ_CHUNK
            };
            session.input(inbuf, out)
        }
        false => session.woken(out),
    })
}

/// A socket lent for one wait: taken back when the wait ends, or when the
/// connection's task is dropped in the middle of it (a runtime shutting
/// down), before the stream and its descriptor go.
struct Lending<'a>(Option<&'a dyn Borrower>);

impl Drop for Lending<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            b.reclaim();
        }
    }
}

/// Writes and clears `out`, giving back the memory of a big response.
async fn write(io: &mut Io, out: &mut Vec<u8>) -> Result<(), End> {
    if out.is_empty() {
        return Ok(());
    }
    let r = io.write_all(out).await;
    out.clear();
    if out.capacity() > 4 * OUTPUT_HIGH_WATER {
        out.shrink_to(OUTPUT_HIGH_WATER);
    }
    r
}

#[cfg(test)]
mod lend_tests {
    //! The lending contract of [`Step::Lend`], on a real connection: lent
    //! only after pending output is written, reclaimed before the session
    //! gets its input and before the connection closes; never while
    //! tarpitted.

    use super::*;
    use parking_lot::Mutex;

    #[derive(Debug, Default)]
    struct Recorder {
        events: Mutex<Vec<String>>,
        socket: Mutex<Option<Lent>>,
    }

    impl Borrower for Recorder {
        fn lend(&self, socket: Lent) {
            // Pending output was written before: the peer can already read it.
            self.events.lock().push("lent".into());
            let _ = socket.try_write(b"direct\r\n");
            *self.socket.lock() = Some(socket);
        }

        fn reclaim(&self) -> Reclaimed {
            self.events.lock().push("reclaimed".into());
            Reclaimed {
                socket: self.socket.lock().take(),
                residue: b"rest\r\n".to_vec(),
            }
        }
    }

    /// Greets, lends while waiting for one line, then closes.
    struct Lender {
        borrower: Arc<Recorder>,
        event: event_listener::Event,
        tarpit: bool,
        tarpitted: bool,
    }

    impl Session for Lender {
        const READ_CHUNK: usize = 1024;

        fn greeting(&mut self, out: &mut Vec<u8>) -> Step {
            out.extend_from_slice(b"hello\r\n");
            Step::Continue
        }

        fn input(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Step {
            if self.tarpit && !self.tarpitted {
                self.tarpitted = true;
                return Step::Tarpit(1_000_000);
            }
            if input.is_empty() {
                return Step::Lend(self.event.listen(), self.borrower.clone());
            }
            let lent = self.borrower.socket.lock().is_some();
            self.borrower
                .events
                .lock()
                .push(format!("input, still lent: {lent}"));
            input.clear();
            out.extend_from_slice(b"bye\r\n");
            Step::Close
        }

        fn tls_started(&mut self) {}
        fn timed_out(&mut self, _: &mut Vec<u8>) {}
        fn shutting_down(&mut self, _: &mut Vec<u8>) {}
    }

    async fn exchange(tarpit: bool) -> (String, Vec<String>) {
        let state = script::state("[[domain]]\nname='d.test'\nmailboxes=['a']\npassword='p'\n");
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = l.accept().await.unwrap();
        let borrower = Arc::new(Recorder::default());
        let session = Lender {
            borrower: Arc::clone(&borrower),
            event: event_listener::Event::new(),
            tarpit,
            tarpitted: false,
        };
        let run = tokio::spawn(async move { run(session, Stream::Plain(server), &state).await });
        let mut seen = Vec::new();
        // Reads until `text` came; panics if the connection closes first.
        async fn until(client: &mut tokio::net::TcpStream, seen: &mut Vec<u8>, text: &str) {
            let mut buf = [0u8; 64];
            while !String::from_utf8_lossy(seen).contains(text) {
                let n = client.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "closed before {text:?}: {:?}",
                    String::from_utf8_lossy(seen)
                );
                seen.extend_from_slice(&buf[..n]);
            }
        }
        until(&mut client, &mut seen, "hello\r\n").await;
        if !tarpit {
            until(&mut client, &mut seen, "direct\r\n").await;
        }
        client.write_all(b"x\r\n").await.unwrap();
        client.read_to_end(&mut seen).await.unwrap();
        run.await.unwrap();
        let events = borrower.events.lock().clone();
        (String::from_utf8_lossy(&seen).into_owned(), events)
    }

    #[tokio::test]
    async fn a_socket_is_lent_after_the_output_and_back_before_the_input() {
        let (seen, events) = exchange(false).await;
        assert_eq!(seen, "hello\r\ndirect\r\nrest\r\nbye\r\n");
        assert_eq!(events, ["lent", "reclaimed", "input, still lent: false"]);
    }

    #[tokio::test]
    async fn a_tarpitted_connection_is_not_lent() {
        let (seen, events) = exchange(true).await;
        assert_eq!(seen, "hello\r\nbye\r\n");
        assert_eq!(events, ["input, still lent: false"]);
    }
}
