//! `mailrig load --verify-imap` end to end: the built binary against an in-process `MockServer`. Under the
//! seed incident (`kanzlei-2-of-25.toml`: patente.test mail is accepted with 250 but stored only for user01
//! and user02) the check must name the 23 other patente.test mailboxes as missing every accepted message
//! and exit 1; under the healthy `kanzlei.toml` nothing is missing and it exits 0. No timing asserts.

use std::path::{Path, PathBuf};
use std::process::Output;

use mailrig_load::Report;
use mailrig_server::MockServer;
use tokio::process::Command;

mod support;

use support::{BIN, show};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/mailrig-core/catalog")
        .join(name)
}

async fn start_server(scenario: &Path) -> MockServer {
    MockServer::builder()
        .scenario_file(scenario)
        .expect("the scenario loads")
        .smtps(None)
        .start()
        .await
        .expect("mock server starts")
}

/// Runs `mailrig load ... --verify-imap` against `server`; returns the output and the JSON report.
async fn load_and_verify(server: &MockServer, scenario: &Path, json: &Path) -> (Output, Report) {
    let out = Command::new(BIN)
        .args([
            "load",
            &format!("smtp://{}", server.smtp_addr()),
            "--scenario",
            scenario.to_str().unwrap(),
            "-n",
            "56",
            "-c",
            "4",
            "--verify-imap",
            "--imap",
            &server.imap_addr().to_string(),
            "--json",
            json.to_str().unwrap(),
            "--no-progress",
        ])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the mailrig binary");
    let report = Report::read_json(json).unwrap_or_else(|e| panic!("{e}\n{}", show(&out)));
    (out, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_imap_reports_the_silent_loss_of_the_seed_incident() {
    let path = scenario("kanzlei-2-of-25.toml");
    let server = start_server(&path).await;
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = load_and_verify(&server, &path, &dir.path().join("out.json")).await;

    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(report.counts.accepted, 56, "{}", show(&out));
    let v = report
        .verification
        .as_ref()
        .expect("the JSON report has the delivery check");
    assert_eq!(v.accepted, 56);
    assert_eq!(v.unverified, 0, "{v:#?}");
    assert_eq!(v.per_recipient.len(), 28);
    for (address, r) in &v.per_recipient {
        assert_eq!(r.error, None, "{address}");
        assert!(r.accepted > 0, "{address}");
        let lost = address.ends_with("@patente.test")
            && !matches!(
                address.as_str(),
                "user01@patente.test" | "user02@patente.test"
            );
        if lost {
            assert_eq!((r.delivered, r.missing), (0, r.accepted), "{address}");
        } else {
            assert_eq!((r.delivered, r.missing), (r.accepted, 0), "{address}");
        }
    }
    let lost: u64 = (3..=25)
        .map(|i| v.per_recipient[&format!("user{i:02}@patente.test")].accepted)
        .sum();
    assert_eq!(v.missing, lost);
    assert_eq!(v.delivered, 56 - lost);
    assert_eq!(
        v.latency.as_ref().map(|l| l.count),
        Some(v.delivered),
        "one latency sample per delivered message"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(&format!("missing {lost}")), "{table}");
    assert!(table.contains("user25@patente.test"), "{table}");
    assert!(table.contains("\ndelivery "), "the latency row: {table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_imap_finds_everything_on_a_healthy_server() {
    let path = scenario("kanzlei.toml");
    let server = start_server(&path).await;
    let dir = tempfile::tempdir().unwrap();
    let (out, report) = load_and_verify(&server, &path, &dir.path().join("out.json")).await;

    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(report.counts.accepted, 56);
    let v = report.verification.as_ref().expect("the delivery check");
    assert_eq!(
        (v.accepted, v.delivered, v.missing, v.unverified),
        (56, 56, 0, 0)
    );
    assert!(
        v.per_recipient
            .values()
            .all(|r| r.missing == 0 && r.error.is_none())
    );
    assert_eq!(v.latency.as_ref().map(|l| l.count), Some(56));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_target_file_gives_credentials_and_unknown_recipients_are_not_checked() {
    let path = scenario("kanzlei-2-of-25.toml");
    let server = start_server(&path).await;
    let dir = tempfile::tempdir().unwrap();
    let imap = server.imap_addr();
    let target = dir.path().join("target.toml");
    std::fs::write(
        &target,
        format!(
            "[smtp]\nhost = \"{}\"\nport = {}\n\n[read]\nprotocol = \"imap\"\nhost = \"{}\"\nport = {}\npassword = \"secret\"\n\n\
             [[mailbox]]\naddress = \"anna@kanzlei.test\"\n\n[[mailbox]]\naddress = \"user07@patente.test\"\n",
            server.smtp_addr().ip(),
            server.smtp_addr().port(),
            imap.ip(),
            imap.port()
        ),
    )
    .unwrap();
    let json = dir.path().join("out.json");
    let out = Command::new(BIN)
        .args([
            "load",
            &format!("smtp://{}", server.smtp_addr()),
            "--to",
            "anna@kanzlei.test",
            "--to",
            "user07@patente.test",
            "--to",
            "bernd@kanzlei.test",
            "-n",
            "9",
            "--verify-imap",
            "--verify-target",
            target.to_str().unwrap(),
            "--verify-timeout",
            "1",
            "--json",
            json.to_str().unwrap(),
            "--no-progress",
        ])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the mailrig binary");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let report = Report::read_json(&json).unwrap();
    let v = report.verification.expect("the delivery check");
    let r = |a: &str| v.per_recipient[a].clone();
    assert_eq!(
        (
            r("anna@kanzlei.test").delivered,
            r("anna@kanzlei.test").missing
        ),
        (3, 0)
    );
    assert_eq!(
        (
            r("user07@patente.test").delivered,
            r("user07@patente.test").missing
        ),
        (0, 3)
    );
    assert!(r("bernd@kanzlei.test").error.is_some(), "{v:#?}");
    assert_eq!(
        (v.accepted, v.delivered, v.missing, v.unverified),
        (9, 3, 3, 3)
    );
}
