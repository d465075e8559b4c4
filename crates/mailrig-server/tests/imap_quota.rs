//! QUOTA (RFC 9208) end to end: a scenario with quotas, mail delivered over
//! SMTP until the server answers `552 5.2.2`, and IMAP (raw and Python's
//! imaplib) showing the same usage and limits.

mod support;

use std::path::PathBuf;

use mailrig_server::MockServer;

use support::imap::*;
use support::smtp::Raw;

const FROM: &str = "bob@example.test";

/// Sends mail to alice until a RCPT is refused; returns how many went in
/// and the refusal (at most `max` tries).
async fn fill(smtp: std::net::SocketAddr, max: usize) -> (usize, String) {
    let mut c = Raw::greeted(smtp).await;
    c.cmd("EHLO client.test", 250).await;
    for n in 0..max {
        c.cmd(&format!("MAIL FROM:<{FROM}>"), 250).await;
        c.send(format!("RCPT TO:<{ALICE}>\r\n").as_bytes()).await;
        let r = c.reply().await;
        if r.code != 250 {
            return (n, r.text);
        }
        c.cmd("DATA", 354).await;
        let body = format!(
            "From: <{FROM}>\r\nSubject: fill {n}\r\n\r\n{}\r\n.\r\n",
            "x".repeat(600)
        );
        c.send(body.as_bytes()).await;
        c.expect(250).await;
    }
    (max, "never refused".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_fills_the_quota_and_imap_shows_usage_at_the_limit() {
    let server = start_with(&scenario(
        "[limits]\nquota_messages = 3\nquota_storage_kib = 100\n",
    ))
    .await;
    let (sent, refusal) = fill(server.smtp_addr(), 10).await;
    assert_eq!(sent, 3);
    assert!(refusal.starts_with("552 5.2.2 "), "{refusal}");
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    let usage = server
        .store()
        .mailbox(server.world().mailbox_by_address(ALICE).expect("alice"))
        .usage();
    assert_eq!(usage.messages, 3);
    let kib = usage.bytes.div_ceil(1024);
    assert_eq!(
        c.cmd("q1 GETQUOTAROOT INBOX").await,
        format!(
            "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE {kib} 100 MESSAGE 3 3)\r\nq1 OK Getquotaroot completed\r\n"
        )
    );
    assert_eq!(
        c.cmd("q2 GETQUOTA \"\"").await,
        format!("* QUOTA \"\" (STORAGE {kib} 100 MESSAGE 3 3)\r\nq2 OK Getquota completed\r\n")
    );
    // Expunging one makes room: SMTP takes exactly one more.
    assert!(c.cmd("s1 SELECT INBOX").await.contains("s1 OK"));
    assert!(
        c.cmd("s2 STORE 1 +FLAGS.SILENT (\\Deleted)")
            .await
            .contains("s2 OK")
    );
    assert!(c.cmd("s3 EXPUNGE").await.contains("s3 OK"));
    let (sent, refusal) = fill(server.smtp_addr(), 10).await;
    assert_eq!(sent, 1, "{refusal}");
    assert!(refusal.starts_with("552 5.2.2 "), "{refusal}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_quota_refuses_at_the_limit() {
    let server = start_with(&scenario("[limits]\nquota_storage_kib = 2\n")).await;
    let (sent, refusal) = fill(server.smtp_addr(), 20).await;
    assert!(refusal.starts_with("552 5.2.2 "), "{refusal}");
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    let got = c.cmd("q1 GETQUOTA \"\"").await;
    // A message is over 1 KiB with the Received line: the second reaches
    // 2 KiB (usage is counted in KiB rounded up), and RCPT then refuses.
    assert_eq!(sent, 2, "{got}");
    assert_eq!(
        got,
        "* QUOTA \"\" (STORAGE 2 2)\r\nq1 OK Getquota completed\r\n"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn quota_commands_without_a_quota_and_bad_input() {
    let server = start().await;
    let mut c = Client::connect(server.imap_addr()).await;
    assert_eq!(
        c.cmd("p1 GETQUOTAROOT INBOX").await,
        "p1 BAD Not authenticated: quota commands not allowed in this state\r\n"
    );
    assert!(
        c.cmd("l1 LOGIN alice@example.test secret")
            .await
            .contains("l1 OK")
    );
    // No quota in the scenario: INBOX has no quota root.
    assert_eq!(
        c.cmd("q1 GETQUOTAROOT INBOX").await,
        "* QUOTAROOT INBOX\r\nq1 OK Getquotaroot completed\r\n"
    );
    assert_eq!(
        c.cmd("q2 GETQUOTA \"\"").await,
        "q2 NO [NONEXISTENT] No such quota root\r\n"
    );
    assert!(
        c.cmd("q3 GETQUOTAROOT nosuch")
            .await
            .starts_with("q3 NO [NONEXISTENT]")
    );
    assert!(c.cmd("q4 GETQUOTAROOT").await.starts_with("q4 BAD "));
    assert!(c.cmd("q5 GETQUOTA a b").await.starts_with("q5 BAD "));
    assert!(
        c.cmd("q6 GETQUOTAROOT (INBOX)")
            .await
            .starts_with("q6 BAD ")
    );
    assert!(
        c.cmd("q7 SETQUOTA \"\" (STORAGE 1)")
            .await
            .starts_with("q7 NO [NOPERM] ")
    );
    assert_eq!(c.cmd("q8 NOOP").await, "q8 OK NOOP completed\r\n");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_reads_the_quota_smtp_filled() {
    let server = start_with(&scenario("[limits]\nquota_messages = 2\n")).await;
    let (sent, refusal) = fill(server.smtp_addr(), 10).await;
    assert_eq!(sent, 2);
    assert!(refusal.starts_with("552 5.2.2 "), "{refusal}");
    imaplib_sees_the_quota(&server, 2, 2).await;
    server.shutdown().await;
}

const FULL: &str =
    "name = \"full\"\nstage = \"rcpt\"\naction = \"quota-full\"\nmailbox = \"alice\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_full_fault_shows_the_mailbox_full_over_imap() {
    let server = start_with(&scenario(
        "[limits]\nquota_messages = 5\nquota_storage_kib = 100\n",
    ))
    .await;
    let (sent, _) = fill(server.smtp_addr(), 1).await;
    assert_eq!(sent, 1);
    server.add_fault_toml(FULL).unwrap();
    // SMTP says the mailbox is full though it holds one message of five ...
    let (sent, refusal) = fill(server.smtp_addr(), 3).await;
    assert_eq!(sent, 0);
    assert!(refusal.starts_with("552 5.2.2 "), "{refusal}");
    assert_eq!(server.fault("full").unwrap().fired, 1);
    // ... and so does IMAP: both resources used up to their limits.
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    assert_eq!(
        c.cmd("q1 GETQUOTAROOT INBOX").await,
        "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 100 100 MESSAGE 5 5)\r\nq1 OK Getquotaroot completed\r\n"
    );
    assert_eq!(
        c.cmd("q2 GETQUOTA \"\"").await,
        "* QUOTA \"\" (STORAGE 100 100 MESSAGE 5 5)\r\nq2 OK Getquota completed\r\n"
    );
    // Looking did not fire the rule; bob's quota shows his real usage.
    assert_eq!(server.fault("full").unwrap().fired, 1);
    let mut b = Client::login(server.imap_addr(), BOB).await;
    assert_eq!(
        b.cmd("q3 GETQUOTA \"\"").await,
        "* QUOTA \"\" (STORAGE 0 100 MESSAGE 0 5)\r\nq3 OK Getquota completed\r\n"
    );
    // The fault off: the real usage again, and SMTP takes mail.
    assert!(server.set_fault_enabled("full", false));
    let got = c.cmd("q4 GETQUOTA \"\"").await;
    assert!(
        got.starts_with("* QUOTA \"\" (STORAGE 1 100 MESSAGE 1 5)\r\n"),
        "{got}"
    );
    let (sent, _) = fill(server.smtp_addr(), 1).await;
    assert_eq!(sent, 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_full_fault_without_a_scenario_quota_gives_a_full_root() {
    let server = start().await;
    let (sent, _) = fill(server.smtp_addr(), 2).await;
    assert_eq!(sent, 2, "no quota: never refused");
    server
        .add_fault_toml(
            &FULL
                .replace("\"rcpt\"", "\"end-of-data\"")
                .replace("alice\"", "alice\"\npermanent = false"),
        )
        .unwrap();
    let mut c = Client::login(server.imap_addr(), ALICE).await;
    let kib = server
        .store()
        .mailbox(server.world().mailbox_by_address(ALICE).expect("alice"))
        .usage()
        .bytes
        .div_ceil(1024);
    assert_eq!(
        c.cmd("q1 GETQUOTAROOT INBOX").await,
        format!(
            "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE {kib} {kib})\r\nq1 OK Getquotaroot completed\r\n"
        )
    );
    assert_eq!(
        c.cmd("q2 GETQUOTA \"\"").await,
        format!("* QUOTA \"\" (STORAGE {kib} {kib})\r\nq2 OK Getquota completed\r\n")
    );
    // SMTP agrees at the end of data: 452 4.2.2.
    let mut s = Raw::greeted(server.smtp_addr()).await;
    s.cmd("EHLO client.test", 250).await;
    s.cmd(&format!("MAIL FROM:<{FROM}>"), 250).await;
    s.cmd(&format!("RCPT TO:<{ALICE}>"), 250).await;
    s.cmd("DATA", 354).await;
    s.send(b"Subject: x\r\n\r\nx\r\n.\r\n").await;
    let r = s.reply().await;
    assert_eq!(r.code, 452, "{}", r.text);
    assert!(r.text.starts_with("452 4.2.2 "), "{}", r.text);
    // Bob has no quota root at all.
    let mut b = Client::login(server.imap_addr(), BOB).await;
    assert_eq!(
        b.cmd("q3 GETQUOTAROOT INBOX").await,
        "* QUOTAROOT INBOX\r\nq3 OK Getquotaroot completed\r\n"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_imaplib_reads_a_quota_full_fault_as_a_full_quota() {
    let server = start_with(&scenario("[limits]\nquota_messages = 4\n")).await;
    server.add_fault_toml(FULL).unwrap();
    let (sent, refusal) = fill(server.smtp_addr(), 3).await;
    assert_eq!(sent, 0);
    assert!(refusal.starts_with("552 5.2.2 "), "{refusal}");
    imaplib_sees_the_quota(&server, 4, 4).await;
    server.shutdown().await;
}

/// Python imaplib (tests/py/imap_quota.py) reads GETQUOTAROOT INBOX and
/// finds the message resource at `used` of `limit`.
async fn imaplib_sees_the_quota(server: &MockServer, used: u64, limit: u64) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/imap_quota.py");
    let o = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(server.imap_addr().port().to_string())
        .args([used.to_string(), limit.to_string()])
        .output()
        .await
        .expect("cannot run python3: install it (scripts/install-test-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "imaplib quota script failed:\n{text}");
    assert!(text.contains("imaplib quota OK"), "{text}");
}
