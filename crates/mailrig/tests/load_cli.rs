//! `mailrig load` end to end: the built binary against an in-process `MockServer` serving the law-firm
//! scenario. The report's counts must agree with what the server stored, message for message and mailbox
//! for mailbox; `mailrig load merge` must add two reports up. No timing asserts.

use std::path::{Path, PathBuf};

use mailrig_load::Report;
use mailrig_server::MockServer;
use tokio::process::Command;

mod support;

use support::mailrig_async as mailrig;
use support::{BIN, show};

fn scenario_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/mailrig-core/catalog/kanzlei.toml")
}

async fn start_server() -> MockServer {
    MockServer::builder()
        .scenario_file(scenario_path())
        .expect("kanzlei.toml loads")
        .smtps(None)
        .start()
        .await
        .expect("mock server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_counts_agree_with_the_store_and_reports_merge() {
    let server = start_server().await;
    let target = format!("smtp://{}", server.smtp_addr());
    let dir = tempfile::tempdir().unwrap();
    let a_json = dir.path().join("a.json");
    let b_json = dir.path().join("b.json");

    let out = mailrig(&[
        "load",
        &target,
        "--messages",
        "300",
        "--sessions",
        "4",
        "--to",
        "user{01..25}@patente.test",
        "--run-id",
        "cli-a",
        "--json",
        a_json.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", show(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("accepted 300 of 300 attempted"), "{table}");

    let a = Report::read_json(&a_json).expect("the JSON report parses");
    assert_eq!(a.counts.attempted, 300);
    assert_eq!(a.counts.accepted, 300);
    assert_eq!(a.counts.failed, 0);
    assert_eq!(a.errors.total(), 0);
    assert_eq!(server.store().total_messages(), 300);
    // The report's per-recipient tally agrees with each INBOX.
    let per_recipient = &a.accepted[0].per_recipient;
    assert_eq!(per_recipient.len(), 25);
    for (address, &n) in per_recipient {
        let inbox = server.inbox(address).expect("a mailbox of the scenario");
        assert_eq!(inbox.len() as u64, n, "{address}");
    }

    // A second run takes its recipients from the scenario file (all 28 mailboxes, both domains).
    let out = mailrig(&[
        "load",
        &target,
        "-n",
        "56",
        "-c",
        "2",
        "--size",
        "1k:1,8k:1",
        "--scenario",
        scenario_path().to_str().unwrap(),
        "--run-id",
        "cli-b",
        "--json",
        b_json.to_str().unwrap(),
        "--no-progress",
    ])
    .await;
    assert!(out.status.success(), "{}", show(&out));
    let b = Report::read_json(&b_json).unwrap();
    assert_eq!(b.counts.accepted, 56);
    assert_eq!(b.accepted[0].recipients.len(), 28);
    assert_eq!(b.accepted[0].per_recipient["anna@kanzlei.test"], 2);
    assert_eq!(server.store().total_messages(), 356);

    // Merge via the CLI: counts add up, both runs are listed.
    let merged_json = dir.path().join("merged.json");
    let out = mailrig(&[
        "load",
        "merge",
        a_json.to_str().unwrap(),
        b_json.to_str().unwrap(),
        "--json",
        merged_json.to_str().unwrap(),
    ])
    .await;
    assert!(out.status.success(), "{}", show(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("2 merged runs"), "{table}");
    assert!(table.contains("accepted 356 of 356 attempted"), "{table}");
    let m = Report::read_json(&merged_json).unwrap();
    assert_eq!(m.counts.accepted, a.counts.accepted + b.counts.accepted);
    assert_eq!(m.counts.attempted, a.counts.attempted + b.counts.attempted);
    assert_eq!(
        m.counts.message_bytes,
        a.counts.message_bytes + b.counts.message_bytes
    );
    assert_eq!(
        m.counts.connections,
        a.counts.connections + b.counts.connections
    );
    assert_eq!(m.counts.accepted, server.store().total_messages() as u64);
    assert_eq!(m.runs.len(), 2);
    let message = &m.latency[&mailrig_load::Stage::Message];
    assert_eq!(message.count, 356);

    server.shutdown().await;
}

#[tokio::test]
async fn bad_flags_fail_with_the_flag_named() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["load", "127.0.0.1:25", "--to", "a@b.test", "-c", "0"],
            "--sessions",
        ),
        (
            &["load", "127.0.0.1:25", "--to", "a@b.test", "--size", "4q"],
            "--size",
        ),
        (&["load", "127.0.0.1:25"], "--to"),
        (&["load", "ftp://x", "--to", "a@b.test"], "TARGET"),
        (
            &["load", "127.0.0.1:25", "--scenario", "/nonexistent/s.toml"],
            "--scenario",
        ),
        (
            &[
                "load",
                "127.0.0.1:25",
                "--to",
                "a@b.test",
                "--sessions",
                "many",
            ],
            "--sessions",
        ),
        (
            &["load", "merge", "/nonexistent/a.json"],
            "/nonexistent/a.json",
        ),
    ];
    for (args, flag) in cases {
        let out = mailrig(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded\n{}", show(&out));
        assert!(
            stderr.contains(flag),
            "{args:?}: {flag} not named\n{}",
            show(&out)
        );
    }
}

#[tokio::test]
async fn a_dead_target_could_not_run_exit_2() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = mailrig(&[
        "load",
        &format!("127.0.0.1:{port}"),
        "--to",
        "a@b.test",
        "-n",
        "3",
    ])
    .await;
    // Exit 2 as for `probe`: the run could not start (1 is kept for "ran, and the check failed").
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "mailrig: error: cannot connect to 127.0.0.1:{port}: "
        )),
        "{err}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_run_and_prints_what_it_has() {
    let server = start_server().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let child = Command::new(BIN)
        .args([
            "load",
            &format!("smtp://{}", server.smtp_addr()),
            "--duration",
            "60s",
            "-c",
            "2",
            "--to",
            "user{01..25}@patente.test",
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Wait until some messages have landed, then ask the run to stop.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.store().total_messages() < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no messages arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid = child.id().expect("child is running");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the run stops soon after SIGTERM")
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", show(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("(cancelled)"), "{table}");
    let report = Report::read_json(&json).unwrap();
    assert!(report.runs[0].cancelled);
    assert!(report.counts.accepted >= 20);
    // Every message the driver counted as accepted is in the store (the server may hold one or two
    // more whose 250 the cancelled driver never read).
    let stored = server.store().total_messages() as u64;
    assert!(
        stored >= report.counts.accepted,
        "{stored} < {}",
        report.counts.accepted
    );
    assert!(
        stored <= report.counts.accepted + report.counts.interrupted,
        "{stored} > accepted {} + interrupted {}",
        report.counts.accepted,
        report.counts.interrupted
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_fail_a_run_with_refused_recipients_or_slow_messages() {
    let server = start_server().await;
    let target = format!("smtp://{}", server.smtp_addr());
    // Two of three recipients do not exist: 550 5.1.1 for 66% of them.
    let to = "anna@kanzlei.test,nobody1@kanzlei.test,nobody2@kanzlei.test";
    let base = [
        "load",
        &target,
        "-n",
        "30",
        "-c",
        "2",
        "--to",
        to,
        "--no-progress",
    ];
    let out = mailrig(&base).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "without a threshold the run passes: {}",
        show(&out)
    );

    let mut args = base.to_vec();
    args.extend(["--max-error-rate", "5%"]);
    let out = mailrig(&args).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error rate 66.7% (20 of 30 messages failed)"),
        "{err}"
    );

    // Three recipients per message: every message is accepted, 2 of its 3 recipients refused.
    let mut args = base.to_vec();
    args.extend(["--recipients-per-message", "3", "--max-error-rate", "0.5"]);
    let out = mailrig(&args).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("60 of 90 recipients refused"), "{err}");

    // Every RCPT delayed by 300 ms: the whole message takes at least that long.
    server
        .add_fault_toml("name = \"slow\"\nstage = \"rcpt\"\naction = \"delay\"\nms = 300")
        .unwrap();
    let out = mailrig(&[
        "load",
        &target,
        "-n",
        "4",
        "--to",
        "anna@kanzlei.test",
        "--max-p99",
        "100ms",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("above --max-p99 100.00 ms"),
        "{}",
        show(&out)
    );
    let out = mailrig(&[
        "load",
        &target,
        "-n",
        "4",
        "--to",
        "anna@kanzlei.test",
        "--max-p99",
        "1h",
        "--max-error-rate",
        "0",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    let out = mailrig(&[
        "load",
        &target,
        "--to",
        "a@b.test",
        "--max-error-rate",
        "lots",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("mailrig: error: --max-error-rate 'lots'"),
        "{}",
        show(&out)
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_dash_is_standard_output_and_scenario_takes_a_catalog_name() {
    let server = start_server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "load",
            &format!("smtp://{}", server.smtp_addr()),
            "-n",
            "28",
            // A catalog name, as `serve --scenario` takes: the seed world's 28 mailboxes.
            "--scenario",
            "kanzlei-2-of-25",
            "--json",
            "-",
        ])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let report = Report::from_json(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|e| panic!("stdout is not the JSON report ({e}): {}", show(&out)));
    assert_eq!(report.counts.accepted, 28);
    assert_eq!(report.accepted[0].recipients.len(), 28);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("accepted 28 of 28"),
        "the table goes to stderr: {}",
        show(&out)
    );
    assert!(
        !dir.path().join("-").exists(),
        "--json - wrote a file called '-'"
    );

    // The same for `load merge --json -`.
    let a = dir.path().join("a.json");
    std::fs::write(&a, report.to_json().unwrap()).unwrap();
    let out = mailrig(&["load", "merge", a.to_str().unwrap(), "--json", "-"]).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        Report::from_json(&String::from_utf8_lossy(&out.stdout)).is_ok(),
        "{}",
        show(&out)
    );
    server.shutdown().await;
}
