//! The seed incident reproduced: kanzlei-2-of-25.toml, driven by a real client
//! (Python's smtplib), seen as a user sees it — every send answered 250, mail
//! for only 5 of 28 mailboxes stored — and in the journal, which names the 23
//! silent drops. Run twice, the journal is the same.

mod support;

use std::process::Command;

use mailrig_core::JournalEvent;
use mailrig_core::fault::Stage;
use mailrig_server::MockServer;

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/mailrig-core/catalog/kanzlei-2-of-25.toml"
);

const SEND_ALL: &str = r#"
import smtplib, sys
port = int(sys.argv[1])
boxes = ["anna@kanzlei.test", "bernd@kanzlei.test", "clara@kanzlei.test"] + ["user%02d@patente.test" % i for i in range(1, 26)]
codes = []
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("sekretariat.extern.test")
    for i, to in enumerate(boxes):
        msg = "From: sekretariat@extern.test\r\nTo: %s\r\nSubject: Frist %d\r\nMessage-ID: <seed-%d@extern.test>\r\n\r\nBitte bestaetigen.\r\n" % (to, i, i)
        s.mail("sekretariat@extern.test")
        s.rcpt(to)
        code, _ = s.data(msg)
        codes.append(code)
print(" ".join(str(c) for c in codes))
"#;

async fn run_seed() -> (Vec<u16>, MockServer) {
    let server = MockServer::builder()
        .scenario_file(SEED)
        .unwrap()
        .start()
        .await
        .unwrap();
    let port = server.smtp_addr().port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", SEND_ALL, &port])
            .output()
    })
    .await
    .unwrap()
    .expect("python3 is needed: run scripts/install-test-deps.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|c| c.parse().unwrap())
        .collect();
    (codes, server)
}

#[tokio::test]
async fn seed_incident_28_sends_250_each_23_silently_lost() {
    let (codes, server) = run_seed().await;
    assert_eq!(codes.len(), 28);
    assert!(
        codes.iter().all(|&c| c == 250),
        "every send answered 250: {codes:?}"
    );

    let mut with_mail = Vec::new();
    let mut empty = Vec::new();
    for m in &server.world().mailboxes {
        let a = m.address.to_string();
        match server.inbox(&a).unwrap().len() {
            0 => empty.push(a),
            1 => with_mail.push(a),
            n => panic!("{a} has {n} messages"),
        }
    }
    assert_eq!(
        with_mail,
        [
            "anna@kanzlei.test",
            "bernd@kanzlei.test",
            "clara@kanzlei.test",
            "user01@patente.test",
            "user02@patente.test"
        ]
    );
    assert_eq!(empty.len(), 23);

    let journal = server.journal().entries();
    let drops: Vec<_> = journal
        .iter()
        .filter(|e| e.event == JournalEvent::Dropped)
        .collect();
    assert_eq!(drops.len(), 23, "{journal:#?}");
    for e in &drops {
        assert_eq!(e.stage, Stage::Route);
        assert_eq!(e.rule.as_deref(), Some("patente-only-2-of-25"));
        let rcpt = e.rcpt.as_deref().unwrap();
        assert!(empty.iter().any(|a| a == rcpt), "{rcpt}");
        assert!(e.message_id.as_deref().unwrap().starts_with("<seed-"));
        assert_eq!(e.mail_from.as_deref(), Some("sekretariat@extern.test"));
    }
    // A test can ask what happened to one message.
    let one = server.journal().filter(None, Some("<seed-10@extern.test>"));
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].rcpt.as_deref(), Some("user08@patente.test"));
    server.shutdown().await;
}

#[tokio::test]
async fn same_scenario_same_traffic_same_journal() {
    let strip = |server: &MockServer| {
        server
            .journal()
            .entries()
            .into_iter()
            .map(|e| (e.seq, e.stage, e.rule, e.message_id, e.rcpt, e.event))
            .collect::<Vec<_>>()
    };
    let (_, a) = run_seed().await;
    let first = strip(&a);
    a.shutdown().await;
    let (_, b) = run_seed().await;
    assert_eq!(first, strip(&b));
    b.shutdown().await;
}
