//! `mailrig probe` and `mailrig demo` as a user runs them: the binary against a
//! fake server started by the test, its exit codes (0 all delivered, 1 some
//! not, 2 the probe could not run), the JSON and JUnit reports, and a broken
//! target file.

use std::process::Command;

use mailrig_server::MockServer;

const BIN: &str = env!("CARGO_BIN_EXE_mailrig");
const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/scenarios/kanzlei-2-of-25.toml"
);

fn target(server: &MockServer, boxes: &[&str]) -> String {
    let mut t = format!(
        "[probe]\ntimeout = 2\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n[read]\nprotocol = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\npassword = \"secret\"\n",
        server.smtp_addr().port(),
        server.imap_addr().port()
    );
    for b in boxes {
        t.push_str(&format!("[[mailbox]]\naddress = \"{b}\"\n"));
    }
    t
}

async fn run(args: Vec<String>) -> (Option<i32>, String, String) {
    let out = tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_names_the_lost_mailboxes_and_exits_1() {
    let server = MockServer::builder()
        .scenario_file(SEED)
        .unwrap()
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("target.toml");
    std::fs::write(
        &file,
        target(
            &server,
            &[
                "anna@kanzlei.test",
                "user01@patente.test",
                "user03@patente.test",
            ],
        ),
    )
    .unwrap();
    let path = file.display().to_string();

    let (code, out, err) = run(vec![
        "probe".into(),
        "--target".into(),
        path.clone(),
        "--format".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let verdict = |a: &str| {
        report["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["address"] == a)
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict("anna@kanzlei.test"), "delivered");
    assert_eq!(verdict("user01@patente.test"), "delivered");
    assert_eq!(verdict("user03@patente.test"), "missing");

    let (code, out, _) = run(vec![
        "probe".into(),
        "--target".into(),
        path,
        "--format".into(),
        "junit".into(),
    ])
    .await;
    assert_eq!(code, Some(1));
    assert!(
        out.contains("<testsuites")
            && out.contains("user03@patente.test")
            && out.contains("<failure"),
        "{out}"
    );
    // The prober cleaned up after itself.
    assert!(server.inbox("anna@kanzlei.test").unwrap().is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_exit_0_when_all_arrive_and_2_for_a_broken_target() {
    let server = MockServer::builder()
        .scenario_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/scenarios/kanzlei.toml"
        ))
        .unwrap()
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        target(&server, &["bernd@kanzlei.test", "user25@patente.test"]),
    )
    .unwrap();
    let (code, out, err) = run(vec![
        "probe".into(),
        "--target".into(),
        good.display().to_string(),
    ])
    .await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("kanzlei.test  1/1 delivered"), "{out}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        target(&server, &["bernd@kanzlei.test"])
            .replace("[read]\n", "[read]\nprotocoll = \"imap\"\n"),
    )
    .unwrap();
    let (code, _, err) = run(vec![
        "probe".into(),
        "--target".into(),
        bad.display().to_string(),
    ])
    .await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("protocoll") && err.contains("bad.toml:"),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_catches_the_seed_incident() {
    let (code, out, err) = run(vec!["demo".into(), "--timeout".into(), "2".into()]).await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains("patente.test  2/25 delivered, 23 missing"),
        "{out}"
    );
    assert!(out.contains("kanzlei.test  3/3 delivered"), "{out}");
    assert_eq!(
        out.matches("accepted with 250, dropped").count(),
        23,
        "one journal line per lost mailbox:\n{out}"
    );
    assert!(out.contains("This is the seed incident, caught"), "{out}");
}
