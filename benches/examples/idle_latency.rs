//! IDLE notification delay, as a user of the fake server sees it: SESSIONS
//! IMAP sessions (default 100) idle on one mailbox; a client delivers messages
//! over SMTP one at a time; for every delivery and every session we record the
//! time from the SMTP client reading `250` to that session reading
//! `* n EXISTS` (zero when the EXISTS arrived first). Prints median, p99 and
//! max.
//!
//! ```text
//! cargo run --release -p mailrig-benches --example idle_latency [-- DELIVERIES [SESSIONS] [--client-threads N]]
//! ```
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
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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
    println!("{} {}", server.imap_addr(), server.smtp_addr());
    std::io::stdout().flush().unwrap();
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await
    .unwrap();
    server.shutdown().await;
}

/// The server gets a worker per core, as `mailrig serve` does; the clients
/// one thread, so that measuring takes as little of the shared cores as it
/// can (`--client-threads N` to change it).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--server") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        return rt.block_on(serve());
    }
    let threads = args
        .iter()
        .position(|a| a == "--client-threads")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1);
    let mut positional = Vec::new();
    let mut rest = args.into_iter();
    while let Some(a) = rest.next() {
        if a.starts_with("--") {
            rest.next();
        } else {
            positional.push(a);
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
    rt.block_on(clients(positional));
}

async fn clients(args: Vec<String>) {
    let deliveries: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let sessions: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--server")
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
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    for _ in 0..sessions {
        let s = TcpStream::connect(imap_addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let (r, mut w) = s.into_split();
        let mut r = BufReader::new(r);
        let mut l = String::new();
        r.read_line(&mut l).await.unwrap();
        w.write_all(b"a LOGIN u001@bench.test secret\r\nb SELECT INBOX\r\nc IDLE\r\n")
            .await
            .unwrap();
        loop {
            l.clear();
            r.read_line(&mut l).await.unwrap();
            if l.starts_with('+') {
                break;
            }
        }
        let tx = tx.clone();
        tokio::spawn(async move {
            let _w = w;
            let mut l = String::new();
            loop {
                l.clear();
                match r.read_line(&mut l).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if l.ends_with("EXISTS\r\n") => {
                        let _ = tx.send(Instant::now());
                    }
                    Ok(_) => {}
                }
            }
        });
    }
    let s = TcpStream::connect(smtp_addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut l = String::new();
    r.read_line(&mut l).await.unwrap();
    w.write_all(b"HELO bench\r\n").await.unwrap();
    r.read_line(&mut l).await.unwrap();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for _ in 0..deliveries {
        w.write_all(b"MAIL FROM:<s@extern.test>\r\nRCPT TO:<u001@bench.test>\r\nDATA\r\n")
            .await
            .unwrap();
        for _ in 0..3 {
            l.clear();
            r.read_line(&mut l).await.unwrap();
        }
        w.write_all(b"Subject: idle\r\n\r\nx\r\n.\r\n")
            .await
            .unwrap();
        l.clear();
        r.read_line(&mut l).await.unwrap();
        let t250 = Instant::now();
        assert!(l.starts_with("250"), "{l}");
        for _ in 0..sessions {
            let t = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            hist.record(t.saturating_duration_since(t250).as_micros() as u64)
                .unwrap();
        }
    }
    println!(
        "IDLE delay from SMTP 250 to * EXISTS, {sessions} idling sessions, {deliveries} deliveries ({} samples): median {} µs, p99 {} µs, max {} µs",
        hist.len(),
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max()
    );
    drop(child.stdin.take());
    let _ = child.wait();
}
