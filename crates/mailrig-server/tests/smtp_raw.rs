//! Raw-bytes tests of the SMTP server: exact replies to good and bad input,
//! and the server still serving others afterwards.

mod support;

use std::time::Duration;

use mailrig_server::MockServer;
use support::smtp::Raw;
use support::{kanzlei, start_toml};

async fn still_serves(server: &MockServer) {
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO check", 250).await;
    c.send_mail(
        "a@b.test",
        &["clara@kanzlei.test"],
        "Subject: still here\r\n\r\nok",
    )
    .await;
    c.cmd("QUIT", 221).await;
}

#[tokio::test]
async fn greeting_ehlo_and_a_full_transaction() {
    let server = kanzlei().await;
    let mut c = Raw::connect(server.smtp_addr()).await;
    assert_eq!(c.expect(220).await, "220 mx.kanzlei.test ESMTP mailrig");
    let ehlo = c.cmd("EHLO client.test", 250).await;
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "STARTTLS",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(
            ehlo.lines().any(|l| &l[4..] == ext),
            "{ext} missing in {ehlo}"
        );
    }
    assert!(ehlo.starts_with("250-mx.kanzlei.test Hello client.test [127.0.0.1]"));
    assert_eq!(c.cmd("HELO client.test", 250).await, "250 mx.kanzlei.test");
    c.cmd("EHLO client.test", 250).await;
    assert_eq!(c.cmd("NOOP", 250).await, "250 2.0.0 Ok");
    assert_eq!(
        c.cmd("MAIL FROM:<sender@extern.test> SIZE=120 BODY=8BITMIME", 250)
            .await,
        "250 2.1.0 Ok"
    );
    assert_eq!(
        c.cmd(
            "RCPT TO:<anna@kanzlei.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;anna@kanzlei.test",
            250
        )
        .await,
        "250 2.1.5 Ok"
    );
    assert_eq!(
        c.cmd("RCPT TO:<User07@PATENTE.test>", 250).await,
        "250 2.1.5 Ok"
    );
    assert_eq!(
        c.cmd("DATA", 354).await,
        "354 End data with <CR><LF>.<CR><LF>"
    );
    c.send(b"Subject: Frist\r\nMessage-ID: <m1@extern.test>\r\n\r\n..leading dot\r\nline\r\n.\r\n")
        .await;
    let queued = c.expect(250).await;
    assert!(queued.starts_with("250 2.0.0 Ok: queued as "), "{queued}");
    assert_eq!(c.cmd("RSET", 250).await, "250 2.0.0 Ok");
    assert_eq!(c.cmd("QUIT", 221).await, "221 2.0.0 Bye");
    assert!(c.closed().await);

    for who in ["anna@kanzlei.test", "user07@patente.test"] {
        let inbox = server.inbox(who).unwrap();
        assert_eq!(inbox.len(), 1, "{who}");
        let raw = String::from_utf8(inbox[0].raw.to_vec()).unwrap();
        assert!(raw.starts_with("Return-Path: <sender@extern.test>\r\nReceived: from client.test (127.0.0.1 [127.0.0.1])\r\n\tby mx.kanzlei.test (mailrig) with ESMTP id "), "{raw}");
        assert!(
            raw.ends_with(
                "Subject: Frist\r\nMessage-ID: <m1@extern.test>\r\n\r\n.leading dot\r\nline\r\n"
            ),
            "{raw}"
        );
        let env = inbox[0].envelope.as_ref().unwrap();
        assert_eq!(&*env.mail_from, "sender@extern.test");
        assert_eq!(*env.rcpt_to, ["anna@kanzlei.test", "User07@PATENTE.test"]);
        assert_eq!(inbox[0].uid, 1);
    }
    assert!(server.inbox("bernd@kanzlei.test").unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn pipelined_transaction_gets_every_reply_in_order() {
    let server = kanzlei().await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO p", 250).await;
    c.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<anna@kanzlei.test>\r\nRCPT TO:<nobody@kanzlei.test>\r\nRCPT TO:<bernd@kanzlei.test>\r\nDATA\r\n").await;
    assert_eq!(c.reply().await.code, 250);
    assert_eq!(c.reply().await.code, 250);
    let r = c.reply().await;
    assert_eq!(
        r.text,
        "550 5.1.1 <nobody@kanzlei.test>: Recipient address rejected: User unknown"
    );
    assert_eq!(c.reply().await.code, 250);
    assert_eq!(c.reply().await.code, 354);
    // Body, end, a second whole transaction and QUIT in one write.
    c.send(b"Subject: one\r\n\r\nx\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<clara@kanzlei.test>\r\nDATA\r\nSubject: two\r\n\r\ny\r\n.\r\nQUIT\r\n").await;
    for code in [250, 250, 250, 354, 250, 221] {
        assert_eq!(c.reply().await.code, code);
    }
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 1);
    assert_eq!(server.inbox("bernd@kanzlei.test").unwrap().len(), 1);
    let clara = server.inbox("clara@kanzlei.test").unwrap();
    assert!(
        clara[0].raw.starts_with(b"Return-Path: <>\r\n"),
        "null sender kept"
    );
    let j = server.journal().filter(Some("nobody@kanzlei.test"), None);
    assert_eq!(j.len(), 1, "the rejection is journaled");
    server.shutdown().await;
}

#[tokio::test]
async fn sequence_errors_have_exact_codes() {
    let server = kanzlei().await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    assert_eq!(
        c.cmd("MAIL FROM:<a@b.test>", 503).await,
        "503 5.5.1 Error: send HELO/EHLO first"
    );
    c.cmd("EHLO x", 250).await;
    assert_eq!(
        c.cmd("RCPT TO:<anna@kanzlei.test>", 503).await,
        "503 5.5.1 Error: need MAIL command"
    );
    assert_eq!(
        c.cmd("DATA", 503).await,
        "503 5.5.1 Error: need MAIL command"
    );
    c.cmd("MAIL FROM:<a@b.test>", 250).await;
    assert_eq!(
        c.cmd("MAIL FROM:<a@b.test>", 503).await,
        "503 5.5.1 Error: nested MAIL command"
    );
    assert_eq!(
        c.cmd("DATA", 554).await,
        "554 5.5.1 Error: no valid recipients"
    );
    assert_eq!(
        c.cmd("RCPT TO:<x@elsewhere.test>", 554).await,
        "554 5.7.1 <x@elsewhere.test>: Relay access denied"
    );
    assert_eq!(
        c.cmd("FOO bar", 500).await,
        "500 5.5.2 Error: command not recognized"
    );
    assert_eq!(
        c.cmd("EXPN staff", 502).await,
        "502 5.5.1 Error: EXPN is not supported"
    );
    assert_eq!(
        c.cmd("VRFY anna", 252).await,
        "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery"
    );
    assert!(c.cmd("HELP", 214).await.contains("EHLO"));
    c.cmd("QUIT", 221).await;
    server.shutdown().await;
}

#[tokio::test]
async fn mail_from_without_brackets_and_bad_addresses() {
    let server = kanzlei().await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO x", 250).await;
    let r = c.cmd("MAIL FROM:a@b.test", 501).await;
    assert!(
        r.starts_with("501 5.5.4 Syntax: MAIL FROM:<reverse-path>"),
        "{r}"
    );
    c.cmd("MAIL FROM:<a@b.test>", 250).await;
    let r = c.cmd("RCPT TO:anna@kanzlei.test", 501).await;
    assert!(
        r.starts_with("501 5.5.4 Syntax: RCPT TO:<forward-path>"),
        "{r}"
    );
    assert_eq!(
        c.cmd("RCPT TO:<no-at-sign>", 501).await,
        "501 5.1.3 Bad recipient address syntax"
    );
    assert_eq!(
        c.cmd("RCPT TO:<jörg@kanzlei.test>", 553).await,
        "553 5.6.7 Must declare SMTPUTF8 to send unicode address"
    );
    c.cmd("RSET", 250).await;
    assert_eq!(
        c.cmd("MAIL FROM:<a@b.test> FOO=BAR", 555).await,
        "555 5.5.4 Unsupported option: FOO=BAR"
    );
    c.cmd("QUIT", 221).await;
    server.shutdown().await;
}

#[tokio::test]
async fn size_is_advertised_and_enforced() {
    let toml = "[limits]\nmax_message_size = 1000\n[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a']\n";
    let server = start_toml(toml).await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    assert!(c.cmd("EHLO x", 250).await.contains("250-SIZE 1000"));
    assert_eq!(
        c.cmd("MAIL FROM:<s@x.test> SIZE=1001", 552).await,
        "552 5.3.4 Message size exceeds fixed limit"
    );
    let j = server.journal().entries();
    assert_eq!(j.len(), 1, "the refusal is journaled: {j:?}");
    assert_eq!(j[0].stage, mailrig_core::fault::Stage::Mail);
    assert_eq!(j[0].mail_from.as_deref(), Some("s@x.test"));
    c.cmd("MAIL FROM:<s@x.test> SIZE=500", 250).await;
    c.cmd("RCPT TO:<a@d.test>", 250).await;
    c.cmd("DATA", 354).await;
    let body = "x".repeat(80) + "\r\n";
    c.send(body.repeat(20).as_bytes()).await;
    c.send(b".\r\n").await;
    assert_eq!(c.expect(552).await, "552 5.3.4 Error: message file too big");
    assert!(server.inbox("a@d.test").unwrap().is_empty());
    // The session goes on.
    c.send_mail("s@x.test", &["a@d.test"], "small").await;
    assert_eq!(server.inbox("a@d.test").unwrap().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_1_mib_line_and_random_bytes_do_not_hurt() {
    let server = kanzlei().await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    let mut line = vec![b'A'; 1 << 20];
    line.extend_from_slice(b"\r\n");
    c.send(&line).await;
    assert_eq!(c.expect(500).await, "500 5.5.2 Error: line too long");
    assert_eq!(c.cmd("NOOP", 250).await, "250 2.0.0 Ok");

    // Random bytes (a fixed xorshift sequence) in one connection.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut junk = Vec::with_capacity(64 * 1024);
    for _ in 0..64 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        junk.push(x as u8);
    }
    let mut r = Raw::greeted(server.smtp_addr()).await;
    r.send(&junk).await;
    r.send(b"\r\nQUIT\r\n").await;
    // Every reply is a well-formed error until QUIT's 221 (or the line cap's 500).
    let mut saw_quit = false;
    while let Some(reply) = r.try_reply().await {
        assert!(
            matches!(
                reply.code,
                500 | 501 | 502 | 503 | 221 | 250 | 555 | 252 | 214 | 554 | 220 | 504 | 553
            ),
            "{}",
            reply.text
        );
        if reply.code == 221 {
            saw_quit = true;
            break;
        }
    }
    assert!(saw_quit, "the session survived random bytes");
    still_serves(&server).await;
    assert_eq!(
        c.cmd("NOOP", 250).await,
        "250 2.0.0 Ok",
        "the first client is still served"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn long_line_in_data_is_accepted_unless_the_scenario_limits_it() {
    let server = kanzlei().await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO x", 250).await;
    c.cmd("MAIL FROM:<a@b.test>", 250).await;
    c.cmd("RCPT TO:<anna@kanzlei.test>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(&vec![b'y'; 5000]).await;
    c.send(b"\r\n.\r\n").await;
    c.expect(250).await;
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 1);
    server.shutdown().await;

    let toml = "[limits]\nmax_line_length = 1000\n[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a']\n";
    let server = start_toml(toml).await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO x", 250).await;
    c.cmd("MAIL FROM:<a@b.test>", 250).await;
    c.cmd("RCPT TO:<a@d.test>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(&vec![b'y'; 5000]).await;
    c.send(b"\r\n.\r\n").await;
    assert_eq!(
        c.expect(500).await,
        "500 5.5.2 Error: line too long in message content"
    );
    assert!(server.inbox("a@d.test").unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn max_recipients_gives_452() {
    let server = kanzlei().await; // default max_recipients = 100
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO x", 250).await;
    c.cmd("MAIL FROM:<a@b.test>", 250).await;
    let mut batch = String::new();
    for _ in 0..1000 {
        batch.push_str("RCPT TO:<anna@kanzlei.test>\r\n");
    }
    c.send(batch.as_bytes()).await;
    let mut codes = Vec::new();
    for _ in 0..1000 {
        codes.push(c.reply().await.code);
    }
    assert!(codes[..100].iter().all(|&c| c == 250));
    assert!(codes[100..].iter().all(|&c| c == 452));
    c.cmd("DATA", 354).await;
    c.send(b"x\r\n.\r\n").await;
    c.expect(250).await;
    assert_eq!(
        server.inbox("anna@kanzlei.test").unwrap().len(),
        1,
        "one copy per mailbox"
    );
    let mut c2 = Raw::greeted(server.smtp_addr()).await;
    c2.cmd("EHLO x", 250).await;
    c2.cmd("MAIL FROM:<a@b.test>", 250).await;
    assert_eq!(
        c2.cmd("RCPT TO:<anna@kanzlei.test>", 250).await,
        "250 2.1.5 Ok"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn disconnect_mid_data_stores_nothing() {
    let server = kanzlei().await;
    {
        let mut c = Raw::greeted(server.smtp_addr()).await;
        c.cmd("EHLO x", 250).await;
        c.cmd("MAIL FROM:<a@b.test>", 250).await;
        c.cmd("RCPT TO:<bernd@kanzlei.test>", 250).await;
        c.cmd("DATA", 354).await;
        c.send(b"Subject: half\r\n\r\nthis message never ends\r\n")
            .await;
    } // dropped: connection closed mid-DATA
    still_serves(&server).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(server.inbox("bernd@kanzlei.test").unwrap().is_empty());
    assert_eq!(server.store().total_messages(), 1, "only the check message");
    server.shutdown().await;
}

#[tokio::test]
async fn auth_required_plain_and_login() {
    let toml = "[security]\nsmtp_auth='required'\n[[domain]]\nname='d.test'\npassword='pw'\nmailboxes=['a']\n";
    let server = start_toml(toml).await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO x", 250).await;
    assert_eq!(
        c.cmd("MAIL FROM:<a@d.test>", 530).await,
        "530 5.7.0 Authentication required"
    );
    // AUTH PLAIN with a wrong password, then right; "\0a@d.test\0pw"
    assert_eq!(
        c.cmd("AUTH PLAIN AGFAZC50ZXN0AHdyb25n", 535).await,
        "535 5.7.8 Error: authentication failed"
    );
    c.cmd("AUTH PLAIN", 334).await;
    assert_eq!(
        c.cmd("AGFAZC50ZXN0AHB3", 235).await,
        "235 2.7.0 Authentication successful"
    );
    c.cmd("MAIL FROM:<a@d.test>", 250).await;
    c.cmd("QUIT", 221).await;

    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO x", 250).await;
    assert_eq!(c.cmd("AUTH LOGIN", 334).await, "334 VXNlcm5hbWU6");
    assert_eq!(c.cmd("YUBkLnRlc3Q=", 334).await, "334 UGFzc3dvcmQ6");
    c.cmd("cHc=", 235).await;
    assert_eq!(
        c.cmd("AUTH CRAM-MD5", 503).await,
        "503 5.5.1 Error: already authenticated"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn auth_refused_before_tls_when_the_scenario_says_so() {
    let toml = "[security]\nplaintext_auth=false\n[[domain]]\nname='d.test'\npassword='pw'\nmailboxes=['a']\n";
    let server = start_toml(toml).await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    let ehlo = c.cmd("EHLO x", 250).await;
    assert!(
        !ehlo.contains("AUTH"),
        "AUTH not offered before TLS: {ehlo}"
    );
    assert!(ehlo.contains("STARTTLS"));
    assert_eq!(
        c.cmd("AUTH PLAIN AGFAZC50ZXN0AHB3", 538).await,
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn max_connections_and_idle_timeout() {
    let toml = "[limits]\nmax_connections=2\nidle_timeout_secs=1\n[[domain]]\nname='d.test'\npassword='pw'\nmailboxes=['a']\n";
    let server = start_toml(toml).await;
    let mut a = Raw::greeted(server.smtp_addr()).await;
    let _b = Raw::greeted(server.smtp_addr()).await;
    let mut c = Raw::connect(server.smtp_addr()).await;
    assert_eq!(
        c.expect(421).await,
        "421 4.7.0 Error: too many connections; try again later"
    );
    assert!(c.closed().await);
    // Idle clients are told and dropped after the timeout.
    assert_eq!(
        a.expect(421).await,
        "421 4.4.2 mx.mailrig.test Error: timeout exceeded"
    );
    assert!(a.closed().await);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_sessions() {
    let server = kanzlei().await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO x", 250).await;
    let addr = server.smtp_addr();
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown finishes");
    assert_eq!(
        c.expect(421).await,
        "421 4.3.2 mx.kanzlei.test Service shutting down"
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn aliases_catch_all_and_vrfy_policy() {
    let toml = r#"
[server]
vrfy = "verify"
[[domain]]
name = "d.test"
password = "pw"
mailboxes = ["a", "b", "c"]
catch_all = "c"
[domain.aliases]
team = ["a", "b"]
"#;
    let server = start_toml(toml).await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO x", 250).await;
    assert_eq!(c.cmd("VRFY <a@d.test>", 250).await, "250 2.0.0 <a@d.test>");
    c.send_mail(
        "s@x.test",
        &["team@d.test", "a@d.test", "tpyo@d.test"],
        "Subject: t\r\n\r\nx",
    )
    .await;
    for m in ["a@d.test", "b@d.test", "c@d.test"] {
        assert_eq!(server.inbox(m).unwrap().len(), 1, "{m}");
    }
    server.shutdown().await;
}
