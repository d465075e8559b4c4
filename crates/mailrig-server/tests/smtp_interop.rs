//! The SMTP server against real third-party clients: swaks, Python's smtplib,
//! lettre, and Postfix's smtp-source under load. Each tool must be installed
//! (`make test` installs them); a missing tool fails the test with a hint.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use mailrig_server::MockServer;
use support::{KANZLEI, kanzlei, start_toml};

fn tool(name: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p.display().to_string();
        }
    }
    if let Ok(out) = Command::new("which").arg(name).output()
        && out.status.success()
    {
        return String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    panic!("'{name}' is not installed: run scripts/install-test-deps.sh (make test does this)");
}

/// Runs a blocking command off the runtime and returns (success, stdout+stderr).
async fn run(mut cmd: Command) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("spawn");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn swaks(server: &MockServer, extra: &[&str]) -> Command {
    let mut c = Command::new(tool("swaks"));
    c.args([
        "--server",
        &server.smtp_addr().to_string(),
        "--from",
        "sender@extern.test",
        "--timeout",
        "20",
    ]);
    c.args(extra);
    c
}

#[tokio::test]
async fn swaks_plain_starttls_auth_and_pipelining() {
    let server = kanzlei().await;
    let ca = server.ca_path().display().to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("plain", vec!["--to", "anna@kanzlei.test"]),
        (
            "starttls",
            vec![
                "--to",
                "bernd@kanzlei.test",
                "--tls",
                "--tls-verify",
                "--tls-ca-path",
                &ca,
            ],
        ),
        (
            "auth",
            vec![
                "--to",
                "clara@kanzlei.test",
                "--tls",
                "--tls-ca-path",
                &ca,
                "--auth",
                "LOGIN",
                "--auth-user",
                "clara@kanzlei.test",
                "--auth-password",
                "secret",
            ],
        ),
        (
            "pipeline",
            vec![
                "--to",
                "user01@patente.test,user02@patente.test",
                "--pipeline",
                "--header",
                "Subject: piped",
            ],
        ),
    ];
    for (name, args) in cases {
        let (ok, out) = run(swaks(&server, &args)).await;
        assert!(ok, "swaks {name} failed:\n{out}");
        assert!(
            out.contains("250 2.0.0 Ok: queued as"),
            "swaks {name}:\n{out}"
        );
    }
    for who in [
        "anna@kanzlei.test",
        "bernd@kanzlei.test",
        "clara@kanzlei.test",
        "user01@patente.test",
        "user02@patente.test",
    ] {
        assert_eq!(server.inbox(who).unwrap().len(), 1, "{who}");
    }
    let bernd = &server.inbox("bernd@kanzlei.test").unwrap()[0];
    assert!(
        bernd.envelope.as_ref().unwrap().tls,
        "STARTTLS transaction recorded as TLS"
    );
    let clara = &server.inbox("clara@kanzlei.test").unwrap()[0];
    assert_eq!(
        clara.envelope.as_ref().unwrap().auth_user.as_deref(),
        Some("clara@kanzlei.test")
    );
    assert!(String::from_utf8_lossy(&clara.raw).contains("with ESMTPSA"));

    // A wrong password is refused with 535, and the recipient stays empty.
    let (ok, out) = run(swaks(
        &server,
        &[
            "--to",
            "user03@patente.test",
            "--auth",
            "PLAIN",
            "--auth-user",
            "user03@patente.test",
            "--auth-password",
            "wrong",
        ],
    ))
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("535 5.7.8"), "{out}");
    assert!(server.inbox("user03@patente.test").unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn swaks_over_implicit_tls() {
    let server = kanzlei().await;
    let ca = server.ca_path().display().to_string();
    let mut c = Command::new(tool("swaks"));
    c.args([
        "--server",
        &server.smtps_addr().to_string(),
        "--tlsc",
        "--tls-verify",
        "--tls-ca-path",
        &ca,
        "--to",
        "anna@kanzlei.test",
        "--from",
        "s@x.test",
    ]);
    let (ok, out) = run(c).await;
    assert!(ok, "{out}");
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 1);
    server.shutdown().await;
}

const SMTPLIB_SCRIPT: &str = r#"
import smtplib, sys
from email.message import EmailMessage
from email import policy
port = int(sys.argv[1])
msg = EmailMessage(policy=policy.SMTPUTF8)
msg["From"] = "Jörg Müller <jörg@kanzlei.test>"
msg["To"] = "jörg@kanzlei.test, anna@kanzlei.test"
msg["Subject"] = "Frist für das Patent – Überprüfung"
msg["Message-ID"] = "<utf8-test@kanzlei.test>"
msg.set_content("Grüße aus der Kanzlei\n")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("python.test")
    assert s.has_extn("smtputf8"), "SMTPUTF8 not advertised"
    refused = s.send_message(msg)
    assert refused == {}, refused
    try:
        s.sendmail("x@y.test", ["nobody@kanzlei.test"], "Subject: x\r\n\r\nx")
        raise SystemExit("unknown recipient was accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["nobody@kanzlei.test"]
        assert code == 550 and b"5.1.1" in text, (code, text)
print("ok")
"#;

#[tokio::test]
async fn python_smtplib_utf8_subject_and_smtputf8_address() {
    let toml = "[[domain]]\nname='kanzlei.test'\npassword='secret'\nmailboxes=['anna','jörg']\n";
    let server = start_toml(toml).await;
    let mut c = Command::new(tool("python3"));
    c.args(["-c", SMTPLIB_SCRIPT, &server.smtp_addr().port().to_string()]);
    let (ok, out) = run(c).await;
    assert!(ok && out.trim() == "ok", "python smtplib:\n{out}");
    for who in ["jörg@kanzlei.test", "anna@kanzlei.test"] {
        let inbox = server.inbox(who).unwrap();
        assert_eq!(inbox.len(), 1, "{who}");
        let raw = String::from_utf8(inbox[0].raw.to_vec()).expect("stored as UTF-8");
        assert!(
            raw.contains("Subject: Frist für das Patent – Überprüfung\r\n"),
            "{raw}"
        );
        assert_eq!(
            &*inbox[0].envelope.as_ref().unwrap().mail_from,
            "jörg@kanzlei.test"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn lettre_plain_and_starttls_with_auth() {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let server = kanzlei().await;
    let port = server.smtp_addr().port();
    let mail = |to: &str| {
        Message::builder()
            .from("Sender <sender@extern.test>".parse().unwrap())
            .to(to.parse().unwrap())
            .subject("lettre test")
            .header(ContentType::TEXT_PLAIN)
            .body(String::from("Hello from lettre"))
            .unwrap()
    };
    let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    let r = plain
        .send(mail("anna@kanzlei.test"))
        .await
        .expect("plain send");
    assert_eq!(r.code().to_string(), "250");

    let cert = Certificate::from_pem(server.ca_pem().as_bytes()).unwrap();
    let tls = TlsParameters::builder("localhost".into())
        .add_root_certificate(cert)
        .build_rustls()
        .unwrap();
    let secure = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("localhost")
        .port(port)
        .tls(Tls::Required(tls))
        .credentials(Credentials::new(
            "bernd@kanzlei.test".into(),
            "secret".into(),
        ))
        .build();
    secure
        .send(mail("user25@patente.test"))
        .await
        .expect("STARTTLS + AUTH send");
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 1);
    let m = &server.inbox("user25@patente.test").unwrap()[0];
    let env = m.envelope.as_ref().unwrap();
    assert!(env.tls);
    assert_eq!(env.auth_user.as_deref(), Some("bernd@kanzlei.test"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_source_50_sessions_5000_messages_each_stored_once() {
    let server = kanzlei().await;
    let addr = server.smtp_addr().to_string();
    let source = tool("smtp-source");
    // Five smtp-source processes of 10 sessions and 1,000 messages each, to
    // five different mailboxes: 50 parallel sessions, 5,000 messages.
    let mut jobs = Vec::new();
    for i in 1..=5 {
        let mut c = Command::new(&source);
        c.args([
            "-s",
            "10",
            "-m",
            "1000",
            "-l",
            "4096",
            "-f",
            "load@extern.test",
            "-t",
            &format!("user0{i}@patente.test"),
            &addr,
        ]);
        jobs.push(tokio::spawn(run(c)));
    }
    for j in jobs {
        let (ok, out) = j.await.unwrap();
        assert!(ok, "smtp-source failed: {out}");
    }
    for i in 1..=5 {
        let inbox = server.inbox(&format!("user0{i}@patente.test")).unwrap();
        assert_eq!(inbox.len(), 1000, "user0{i}");
        let ids: HashSet<String> = inbox
            .iter()
            .map(|m| {
                let raw = String::from_utf8_lossy(&m.raw);
                raw.lines()
                    .find(|l| l.starts_with("Message-Id:"))
                    .expect("Message-Id")
                    .to_string()
            })
            .collect();
        assert_eq!(ids.len(), 1000, "every message stored once in user0{i}");
        assert!(inbox.iter().all(|m| m.raw.len() > 4096));
    }
    assert_eq!(server.store().total_messages(), 5000);
    server.shutdown().await;
}

#[tokio::test]
async fn maildir_survives_a_restart_with_the_same_uids() {
    let dir = tempfile::tempdir().unwrap();
    let start = || async {
        MockServer::builder()
            .scenario_file(KANZLEI)
            .unwrap()
            .maildir(dir.path())
            .start()
            .await
            .unwrap()
    };
    let server = start().await;
    let mut c = Command::new(tool("swaks"));
    c.args([
        "--server",
        &server.smtp_addr().to_string(),
        "--to",
        "anna@kanzlei.test,user09@patente.test",
        "--from",
        "s@x.test",
        "--pipeline",
    ]);
    for _ in 0..3 {
        let mut c2 = Command::new(tool("swaks"));
        c2.args(c.get_args().collect::<Vec<_>>());
        let (ok, out) = run(c2).await;
        assert!(ok, "{out}");
    }
    let before: Vec<(u32, Vec<u8>)> = server
        .inbox("anna@kanzlei.test")
        .unwrap()
        .iter()
        .map(|m| (m.uid, m.raw.to_vec()))
        .collect();
    assert_eq!(before.len(), 3);
    server.shutdown().await;

    // On disk as Maildir: readable by Dovecot and mutt.
    let new = dir.path().join("patente.test/user09/new");
    assert_eq!(std::fs::read_dir(&new).unwrap().count(), 3);
    for d in ["tmp", "cur"] {
        assert!(dir.path().join("kanzlei.test/anna").join(d).is_dir());
    }

    let server = start().await;
    let after: Vec<(u32, Vec<u8>)> = server
        .inbox("anna@kanzlei.test")
        .unwrap()
        .iter()
        .map(|m| (m.uid, m.raw.to_vec()))
        .collect();
    assert_eq!(before, after, "same messages, same UIDs, same bytes");
    let mut c3 = Command::new(tool("swaks"));
    c3.args([
        "--server",
        &server.smtp_addr().to_string(),
        "--to",
        "anna@kanzlei.test",
        "--from",
        "s@x.test",
    ]);
    let (ok, out) = run(c3).await;
    assert!(ok, "{out}");
    let uids: Vec<u32> = server
        .inbox("anna@kanzlei.test")
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, vec![1, 2, 3, 4]);
    server.shutdown().await;
}
