//! Long content lines in DATA (issue 9): unwrapped HTML of 3,000 and 100,000
//! characters on one line is accepted by default, as Postfix, Exchange and
//! Mailpit accept it, sent by Python's smtplib and by swaks; a scenario's
//! `max_line_length` makes the server strict (`500 5.5.2`); command lines
//! keep their limit either way; and the DATA reply under `bare_lf = "reject"`
//! does not depend on how TCP split the bytes.

mod support;

use std::process::Command;

use support::smtp::Raw;
use support::start_toml;

const WORLD: &str = "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a', 'b']\n";

/// Sends one message per line length over one smtplib connection and prints
/// one result per message: `ok`, or the SMTP code and text that refused it.
const SMTPLIB_LONG_LINES: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
s.ehlo("app.extern.test")
for n in map(int, sys.argv[2:]):
    html = "<p>" + "x" * (n - 7) + "</p>"
    assert len(html) == n
    msg = ("From: app@extern.test\r\nTo: a@d.test\r\nSubject: line of %d\r\n"
           "Content-Type: text/html\r\n\r\n%s\r\nend\r\n" % (n, html))
    try:
        s.sendmail("app@extern.test", ["a@d.test"], msg.encode())
        print("ok")
    except smtplib.SMTPDataError as e:
        print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

async fn smtplib(port: u16, lengths: &[usize]) -> Vec<String> {
    let mut args = vec![
        "-c".to_string(),
        SMTPLIB_LONG_LINES.to_string(),
        port.to_string(),
    ];
    args.extend(lengths.iter().map(usize::to_string));
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(&args).output())
        .await
        .unwrap()
        .expect("this test needs python3: run scripts/install-test-deps.sh");
    assert!(
        out.status.success(),
        "smtplib failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The stored message with this subject, as text.
fn stored(server: &mailrig_server::MockServer, who: &str, subject: &str) -> Option<String> {
    server.inbox(who).unwrap().iter().find_map(|m| {
        let raw = String::from_utf8_lossy(&m.raw).into_owned();
        raw.contains(&format!("Subject: {subject}\r\n"))
            .then_some(raw)
    })
}

#[tokio::test]
async fn smtplib_sends_3000_and_100000_character_lines_by_default() {
    let server = start_toml(WORLD).await;
    let results = smtplib(server.smtp_addr().port(), &[3_000, 100_000]).await;
    assert_eq!(results, ["ok", "ok"]);
    for n in [3_000, 100_000] {
        let raw = stored(&server, "a@d.test", &format!("line of {n}"))
            .unwrap_or_else(|| panic!("the message with a {n}-character line was not stored"));
        let line = format!("\r\n<p>{}</p>\r\nend\r\n", "x".repeat(n - 7));
        assert!(raw.ends_with(&line), "the {n}-character line was altered");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn swaks_sends_a_3000_character_line_by_default() {
    let server = start_toml(WORLD).await;
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.eml");
    let html = format!("<p>{}</p>", "y".repeat(2_993));
    std::fs::write(
        &body,
        format!("Subject: from swaks\r\nContent-Type: text/html\r\n\r\n{html}\r\n"),
    )
    .unwrap();
    let mut cmd = Command::new("swaks");
    cmd.args(["--server", &server.smtp_addr().to_string()])
        .args(["--from", "app@extern.test", "--to", "b@d.test"])
        .args(["--timeout", "20", "--data"])
        .arg(&body);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("this test needs swaks: run scripts/install-test-deps.sh");
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "swaks failed:\n{transcript}");
    assert!(
        transcript.contains("<-  250 2.0.0 Ok: queued as"),
        "{transcript}"
    );
    let raw = stored(&server, "b@d.test", "from swaks").expect("stored");
    assert!(raw.contains(&format!("\r\n\r\n{html}\r\n")), "{raw}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_strict_scenario_refuses_long_lines_with_500_and_stores_nothing() {
    let server = start_toml(&format!("[limits]\nmax_line_length = 1000\n{WORLD}")).await;
    // 998 characters + CRLF = 1000 octets: the longest line allowed.
    let results = smtplib(server.smtp_addr().port(), &[3_000, 998, 999, 100_000]).await;
    let refused = "500 5.5.2 Error: line too long in message content";
    assert_eq!(results, [refused, "ok", refused, refused]);
    let inbox = server.inbox("a@d.test").unwrap();
    assert_eq!(
        inbox.len(),
        1,
        "only the message within the limit is stored"
    );
    assert!(stored(&server, "a@d.test", "line of 998").is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn command_lines_keep_their_limit() {
    let server = start_toml(WORLD).await;
    let mut c = Raw::greeted(server.smtp_addr()).await;
    c.cmd("EHLO x", 250).await;
    let long = format!("MAIL FROM:<{}@extern.test>", "z".repeat(3_000));
    assert_eq!(c.cmd(&long, 500).await, "500 5.5.2 Error: line too long");
    c.cmd("MAIL FROM:<app@extern.test>", 250).await;
    c.cmd("QUIT", 221).await;
    server.shutdown().await;
}

/// Issue 9: with `bare_lf = "reject"` and a line limit, a long line ended by
/// a bare LF got `550 5.6.2` in one read and `500 5.5.2` when TCP split it.
/// Sent in one write and in two (the second after a pause, so the server
/// reads them apart), the reply is the same.
#[tokio::test]
async fn bare_lf_reject_reply_does_not_depend_on_the_tcp_split() {
    let toml = format!("[server]\nbare_lf = 'reject'\n[limits]\nmax_line_length = 1000\n{WORLD}");
    let server = start_toml(&toml).await;
    let mut content = vec![b'y'; 1_500];
    content.extend_from_slice(b"\nz\r\n.\r\n");
    for cut in [None, Some(1_200), Some(1_500)] {
        let mut c = Raw::greeted(server.smtp_addr()).await;
        c.writer.as_ref().set_nodelay(true).unwrap();
        c.cmd("EHLO x", 250).await;
        c.cmd("MAIL FROM:<app@extern.test>", 250).await;
        c.cmd("RCPT TO:<a@d.test>", 250).await;
        c.cmd("DATA", 354).await;
        match cut {
            None => c.send(&content).await,
            Some(i) => {
                c.send(&content[..i]).await;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                c.send(&content[i..]).await;
            }
        }
        assert_eq!(
            c.expect(550).await,
            "550 5.6.2 Error: bare <LF> received in message content",
            "cut at {cut:?}"
        );
        c.cmd("QUIT", 221).await;
    }
    assert!(server.inbox("a@d.test").unwrap().is_empty());
    server.shutdown().await;
}
