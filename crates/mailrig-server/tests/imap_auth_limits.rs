//! The IMAP server before login, against a hostile client and a real one
//! (issue 9): an over-long AUTHENTICATE response ends the exchange instead of
//! eating the next command, an over-long first token is never echoed as a
//! tag, and a client that never logs in cannot make the server hold more
//! than the small pre-login limits (a chain of `{0+}` literals is cut off).

mod support;

use std::process::Command;
use std::time::Duration;

use support::imap::{ALICE, Client, PASSWORD, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs a Python script with arguments; its stdout, or a failed test.
async fn python(script: &'static str, args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(&args)
            .output()
    })
    .await
    .unwrap()
    .expect("this test needs python3: run scripts/install-test-deps.sh");
    assert!(
        out.status.success(),
        "python failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// imaplib's AUTHENTICATE with a 100,000-byte PLAIN response (133 KB of
/// base64 on one line), then NOOP and LOGIN on the same connection.
const IMAPLIB_LONG_SASL: &str = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=10)
try:
    m.authenticate("PLAIN", lambda _: b"A" * 100000)
    print("authenticated")
except imaplib.IMAP4.error as e:
    print("refused:", e)
print("noop", m.noop()[0])
print("login", m.login(sys.argv[2], sys.argv[3])[0])
m.logout()
"#;

#[tokio::test]
async fn imaplib_over_long_sasl_response_leaves_the_session_usable() {
    let server = start().await;
    let out = python(
        IMAPLIB_LONG_SASL,
        vec![
            server.imap_addr().port().to_string(),
            ALICE.into(),
            PASSWORD.into(),
        ],
    )
    .await;
    assert_eq!(
        out,
        "refused: AUTHENTICATE command error: BAD [b'Command line too long; authentication exchange ended']\nnoop OK\nlogin OK\n"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn raw_over_long_sasl_line_then_a_command() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    c.send(b"a1 AUTHENTICATE PLAIN\r\n").await;
    assert_eq!(c.line().await, "+ \r\n");
    let mut line = vec![b'Q'; 70_000];
    line.extend_from_slice(b"\r\na2 NOOP\r\n");
    c.send(&line).await;
    assert_eq!(
        c.line().await,
        "a1 BAD Command line too long; authentication exchange ended\r\n"
    );
    assert_eq!(c.line().await, "a2 OK NOOP completed\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn a_64_kb_first_token_is_not_echoed() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    let mut line = vec![b'T'; 65_536];
    line.extend_from_slice(b" LOGIN a b\r\n");
    c.send(&line).await;
    let reply = c.line().await;
    assert_eq!(reply, "* BAD Command line too long\r\n");
    assert_eq!(c.cmd("a2 NOOP").await, "a2 OK NOOP completed\r\n");
    server.shutdown().await;
}

/// Sends `chunk` up to `times` times, stopping when the server hangs up;
/// returns everything the server wrote until it closed (10 s at most).
async fn send_until_closed(
    addr: std::net::SocketAddr,
    first: &[u8],
    chunk: &[u8],
    times: usize,
) -> String {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), r.read_to_end(&mut got)).await;
        String::from_utf8_lossy(&got).into_owned()
    });
    let mut batch = first.to_vec();
    for _ in 0..times {
        batch.extend_from_slice(chunk);
        if batch.len() >= 64 * 1024 {
            if w.write_all(&batch).await.is_err() {
                break;
            }
            batch.clear();
        }
    }
    let _ = w.write_all(&batch).await;
    reader.await.unwrap()
}

#[tokio::test]
async fn a_chain_of_empty_literals_before_login_is_cut_off() {
    let server = start().await;
    // 1,000,000 empty LITERAL+ literals in one LOGIN: 7 MB the server must not keep.
    let got = send_until_closed(
        server.imap_addr(),
        b"a1 LOGIN {0+}\r\n",
        b" {0+}\r\n",
        1_000_000,
    )
    .await;
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines[1..],
        ["* BYE [LIMIT] Command has more than 4 literals"],
        "{got:.300}"
    );
    // Literals of 4,000 bytes and lines of 30,000: the command is capped at 64 KiB.
    let chunk = [&[b'x'; 4000][..], b" ", &[b'y'; 30_000], b" {4000+}\r\n"].concat();
    let got = send_until_closed(server.imap_addr(), b"a1 LOGIN {4000+}\r\n", &chunk, 1_000).await;
    assert!(
        got.contains(
            "\r\n* BYE [TOOBIG] Command exceeds the limit of 65536 bytes with its literals\r\n"
        ),
        "{got:.300}"
    );
    // Everyone else is still served.
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert_eq!(c.cmd("b1 NOOP").await, "b1 OK NOOP completed\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn literal_plus_before_login_is_small_and_large_after() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    c.send(b"a1 LOGIN {5000}\r\n").await;
    assert_eq!(
        c.line().await,
        "a1 NO [TOOBIG] Literal of 5000 bytes exceeds the limit of 4096 bytes\r\n"
    );
    c.send(format!("a2 LOGIN {ALICE} {PASSWORD}\r\n").as_bytes())
        .await;
    assert!(c.until_tag("a2").await.contains("a2 OK"));
    c.send(b"a3 APPEND INBOX {5000}\r\n").await;
    assert_eq!(c.line().await, "+ OK\r\n");
    c.send(&[&b"Subject: x\r\n\r\n"[..], &[b'y'; 4986], b"\r\n"].concat())
        .await;
    assert!(c.until_tag("a3").await.contains("a3 OK [APPENDUID"));
    server.shutdown().await;
}
