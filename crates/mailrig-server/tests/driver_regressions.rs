//! Regression tests of the connection driver every protocol runs on: TLS
//! faults on STARTTLS/STLS, deadlines in every state, one connection limit
//! for the whole server, the listen backlog, and binding before accepting.
//! Real clients (curl) where the bug was seen with one, raw sockets where the
//! bug is a client that stops talking.

mod support;

use std::time::Duration;

use mailrig_server::MockServer;
use mailrig_server::state::Metrics;
use support::{eventually, run, start_toml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WORLD: &str = include_str!("../../../crates/mailrig-core/catalog/kanzlei.toml");

async fn with(extra: &str) -> MockServer {
    start_toml(&format!("{WORLD}\n{extra}\n")).await
}

/// curl with STARTTLS required (`--ssl-reqd`) against a plain IMAP or POP3
/// port, trusting the server's CA; returns curl's exit code and stderr.
async fn curl_starttls(server: &MockServer, scheme: &str, port: u16) -> (Option<i32>, String) {
    let out = run(
        "curl",
        vec![
            "-sS".into(),
            "--max-time".into(),
            "10".into(),
            "--ssl-reqd".into(),
            "--cacert".into(),
            server.ca_path().to_str().unwrap().to_string(),
            "-u".into(),
            "anna@kanzlei.test:secret".into(),
            format!("{scheme}://127.0.0.1:{port}/"),
        ],
    )
    .await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn tls_faults_apply_to_imap_starttls_and_pop3_stls() {
    // curl's exit codes: 0 fine, 35 handshake failed, 60 certificate not
    // trusted, 64 the server does not offer STARTTLS/STLS.
    let cases = [
        (None, 0),
        (Some("expired"), 60),
        (Some("wrong-host"), 60),
        (Some("self-signed"), 60),
        (Some("handshake-fails"), 35),
        (Some("not-offered"), 64),
    ];
    for (fault, want) in cases {
        let rule = match fault {
            Some(f) => format!(
                "[[fault]]\nname = \"r\"\nstage = \"tls\"\naction = \"tls\"\ntls = \"{f}\"\n"
            ),
            None => String::new(),
        };
        let server = with(&rule).await;
        let imap = curl_starttls(&server, "imap", server.imap_addr().port()).await;
        assert_eq!(
            imap.0,
            Some(want),
            "IMAP STARTTLS under {fault:?}: {}",
            imap.1
        );
        let pop3 = curl_starttls(&server, "pop3", server.pop3_addr().port()).await;
        assert_eq!(pop3.0, Some(want), "POP3 STLS under {fault:?}: {}", pop3.1);
        server.shutdown().await;
    }
}

/// Reads until the server closes (EOF or reset); false if it is still open
/// after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_all).await.is_ok()
}

async fn line(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .expect("no reply within 10 s")
            .unwrap();
        assert!(n == 1, "closed after {:?}", String::from_utf8_lossy(&got));
        got.push(b[0]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_client_that_never_handshakes_after_starttls_is_timed_out() {
    let server = with("[limits]\nidle_timeout_secs = 1\n").await;
    let cases = [
        (
            "SMTP",
            server.smtp_addr(),
            "EHLO c.test\r\nSTARTTLS\r\n",
            "220 2.0.0",
        ),
        ("IMAP", server.imap_addr(), "a STARTTLS\r\n", "a OK"),
        ("POP3", server.pop3_addr(), "STLS\r\n", "+OK Begin TLS"),
    ];
    for (what, addr, cmd, ok) in cases {
        let mut s = TcpStream::connect(addr).await.unwrap();
        line(&mut s).await;
        s.write_all(cmd.as_bytes()).await.unwrap();
        loop {
            let l = line(&mut s).await;
            if l.starts_with(ok) {
                break;
            }
        }
        // No ClientHello ever comes: the slot must be given back.
        assert!(
            closed_within(&mut s, Duration::from_secs(20)).await,
            "{what}: a client silent after STARTTLS holds its connection"
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || Metrics::get(
            &server.state().metrics.connections_active
        ) == 0)
        .await
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_imap_client_that_stops_reading_is_dropped() {
    let server = with("[limits]\nidle_timeout_secs = 1\n").await;
    // One big message, fetched again and again by a client that reads nothing.
    let body = "x".repeat(1000);
    let mut raw = String::from("From: a@b.test\r\nSubject: big\r\n\r\n");
    for _ in 0..1000 {
        raw.push_str(&body);
        raw.push_str("\r\n");
    }
    support::imap::deliver(&server, "anna@kanzlei.test", raw.as_bytes());
    let mut s = TcpStream::connect(server.imap_addr()).await.unwrap();
    line(&mut s).await;
    s.write_all(b"l LOGIN anna@kanzlei.test secret\r\ns SELECT INBOX\r\n")
        .await
        .unwrap();
    while !line(&mut s).await.starts_with("s OK") {}
    let mut fetches = String::new();
    for i in 0..50 {
        fetches.push_str(&format!("f{i} FETCH 1 BODY.PEEK[]\r\n"));
    }
    s.write_all(fetches.as_bytes()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || Metrics::get(
            &server.state().metrics.connections_active
        ) == 0)
        .await,
        "a client that stopped reading still holds its connection"
    );
    drop(s);
    server.shutdown().await;
}

/// A std-blocking line reader for clients that must not depend on the
/// server's runtime being free.
fn std_line(s: &mut std::net::TcpStream) -> std::io::Result<String> {
    use std::io::Read;
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\n") {
        if s.read(&mut b)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// With a Maildir, IMAP APPEND runs on the blocking pool: while it waits for
/// its mailbox (here held by the test, as a slow disk would hold an fsync),
/// another session on the same one-thread runtime still gets answers.
#[tokio::test(flavor = "current_thread")]
async fn imap_store_commands_do_not_stall_other_sessions() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let scenario = mailrig_core::Scenario::parse(WORLD, "<test>").unwrap();
    let server = MockServer::builder()
        .scenario(scenario)
        .maildir(dir.path())
        .start()
        .await
        .unwrap();
    let state = std::sync::Arc::clone(server.state());
    let (imap, smtp) = (server.imap_addr(), server.smtp_addr());
    let seen = tokio::task::spawn_blocking(move || {
        let t = Some(Duration::from_secs(10));
        let mut i = std::net::TcpStream::connect(imap).unwrap();
        i.set_read_timeout(t).unwrap();
        std_line(&mut i).unwrap();
        i.write_all(b"l LOGIN anna@kanzlei.test secret\r\n")
            .unwrap();
        while !std_line(&mut i).unwrap().starts_with("l OK") {}
        let mut m = std::net::TcpStream::connect(smtp).unwrap();
        m.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std_line(&mut m).unwrap();

        let id = state.world.mailbox_by_address("anna@kanzlei.test").unwrap();
        let guard = state.store.mailbox(id).lock();
        i.write_all(b"a APPEND INBOX {7+}\r\nhello\r\n\r\n")
            .unwrap();
        // Give the server time to reach the APPEND and wait for the mailbox.
        std::thread::sleep(Duration::from_millis(500));
        m.write_all(b"NOOP\r\n").unwrap();
        let noop = std_line(&mut m);
        drop(guard);
        let mut append = String::new();
        while !append.starts_with("a ") {
            append = std_line(&mut i).unwrap();
        }
        (noop.map_err(|e| e.to_string()), append)
    })
    .await
    .unwrap();
    assert!(
        seen.0.as_deref().is_ok_and(|l| l.starts_with("250")),
        "SMTP NOOP while an IMAP APPEND waited for its mailbox: {:?}",
        seen.0
    );
    assert!(seen.1.starts_with("a OK"), "{}", seen.1);
    server.shutdown().await;
}

#[tokio::test]
async fn max_connections_is_one_limit_for_the_whole_server() {
    let server = with("[limits]\nmax_connections = 2\n").await;
    let mut smtp = TcpStream::connect(server.smtp_addr()).await.unwrap();
    assert!(line(&mut smtp).await.starts_with("220"));
    let mut imap = TcpStream::connect(server.imap_addr()).await.unwrap();
    assert!(line(&mut imap).await.starts_with("* OK"));
    // A third client, on yet another listener, is one too many.
    let mut pop3 = TcpStream::connect(server.pop3_addr()).await.unwrap();
    let refused = line(&mut pop3).await;
    assert!(
        refused.starts_with("-ERR [SYS/TEMP] too many connections"),
        "{refused}"
    );
    let mut smtp2 = TcpStream::connect(server.smtp_addr()).await.unwrap();
    assert!(line(&mut smtp2).await.starts_with("421 4.7.0"));
    // A slot given back is free for any listener.
    drop(imap);
    assert!(
        eventually(Duration::from_secs(10), || Metrics::get(
            &server.state().metrics.connections_active
        ) == 1)
        .await
    );
    let mut pop3 = TcpStream::connect(server.pop3_addr()).await.unwrap();
    assert!(line(&mut pop3).await.starts_with("+OK"));
    drop(smtp);
    server.shutdown().await;
}

#[test]
fn the_default_connection_limit_is_not_a_trap() {
    // 512 idle clients used to lock every new SMTP client out for the idle timeout.
    assert!(mailrig_core::world::Limits::default().max_connections >= 10_000);
}

#[tokio::test]
async fn a_listener_that_cannot_bind_fails_the_start_before_anything_accepts() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp = free.local_addr().unwrap();
    drop(free);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = MockServer::builder()
        .smtp(Some(smtp))
        .http(Some(taken.local_addr().unwrap()))
        .start()
        .await
        .expect_err("the HTTP port is taken");
    assert!(err.to_string().contains("HTTP"), "{err}");
    // Nothing of the failed server may be left serving SMTP.
    match TcpStream::connect(smtp).await {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(mut s) => {
            let mut buf = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .map_or(0, |r| r.unwrap_or(0));
            panic!(
                "a server that failed to start still accepts SMTP: {:?}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
    }
}

/// The accept-queue length of the listening socket on `port`, as `ss -ltn`
/// reports it (Send-Q of a listening socket is its backlog).
async fn listen_backlog(port: u16) -> u32 {
    let out = run("ss", vec!["-ltnH".into(), format!("sport = :{port}")]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert!(fields.len() >= 3, "ss: {text:?}");
    fields[2]
        .parse()
        .unwrap_or_else(|e| panic!("ss Send-Q {:?}: {e}", fields[2]))
}

fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

#[tokio::test]
async fn listeners_have_a_large_configurable_backlog() {
    // 200 sessions opening a connection per message overflowed a backlog of 128.
    let server = with("").await;
    let want = 4096.min(somaxconn());
    for port in [
        server.smtp_addr().port(),
        server.imap_addr().port(),
        server.pop3s_addr().port(),
    ] {
        assert_eq!(listen_backlog(port).await, want, "port {port}");
    }
    server.shutdown().await;

    let server = with("[limits]\nlisten_backlog = 777\n").await;
    assert_eq!(
        listen_backlog(server.smtp_addr().port()).await,
        777.min(somaxconn())
    );
    server.shutdown().await;

    let scenario = mailrig_core::Scenario::parse(WORLD, "<test>").unwrap();
    let server = MockServer::builder()
        .scenario(scenario)
        .listen_backlog(300)
        .start()
        .await
        .unwrap();
    assert_eq!(
        listen_backlog(server.smtp_addr().port()).await,
        300.min(somaxconn())
    );
    server.shutdown().await;
}
