//! Failed logins per connection and the PLAIN authorization identity, the
//! same in every protocol (issue 9): after `max_auth_failures` (default 3)
//! failed attempts SMTP says `421 4.7.0`, IMAP `* BYE`, POP3 `-ERR` and the
//! connection closes; a PLAIN response naming another user as authorization
//! identity is refused by SMTP and IMAP alike (RFC 4616). Driven by Python's
//! smtplib and imaplib, and raw bytes for POP3.

mod support;

use std::process::Command;

use support::pop3::Pop;

const WORLD: &str = "[[domain]]\nname='d.test'\npassword='p'\nmailboxes=['a', 'b']\n";

async fn start(extra: &str) -> mailrig_server::MockServer {
    mailrig_server::MockServer::builder()
        .scenario_toml(&format!("{extra}\n{WORLD}"))
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// Runs a Python script with the port as its argument; its stdout lines.
async fn python(script: &'static str, port: u16) -> Vec<String> {
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", script, &port.to_string()])
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
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// smtplib logs in with a wrong password until the server hangs up (at most
/// five times), printing what each attempt got.
const SMTPLIB_WRONG_PASSWORDS: &str = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("x")
for i in range(5):
    try:
        s.login("a@d.test", "wrong")
        print("logged in")
    except smtplib.SMTPAuthenticationError as e:
        print(e.smtp_code, e.smtp_error.decode())
    except smtplib.SMTPServerDisconnected as e:
        print("disconnected")
        break
    except smtplib.SMTPResponseException as e:
        print(e.smtp_code, e.smtp_error.decode())
"#;

#[tokio::test]
async fn smtplib_third_wrong_password_closes_with_421() {
    let server = start("").await;
    let got = python(SMTPLIB_WRONG_PASSWORDS, server.smtp_addr().port()).await;
    // Each smtplib login() tries PLAIN, then LOGIN, and reports the last
    // refusal: the first call fails twice (535), the second once more, and
    // its LOGIN attempt reads the 421; the third finds the connection closed.
    assert_eq!(
        got,
        [
            "535 5.7.8 Error: authentication failed",
            "421 4.7.0 mx.mailrig.test Error: too many failed authentication attempts",
            "disconnected"
        ]
    );
    server.shutdown().await;
}

/// smtplib and imaplib authenticate with PLAIN as a@d.test, first with the
/// authorization identity b@d.test, then without one (or with the login).
const PLAIN_AS_ANOTHER_USER: &str = r#"
import imaplib, smtplib, sys
port_smtp, port_imap = map(int, sys.argv[1].split(","))
s = smtplib.SMTP("127.0.0.1", port_smtp, timeout=10)
s.ehlo("x")
try:
    code, _ = s.auth("PLAIN", lambda challenge=None: "b@d.test\0a@d.test\0p")
    print("smtp", code)
except smtplib.SMTPAuthenticationError as e:
    print("smtp", e.smtp_code, e.smtp_error.decode())
code, _ = s.auth("PLAIN", lambda challenge=None: "\0a@d.test\0p")
print("smtp", code)
m = imaplib.IMAP4("127.0.0.1", port_imap, timeout=10)
try:
    print("imap", m.authenticate("PLAIN", lambda _: b"b@d.test\0a@d.test\0p")[0])
except imaplib.IMAP4.error as e:
    print("imap", e)
print("imap", m.authenticate("PLAIN", lambda _: b"a@d.test\0a@d.test\0p")[0])
"#;

#[tokio::test]
async fn plain_with_another_users_authzid_is_refused_by_smtp_and_imap() {
    let server = start("").await;
    let ports = format!(
        "{},{}",
        server.smtp_addr().port(),
        server.imap_addr().port()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", PLAIN_AS_ANOTHER_USER, &ports])
            .output()
    })
    .await
    .unwrap()
    .expect("this test needs python3: run scripts/install-test-deps.sh");
    let got = String::from_utf8_lossy(&out.stdout);
    let why = "cannot act as another user (the authorization identity differs from the login)";
    assert_eq!(
        got,
        format!(
            "smtp 535 5.7.8 Error: authentication failed: {why}\nsmtp 235\nimap [AUTHORIZATIONFAILED] Authentication failed: {why}\nimap OK\n"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown().await;
}

/// imaplib logs in with a wrong password until the server hangs up.
const IMAPLIB_WRONG_PASSWORDS: &str = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=10)
for i in range(5):
    try:
        m.login("a@d.test", "wrong")
        print("logged in")
    except imaplib.IMAP4.abort as e:
        print("abort")
        break
    except imaplib.IMAP4.error as e:
        print("refused")
"#;

#[tokio::test]
async fn imaplib_third_wrong_password_gets_bye() {
    let server = start("").await;
    let got = python(IMAPLIB_WRONG_PASSWORDS, server.imap_addr().port()).await;
    assert_eq!(got, ["refused", "refused", "refused", "abort"]);
    server.shutdown().await;
}

#[tokio::test]
async fn max_auth_failures_applies_to_every_protocol() {
    let server = start("[limits]\nmax_auth_failures = 1").await;
    let smtp = python(SMTPLIB_WRONG_PASSWORDS, server.smtp_addr().port()).await;
    // smtplib's first call tries PLAIN (535, then the 421 waits) and LOGIN
    // (which reads the 421); the second finds the connection closed.
    assert_eq!(
        smtp,
        [
            "421 4.7.0 mx.mailrig.test Error: too many failed authentication attempts",
            "disconnected"
        ]
    );
    let imap = python(IMAPLIB_WRONG_PASSWORDS, server.imap_addr().port()).await;
    assert_eq!(imap, ["refused", "abort"]);
    let mut pop = Pop::greeted(server.pop3_addr()).await;
    pop.cmd("USER a@d.test").await;
    assert_eq!(
        pop.cmd("PASS wrong").await,
        "-ERR [AUTH] authentication failed; too many failures, closing"
    );
    assert!(pop.closed().await);
    server.shutdown().await;
}
