//! IMAP read-side benchmarks: FETCH of 1,000 messages' headers over loopback,
//! and the IDLE notification path — from an SMTP delivery's 250 reply to
//! `* n EXISTS` reaching every one of 100 idling sessions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailrig_core::{NewMessage, Scenario};
use mailrig_server::MockServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const WORLD: &str =
    "[[domain]]\nname='bench.test'\npassword='secret'\nmailboxes=['reader','u001..u100']\n";

struct Imap {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Imap {
    async fn login(addr: SocketAddr, user: &str) -> Imap {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let (r, w) = s.into_split();
        let mut c = Imap {
            r: BufReader::new(r),
            w,
        };
        c.line().await;
        c.cmd(&format!("a LOGIN {user} secret")).await;
        c.cmd("b SELECT INBOX").await;
        c
    }

    async fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).await.unwrap();
        l
    }

    /// Sends a tagged command and reads until its tagged reply; returns the byte count read.
    async fn cmd(&mut self, cmd: &str) -> usize {
        let tag = cmd.split(' ').next().unwrap().to_string();
        self.w
            .write_all(format!("{cmd}\r\n").as_bytes())
            .await
            .unwrap();
        let mut n = 0;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let k = self.r.read_until(b'\n', &mut buf).await.unwrap();
            assert!(k > 0, "connection closed");
            n += k;
            if buf.starts_with(tag.as_bytes()) && buf.get(tag.len()) == Some(&b' ') {
                assert!(
                    buf[tag.len() + 1..].starts_with(b"OK"),
                    "{}",
                    String::from_utf8_lossy(&buf)
                );
                return n;
            }
        }
    }
}

fn message(i: usize) -> NewMessage {
    let raw = format!(
        "From: Sender {i} <s{i}@extern.test>\r\nTo: reader@bench.test\r\nSubject: message number {i}\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{i}@extern.test>\r\n\r\n{}",
        "body line of text for the benchmark\r\n".repeat(50)
    );
    NewMessage {
        raw: Bytes::from(raw),
        envelope: None,
        flags: Default::default(),
        internal_date: chrono::Utc::now(),
    }
}

fn fetch_headers(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        MockServer::builder()
            .scenario(Scenario::parse(WORLD, "bench").unwrap())
            .start()
            .await
            .unwrap()
    });
    let id = server
        .world()
        .mailbox_by_address("reader@bench.test")
        .unwrap();
    for i in 0..1000 {
        server.store().deliver(id, message(i)).unwrap();
    }
    let mut client = rt.block_on(Imap::login(server.imap_addr(), "reader@bench.test"));
    let bytes = rt.block_on(client.cmd("f FETCH 1:1000 (UID FLAGS BODY.PEEK[HEADER])"));
    assert!(
        bytes > 1000 * 200,
        "the whole FETCH response came back ({bytes} bytes)"
    );
    let mut group = c.benchmark_group("imap");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("fetch_1000_headers", |b| {
        b.iter(|| rt.block_on(client.cmd("f FETCH 1:1000 (UID FLAGS BODY.PEEK[HEADER])")));
    });
    group.finish();
    rt.block_on(server.shutdown());
}

async fn smtp_deliver(addr: SocketAddr, to: &str) {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut l = String::new();
    r.read_line(&mut l).await.unwrap();
    w.write_all(
        format!("HELO b\r\nMAIL FROM:<s@extern.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes(),
    )
    .await
    .unwrap();
    for _ in 0..4 {
        l.clear();
        r.read_line(&mut l).await.unwrap();
    }
    w.write_all(b"Subject: idle\r\n\r\nx\r\n.\r\n")
        .await
        .unwrap();
    l.clear();
    r.read_line(&mut l).await.unwrap();
    assert!(l.starts_with("250"), "{l}");
}

fn idle_notification(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        MockServer::builder()
            .scenario(Scenario::parse(WORLD, "bench").unwrap())
            .start()
            .await
            .unwrap()
    });
    let imap = server.imap_addr();
    let smtp = server.smtp_addr();
    // 100 sessions idling on one mailbox; each delivery must wake all of them.
    let clients: Vec<Imap> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..100 {
            let mut c = Imap::login(imap, "u001@bench.test").await;
            c.w.write_all(b"i IDLE\r\n").await.unwrap();
            let cont = c.line().await;
            assert!(cont.starts_with('+'), "{cont}");
            v.push(c);
        }
        v
    });
    let clients = Arc::new(tokio::sync::Mutex::new(clients));
    let mut group = c.benchmark_group("imap");
    group.sample_size(20);
    group.bench_function("idle_exists_to_100_sessions", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                let mut clients = clients.lock().await;
                for _ in 0..iters {
                    let start = Instant::now();
                    smtp_deliver(smtp, "u001@bench.test").await;
                    for c in clients.iter_mut() {
                        // Skip RECENT (and anything else) up to this session's EXISTS.
                        while !c.line().await.ends_with("EXISTS\r\n") {}
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
    rt.block_on(server.shutdown());
}

criterion_group!(benches, fetch_headers, idle_notification);
criterion_main!(benches);
