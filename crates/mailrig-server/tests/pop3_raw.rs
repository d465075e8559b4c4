//! Raw-bytes tests of the POP3 server: the exact response to every command in
//! every state, the maildrop snapshot, UPDATE-only deletion, STLS, limits, and
//! the server still serving others afterwards.

mod support;

use std::time::Duration;

use mailrig_server::MockServer;
use support::pop3::{Pop, put, uid_validity};
use support::{KANZLEI, eventually};

const M1: &str = "From: a@extern.test\r\nSubject: one\r\n\r\nfirst\r\n.dot line\r\n.\r\nlast\r\n";
const M2: &str = "From: b@extern.test\r\nSubject: two\r\n\r\nl1\r\nl2\r\nl3";

async fn kanzlei() -> MockServer {
    MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .start()
        .await
        .unwrap()
}

async fn with_toml(extra: &str) -> MockServer {
    let text = std::fs::read_to_string(KANZLEI).unwrap() + extra;
    MockServer::builder()
        .scenario_toml(&text)
        .unwrap()
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn greeting_capa_and_empty_mailbox() {
    let server = kanzlei().await;
    let mut c = Pop::connect(server.pop3_addr()).await;
    assert_eq!(c.line().await, "+OK mx.kanzlei.test POP3 mailrig ready");
    let (first, body) = c.multi("CAPA").await;
    assert_eq!(first, "+OK Capability list follows");
    assert_eq!(
        body,
        "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSTLS\r\nEXPIRE NEVER\r\nIMPLEMENTATION mailrig\r\n.\r\n"
    );
    assert_eq!(c.cmd("USER anna@kanzlei.test").await, "+OK send PASS");
    assert_eq!(
        c.cmd("PASS secret").await,
        "+OK maildrop has 0 message(s) (0 octets)"
    );
    // After login: no USER, no STLS.
    let (_, body) = c.multi("capa").await;
    assert_eq!(
        body,
        "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION mailrig\r\n.\r\n"
    );
    assert_eq!(c.cmd("STAT").await, "+OK 0 0");
    assert_eq!(
        c.multi("LIST").await,
        ("+OK 0 message(s) (0 octets)".into(), ".\r\n".into())
    );
    assert_eq!(
        c.multi("UIDL").await,
        ("+OK unique-id listing follows".into(), ".\r\n".into())
    );
    assert_eq!(c.cmd("LIST 1").await, "-ERR no such message");
    assert_eq!(c.cmd("RETR 1").await, "-ERR no such message");
    assert_eq!(c.cmd("TOP 1 0").await, "-ERR no such message");
    assert_eq!(c.cmd("DELE 1").await, "-ERR no such message");
    assert_eq!(c.cmd("UIDL 1").await, "-ERR no such message");
    assert_eq!(c.cmd("NOOP").await, "+OK");
    assert_eq!(
        c.cmd("RSET").await,
        "+OK maildrop has 0 message(s) (0 octets)"
    );
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK mx.kanzlei.test POP3 mailrig signing off (maildrop empty)"
    );
    assert!(c.closed().await);
    server.shutdown().await;
}

#[tokio::test]
async fn every_transaction_command_exactly() {
    let server = kanzlei().await;
    put(&server, "anna@kanzlei.test", M1);
    put(&server, "anna@kanzlei.test", M2);
    let v = uid_validity(&server, "anna@kanzlei.test");
    let (s1, s2) = (M1.len(), M2.len());
    let (mut c, pass) = Pop::login(server.pop3_addr(), "Anna@Kanzlei.TEST").await;
    assert_eq!(
        pass,
        format!("+OK maildrop has 2 message(s) ({} octets)", s1 + s2)
    );
    assert_eq!(c.cmd("STAT").await, format!("+OK 2 {}", s1 + s2));
    assert_eq!(
        c.multi("LIST").await,
        (
            format!("+OK 2 message(s) ({} octets)", s1 + s2),
            format!("1 {s1}\r\n2 {s2}\r\n.\r\n")
        )
    );
    assert_eq!(c.cmd("LIST 2").await, format!("+OK 2 {s2}"));
    assert_eq!(c.cmd("LIST 3").await, "-ERR no such message");
    assert_eq!(c.cmd("LIST 0").await, "-ERR no such message");
    assert_eq!(c.cmd("LIST x").await, "-ERR invalid message number");
    assert_eq!(c.cmd("LIST -1").await, "-ERR invalid message number");
    assert_eq!(
        c.multi("UIDL").await,
        (
            "+OK unique-id listing follows".into(),
            format!("1 {v}.1\r\n2 {v}.2\r\n.\r\n")
        )
    );
    assert_eq!(c.cmd("UIDL 2").await, format!("+OK 2 {v}.2"));
    // RETR: dot-stuffed, CRLF added to an unterminated last line, ".\r\n" at the end.
    assert_eq!(
        c.multi("RETR 1").await,
        (
            format!("+OK {s1} octets"),
            "From: a@extern.test\r\nSubject: one\r\n\r\nfirst\r\n..dot line\r\n..\r\nlast\r\n.\r\n"
                .into()
        )
    );
    assert_eq!(
        c.multi("retr 2").await,
        (
            format!("+OK {s2} octets"),
            "From: b@extern.test\r\nSubject: two\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n".into()
        )
    );
    assert_eq!(
        c.multi("TOP 2 1").await,
        (
            "+OK top of message follows".into(),
            "From: b@extern.test\r\nSubject: two\r\n\r\nl1\r\n.\r\n".into()
        )
    );
    assert_eq!(
        c.multi("TOP 1 0").await,
        (
            "+OK top of message follows".into(),
            "From: a@extern.test\r\nSubject: one\r\n\r\n.\r\n".into()
        )
    );
    assert_eq!(
        c.cmd("TOP 1").await,
        "-ERR TOP needs a message number and a line count"
    );
    assert_eq!(c.cmd("TOP 1 x").await, "-ERR invalid line count");
    assert_eq!(c.cmd("RETR").await, "-ERR RETR needs a message number");
    assert_eq!(c.cmd("DELE").await, "-ERR DELE needs a message number");
    // DELE marks; the message disappears from the session's view.
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(c.cmd("DELE 1").await, "-ERR message already deleted");
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {s2}"));
    assert_eq!(c.multi("LIST").await.1, format!("2 {s2}\r\n.\r\n"));
    assert_eq!(c.multi("UIDL").await.1, format!("2 {v}.2\r\n.\r\n"));
    assert_eq!(c.cmd("LIST 1").await, "-ERR message already deleted");
    assert_eq!(c.cmd("RETR 1").await, "-ERR message already deleted");
    assert_eq!(c.cmd("TOP 1 1").await, "-ERR message already deleted");
    assert_eq!(c.cmd("UIDL 1").await, "-ERR message already deleted");
    // RSET unmarks.
    assert_eq!(
        c.cmd("RSET").await,
        format!("+OK maildrop has 2 message(s) ({} octets)", s1 + s2)
    );
    assert_eq!(c.cmd("STAT").await, format!("+OK 2 {}", s1 + s2));
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK mx.kanzlei.test POP3 mailrig signing off (2 message(s) left)"
    );
    assert!(c.closed().await);
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn commands_in_the_wrong_state() {
    let server = kanzlei().await;
    let mut c = Pop::greeted(server.pop3_addr()).await;
    for verb in [
        "STAT", "LIST", "UIDL", "RETR 1", "TOP 1 1", "DELE 1", "RSET",
    ] {
        let name = verb.split(' ').next().unwrap();
        assert_eq!(
            c.cmd(verb).await,
            format!("-ERR {name} is only valid after login")
        );
    }
    assert_eq!(c.cmd("NOOP").await, "-ERR NOOP is only valid after login");
    assert_eq!(c.cmd("PASS secret").await, "-ERR send USER first");
    assert_eq!(c.cmd("USER").await, "-ERR USER needs a name");
    assert_eq!(
        c.cmd("APOP anna@kanzlei.test 0123").await,
        "-ERR not supported; use USER and PASS"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN").await,
        "-ERR not supported; use USER and PASS"
    );
    assert_eq!(c.cmd("XYZZY").await, "-ERR unknown command");
    assert_eq!(c.cmd("").await, "-ERR empty command");
    c.cmd("USER anna@kanzlei.test").await;
    c.cmd("PASS secret").await;
    assert_eq!(
        c.cmd("USER anna@kanzlei.test").await,
        "-ERR already logged in"
    );
    assert_eq!(c.cmd("PASS secret").await, "-ERR already logged in");
    assert_eq!(c.cmd("STLS").await, "-ERR STLS is only valid before login");
    assert_eq!(c.cmd("APOP x y").await, "-ERR already logged in");
    assert_eq!(c.cmd("STAT").await, "+OK 0 0");
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK mx.kanzlei.test POP3 mailrig signing off (maildrop empty)"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_password_and_unknown_user_get_auth_code_then_close() {
    let server = kanzlei().await;
    let mut c = Pop::greeted(server.pop3_addr()).await;
    c.cmd("USER anna@kanzlei.test").await;
    assert_eq!(
        c.cmd("PASS wrong").await,
        "-ERR [AUTH] authentication failed"
    );
    // USER is forgotten after a failure.
    assert_eq!(c.cmd("PASS secret").await, "-ERR send USER first");
    c.cmd("USER nobody@kanzlei.test").await;
    assert_eq!(
        c.cmd("PASS secret").await,
        "-ERR [AUTH] authentication failed"
    );
    // The login is the full address; the local part alone is not a login.
    c.cmd("USER anna").await;
    assert_eq!(
        c.cmd("PASS secret").await,
        "-ERR [AUTH] authentication failed; too many failures, closing"
    );
    assert!(c.closed().await);
    // A password with spaces is the rest of the line.
    let mut c = Pop::greeted(server.pop3_addr()).await;
    c.cmd("USER anna@kanzlei.test").await;
    assert_eq!(
        c.cmd("PASS secret extra").await,
        "-ERR [AUTH] authentication failed"
    );
    c.cmd("USER anna@kanzlei.test").await;
    assert!(c.cmd("PASS secret").await.starts_with("+OK maildrop has 0"));
    server.shutdown().await;
}

#[tokio::test]
async fn dele_then_quit_removes_from_the_store() {
    let server = kanzlei().await;
    put(&server, "bernd@kanzlei.test", M1);
    put(&server, "bernd@kanzlei.test", M2);
    put(&server, "bernd@kanzlei.test", M1);
    let (mut c, _) = Pop::login(server.pop3_addr(), "bernd@kanzlei.test").await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(c.cmd("DELE 3").await, "+OK message 3 deleted");
    // Nothing is removed before QUIT.
    assert_eq!(server.inbox("bernd@kanzlei.test").unwrap().len(), 3);
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK mx.kanzlei.test POP3 mailrig signing off (1 message(s) left)"
    );
    assert!(c.closed().await);
    let left = server.inbox("bernd@kanzlei.test").unwrap();
    assert_eq!(left.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![2]);
    // Renumbered from 1 on the next login; the unique id stays.
    let v = uid_validity(&server, "bernd@kanzlei.test");
    let (mut c, pass) = Pop::login(server.pop3_addr(), "bernd@kanzlei.test").await;
    assert_eq!(
        pass,
        format!("+OK maildrop has 1 message(s) ({} octets)", M2.len())
    );
    assert_eq!(c.cmd("UIDL 1").await, format!("+OK 1 {v}.2"));
    server.shutdown().await;
}

#[tokio::test]
async fn dele_then_disconnect_keeps_everything() {
    let server = kanzlei().await;
    put(&server, "clara@kanzlei.test", M1);
    let (mut c, _) = Pop::login(server.pop3_addr(), "clara@kanzlei.test").await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.inbox("clara@kanzlei.test").unwrap().len(), 1);
    let (mut c, pass) = Pop::login(server.pop3_addr(), "clara@kanzlei.test").await;
    assert!(pass.starts_with("+OK maildrop has 1 message(s)"), "{pass}");
    assert_eq!(c.cmd("LIST 1").await, format!("+OK 1 {}", M1.len()));
    server.shutdown().await;
}

#[tokio::test]
async fn maildrop_is_a_snapshot_taken_at_login() {
    let server = kanzlei().await;
    put(&server, "anna@kanzlei.test", M1);
    let (mut c, _) = Pop::login(server.pop3_addr(), "anna@kanzlei.test").await;
    put(&server, "anna@kanzlei.test", M2);
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {}", M1.len()));
    assert_eq!(c.cmd("LIST 2").await, "-ERR no such message");
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK mx.kanzlei.test POP3 mailrig signing off (maildrop empty)"
    );
    // The late message survived the update and is seen on the next login.
    let (mut c, _) = Pop::login(server.pop3_addr(), "anna@kanzlei.test").await;
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {}", M2.len()));
    assert_eq!(c.multi("RETR 1").await.1, format!("{M2}\r\n.\r\n"));
    server.shutdown().await;
}

#[tokio::test]
async fn mailboxes_are_isolated() {
    let server = kanzlei().await;
    put(&server, "anna@kanzlei.test", M1);
    let (mut c, pass) = Pop::login(server.pop3_addr(), "user07@patente.test").await;
    assert_eq!(pass, "+OK maildrop has 0 message(s) (0 octets)");
    assert_eq!(c.cmd("RETR 1").await, "-ERR no such message");
    server.shutdown().await;
}

#[tokio::test]
async fn mail_delivered_over_smtp_is_read_back() {
    let server = kanzlei().await;
    {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let s = tokio::net::TcpStream::connect(server.smtp_addr())
            .await
            .unwrap();
        let mut s = BufReader::new(s);
        s.get_mut()
            .write_all(
                b"EHLO t\r\nMAIL FROM:<x@extern.test>\r\nRCPT TO:<anna@kanzlei.test>\r\nDATA\r\n",
            )
            .await
            .unwrap();
        let mut seen = 0;
        let mut line = String::new();
        while seen < 5 {
            line.clear();
            s.read_line(&mut line).await.unwrap();
            if line.as_bytes().get(3) == Some(&b' ') {
                seen += 1;
            }
        }
        assert!(line.starts_with("354"), "{line}");
        s.get_mut()
            .write_all(b"Subject: via smtp\r\n\r\n..hi\r\n.\r\nQUIT\r\n")
            .await
            .unwrap();
        line.clear();
        s.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("250 "), "{line}");
    }
    let (mut c, _) = Pop::login(server.pop3_addr(), "anna@kanzlei.test").await;
    let (_, body) = c.multi("RETR 1").await;
    assert!(
        body.starts_with("Return-Path: <x@extern.test>\r\nReceived: from t "),
        "{body}"
    );
    assert!(
        body.ends_with("Subject: via smtp\r\n\r\n..hi\r\n.\r\n"),
        "{body}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pipelined_commands_get_every_response_in_order() {
    let server = kanzlei().await;
    put(&server, "anna@kanzlei.test", M2);
    let mut c = Pop::greeted(server.pop3_addr()).await;
    c.send(
        b"USER anna@kanzlei.test\r\nPASS secret\r\nSTAT\r\nTOP 1 0\r\nDELE 1\r\nSTAT\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(c.line().await, "+OK send PASS");
    assert!(c.line().await.starts_with("+OK maildrop has 1"));
    assert_eq!(c.line().await, format!("+OK 1 {}", M2.len()));
    assert_eq!(c.line().await, "+OK top of message follows");
    assert_eq!(
        c.body().await,
        "From: b@extern.test\r\nSubject: two\r\n\r\n.\r\n"
    );
    assert_eq!(c.line().await, "+OK message 1 deleted");
    assert_eq!(c.line().await, "+OK 0 0");
    assert_eq!(
        c.line().await,
        "+OK mx.kanzlei.test POP3 mailrig signing off (maildrop empty)"
    );
    assert!(c.closed().await);
    assert!(server.inbox("anna@kanzlei.test").unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn plaintext_refused_before_tls_then_stls_and_login() {
    let server = with_toml("\n[security]\nplaintext_auth = false\n").await;
    put(&server, "anna@kanzlei.test", M1);
    let mut c = Pop::greeted(server.pop3_addr()).await;
    let (_, body) = c.multi("CAPA").await;
    assert!(!body.contains("USER\r\n"), "{body}");
    assert!(body.contains("STLS\r\n"), "{body}");
    let refused =
        "-ERR [AUTH] plaintext authentication disallowed on non-secure connections; use STLS first";
    assert_eq!(c.cmd("USER anna@kanzlei.test").await, refused);
    assert_eq!(c.cmd("PASS secret").await, refused);
    let mut c = c.stls(server.ca_path()).await;
    let (_, body) = c.multi("CAPA").await;
    assert!(body.contains("USER\r\n"), "{body}");
    assert!(!body.contains("STLS"), "{body}");
    assert_eq!(
        c.cmd("STLS").await,
        "-ERR command not permitted when TLS active"
    );
    assert_eq!(c.cmd("USER anna@kanzlei.test").await, "+OK send PASS");
    assert_eq!(
        c.cmd("PASS secret").await,
        format!("+OK maildrop has 1 message(s) ({} octets)", M1.len())
    );
    assert_eq!(c.multi("RETR 1").await.1.len(), M1.len() + 2 + 3);
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK mx.kanzlei.test POP3 mailrig signing off (1 message(s) left)"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn stls_forgets_user_given_before_and_drops_pipelined_input() {
    let server = kanzlei().await;
    let mut c = Pop::greeted(server.pop3_addr()).await;
    c.cmd("USER anna@kanzlei.test").await;
    let mut c = c.stls(server.ca_path()).await;
    assert_eq!(c.cmd("PASS secret").await, "-ERR send USER first");
    server.shutdown().await;
}

#[tokio::test]
async fn stls_not_offered_when_the_world_has_no_starttls() {
    let server = with_toml("\n[security]\nstarttls = false\n").await;
    let mut c = Pop::greeted(server.pop3_addr()).await;
    assert!(!c.multi("CAPA").await.1.contains("STLS"));
    assert_eq!(c.cmd("STLS").await, "-ERR STLS not supported");
    server.shutdown().await;
}

#[tokio::test]
async fn long_lines_and_garbage_are_refused_without_harm() {
    let server = kanzlei().await;
    let mut c = Pop::greeted(server.pop3_addr()).await;
    // 255 octets with CRLF is the limit (RFC 2449).
    let ok_line = format!("USER {}", "a".repeat(255 - 2 - 5));
    assert_eq!(c.cmd(&ok_line).await, "+OK send PASS");
    let long = format!("USER {}", "a".repeat(255 - 2 - 5 + 1));
    assert_eq!(c.cmd(&long).await, "-ERR line too long");
    // A megabyte without a line end, then a line end: one error, then normal service.
    c.send(&vec![b'x'; 1 << 20]).await;
    c.send(b"\r\nNOOP\r\n").await;
    assert_eq!(c.line().await, "-ERR line too long");
    assert_eq!(c.line().await, "-ERR NOOP is only valid after login");
    // Binary junk and bare LF line ends.
    c.send(b"\x00\xff\xfe junk\nCAPA\n").await;
    assert_eq!(c.line().await, "-ERR unknown command");
    assert_eq!(c.line().await, "+OK Capability list follows");
    c.body().await;
    assert_eq!(
        c.cmd("LIST 99999999999999999999999").await,
        "-ERR LIST is only valid after login"
    );
    let (mut c2, _) = Pop::login(server.pop3_addr(), "anna@kanzlei.test").await;
    assert_eq!(
        c2.cmd("LIST 99999999999999999999999").await,
        "-ERR invalid message number"
    );
    assert_eq!(
        c2.cmd("TOP 1 99999999999999999999999").await,
        "-ERR invalid line count"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_says_so_and_closes_without_deleting() {
    let server = kanzlei().await;
    put(&server, "anna@kanzlei.test", M1);
    let (mut c, _) = Pop::login(server.pop3_addr(), "anna@kanzlei.test").await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    let state = std::sync::Arc::clone(server.state());
    let waiter = tokio::spawn(server.shutdown());
    assert_eq!(c.line().await, "-ERR server shutting down");
    assert!(c.closed().await);
    waiter.await.unwrap();
    assert_eq!(state.store.total_messages(), 1);
}

#[tokio::test]
async fn idle_timeout_closes_the_connection() {
    let server = with_toml("\n[limits]\nidle_timeout_secs = 1\n").await;
    let mut c = Pop::greeted(server.pop3_addr()).await;
    assert_eq!(c.line().await, "-ERR idle timeout, closing connection");
    assert!(c.closed().await);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_are_counted() {
    let server = kanzlei().await;
    let mut c = Pop::greeted(server.pop3_addr()).await;
    c.cmd("QUIT").await;
    assert!(c.closed().await);
    let m = &server.state().metrics;
    assert!(
        eventually(
            Duration::from_secs(5),
            || mailrig_server::state::Metrics::get(&m.connections_active) == 0
        )
        .await
    );
    assert!(mailrig_server::state::Metrics::get(&m.connections_total) >= 1);
    server.shutdown().await;
}

#[tokio::test]
async fn maildir_store_update_removes_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .maildir(dir.path())
        .start()
        .await
        .unwrap();
    put(&server, "anna@kanzlei.test", M1);
    put(&server, "anna@kanzlei.test", M2);
    let (mut c, _) = Pop::login(server.pop3_addr(), "anna@kanzlei.test").await;
    assert_eq!(c.cmd("DELE 2").await, "+OK message 2 deleted");
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK mx.kanzlei.test POP3 mailrig signing off (1 message(s) left)"
    );
    assert!(c.closed().await);
    server.shutdown().await;
    // A fresh server over the same Maildir sees only the message kept.
    let server = MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .maildir(dir.path())
        .start()
        .await
        .unwrap();
    let (mut c, pass) = Pop::login(server.pop3_addr(), "anna@kanzlei.test").await;
    assert_eq!(
        pass,
        format!("+OK maildrop has 1 message(s) ({} octets)", M1.len())
    );
    assert_eq!(
        c.multi("RETR 1").await.1,
        "From: a@extern.test\r\nSubject: one\r\n\r\nfirst\r\n..dot line\r\n..\r\nlast\r\n.\r\n"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_reads_does_not_block_shutdown() {
    let server = kanzlei().await;
    // A message of about 1 MB, retrieved 64 times without reading a byte.
    let big = format!(
        "Subject: big\r\n\r\n{}",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n".repeat(16 * 1024)
    );
    put(&server, "anna@kanzlei.test", &big);
    let (mut c, _) = Pop::login(server.pop3_addr(), "anna@kanzlei.test").await;
    c.send("RETR 1\r\n".repeat(64).as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    drop(c);
}
