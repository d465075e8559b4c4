//! Regression test: pipelined FETCHes of a big message must not make the
//! server build all their responses in memory before writing (5 KB of
//! `FETCH 1 BODY.PEEK[]` once grew the server by 200 MB). The server runs in
//! this process, alone in this test binary, so the process's peak memory is
//! the server's.

mod support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The process's peak resident memory, in KiB (Linux).
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn pipelined_fetches_are_written_as_they_are_made() {
    let server = support::imap::start_with(&support::imap::scenario("")).await;
    let line = format!("{}\r\n", "x".repeat(998));
    let mut raw = String::from("From: a@b.test\r\nSubject: big\r\n\r\n");
    for _ in 0..1024 {
        raw.push_str(&line);
    }
    support::imap::deliver(&server, "alice@example.test", raw.as_bytes());
    let mut c = support::imap::Client::login(server.imap_addr(), "alice@example.test").await;
    c.cmd("s SELECT INBOX").await;
    let mut s = c.into_inner();
    let before = peak_kib();

    // 200 FETCHes of a 1 MiB message in one 5 KB write: 200 MiB of responses.
    const N: usize = 200;
    let mut batch = String::new();
    for i in 0..N {
        batch.push_str(&format!("f{i} FETCH 1 BODY.PEEK[]\r\n"));
    }
    s.write_all(batch.as_bytes()).await.unwrap();
    // Let the server work while nothing is read, then read everything.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let last = format!("f{} OK", N - 1);
    let mut window: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0usize;
    let read_all = async {
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {total} bytes");
            total += n;
            window.extend_from_slice(&buf[..n]);
            if memchr::memmem::find(&window, last.as_bytes()).is_some() {
                break;
            }
            let keep = window.len().saturating_sub(64);
            window.drain(..keep);
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read_all)
        .await
        .expect("all responses within 120 s");
    assert!(total > N * raw.len(), "{total} bytes read");
    let grown_mib = peak_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "the server grew by {grown_mib} MiB for {N} pipelined FETCHes of 1 MiB"
    );
    server.shutdown().await;
}
