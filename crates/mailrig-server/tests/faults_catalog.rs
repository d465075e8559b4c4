//! Every scenario of the catalog (`crates/mailrig-core/catalog/`), driven by real
//! clients (Python's smtplib, swaks, curl) and checked twice: as a user sees
//! it (reply codes, TLS errors, timeouts, what arrives in which mailbox) and
//! in the journal (stage, rule, event). Where a file models minutes (late
//! delivery, greylisting), a test-local copy uses a second.

mod support;

use std::time::Duration;

use mailrig_core::JournalEvent;
use mailrig_core::fault::{Action, DisconnectPoint, Stage, TlsFault};
use serde_json::json;
use support::faults::*;
use support::{eventually, run};

/// The catalog files these tests cover (the seed is covered by faults_seed.rs,
/// `default` and `kanzlei` have no faults).
const COVERED: &[&str] = &[
    "altered-in-transit",
    "auth-backend-broken",
    "backup-mx-blackhole",
    "catch-all-swallows",
    "defers-everything",
    "duplicates",
    "expired-certificate",
    "flaky-firewall",
    "greylisting",
    "late-delivery",
    "migration-bounces-5.1.1",
    "misrouted-alias",
    "quota-full",
    "rate-limit",
    "size-limit-too-low",
    "slow-server",
    "spam-filter-junk",
    "starttls-broken",
    "wrong-host-certificate",
];

/// Read-side scenarios, tested with imaplib and poplib in `fault_read_side.rs`.
const READ_SIDE: &[&str] = &["hidden-messages", "imap-login-broken", "uidvalidity-reset"];

#[test]
fn every_catalog_file_has_a_test() {
    let dir = catalog("x");
    let dir = dir.parent().unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let Some(name) = name.strip_suffix(".toml") else {
            continue;
        };
        assert!(
            COVERED.contains(&name)
                || READ_SIDE.contains(&name)
                || ["default", "kanzlei", "kanzlei-2-of-25"].contains(&name)
                // hosts and collectors: collector_*.rs and hosts_world.rs
                || name == "kanzlei-pop3-collector"
                // sender authentication: sender_auth.rs
                || ["dkim-key-rotated", "dmarc-typo", "spf-omits-sender"].contains(&name),
            "catalog file {name}.toml has no end-to-end test"
        );
    }
}

fn rejected(e: &mailrig_core::JournalEntry) -> (u16, String) {
    match &e.event {
        JournalEvent::Rejected { code, enhanced, .. } => (*code, enhanced.to_string()),
        other => panic!("not a rejection: {other:?}"),
    }
}

fn fault_action(e: &mailrig_core::JournalEntry) -> Action {
    match &e.event {
        JournalEvent::Fault { action } => (**action).clone(),
        other => panic!("not a fault event: {other:?}"),
    }
}

#[tokio::test]
async fn migration_bounces_550_5_1_1_with_swaks() {
    let server = start("migration-bounces-5.1.1").await;
    let port = server.smtp_addr().port().to_string();
    let swaks = |to: &str| {
        vec![
            "--server".to_string(),
            format!("127.0.0.1:{port}"),
            "--from".into(),
            "sekretariat@extern.test".into(),
            "--to".into(),
            to.to_string(),
            "--timeout".into(),
            "10".into(),
        ]
    };
    let out = run("swaks", swaks("user07@patente.test")).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(24), "swaks: RCPT refused\n{text}");
    assert!(
        text.contains(
            "<** 550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table"
        ),
        "{text}"
    );
    let out = run("swaks", swaks("anna@kanzlei.test")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(count(&server, "user07@patente.test"), 0);
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);

    let e = fired(&server, "patente-mailbox-table-missing", Stage::Rcpt, 1);
    assert_eq!(rejected(&e[0]), (550, "5.1.1".into()));
    assert_eq!(e[0].rcpt.as_deref(), Some("user07@patente.test"));
    server.shutdown().await;
}

#[tokio::test]
async fn misrouted_alias_mail_for_bernd_lands_with_clara() {
    let server = start("misrouted-alias").await;
    let r = smtp(sends(
        server.smtp_addr().port(),
        &[
            "bernd@kanzlei.test",
            "clara@kanzlei.test",
            "user01@patente.test",
        ],
    ))
    .await;
    for i in 0..3 {
        assert_eq!(code(&r, i, "data"), Some(250), "{r}");
    }
    assert_eq!(count(&server, "bernd@kanzlei.test"), 0);
    let clara = server.inbox("clara@kanzlei.test").unwrap();
    assert_eq!(clara.len(), 2);
    let raw = String::from_utf8_lossy(&clara[0].raw).into_owned();
    assert!(raw.contains("To: bernd@kanzlei.test"), "{raw}");
    assert_eq!(count(&server, "user01@patente.test"), 1);

    let e = fired(&server, "bernd-alias-points-to-clara", Stage::Route, 1);
    assert_eq!(
        e[0].event,
        JournalEvent::Misrouted {
            intended: "bernd@kanzlei.test".into(),
            actual: "clara@kanzlei.test".into()
        }
    );
    assert_eq!(e[0].message_id.as_deref(), Some("<m0@extern.test>"));
    server.shutdown().await;
}

#[tokio::test]
async fn catch_all_swallows_typos_and_real_addresses() {
    let server = start("catch-all-swallows").await;
    let to = [
        "bernt@kanzlei.test",
        "info@kanzlei.test",
        "bernd@kanzlei.test",
        "clara@kanzlei.test",
        "anna@kanzlei.test",
        "user01@patente.test",
    ];
    let r = smtp(sends(server.smtp_addr().port(), &to)).await;
    for i in 0..to.len() {
        assert_eq!(code(&r, i, "data"), Some(250), "nothing bounces: {r}");
    }
    assert_eq!(count(&server, "anna@kanzlei.test"), 5);
    assert_eq!(count(&server, "bernd@kanzlei.test"), 0);
    assert_eq!(count(&server, "clara@kanzlei.test"), 0);
    assert_eq!(count(&server, "user01@patente.test"), 1);
    // A typo is the catch-all's normal job; the rule fired for the real two.
    let e = fired(&server, "catch-all-before-mailboxes", Stage::Route, 2);
    let intended: Vec<_> = e.iter().map(|e| e.rcpt.as_deref().unwrap()).collect();
    assert_eq!(intended, ["bernd@kanzlei.test", "clara@kanzlei.test"]);
    server.shutdown().await;
}

#[tokio::test]
async fn greylisting_defers_first_attempt_then_accepts_the_retry() {
    // As shipped: 300 s, so an immediate retry is deferred again.
    let server = start("greylisting").await;
    let req = sends(server.smtp_addr().port(), &["anna@kanzlei.test"]);
    for _ in 0..2 {
        let r = smtp(req.clone()).await;
        assert_eq!(r["messages"][0]["rcpt"][0], 450, "{r}");
        let text = r["messages"][0]["rcpt_text"][0].as_str().unwrap();
        assert!(
            text.contains("4.2.0") && text.contains("Greylisted"),
            "{text}"
        );
    }
    assert_eq!(count(&server, "anna@kanzlei.test"), 0);
    let e = fired(&server, "greylist-5-minutes", Stage::Rcpt, 2);
    assert_eq!(rejected(&e[0]), (450, "4.2.0".into()));
    server.shutdown().await;

    // A test-local copy with 1 s: the sender's retry after the delay gets through.
    let server = start_edited("greylisting", "secs = 300", "secs = 1").await;
    let req = sends(server.smtp_addr().port(), &["anna@kanzlei.test"]);
    let r = smtp(req.clone()).await;
    assert_eq!(r["messages"][0]["rcpt"][0], 450, "{r}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = smtp(req).await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    fired(&server, "greylist-5-minutes", Stage::Rcpt, 1);
    server.shutdown().await;
}

async fn tls_refused(name: &str, rule: &str, want: &str, host: &str) {
    let server = start(name).await;
    let ca = server.ca_path().to_str().unwrap().to_string();
    let msg = json!([{"from": "a@extern.test", "to": ["anna@kanzlei.test"], "data": message("a@extern.test", "anna@kanzlei.test", "t")}]);
    let starttls = smtp(json!({"port": server.smtp_addr().port(), "host": host,
        "starttls": true, "cafile": ca, "messages": msg}))
    .await;
    let err = starttls["error"].as_str().unwrap_or_default();
    assert!(err.contains(want), "{name} STARTTLS: {starttls}");
    let smtps = smtp(json!({"port": server.smtps_addr().port(), "host": host,
        "smtps": true, "cafile": ca, "messages": msg}))
    .await;
    let err = smtps["error"].as_str().unwrap_or_default();
    assert!(err.contains(want), "{name} SMTPS: {smtps}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 0);
    let e = fired(&server, rule, Stage::Tls, 2);
    assert!(matches!(fault_action(&e[0]), Action::Tls(_)), "{e:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn expired_certificate_fails_verification() {
    tls_refused(
        "expired-certificate",
        "certificate-expired",
        "certificate has expired",
        "127.0.0.1",
    )
    .await;
}

#[tokio::test]
async fn wrong_host_certificate_fails_verification() {
    tls_refused(
        "wrong-host-certificate",
        "provider-default-certificate",
        "Hostname mismatch",
        "localhost",
    )
    .await;
    tls_refused(
        "wrong-host-certificate",
        "provider-default-certificate",
        "IP address mismatch",
        "127.0.0.1",
    )
    .await;
}

#[tokio::test]
async fn starttls_broken_handshake_is_cut_off() {
    let server = start("starttls-broken").await;
    let ca = server.ca_path().to_str().unwrap().to_string();
    let r = smtp(json!({"port": server.smtp_addr().port(), "starttls": true, "cafile": ca})).await;
    assert_eq!(r["ehlo"], 250, "{r}");
    assert!(
        r["esmtp_features"]
            .as_array()
            .unwrap()
            .contains(&json!("starttls")),
        "STARTTLS is still advertised: {r}"
    );
    let err = r["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("EOF") || err.contains("reset") || err.contains("Disconnected"),
        "{r}"
    );
    // curl, the other client: SMTPS handshake fails, exit code 35 (SSL connect error).
    let out = curl_smtps(&server, ca).await;
    assert_eq!(
        out.status.code(),
        Some(35),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = fired(&server, "private-key-unreadable", Stage::Tls, 2);
    assert_eq!(fault_action(&e[0]), Action::Tls(TlsFault::HandshakeFails));
    server.shutdown().await;
}

#[tokio::test]
async fn quota_full_on_four_mailboxes() {
    let server = start("quota-full").await;
    let to = [
        "bernd@kanzlei.test",
        "user04@patente.test",
        "anna@kanzlei.test",
        "user06@patente.test",
    ];
    let r = smtp(sends(server.smtp_addr().port(), &to)).await;
    assert_eq!(r["messages"][0]["rcpt"][0], 552, "{r}");
    assert_eq!(r["messages"][1]["rcpt"][0], 552, "{r}");
    let t = r["messages"][0]["rcpt_text"][0].as_str().unwrap();
    assert!(t.starts_with("5.2.2 Mailbox full"), "{t}");
    assert_eq!(code(&r, 2, "data"), Some(250));
    assert_eq!(code(&r, 3, "data"), Some(250));
    assert_eq!(count(&server, "bernd@kanzlei.test"), 0);
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    let e = fired(&server, "over-quota", Stage::Rcpt, 2);
    assert_eq!(rejected(&e[1]), (552, "5.2.2".into()));
    assert_eq!(e[1].rcpt.as_deref(), Some("user04@patente.test"));
    server.shutdown().await;
}

#[tokio::test]
async fn size_limit_too_low_bounces_attachments() {
    let server = start("size-limit-too-low").await;
    let big = format!(
        "{}{}\r\n",
        message("a@extern.test", "anna@kanzlei.test", "big"),
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n".repeat(3000)
    );
    let small = message("a@extern.test", "anna@kanzlei.test", "small");
    let r = smtp(json!({"port": server.smtp_addr().port(), "messages": [
        {"from": "a@extern.test", "to": ["anna@kanzlei.test"], "data": big},
        {"from": "a@extern.test", "to": ["anna@kanzlei.test"], "data": small},
    ]}))
    .await;
    assert!(
        r["esmtp_features"]
            .as_array()
            .unwrap()
            .contains(&json!("size")),
        "{r}"
    );
    assert_eq!(code(&r, 0, "data"), Some(552), "{r}");
    assert!(
        r["messages"][0]["data_text"]
            .as_str()
            .unwrap()
            .starts_with("5.3.4")
    );
    assert_eq!(code(&r, 1, "data"), Some(250), "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    // Not a fault rule but a limit: the journal names the stage, no rule.
    let e: Vec<_> = server
        .journal()
        .entries()
        .into_iter()
        .filter(|e| matches!(e.event, JournalEvent::Rejected { code: 552, .. }))
        .collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].stage, Stage::EndOfData);
    assert_eq!(e[0].rule, None);
    assert_eq!(rejected(&e[0]), (552, "5.3.4".into()));

    // A client that announces the size (SIZE=) is refused at MAIL FROM.
    let r = smtp(json!({"port": server.smtp_addr().port(), "messages": [
        {"from": "a@extern.test", "options": ["SIZE=120000"], "to": ["anna@kanzlei.test"], "data": ""}]}))
    .await;
    assert_eq!(code(&r, 0, "mail"), Some(552), "{r}");
    server.shutdown().await;
}

#[tokio::test]
async fn backup_mx_accepts_everything_and_delivers_nothing() {
    let server = start("backup-mx-blackhole").await;
    let to = [
        "anna@kanzlei.test",
        "user01@patente.test",
        "clara@kanzlei.test",
    ];
    let r = smtp(sends(server.smtp_addr().port(), &to)).await;
    for i in 0..3 {
        assert_eq!(code(&r, i, "data"), Some(250), "{r}");
    }
    for a in to {
        assert_eq!(count(&server, a), 0, "{a}");
    }
    let e = fired(&server, "backup-mx-discards", Stage::Deliver, 3);
    assert!(e.iter().all(|e| e.event == JournalEvent::Dropped));
    assert_eq!(e[1].rcpt.as_deref(), Some("user01@patente.test"));
    server.shutdown().await;
}

#[tokio::test]
async fn auth_backend_refuses_right_passwords_of_patente() {
    let server = start("auth-backend-broken").await;
    let port = server.smtp_addr().port();
    let msg = |from: &str| json!([{"from": from, "to": ["anna@kanzlei.test"], "data": message(from, "anna@kanzlei.test", from)}]);
    let r = smtp(
        json!({"port": port, "user": "user01@patente.test", "password": "secret",
        "messages": msg("user01@patente.test")}),
    )
    .await;
    assert_eq!(r["login"], 535, "{r}");
    assert!(r["error"].as_str().unwrap().contains("5.7.8"), "{r}");
    // Without AUTH the server refuses to relay: sending is impossible.
    let r = smtp(json!({"port": port, "messages": msg("user01@patente.test")})).await;
    assert_eq!(code(&r, 0, "mail"), Some(530), "{r}");
    let r = smtp(
        json!({"port": port, "user": "bernd@kanzlei.test", "password": "secret",
        "messages": msg("bernd@kanzlei.test")}),
    )
    .await;
    assert_eq!(r["login"], 235, "{r}");
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    // smtplib tries AUTH PLAIN, then AUTH LOGIN: both refused.
    let e = fired(&server, "patente-hashes-not-migrated", Stage::Auth, 2);
    assert_eq!(fault_action(&e[0]), Action::FailLogin);
    server.shutdown().await;
}

#[tokio::test]
async fn server_defers_everything_451() {
    let server = start("defers-everything").await;
    let r = smtp(sends(
        server.smtp_addr().port(),
        &["anna@kanzlei.test", "user01@patente.test"],
    ))
    .await;
    assert_eq!(code(&r, 0, "mail"), Some(451), "{r}");
    assert_eq!(code(&r, 1, "mail"), Some(451), "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 0);
    let e = fired(&server, "content-filter-down", Stage::Mail, 2);
    assert_eq!(rejected(&e[0]), (451, "4.3.0".into()));
    assert_eq!(e[0].mail_from.as_deref(), Some("sekretariat@extern.test"));
    server.shutdown().await;
}

#[tokio::test]
async fn rate_limit_refuses_the_eleventh_message() {
    let server = start("rate-limit").await;
    let to: Vec<String> = (1..=12)
        .map(|i| format!("user{i:02}@patente.test"))
        .collect();
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let r = smtp(sends(server.smtp_addr().port(), &to)).await;
    for i in 0..10 {
        assert_eq!(code(&r, i, "data"), Some(250), "{r}");
    }
    assert_eq!(code(&r, 10, "mail"), Some(421), "{r}");
    assert_eq!(
        r["messages"].as_array().unwrap().len(),
        11,
        "closed after 421: {r}"
    );
    assert_eq!(count(&server, "user10@patente.test"), 1);
    assert_eq!(count(&server, "user11@patente.test"), 0);
    let e = fired(&server, "ten-per-minute", Stage::Mail, 1);
    assert_eq!(rejected(&e[0]), (421, "4.7.0".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn slow_server_makes_a_client_time_out() {
    let server = start("slow-server").await;
    let r = smtp(json!({"port": server.smtp_addr().port(), "timeout": 0.5})).await;
    let err = r["error"].as_str().unwrap_or_default();
    assert!(err.contains("timed out"), "{r}");
    assert!(r["greeting"].is_null(), "{r}");
    let e = fired(&server, "greeting-waits-for-dns", Stage::Greeting, 1);
    assert_eq!(fault_action(&e[0]), Action::Delay { ms: 45000 });
    // The delayed session ends promptly at shutdown.
    let t = std::time::Instant::now();
    server.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A test-local copy with a short greeting delay: the tarpit after DATA.
    let server = start_edited("slow-server", "ms = 45000", "ms = 300").await;
    let r = smtp(sends(server.smtp_addr().port(), &["anna@kanzlei.test"])).await;
    assert!(r["greeting_secs"].as_f64().unwrap() >= 0.29, "{r}");
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    // "250 2.0.0 Ok: queued as N\r\n" is about 28 bytes at 20 bytes/s.
    assert!(r["messages"][0]["secs"].as_f64().unwrap() >= 1.0, "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    let e = fired(&server, "filter-tarpit", Stage::EndOfData, 1);
    assert_eq!(fault_action(&e[0]), Action::Tarpit { bytes_per_sec: 20 });
    drop(server);
}

#[tokio::test]
async fn late_delivery_appears_after_the_delay() {
    let server = start_edited("late-delivery", "secs = 1200", "secs = 1").await;
    let r = smtp(sends(
        server.smtp_addr().port(),
        &["user05@patente.test", "anna@kanzlei.test"],
    ))
    .await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    assert_eq!(code(&r, 1, "data"), Some(250), "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    assert_eq!(count(&server, "user05@patente.test"), 0, "not yet");
    let t = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || count(
            &server,
            "user05@patente.test"
        ) == 1)
        .await
    );
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    let e = fired(&server, "patente-queue-20-minutes", Stage::Deliver, 1);
    assert_eq!(fault_action(&e[0]), Action::Late { secs: 1 });
    server.shutdown().await;
}

#[tokio::test]
async fn duplicates_every_kanzlei_message_twice() {
    let server = start("duplicates").await;
    let r = smtp(sends(
        server.smtp_addr().port(),
        &["anna@kanzlei.test", "user01@patente.test"],
    ))
    .await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    let anna = server.inbox("anna@kanzlei.test").unwrap();
    assert_eq!(anna.len(), 2);
    assert_eq!(anna[0].raw, anna[1].raw);
    assert_eq!(count(&server, "user01@patente.test"), 1);
    let e = fired(&server, "archive-hook-twice", Stage::Deliver, 1);
    assert_eq!(fault_action(&e[0]), Action::Duplicate { copies: 2 });
    assert_eq!(e[0].message_id.as_deref(), Some("<m0@extern.test>"));
    server.shutdown().await;
}

#[tokio::test]
async fn altered_in_transit_headers_stripped_and_truncated() {
    let server = start("altered-in-transit").await;
    let data = format!(
        "From: a@extern.test\r\nTo: clara@kanzlei.test\r\nDKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\nReply-To: office@extern.test\r\nSubject: Schriftsatz\r\nMessage-ID: <alt@extern.test>\r\n\r\n{}",
        "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n".repeat(800)
    );
    let r = smtp(json!({"port": server.smtp_addr().port(), "messages": [
        {"from": "a@extern.test", "to": ["clara@kanzlei.test"], "data": data}]}))
    .await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    let m = &server.inbox("clara@kanzlei.test").unwrap()[0];
    assert_eq!(m.raw.len(), 32768);
    let raw = String::from_utf8_lossy(&m.raw);
    assert!(
        !raw.contains("DKIM-Signature") && !raw.contains("b=abc"),
        "{raw:.400}"
    );
    assert!(!raw.contains("Reply-To"));
    assert!(raw.contains("Subject: Schriftsatz"));
    let e = fired(&server, "scanner-rewrites", Stage::Deliver, 1);
    assert!(matches!(fault_action(&e[0]), Action::Alter(_)), "{e:?}");
    server.shutdown().await;
}

/// One connection per message (the firewall closes the connection it cuts).
const FLAKY: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
out = []
for i in range(20):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.ehlo("client.extern.test")
            s.mail("a@extern.test")
            s.rcpt("anna@kanzlei.test")
            code, _ = s.data("Message-ID: <f%d@extern.test>\r\n\r\nHallo\r\n" % i)
            out.append(str(code))
    except smtplib.SMTPServerDisconnected:
        out.append("cut")
print(" ".join(out))
"#;

#[tokio::test]
async fn flaky_firewall_is_deterministic_with_its_seed() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let server = start("flaky-firewall").await;
        let port = server.smtp_addr().port().to_string();
        let seen = python(FLAKY, &[&port]).await;
        let cut = seen.split_whitespace().filter(|s| *s == "cut").count();
        let ok = seen.split_whitespace().filter(|s| *s == "250").count();
        assert_eq!(cut + ok, 20, "{seen}");
        assert!(cut >= 2 && ok >= 2, "some cut, some through: {seen}");
        assert_eq!(count(&server, "anna@kanzlei.test"), ok);
        let e = fired(&server, "firewall-resets-at-data", Stage::Data, cut);
        assert_eq!(
            fault_action(&e[0]),
            Action::Disconnect {
                point: DisconnectPoint::InsteadOfReply
            }
        );
        let journal: Vec<_> = server
            .journal()
            .entries()
            .into_iter()
            .map(|e| (e.seq, e.stage, e.rule, e.mail_from, e.rcpt, e.event))
            .collect();
        runs.push((seen, journal));
        server.shutdown().await;
    }
    assert_eq!(runs[0], runs[1], "same seed, same traffic, same faults");
}

/// `spam-filter-junk`: swaks delivers to bernd, user04 and anna (250 each);
/// bernd's and user04's copies land in a Junk folder created with the
/// `\\Junk` attribute, anna's in INBOX; the journal names the rule at stage
/// `deliver` once per misfiled copy.
#[tokio::test]
async fn spam_filter_files_two_mailboxes_into_junk_with_swaks() {
    let server = start("spam-filter-junk").await;
    let port = server.smtp_addr().port().to_string();
    for to in [
        "bernd@kanzlei.test",
        "user04@patente.test",
        "anna@kanzlei.test",
    ] {
        let out = run(
            "swaks",
            vec![
                "--server".into(),
                format!("127.0.0.1:{port}"),
                "--from".into(),
                "mandant@extern.test".into(),
                "--to".into(),
                to.into(),
                "--timeout".into(),
                "10".into(),
            ],
        )
        .await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "swaks to {to}: accepted\n{text}");
    }
    let folder_len = |addr: &str, folder: &str| {
        let id = server.world().mailbox_by_address(addr).unwrap();
        server
            .store()
            .mailbox(id)
            .with_folder(folder, |f| f.messages.len())
            .ok()
    };
    for addr in ["bernd@kanzlei.test", "user04@patente.test"] {
        assert_eq!(count(&server, addr), 0, "{addr}: INBOX stays empty");
        assert_eq!(folder_len(addr, "Junk"), Some(1), "{addr}: filed into Junk");
    }
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    assert_eq!(
        folder_len("anna@kanzlei.test", "Junk"),
        None,
        "no Junk for anna"
    );

    // A mail client sees the folder as Junk (SPECIAL-USE) with the message in it.
    let mut c = support::imap::Client::login(server.imap_addr(), "bernd@kanzlei.test").await;
    let r = c
        .cmd("a1 LIST (SPECIAL-USE) \"\" \"*\" RETURN (STATUS (MESSAGES))")
        .await;
    assert!(r.contains("\\Junk) \".\" Junk\r\n"), "{r}");
    assert!(r.contains("* STATUS Junk (MESSAGES 1)"), "{r}");

    let e = fired(&server, "spam-filter-lost-allow-lists", Stage::Deliver, 2);
    for entry in &e {
        assert_eq!(
            fault_action(entry),
            Action::Misfile {
                folder: "Junk".into()
            }
        );
    }
    let rcpts: Vec<_> = e.iter().map(|e| e.rcpt.as_deref().unwrap()).collect();
    assert_eq!(rcpts, ["bernd@kanzlei.test", "user04@patente.test"]);
    server.shutdown().await;
}
