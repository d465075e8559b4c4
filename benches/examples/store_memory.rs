//! How much memory the memory store needs per message: delivers N messages of SIZE bytes through the real
//! SMTP session code (parse, route, build the stored message with its `Return-Path:` and `Received:`
//! lines, store it) in one process, and compares the growth of the resident set with the raw bytes sent.
//!
//! ```text
//! cargo run --release -p mailrig-benches --example store_memory [MESSAGES] [SIZE]
//! ```
//!
//! Defaults: 100000 messages of 4096 bytes (headers included, as `mailrig load --size 4k` sends them),
//! round-robin over the 25 mailboxes of patente.test. The target is a growth of at most 1.3 × the raw
//! size. `scripts/bench-memory.sh` measures the same over SMTP against `mailrig serve`.

use std::net::SocketAddr;
use std::sync::Arc;

use mailrig_core::Scenario;
use mailrig_server::MockServer;
use mailrig_server::smtp::session::{Action, Session};

const KANZLEI: &str = include_str!("../../crates/mailrig-core/catalog/kanzlei.toml");

/// A message of exactly `size` bytes (headers included) as it goes on the wire, plus the end-of-data line.
fn wire_message(size: usize) -> Vec<u8> {
    let mut m =
        b"From: <load@mailrig.test>\r\nTo: <user01@patente.test>\r\nSubject: memory\r\n\r\n"
            .to_vec();
    let line = b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcd\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    while m.len() + 2 < size {
        m.push(b'x');
    }
    m.extend_from_slice(b"\r\n");
    m.truncate(size);
    m.extend_from_slice(b".\r\n");
    m
}

/// A field of /proc/self/status in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args
        .next()
        .map_or(100_000, |a| a.parse().expect("MESSAGES is a number"));
    let size: usize = args
        .next()
        .map_or(4096, |a| a.parse().expect("SIZE is bytes"));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
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
    let data = wire_message(size);
    let rcpts: Vec<Vec<u8>> = (1..=25)
        .map(|i| format!("RCPT TO:<user{i:02}@patente.test>\r\n").into_bytes())
        .collect();
    let mut out = Vec::with_capacity(4096);

    let deliver_one = |s: &mut Session, seq: u64, out: &mut Vec<u8>| {
        out.clear();
        s.line(b"MAIL FROM:<load@mailrig.test>\r\n", out);
        s.line(&rcpts[(seq % 25) as usize], out);
        s.line(b"DATA\r\n", out);
        let (_, action) = s.data(&data, out);
        let Action::Deliver(d) = action else {
            panic!("no delivery: {}", String::from_utf8_lossy(out))
        };
        let copies = d.copies.len();
        for c in d.copies {
            state.store.deliver(c.mailbox, c.message).unwrap();
        }
        s.delivered(&d.queue_id, Ok(copies), out);
    };

    let mut session = Session::new(Arc::clone(&state), peer, false);
    session.line(b"EHLO memory.test\r\n", &mut out);
    // Warm up allocator and lookup tables, then start from an empty store.
    for seq in 0..1000 {
        deliver_one(&mut session, seq, &mut out);
    }
    state.store.clear().unwrap();
    let before = status_bytes("VmRSS");

    for seq in 0..messages {
        // One session per 100 messages, like a client that reconnects now and then.
        if seq % 100 == 0 {
            session = Session::new(Arc::clone(&state), peer, false);
            session.line(b"EHLO memory.test\r\n", &mut out);
        }
        deliver_one(&mut session, seq, &mut out);
    }
    let after = status_bytes("VmRSS");
    assert_eq!(state.store.total_messages() as u64, messages);

    let stored_bytes: u64 = server
        .world()
        .mailboxes
        .iter()
        .filter_map(|m| server.inbox(&m.address.to_string()))
        .flatten()
        .map(|m| m.size() as u64)
        .sum();
    let raw = messages * size as u64;
    let growth = after.saturating_sub(before);
    println!("store_memory: {messages} messages of {size} bytes into the memory store");
    println!("  raw bytes sent           {:>10.1} MiB", mib(raw));
    println!(
        "  bytes stored (+headers)  {:>10.1} MiB  ({:.0} bytes of Return-Path/Received per message)",
        mib(stored_bytes),
        (stored_bytes - raw) as f64 / messages as f64
    );
    println!(
        "  RSS before / after       {:>10.1} / {:.1} MiB",
        mib(before),
        mib(after)
    );
    println!(
        "  RSS growth               {:>10.1} MiB  = {:.3} × raw  ({:.0} bytes per message, {:.0} beyond the raw bytes)",
        mib(growth),
        growth as f64 / raw as f64,
        growth as f64 / messages as f64,
        (growth as f64 - raw as f64) / messages as f64
    );
    println!(
        "  target ≤ 1.3 × raw: {}",
        if growth as f64 <= 1.3 * raw as f64 {
            "met"
        } else {
            "MISSED"
        }
    );
    rt.block_on(server.shutdown());
}
