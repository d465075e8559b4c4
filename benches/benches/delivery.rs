//! The in-process delivery path, SMTP session → route → store, measured two ways:
//! the sans-I/O session alone (parse, route, build the stored message, store it
//! in memory), and whole transactions over loopback TCP against a MockServer
//! with several concurrent client connections.

use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mailrig_core::Scenario;
use mailrig_server::MockServer;
use mailrig_server::smtp::session::{Action, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KANZLEI: &str = include_str!("../../testdata/scenarios/kanzlei.toml");

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
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        MockServer::builder()
            .scenario(Scenario::parse(KANZLEI, "kanzlei").unwrap())
            .smtp(None)
            .smtps(None)
            .start()
            .await
            .unwrap()
    });
    let state = Arc::clone(server.state());
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut group = c.benchmark_group("session_to_store");
    for size in [4096usize, 100 * 1024] {
        let data = body(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, data| {
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
                    panic!("no delivery")
                };
                for id in &d.targets {
                    state.store.deliver(*id, d.message.clone()).unwrap();
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

async fn client(addr: SocketAddr, data: Arc<Vec<u8>>, messages: usize) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 4096];
    let _ = s.read(&mut buf).await.unwrap();
    s.write_all(b"EHLO bench.test\r\n").await.unwrap();
    let _ = s.read(&mut buf).await.unwrap();
    for _ in 0..messages {
        // One pipelined batch per message, as PIPELINING clients send it.
        s.write_all(b"MAIL FROM:<s@extern.test>\r\nRCPT TO:<user01@patente.test>\r\nDATA\r\n")
            .await
            .unwrap();
        let mut seen = 0;
        while seen < 3 {
            let n = s.read(&mut buf).await.unwrap();
            seen += buf[..n].iter().filter(|&&b| b == b'\n').count();
        }
        s.write_all(&data).await.unwrap();
        let _ = s.read(&mut buf).await.unwrap();
    }
    s.write_all(b"QUIT\r\n").await.unwrap();
}

fn over_tcp(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        MockServer::builder()
            .scenario(Scenario::parse(KANZLEI, "kanzlei").unwrap())
            .start()
            .await
            .unwrap()
    });
    let addr = server.smtp_addr();
    let mut group = c.benchmark_group("smtp_over_loopback");
    group.sample_size(10);
    const PER_RUN: usize = 200;
    for sessions in [1usize, 16] {
        for size in [4096usize, 100 * 1024] {
            let data = Arc::new(body(size));
            group.throughput(Throughput::Elements(PER_RUN as u64));
            let id = BenchmarkId::new(format!("{sessions}_sessions"), size);
            group.bench_function(id, |b| {
                b.to_async(&rt).iter(|| {
                    let data = Arc::clone(&data);
                    async move {
                        let tasks: Vec<_> = (0..sessions)
                            .map(|_| {
                                tokio::spawn(client(addr, Arc::clone(&data), PER_RUN / sessions))
                            })
                            .collect();
                        for t in tasks {
                            t.await.unwrap();
                        }
                    }
                });
                server.store().clear().unwrap();
            });
        }
    }
    group.finish();
    rt.block_on(server.shutdown());
}

criterion_group!(benches, session_only, over_tcp);
criterion_main!(benches);
