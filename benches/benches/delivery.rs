//! The in-process delivery path, SMTP session → route → store, measured two ways:
//! the sans-I/O session alone (parse, route, build the stored message, store it
//! in memory), and whole transactions over loopback TCP against a MockServer
//! with 1, 16 and 128 concurrent client connections, for 4 KiB and 100 KiB
//! messages (the session alone also for 1 MiB, where copies of the body
//! would show). Every group runs 10 samples of about 2 seconds, so the whole file
//! takes well under a minute: `cargo bench -p mailrig-benches --bench delivery`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use mailrig_core::Scenario;
use mailrig_server::MockServer;
use mailrig_server::smtp::session::{Action, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KANZLEI: &str = include_str!("../../crates/mailrig-core/catalog/kanzlei.toml");

fn body(size: usize) -> Vec<u8> {
    let mut b =
        b"From: <s@extern.test>\r\nTo: <user01@patente.test>\r\nSubject: bench\r\n\r\n".to_vec();
    while b.len() < size {
        b.extend_from_slice(
            b"0123456789012345678901234567890123456789012345678901234567890123456789012345\r\n",
        );
    }
    b.extend_from_slice(b".\r\n");
    b
}

fn session_only(c: &mut Criterion) {
    let bodies: Vec<Vec<u8>> = [4096usize, 100 * 1024, 1024 * 1024]
        .into_iter()
        .map(body)
        .collect();
    session_group(c, "session_to_store", KANZLEI, &bodies);
}

/// The same path with sender authentication on (`[dns]` makes it `record`):
/// SPF and DMARC of extern.test and one RSA-2048 DKIM signature (lettre's)
/// checked per message, against the cost of [`session_only`]'s 4 KiB case.
fn session_with_sender_auth(c: &mut Criterion) {
    let key = include_str!("../../testdata/dkim/signer.key.pem");
    let public = include_str!("../../testdata/dkim/signer.pub.b64").trim();
    let world = format!(
        "{KANZLEI}\n[dns]\nzones = [\"extern.test\"]\n\
         [[dns.record]]\nname = \"extern.test\"\ntype = \"TXT\"\nvalue = \"v=spf1 ip4:127.0.0.1 -all\"\n\
         [[dns.record]]\nname = \"_dmarc.extern.test\"\ntype = \"TXT\"\nvalue = \"v=DMARC1; p=reject\"\n\
         [[dns.record]]\nname = \"s1._domainkey.extern.test\"\ntype = \"TXT\"\nvalue = \"v=DKIM1; k=rsa; p={public}\"\n"
    );
    let mut m = lettre::Message::builder()
        .from("s@extern.test".parse().unwrap())
        .to("user01@patente.test".parse().unwrap())
        .subject("bench")
        .body(String::from_utf8(body(4096)[..4096].to_vec()).unwrap())
        .unwrap();
    let key = lettre::message::dkim::DkimSigningKey::new(
        key,
        lettre::message::dkim::DkimSigningAlgorithm::Rsa,
    )
    .unwrap();
    use lettre::message::dkim::{DkimCanonicalization, DkimCanonicalizationType as C};
    let config = lettre::message::dkim::DkimConfig::new(
        "s1".into(),
        "extern.test".into(),
        key,
        vec![lettre::message::header::HeaderName::new_from_ascii_str(
            "From",
        )],
        DkimCanonicalization {
            header: C::Relaxed,
            body: C::Relaxed,
        },
    );
    lettre::message::dkim::dkim_sign(&mut m, &config);
    let mut signed = m.formatted();
    if !signed.ends_with(b"\r\n") {
        signed.extend_from_slice(b"\r\n");
    }
    signed.extend_from_slice(b".\r\n");
    session_group(c, "session_to_store_sender_auth", &world, &[signed]);
}

/// One transaction outside the measurement: what was stored.
fn one_copy(state: &Arc<mailrig_server::state::ServerState>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = Session::new(Arc::clone(state), "127.0.0.1:40000".parse().unwrap(), false);
    for l in [
        &b"EHLO bench.test\r\n"[..],
        b"MAIL FROM:<s@extern.test>\r\n",
        b"RCPT TO:<user01@patente.test>\r\n",
        b"DATA\r\n",
    ] {
        s.line(l, &mut out);
    }
    let (_, Action::Deliver(d)) = s.data(data, &mut out) else {
        panic!("no delivery: {}", String::from_utf8_lossy(&out))
    };
    d.copies[0].message.raw.to_vec()
}

fn session_group(c: &mut Criterion, name: &str, world: &str, bodies: &[Vec<u8>]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        MockServer::builder()
            .scenario(Scenario::parse(world, "kanzlei").unwrap())
            .smtp(None)
            .smtps(None)
            .start()
            .await
            .unwrap()
    });
    let state = Arc::clone(server.state());
    if name.ends_with("sender_auth") {
        let raw = String::from_utf8_lossy(&one_copy(&state, &bodies[0])).into_owned();
        assert!(
            raw.contains("dkim=pass") && raw.contains("spf=pass"),
            "{raw}"
        );
    }
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for data in bodies {
        let size = data.len();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), data, |b, data| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                let mut s = Session::new(Arc::clone(&state), peer, false);
                out.clear();
                s.line(b"EHLO bench.test\r\n", &mut out);
                s.line(b"MAIL FROM:<s@extern.test>\r\n", &mut out);
                s.line(b"RCPT TO:<user01@patente.test>\r\n", &mut out);
                s.line(b"DATA\r\n", &mut out);
                let (_, action) = s.data(data, &mut out);
                let Action::Deliver(d) = action else {
                    panic!("no delivery: {}", String::from_utf8_lossy(&out))
                };
                for c in d.copies {
                    state.store.deliver(c.mailbox, c.message).unwrap();
                }
                s.delivered(&d.queue_id, Ok(1), &mut out);
            });
            // Keep memory flat between samples.
            state.store.clear().unwrap();
        });
    }
    group.finish();
    rt.block_on(server.shutdown());
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 4096];
    read_lines(&mut s, &mut buf, 1).await;
    s.write_all(b"EHLO bench.test\r\n").await.unwrap();
    // The EHLO reply is multi-line: read until its last line ("250 ").
    let mut reply = Vec::new();
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed during EHLO");
        reply.extend_from_slice(&buf[..n]);
        if reply.ends_with(b"\r\n")
            && reply
                .split(|&b| b == b'\n')
                .rev()
                .nth(1)
                .is_some_and(|l| l.starts_with(b"250 "))
        {
            break;
        }
    }
    s
}

/// Reads until `lines` reply lines have arrived.
async fn read_lines(s: &mut TcpStream, buf: &mut [u8], lines: usize) {
    let mut seen = 0;
    while seen < lines {
        let n = s.read(buf).await.unwrap();
        assert!(n > 0, "server closed the connection");
        seen += buf[..n].iter().filter(|&&b| b == b'\n').count();
    }
}

/// Sends `messages` messages over one open connection, one pipelined batch per message as PIPELINING
/// clients send it: MAIL, RCPT and DATA together, then the content after the three replies.
async fn send(mut s: TcpStream, data: Arc<Vec<u8>>, messages: u64) -> TcpStream {
    let mut buf = vec![0u8; 4096];
    for _ in 0..messages {
        s.write_all(b"MAIL FROM:<s@extern.test>\r\nRCPT TO:<user01@patente.test>\r\nDATA\r\n")
            .await
            .unwrap();
        read_lines(&mut s, &mut buf, 3).await;
        s.write_all(&data).await.unwrap();
        read_lines(&mut s, &mut buf, 1).await;
    }
    s
}

/// Whole SMTP transactions over loopback TCP against a MockServer, with 1, 16 and 128 sessions open at
/// once. Connections are opened (and EHLO answered) before the clock starts; one element is one
/// message, so criterion reports messages per second. The store is emptied after each sample.
fn over_tcp(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        MockServer::builder()
            .scenario(Scenario::parse(KANZLEI, "kanzlei").unwrap())
            .smtps(None)
            .start()
            .await
            .unwrap()
    });
    let addr = server.smtp_addr();
    let state = Arc::clone(server.state());
    let mut group = c.benchmark_group("smtp_over_loopback");
    // Flat: every sample runs the same number of rounds, as criterion advises for long iterations.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for sessions in [1u64, 16, 128] {
        for size in [4096usize, 100 * 1024] {
            let data = Arc::new(body(size));
            group.throughput(Throughput::Elements(sessions));
            let id = BenchmarkId::new(format!("{sessions}_sessions"), size);
            group.bench_function(id, |b| {
                b.to_async(&rt).iter_custom(|rounds| {
                    let data = Arc::clone(&data);
                    let state = Arc::clone(&state);
                    async move {
                        let mut conns = Vec::with_capacity(sessions as usize);
                        for _ in 0..sessions {
                            conns.push(connect(addr).await);
                        }
                        // Each round is one message on every session.
                        let start = Instant::now();
                        let tasks: Vec<_> = conns
                            .into_iter()
                            .map(|s| tokio::spawn(send(s, Arc::clone(&data), rounds)))
                            .collect();
                        let mut done = Vec::with_capacity(tasks.len());
                        for t in tasks {
                            done.push(t.await.unwrap());
                        }
                        let elapsed = start.elapsed();
                        for mut s in done {
                            let _ = s.write_all(b"QUIT\r\n").await;
                        }
                        state.store.clear().unwrap();
                        elapsed
                    }
                });
            });
        }
    }
    group.finish();
    rt.block_on(server.shutdown());
}

criterion_group!(benches, session_only, session_with_sender_auth, over_tcp);
criterion_main!(benches);
