//! Every fault action at work, through a real client (Python's smtplib,
//! swaks, curl), at stages the catalog does not already use: what the user
//! sees, what arrives where, and the journal entry (stage, rule, event).

mod support;

use std::time::Duration;

use mailrig_core::JournalEvent;
use mailrig_core::fault::{Action, DisconnectPoint, Stage, TlsFault};
use mailrig_server::MockServer;
use serde_json::{Value, json};
use support::faults::*;
use support::{eventually, run, start_toml};

const WORLD: &str = r#"
[server]
hostname = "mx.kanzlei.test"

[[domain]]
name = "kanzlei.test"
mailboxes = ["anna", "bernd", "clara"]
password = "secret"

[[domain]]
name = "patente.test"
mailboxes = ["user01..user25"]
password = "secret"
"#;

/// The kanzlei world with one rule named `r`.
async fn with_rule(rule: &str) -> MockServer {
    start_toml(&format!("{WORLD}\n[[fault]]\nname = \"r\"\n{rule}\n")).await
}

async fn send_to(server: &MockServer, to: &[&str]) -> Value {
    smtp(sends(server.smtp_addr().port(), to)).await
}

fn event(server: &MockServer, stage: Stage, n: usize) -> Vec<JournalEvent> {
    fired(server, "r", stage, n)
        .into_iter()
        .map(|e| e.event)
        .collect()
}

fn rejected(code: u16, enhanced: &str, text: &str) -> JournalEvent {
    JournalEvent::Rejected {
        code,
        enhanced: enhanced.into(),
        text: text.into(),
    }
}

fn fault(action: Action) -> JournalEvent {
    JournalEvent::Fault {
        action: Box::new(action),
    }
}

#[tokio::test]
async fn reject_at_connect_refuses_the_session_with_swaks() {
    let server = with_rule(
        "stage = \"connect\"\naction = \"reject\"\ncode = 554\nenhanced = \"5.7.1\"\ntext = \"Client host blocked using zen.spamhaus.org\"\nclient = \"127.0.0.*\"",
    )
    .await;
    let out = run(
        "swaks",
        vec![
            "--server".into(),
            format!("127.0.0.1:{}", server.smtp_addr().port()),
            "--to".into(),
            "anna@kanzlei.test".into(),
            "--timeout".into(),
            "10".into(),
        ],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(21), "swaks: bad banner\n{text}");
    assert!(
        text.contains("<** 554 5.7.1 Client host blocked using zen.spamhaus.org"),
        "{text}"
    );
    assert_eq!(
        event(&server, Stage::Connect, 1),
        [rejected(
            554,
            "5.7.1",
            "Client host blocked using zen.spamhaus.org"
        )]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn reject_at_data_and_ehlo() {
    let server = with_rule("stage = \"data\"\naction = \"reject\"\nsender = \"*@spam.test\"").await;
    let r = smtp(json!({"port": server.smtp_addr().port(), "messages": [
        {"from": "x@spam.test", "to": ["anna@kanzlei.test"], "data": message("x@spam.test", "anna@kanzlei.test", "s")},
        {"from": "x@ok.test", "to": ["anna@kanzlei.test"], "data": message("x@ok.test", "anna@kanzlei.test", "o")},
    ]}))
    .await;
    let err = r["messages"][0]["error"].as_str().unwrap();
    assert!(err.contains("SMTPDataError 550 5.7.1"), "{r}");
    assert_eq!(code(&r, 1, "data"), Some(250), "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    let e = fired(&server, "r", Stage::Data, 1);
    assert_eq!(e[0].mail_from.as_deref(), Some("x@spam.test"));
    assert_eq!(e[0].event, rejected(550, "5.7.1", "Error: message refused"));
    server.shutdown().await;

    let server = with_rule("stage = \"ehlo\"\naction = \"reject\"\ncode = 501\nenhanced = \"5.5.2\"\ntext = \"Helo command rejected: need fully-qualified hostname\"").await;
    let r = smtp(json!({"port": server.smtp_addr().port()})).await;
    assert_eq!(r["ehlo"], 501, "{r}");
    event(&server, Stage::Ehlo, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn defer_at_end_of_data_stores_nothing() {
    let server =
        with_rule("stage = \"end-of-data\"\naction = \"defer\"\ndomain = \"patente.test\"").await;
    let r = send_to(&server, &["user01@patente.test", "anna@kanzlei.test"]).await;
    assert_eq!(code(&r, 0, "data"), Some(451), "{r}");
    assert_eq!(code(&r, 1, "data"), Some(250), "{r}");
    assert_eq!(count(&server, "user01@patente.test"), 0);
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    let e = fired(&server, "r", Stage::EndOfData, 1);
    assert_eq!(e[0].message_id.as_deref(), Some("<m0@extern.test>"));
    assert_eq!(
        e[0].event,
        rejected(451, "4.3.0", "Error: temporary failure, try again later")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn delay_at_rcpt_and_at_end_of_data() {
    let server =
        with_rule("stage = \"rcpt\"\naction = \"delay\"\nms = 400\nmailbox = \"bernd\"").await;
    let r = send_to(&server, &["anna@kanzlei.test", "bernd@kanzlei.test"]).await;
    assert!(r["messages"][0]["secs"].as_f64().unwrap() < 0.3, "{r}");
    assert!(r["messages"][1]["secs"].as_f64().unwrap() >= 0.39, "{r}");
    assert_eq!(code(&r, 1, "data"), Some(250));
    assert_eq!(
        event(&server, Stage::Rcpt, 1),
        [fault(Action::Delay { ms: 400 })]
    );
    server.shutdown().await;

    let server = with_rule("stage = \"end-of-data\"\naction = \"delay\"\nms = 400").await;
    let r = send_to(&server, &["anna@kanzlei.test"]).await;
    assert!(r["messages"][0]["secs"].as_f64().unwrap() >= 0.39, "{r}");
    assert_eq!(code(&r, 0, "data"), Some(250));
    event(&server, Stage::EndOfData, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn tarpit_at_ehlo_slows_every_further_reply() {
    let server = with_rule("stage = \"ehlo\"\naction = \"tarpit\"\nbytes_per_sec = 200").await;
    // The EHLO reply and all after it (about 200 bytes here) trickle at 200 bytes/s.
    let r = send_to(&server, &["anna@kanzlei.test"]).await;
    assert!(r["greeting_secs"].as_f64().unwrap() < 0.5, "{r}");
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    assert!(r["secs"].as_f64().unwrap() >= 0.8, "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    assert_eq!(
        event(&server, Stage::Ehlo, 1),
        [fault(Action::Tarpit { bytes_per_sec: 200 })]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn disconnect_instead_of_and_after_reply() {
    // Instead of the RCPT reply: the client sees the connection drop.
    let server = with_rule("stage = \"rcpt\"\naction = \"disconnect\"\nmailbox = \"clara\"").await;
    let r = send_to(
        &server,
        &[
            "anna@kanzlei.test",
            "clara@kanzlei.test",
            "bernd@kanzlei.test",
        ],
    )
    .await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    assert!(
        r["messages"][1]["error"]
            .as_str()
            .unwrap()
            .contains("Disconnected"),
        "{r}"
    );
    assert_eq!(r["messages"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(
        event(&server, Stage::Rcpt, 1),
        [fault(Action::Disconnect {
            point: DisconnectPoint::InsteadOfReply
        })]
    );
    server.shutdown().await;

    // After the reply at end of data: the message is stored and answered 250,
    // then the connection is gone.
    let server =
        with_rule("stage = \"end-of-data\"\naction = \"disconnect\"\nwhen = \"after-reply\"").await;
    let r = send_to(&server, &["anna@kanzlei.test", "bernd@kanzlei.test"]).await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    assert!(
        r["messages"][1]["error"]
            .as_str()
            .unwrap()
            .contains("Disconnected"),
        "{r}"
    );
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    assert_eq!(count(&server, "bernd@kanzlei.test"), 0);
    assert_eq!(
        event(&server, Stage::EndOfData, 1),
        [fault(Action::Disconnect {
            point: DisconnectPoint::AfterReply
        })]
    );
    server.shutdown().await;

    // Instead of the end-of-data reply: stored, but the sender never hears so
    // (and will send it again: the classic source of duplicates).
    let server = with_rule("stage = \"end-of-data\"\naction = \"disconnect\"").await;
    let r = send_to(&server, &["anna@kanzlei.test"]).await;
    assert!(
        r["messages"][0]["error"]
            .as_str()
            .unwrap()
            .contains("Disconnected"),
        "{r}"
    );
    assert!(r["messages"][0]["data"].is_null(), "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    event(&server, Stage::EndOfData, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn disconnect_in_the_middle_of_data_stores_nothing() {
    // 354 comes, the client starts sending the message, the connection dies.
    let server = with_rule(
        "stage = \"data\"\naction = \"disconnect\"\nwhen = \"mid-data\"\nmailbox = \"bernd\"",
    )
    .await;
    let r = send_to(&server, &["bernd@kanzlei.test"]).await;
    assert!(
        r["messages"][0]["error"].as_str().is_some(),
        "the client saw the connection break: {r}"
    );
    assert!(r["messages"][0]["data"].is_null(), "{r}");
    assert_eq!(count(&server, "bernd@kanzlei.test"), 0, "nothing stored");
    assert_eq!(
        event(&server, Stage::Data, 1),
        [fault(Action::Disconnect {
            point: DisconnectPoint::MidData
        })]
    );
    // Mail for others goes through.
    let r = send_to(&server, &["anna@kanzlei.test"]).await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    server.shutdown().await;
}

#[tokio::test]
async fn drop_at_route_for_one_sender() {
    let server = with_rule("stage = \"route\"\naction = \"drop\"\nsender = \"newsletter@*\"").await;
    let r = smtp(json!({"port": server.smtp_addr().port(), "messages": [
        {"from": "newsletter@extern.test", "to": ["anna@kanzlei.test"], "data": message("n@e", "anna@kanzlei.test", "n")},
        {"from": "person@extern.test", "to": ["anna@kanzlei.test"], "data": message("p@e", "anna@kanzlei.test", "p")},
    ]}))
    .await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    assert_eq!(code(&r, 1, "data"), Some(250), "{r}");
    let anna = server.inbox("anna@kanzlei.test").unwrap();
    assert_eq!(anna.len(), 1);
    assert!(String::from_utf8_lossy(&anna[0].raw).contains("<p@extern.test>"));
    let e = fired(&server, "r", Stage::Route, 1);
    assert_eq!(e[0].event, JournalEvent::Dropped);
    assert_eq!(e[0].message_id.as_deref(), Some("<n@extern.test>"));
    server.shutdown().await;
}

#[tokio::test]
async fn misroute_at_deliver_across_domains() {
    let server = with_rule("stage = \"deliver\"\naction = \"misroute\"\nmailbox = \"user01..user03\"\nto = \"anna@kanzlei.test\"").await;
    let r = send_to(&server, &["user02@patente.test", "user04@patente.test"]).await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    assert_eq!(count(&server, "user02@patente.test"), 0);
    assert_eq!(count(&server, "user04@patente.test"), 1);
    assert_eq!(
        event(&server, Stage::Deliver, 1),
        [JournalEvent::Misrouted {
            intended: "user02@patente.test".into(),
            actual: "anna@kanzlei.test".into()
        }]
    );
    // The journal answers "what happened to user02's mail?"
    assert_eq!(
        server
            .journal()
            .filter(Some("user02@patente.test"), None)
            .len(),
        1
    );
    server.shutdown().await;
}

#[tokio::test]
async fn duplicate_at_route_every_second_message() {
    let server =
        with_rule("stage = \"route\"\naction = \"duplicate\"\ncopies = 3\nevery = 2").await;
    let r = send_to(
        &server,
        &[
            "anna@kanzlei.test",
            "bernd@kanzlei.test",
            "clara@kanzlei.test",
        ],
    )
    .await;
    assert_eq!(code(&r, 2, "data"), Some(250), "{r}");
    assert_eq!(count(&server, "anna@kanzlei.test"), 1);
    assert_eq!(count(&server, "bernd@kanzlei.test"), 3);
    assert_eq!(count(&server, "clara@kanzlei.test"), 1);
    let e = fired(&server, "r", Stage::Route, 1);
    assert_eq!(e[0].event, fault(Action::Duplicate { copies: 3 }));
    assert_eq!(e[0].rcpt.as_deref(), Some("bernd@kanzlei.test"));
    server.shutdown().await;
}

#[tokio::test]
async fn late_at_route() {
    let server = with_rule("stage = \"route\"\naction = \"late\"\nsecs = 1\nfirst = 1").await;
    let r = send_to(&server, &["clara@kanzlei.test", "bernd@kanzlei.test"]).await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    assert_eq!(
        count(&server, "bernd@kanzlei.test"),
        1,
        "only the first is late"
    );
    assert_eq!(count(&server, "clara@kanzlei.test"), 0);
    assert!(
        eventually(Duration::from_secs(5), || count(
            &server,
            "clara@kanzlei.test"
        ) == 1)
        .await
    );
    assert_eq!(
        event(&server, Stage::Route, 1),
        [fault(Action::Late { secs: 1 })]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn alter_at_route_strips_the_subject() {
    let server =
        with_rule("stage = \"route\"\naction = \"alter\"\nstrip_headers = [\"subject\"]").await;
    let r = send_to(&server, &["anna@kanzlei.test"]).await;
    assert_eq!(code(&r, 0, "data"), Some(250), "{r}");
    let raw = server.inbox("anna@kanzlei.test").unwrap()[0].raw.clone();
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains("Subject:"), "{raw}");
    assert!(raw.contains("Message-ID: <m0@extern.test>"), "{raw}");
    let e = event(&server, Stage::Route, 1);
    assert!(
        matches!(&e[0], JournalEvent::Fault { action } if matches!(&**action, Action::Alter(a) if a.strip_headers == ["subject"])),
        "{e:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn quota_full_temporary_at_end_of_data() {
    let server = with_rule(
        "stage = \"end-of-data\"\naction = \"quota-full\"\npermanent = false\nmailbox = \"clara\"",
    )
    .await;
    let r = send_to(&server, &["clara@kanzlei.test"]).await;
    assert_eq!(code(&r, 0, "data"), Some(452), "{r}");
    assert!(
        r["messages"][0]["data_text"]
            .as_str()
            .unwrap()
            .starts_with("4.2.2")
    );
    assert_eq!(count(&server, "clara@kanzlei.test"), 0);
    assert_eq!(
        event(&server, Stage::EndOfData, 1),
        [rejected(
            452,
            "4.2.2",
            "Error: mailbox full, try again later"
        )]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn greylist_per_recipient_triplet() {
    let server =
        with_rule("stage = \"rcpt\"\naction = \"greylist\"\nsecs = 1\ndomain = \"patente.test\"")
            .await;
    let req = sends(
        server.smtp_addr().port(),
        &["user01@patente.test", "anna@kanzlei.test"],
    );
    let r = smtp(req.clone()).await;
    assert_eq!(r["messages"][0]["rcpt"][0], 450, "{r}");
    assert_eq!(code(&r, 1, "data"), Some(250), "not greylisted: {r}");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let r = smtp(req).await;
    assert_eq!(code(&r, 0, "data"), Some(250), "retry accepted: {r}");
    assert_eq!(count(&server, "user01@patente.test"), 1);
    let e = fired(&server, "r", Stage::Rcpt, 1);
    assert_eq!(e[0].rcpt.as_deref(), Some("user01@patente.test"));
    server.shutdown().await;
}

#[tokio::test]
async fn rate_limit_at_connect_and_at_rcpt() {
    let server = with_rule("stage = \"connect\"\naction = \"rate-limit\"\nper_minute = 2").await;
    for _ in 0..2 {
        let r = smtp(json!({"port": server.smtp_addr().port()})).await;
        assert_eq!(r["ehlo"], 250, "{r}");
    }
    let r = smtp(json!({"port": server.smtp_addr().port()})).await;
    assert_eq!(r["greeting"], 421, "{r}");
    assert_eq!(
        event(&server, Stage::Connect, 1),
        [rejected(
            421,
            "4.7.0",
            "Error: too many messages, slow down"
        )]
    );
    server.shutdown().await;

    let server = with_rule("stage = \"rcpt\"\naction = \"rate-limit\"\nper_minute = 3\ncode = 450\nenhanced = \"4.7.1\"\ntext = \"Recipient rate limit exceeded\"").await;
    let to = [
        "user01@patente.test",
        "user02@patente.test",
        "user03@patente.test",
        "user04@patente.test",
        "user05@patente.test",
    ];
    let r = send_to(&server, &to).await;
    for i in 0..3 {
        assert_eq!(code(&r, i, "data"), Some(250), "{r}");
    }
    assert_eq!(r["messages"][3]["rcpt"][0], 450, "{r}");
    assert_eq!(r["messages"][4]["rcpt"][0], 450, "the session goes on: {r}");
    assert_eq!(
        event(&server, Stage::Rcpt, 2),
        [
            rejected(450, "4.7.1", "Recipient rate limit exceeded"),
            rejected(450, "4.7.1", "Recipient rate limit exceeded")
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn tls_not_offered_and_self_signed() {
    let server = with_rule("stage = \"tls\"\naction = \"tls\"\ntls = \"not-offered\"").await;
    let ca = server.ca_path().to_str().unwrap().to_string();
    let r = smtp(json!({"port": server.smtp_addr().port(), "starttls": true, "cafile": ca})).await;
    assert!(
        !r["esmtp_features"]
            .as_array()
            .unwrap()
            .contains(&json!("starttls")),
        "{r}"
    );
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("STARTTLS extension not supported"),
        "{r}"
    );
    // A client that sends STARTTLS anyway is refused, not cut off.
    let out = python(
        "import smtplib, sys\ns = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)\ns.ehlo('c.test')\nprint(s.docmd('STARTTLS')[0], s.noop()[0])",
        &[&server.smtp_addr().port().to_string()],
    )
    .await;
    assert_eq!(out.trim(), "502 250", "{out}");
    // swaks --tls gives up when EHLO does not offer it.
    let out = run(
        "swaks",
        vec![
            "--server".into(),
            format!("127.0.0.1:{}", server.smtp_addr().port()),
            "--to".into(),
            "anna@kanzlei.test".into(),
            "--tls".into(),
            "--timeout".into(),
            "10".into(),
        ],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(29),
        "swaks: TLS not available\n{text}"
    );
    assert_eq!(
        event(&server, Stage::Tls, 3),
        [
            fault(Action::Tls(TlsFault::NotOffered)),
            fault(Action::Tls(TlsFault::NotOffered)),
            fault(Action::Tls(TlsFault::NotOffered))
        ]
    );
    server.shutdown().await;

    let server = with_rule("stage = \"tls\"\naction = \"tls\"\ntls = \"self-signed\"").await;
    let ca = server.ca_path().to_str().unwrap().to_string();
    let r = smtp(json!({"port": server.smtp_addr().port(), "starttls": true, "cafile": ca})).await;
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("CERTIFICATE_VERIFY_FAILED"),
        "{r}"
    );
    // curl on the SMTPS port: exit 60, peer certificate cannot be authenticated.
    let out = curl_smtps(&server, ca).await;
    assert_eq!(
        out.status.code(),
        Some(60),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        event(&server, Stage::Tls, 2),
        [
            fault(Action::Tls(TlsFault::SelfSigned)),
            fault(Action::Tls(TlsFault::SelfSigned))
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn fail_login_with_auth_login_for_one_user() {
    let server =
        with_rule("stage = \"auth\"\naction = \"fail-login\"\nuser = \"bernd@kanzlei.test\"").await;
    let swaks = |user: &str| {
        vec![
            "--server".to_string(),
            format!("127.0.0.1:{}", server.smtp_addr().port()),
            "--to".into(),
            "anna@kanzlei.test".into(),
            "--auth".into(),
            "LOGIN".into(),
            "--auth-user".into(),
            user.to_string(),
            "--auth-password".into(),
            "secret".into(),
            "--timeout".into(),
            "10".into(),
        ]
    };
    let out = run("swaks", swaks("bernd@kanzlei.test")).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(28), "swaks: AUTH failed\n{text}");
    assert!(text.contains("<** 535 5.7.8"), "{text}");
    let out = run("swaks", swaks("clara@kanzlei.test")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(event(&server, Stage::Auth, 1), [fault(Action::FailLogin)]);
    server.shutdown().await;
}
