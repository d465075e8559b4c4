//! What a person gets wrong: target files with mistakes, servers that are not
//! there, wrong passwords, untrusted certificates. Each gives a clear message
//! and the right exit code (2: the probe could not run; 1: it ran and not
//! everything was delivered).

mod common;

use std::path::{Path, PathBuf};

use common::{result, root};
use mailrig_probe::{ProbeError, ProbeOptions, Target, Verdict, exit_code, probe};
use mailrig_server::MockServer;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// What `mailrig probe` does with a target file: load, probe, exit code.
async fn run_file(path: &Path) -> (u8, Result<mailrig_probe::Report, ProbeError>) {
    let result = match Target::load(path) {
        Ok(t) => probe(&t, &ProbeOptions::default()).await,
        Err(e) => Err(ProbeError::from(e)),
    };
    (exit_code(&result), result)
}

async fn mock() -> MockServer {
    MockServer::builder()
        .scenario_file(root().join("crates/mailrig-core/catalog/kanzlei.toml"))
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn file_for(smtp: u16, read_protocol: &str, read: u16, extra: &str) -> String {
    format!(
        "[probe]\ntimeout = 5\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\n\n[read]\nprotocol = \"{read_protocol}\"\nhost = \"127.0.0.1\"\nport = {read}\n{extra}\n[[mailbox]]\naddress = \"anna@kanzlei.test\"\npassword = \"secret\"\n\n[[mailbox]]\naddress = \"bernd@kanzlei.test\"\npassword = \"secret\"\n"
    )
}

#[tokio::test]
async fn missing_field_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "t.toml",
        "[smtp]\nhost = \"127.0.0.1\"\n\n[read]\nhost = \"127.0.0.1\"\nport = 143\n",
    );
    let (code, r) = run_file(&p).await;
    assert_eq!(code, 2);
    let msg = r.unwrap_err().to_string();
    assert!(msg.starts_with(&format!("{}:1:1: ", p.display())), "{msg}");
    assert!(msg.contains("[smtp] host needs a port"), "{msg}");
}

#[tokio::test]
async fn unknown_key_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = file_for(25, "imap", 143, "")
        .replace("password = \"secret\"\n\n", "pasword = \"secret\"\n\n");
    let p = write(dir.path(), "t.toml", &text);
    let (code, r) = run_file(&p).await;
    assert_eq!(code, 2);
    let msg = r.unwrap_err().to_string();
    let line = text.lines().position(|l| l.starts_with("pasword")).unwrap() + 1;
    assert!(
        msg.starts_with(&format!(
            "{}:{line}:1: unknown field `pasword`",
            p.display()
        )),
        "{msg}"
    );
}

#[tokio::test]
async fn unreachable_smtp_server_is_exit_2() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let p = write(
        dir.path(),
        "t.toml",
        &file_for(port, "imap", server.imap_addr().port(), ""),
    );
    let (code, r) = run_file(&p).await;
    assert_eq!(code, 2);
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!("cannot reach the SMTP server 127.0.0.1:{port}: ")),
        "{msg}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn unreachable_imap_server_is_exit_2_and_nothing_is_sent() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let p = write(
        dir.path(),
        "t.toml",
        &file_for(server.smtp_addr().port(), "imap", port, ""),
    );
    let (code, r) = run_file(&p).await;
    assert_eq!(code, 2);
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot reach IMAP 127.0.0.1:{port} (where 2 mailbox(es) are read): "
        )),
        "{msg}"
    );
    assert!(msg.ends_with("nothing was sent"), "{msg}");
    assert_eq!(server.inbox("anna@kanzlei.test").unwrap().len(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_password_is_unreadable_exit_1() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let text = file_for(
        server.smtp_addr().port(),
        "pop3",
        server.pop3_addr().port(),
        "",
    )
    .replacen("password = \"secret\"", "password = \"wrong\"", 1);
    let p = write(dir.path(), "t.toml", &text);
    let (code, r) = run_file(&p).await;
    assert_eq!(code, 1);
    let report = r.unwrap();
    let anna = result(&report, "anna@kanzlei.test");
    assert_eq!(anna.verdict, Verdict::Unreadable);
    assert!(
        anna.reason
            .starts_with("POP3 login as anna@kanzlei.test refused"),
        "{}",
        anna.reason
    );
    assert_eq!(
        result(&report, "bernd@kanzlei.test").verdict,
        Verdict::Delivered
    );
    server.shutdown().await;
}

/// IMAPS with a certificate from an unknown CA: unreadable with the TLS
/// reason; with the server's CA as `ca_file`: delivered, over STARTTLS SMTP too.
#[tokio::test]
async fn tls_needs_the_right_ca() {
    let server = mock().await;
    let dir = tempfile::tempdir().unwrap();
    let (smtp, imaps) = (server.smtp_addr().port(), server.imaps_addr().port());

    let untrusted = file_for(smtp, "imap", imaps, "tls = \"tls\"\n");
    let (code, r) = run_file(&write(dir.path(), "untrusted.toml", &untrusted)).await;
    assert_eq!(code, 1);
    let report = r.unwrap();
    let anna = result(&report, "anna@kanzlei.test");
    assert_eq!(
        anna.verdict,
        Verdict::Unreadable,
        "{}",
        report.to_table(false)
    );
    assert!(
        anna.reason
            .starts_with(&format!("TLS with IMAP 127.0.0.1:{imaps} (TLS) failed")),
        "{}",
        anna.reason
    );
    assert!(
        anna.reason.to_lowercase().contains("certificate"),
        "{}",
        anna.reason
    );

    std::fs::copy(server.ca_path(), dir.path().join("ca.pem")).unwrap();
    let trusted = file_for(smtp, "imap", imaps, "tls = \"tls\"\n").replace(
        "[smtp]\n",
        "[tls]\nca_file = \"ca.pem\"\n\n[smtp]\ntls = \"starttls\"\n",
    );
    let (code, r) = run_file(&write(dir.path(), "trusted.toml", &trusted)).await;
    let report = r.unwrap();
    assert_eq!(code, 0, "{}", report.to_table(false));

    let insecure = untrusted.replace("[smtp]\n", "[tls]\ninsecure = true\n\n[smtp]\n");
    let (code, _) = run_file(&write(dir.path(), "insecure.toml", &insecure)).await;
    assert_eq!(code, 0);
    server.shutdown().await;
}

/// The example targets in testdata/targets parse (the TLS one needs its
/// password variables).
#[test]
fn example_targets_parse() {
    let dir = root().join("testdata/targets");
    let env = |k: &str| {
        k.starts_with("PROBE_")
            .then(|| "x".to_string())
            .or_else(|| (k == "MAILRIG_PROBE_PASSWORD").then(|| "secret".to_string()))
    };
    for (name, n) in [
        ("kanzlei-local.toml", 28),
        ("kanzlei-csv.toml", 28),
        ("tls-example.toml", 2),
    ] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let t = Target::parse_with(&text, name, &dir, &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.mailboxes.len(), n, "{name}");
    }
}
