//! IDLE notification delay, as a user of the fake server sees it: SESSIONS
//! IMAP sessions (default 100) idle on one mailbox; a client delivers messages
//! over SMTP one at a time; for every delivery and every session we record the
//! time from the `250` to that session's `* n EXISTS` (zero when the EXISTS
//! arrived first), two ways:
//!
//! - **on the wire**: the kernel's receive time of the `250` and of each
//!   `EXISTS` (`SO_TIMESTAMPNS`), which is when the server's bytes reached the
//!   client's socket: the server's delay, whatever the client does;
//! - **as read**: when this program's task for that session read the line,
//!   which adds the time one client thread needs to get round to 10,000
//!   sockets.
//!
//! Prints median, p99 and max of each.
//!
//! ```text
//! cargo run --release -p mailrig-benches --example idle_latency [-- DELIVERIES [SESSIONS] [--client-threads N] [--floor | --floor-tokio | --floor-uring] [--per-delivery]]
//! ```
//!
//! `--floor-uring` is the write-only floor with its sends submitted to
//! io_uring in batches (what batching the system calls could save).
//!
//! `--per-delivery` also prints, for each delivery, when the first and the
//! last `EXISTS` reached their sockets.
//!
//! `--floor` measures the same clients against a server that does nothing but
//! the fan-out: two threads that write `* n EXISTS` to every socket right
//! after the `250`. That is what the kernel and these clients cost on this
//! machine, the lower bound any IMAP server can reach here. `--floor-tokio`
//! is the same with the cost of a task per session and no IMAP: one tokio
//! task per session on a worker per core, each waiting on an
//! `event_listener::Event` and writing its line when woken (the design
//! mailrig had before its direct fan-out, `imap/idlers.rs`).
//!
//! The server runs in a child process (this program again, with `--server`),
//! so that clients and server each need one file descriptor per session
//! (10,000 sessions fit a limit of 20,000) and do not share worker threads.

use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mailrig_core::Scenario;
use mailrig_server::MockServer;
use std::os::fd::AsRawFd as _;
use std::time::SystemTime;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const WORLD: &str = "[limits]\nmax_connections = 100000\n[[domain]]\nname='bench.test'\npassword='secret'\nmailboxes=['u001']\n";

/// The server process: prints its IMAP and SMTP addresses, serves until
/// standard input closes.
async fn serve() {
    let server = MockServer::builder()
        .scenario(Scenario::parse(WORLD, "idle").unwrap())
        .start()
        .await
        .unwrap();
    tell_addresses(server.imap_addr(), server.smtp_addr());
    tokio::task::spawn_blocking(until_stdin_closes)
        .await
        .unwrap();
    server.shutdown().await;
}

/// Which server the clients measure; each runs in a child process started
/// with its `flag`.
#[derive(Clone, Copy)]
enum Server {
    Mailrig,
    /// Writes `* n EXISTS` to every socket from two threads, nothing else.
    Floor,
    /// A tokio task per session woken by an `Event`, no IMAP.
    FloorTokio,
    /// The write-only floor with io_uring batches of sends.
    FloorUring,
}

impl Server {
    fn flag(self) -> &'static str {
        match self {
            Server::Mailrig => "--server",
            Server::Floor => "--floor-server",
            Server::FloorTokio => "--floor-tokio-server",
            Server::FloorUring => "--floor-uring-server",
        }
    }

    /// What the figures are prefixed with.
    fn label(self) -> &'static str {
        match self {
            Server::Mailrig => "",
            Server::Floor => "floor (write-only server): ",
            Server::FloorTokio => "tokio floor (a task per session, no IMAP): ",
            Server::FloorUring => "io_uring floor (batched sends, write-only): ",
        }
    }
}

/// The child's first line: its IMAP and SMTP addresses.
fn tell_addresses(imap: std::net::SocketAddr, smtp: std::net::SocketAddr) {
    println!("{imap} {smtp}");
    std::io::stdout().flush().unwrap();
}

/// A child serves until the measuring parent closes its standard input.
fn until_stdin_closes() {
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The server gets a worker per core, as `mailrig serve` does; the clients
/// one thread, so that measuring takes as little of the shared cores as it
/// can (`--client-threads N` to change it).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--server") => return multi_thread_runtime().block_on(serve()),
        Some("--floor-server") => return floor::serve(),
        Some("--floor-uring-server") => return floor::serve_uring(),
        Some("--floor-tokio-server") => {
            return multi_thread_runtime().block_on(floor::serve_tokio());
        }
        _ => {}
    }
    let mut server = Server::Mailrig;
    let mut per_delivery = false;
    let threads = args
        .iter()
        .position(|a| a == "--client-threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1);
    let mut positional = Vec::new();
    let mut rest = args.into_iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--client-threads" => {
                rest.next();
            }
            "--floor" => server = Server::Floor,
            "--floor-tokio" => server = Server::FloorTokio,
            "--floor-uring" => server = Server::FloorUring,
            "--per-delivery" => per_delivery = true,
            _ if a.starts_with("--") => {}
            _ => positional.push(a),
        }
    }
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    }
    .enable_all()
    .build()
    .unwrap();
    rt.block_on(clients(positional, server, per_delivery));
}

/// CPU time process `pid` has used so far, threads that ended included
/// (utime + stime of `/proc/PID/stat`), in nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks * 1_000_000_000 / hz
}

/// A line-reading TCP client that knows when each line reached its socket.
struct Stamped {
    stream: TcpStream,
    pending: Vec<u8>,
    /// Kernel receive time of the data that completed the buffered lines
    /// (none for data queued before `SO_TIMESTAMPNS` was set, such as a
    /// greeting that beat the `setsockopt`).
    at: Option<SystemTime>,
}

impl Stamped {
    fn new(stream: TcpStream) -> Stamped {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket, a c_int option value of the right size.
        let rc = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
        stream.set_nodelay(true).unwrap();
        Stamped {
            stream,
            pending: Vec::new(),
            at: None,
        }
    }

    /// The next line (without CRLF), with the kernel receive time of the
    /// segment that completed it; `None` at end of stream.
    async fn line(&mut self) -> Option<(String, Option<SystemTime>)> {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..i]).into_owned();
                self.pending.drain(..i + 2);
                return Some((line, self.at));
            }
            let mut buf = [0u8; 4096];
            let got = loop {
                if self.stream.readable().await.is_err() {
                    return None;
                }
                let fd = self.stream.as_raw_fd();
                match self
                    .stream
                    .try_io(Interest::READABLE, || recv_stamped(fd, &mut buf))
                {
                    Ok(got) => break got,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return None,
                }
            };
            let (n, at) = got;
            if n == 0 {
                return None;
            }
            self.pending.extend_from_slice(&buf[..n]);
            self.at = at;
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }
}

/// `recvmsg` with room for one `SCM_TIMESTAMPNS` control message.
fn recv_stamped(fd: i32, buf: &mut [u8]) -> std::io::Result<(usize, Option<SystemTime>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64s keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    // SAFETY: an all-zero msghdr is valid; its pointers are set below to
    // buffers that outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: fd is an open socket; msg points at live buffers.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut at = None;
    // SAFETY: walking the control messages the kernel wrote into `control`,
    // with the libc macros made for it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                at = Some(
                    SystemTime::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
                );
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, at))
}

async fn clients(args: Vec<String>, server: Server, per_delivery: bool) {
    let deliveries: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let sessions: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg(server.flag())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut addrs = line
        .split_whitespace()
        .map(|a| a.parse::<std::net::SocketAddr>().unwrap());
    let (imap_addr, smtp_addr) = (addrs.next().unwrap(), addrs.next().unwrap());
    // (when the task read it, when it reached the socket)
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, SystemTime)>();
    for _ in 0..sessions {
        let mut s = Stamped::new(TcpStream::connect(imap_addr).await.unwrap());
        s.line().await.unwrap();
        s.send(b"a LOGIN u001@bench.test secret\r\nb SELECT INBOX\r\nc IDLE\r\n")
            .await;
        while !s.line().await.unwrap().0.starts_with('+') {}
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some((l, at)) = s.line().await {
                if l.ends_with("EXISTS") {
                    let at = at.expect("the kernel gave no SO_TIMESTAMPNS time for an EXISTS");
                    let _ = tx.send((Instant::now(), at));
                }
            }
        });
    }
    let mut smtp = Stamped::new(TcpStream::connect(smtp_addr).await.unwrap());
    smtp.line().await.unwrap();
    smtp.send(b"HELO bench\r\n").await;
    smtp.line().await.unwrap();
    let mut wire = Histogram::<u64>::new(3).unwrap();
    let mut read = Histogram::<u64>::new(3).unwrap();
    let cpu_before = cpu_ns(child.id());
    for _ in 0..deliveries {
        smtp.send(b"MAIL FROM:<s@extern.test>\r\nRCPT TO:<u001@bench.test>\r\nDATA\r\n")
            .await;
        for _ in 0..3 {
            smtp.line().await.unwrap();
        }
        smtp.send(b"Subject: idle\r\n\r\nx\r\n.\r\n").await;
        let (l, wire250) = smtp.line().await.unwrap();
        let read250 = Instant::now();
        assert!(l.starts_with("250"), "{l}");
        let wire250 = wire250.expect("the kernel gave no SO_TIMESTAMPNS time for the 250");
        let mut worst = Duration::ZERO;
        let mut first = Duration::MAX;
        for _ in 0..sessions {
            let (t, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            let on_wire = at.duration_since(wire250).unwrap_or_default();
            worst = worst.max(on_wire);
            first = first.min(on_wire);
            wire.record(on_wire.as_micros() as u64).unwrap();
            read.record(t.saturating_duration_since(read250).as_micros() as u64)
                .unwrap();
        }
        if per_delivery {
            eprintln!(
                "delivery {}: EXISTS on the wire from {} to {} µs after the 250",
                wire.len() / sessions as u64,
                first.as_micros(),
                worst.as_micros()
            );
        }
    }
    let server_cpu = cpu_ns(child.id()).saturating_sub(cpu_before);
    println!(
        "{}server CPU per session told: {:.2} µs ({} ms for {deliveries} deliveries to {sessions} sessions, SMTP included)",
        server.label(),
        server_cpu as f64 / 1000.0 / (deliveries * sessions) as f64,
        server_cpu / 1_000_000
    );
    for (name, hist) in [("on the wire", &wire), ("as read", &read)] {
        println!(
            "{}IDLE delay from SMTP 250 to * EXISTS {name}, {sessions} idling sessions, {deliveries} deliveries ({} samples): median {} µs, p99 {} µs, max {} µs",
            server.label(),
            hist.len(),
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.max()
        );
    }
    drop(child.stdin.take());
    let _ = child.wait();
}

/// The floor: accepts the IMAP sessions with the least that satisfies the
/// clients (greeting, `+` after `IDLE`), and after each SMTP `250` writes
/// `* n EXISTS` to every session from two threads, one per core.
mod floor {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    use super::{tell_addresses, until_stdin_closes};

    pub fn serve() {
        serve_with(fan_out)
    }

    /// The floor's accept loop and SMTP sink; `fan` writes the EXISTS lines.
    fn serve_with(fan: fn(&mut [TcpStream], u32)) {
        let imap = TcpListener::bind("127.0.0.1:0").unwrap();
        let smtp = TcpListener::bind("127.0.0.1:0").unwrap();
        tell_addresses(imap.local_addr().unwrap(), smtp.local_addr().unwrap());
        let sessions: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accepted = Arc::clone(&sessions);
        std::thread::spawn(move || {
            for s in imap.incoming() {
                let mut s = s.unwrap();
                s.set_nodelay(true).unwrap();
                s.write_all(b"* OK floor\r\n").unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while !line.starts_with("c IDLE") {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                }
                s.write_all(b"+ idling\r\n").unwrap();
                accepted.lock().unwrap().push(s);
            }
        });
        let mut n = 0u32;
        smtp_sink(smtp, move |s| {
            n += 1;
            s.write_all(b"250 ok\r\n").unwrap();
            fan(&mut sessions.lock().unwrap(), n);
        });
        until_stdin_closes();
    }

    /// The tokio floor: the same handshake, then a task per session that
    /// waits on one `Event` and writes `* n EXISTS` each time it fires.
    pub async fn serve_tokio() {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let imap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = TcpListener::bind("127.0.0.1:0").unwrap();
        tell_addresses(imap.local_addr().unwrap(), smtp.local_addr().unwrap());
        let event = Arc::new(event_listener::Event::new());
        let count = Arc::new(AtomicU32::new(0));
        let (e, c) = (Arc::clone(&event), Arc::clone(&count));
        tokio::spawn(async move {
            loop {
                let (s, _) = imap.accept().await.unwrap();
                s.set_nodelay(true).unwrap();
                let (e, c) = (Arc::clone(&e), Arc::clone(&c));
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    w.write_all(b"* OK floor\r\n").await.unwrap();
                    let mut r = tokio::io::BufReader::new(r);
                    let mut line = String::new();
                    while !line.starts_with("c IDLE") {
                        line.clear();
                        r.read_line(&mut line).await.unwrap();
                    }
                    w.write_all(b"+ idling\r\n").await.unwrap();
                    let mut seen = c.load(Ordering::Acquire);
                    loop {
                        let listener = e.listen();
                        let now = c.load(Ordering::Acquire);
                        if now == seen {
                            listener.await;
                            continue;
                        }
                        seen = now;
                        let out = format!("* {now} EXISTS\r\n");
                        if w.write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        smtp_sink(smtp, move |s| {
            count.fetch_add(1, Ordering::AcqRel);
            event.notify(usize::MAX);
            s.write_all(b"250 ok\r\n").unwrap();
        });
        tokio::task::spawn_blocking(until_stdin_closes)
            .await
            .unwrap();
    }

    /// On its own thread, takes one SMTP client's transactions, answering
    /// every command 250 (DATA 354); at each end of data `delivered` writes
    /// the 250 and does what the floor does with the message.
    fn smtp_sink(smtp: TcpListener, mut delivered: impl FnMut(&mut TcpStream) + Send + 'static) {
        std::thread::spawn(move || {
            let (mut s, _) = smtp.accept().unwrap();
            s.set_nodelay(true).unwrap();
            s.write_all(b"220 floor\r\n").unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let mut in_data = false;
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap() == 0 {
                    return;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        delivered(&mut s);
                    }
                } else if line.starts_with("DATA") {
                    in_data = true;
                    s.write_all(b"354 go\r\n").unwrap();
                } else {
                    s.write_all(b"250 ok\r\n").unwrap();
                }
            }
        });
    }

    /// `--floor-uring`: the floor, its sends submitted to io_uring in
    /// batches of up to 256 (one `io_uring_enter` per batch) instead of one
    /// `sendto` each.
    pub fn serve_uring() {
        serve_with(fan_out_uring)
    }

    fn fan_out_uring(sessions: &mut [TcpStream], n: u32) {
        use io_uring::{IoUring, opcode, types};
        use std::os::fd::AsRawFd as _;
        const BATCH: usize = 256;
        on_two_threads(sessions, n, |part, line| {
            let mut ring = IoUring::new(BATCH as u32).unwrap();
            for chunk in part.chunks(BATCH) {
                for (i, s) in chunk.iter().enumerate() {
                    let send = opcode::Send::new(
                        types::Fd(s.as_raw_fd()),
                        line.as_ptr(),
                        line.len() as u32,
                    )
                    .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(i as u64);
                    // SAFETY: `line` and the sockets outlive the
                    // batch, which is waited for below.
                    unsafe { ring.submission().push(&send).unwrap() };
                }
                ring.submit_and_wait(chunk.len()).unwrap();
                for cqe in ring.completion() {
                    assert_eq!(cqe.result(), line.len() as i32, "a short or failed send");
                }
            }
        });
    }

    fn fan_out(sessions: &mut [TcpStream], n: u32) {
        on_two_threads(sessions, n, |part, line| {
            for s in part {
                s.write_all(line).unwrap();
            }
        });
    }

    /// `* n EXISTS` to every session: `send` writes it to each half of them,
    /// on a thread per half (one per core).
    fn on_two_threads(
        sessions: &mut [TcpStream],
        n: u32,
        send: impl Fn(&mut [TcpStream], &[u8]) + Sync,
    ) {
        let line = format!("* {n} EXISTS\r\n");
        let half = sessions.len() / 2;
        let (a, b) = sessions.split_at_mut(half);
        std::thread::scope(|t| {
            for part in [a, b] {
                let (line, send) = (line.as_bytes(), &send);
                t.spawn(move || send(part, line));
            }
        });
    }
}
