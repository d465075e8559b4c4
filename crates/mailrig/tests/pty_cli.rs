//! `mailrig load`, `probe` and `serve` on a terminal: each run under a pseudo-terminal (Python's `pty`),
//! so stdout and stderr are TTYs and the progress displays run, as they do for a person. Issue 9: on a
//! terminal `load` used to end with "a session outlived the run", no report and no `--json` file, in 5
//! of 6 runs against smtp-sink.

mod support;

use std::time::Duration;

use mailrig_server::MockServer;
use support::pty::{Pty, SmtpSink};

#[test]
fn load_on_a_terminal_ends_with_its_report_every_time() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..6 {
        let json = dir.path().join(format!("run{i}.json"));
        let run = Pty::mailrig(&[
            "load",
            &format!("smtp://{}", sink.addr),
            "--sessions",
            "4",
            "--messages",
            "2000",
            "--to",
            "a@b.test",
            "--json",
            json.to_str().unwrap(),
        ])
        .run();
        let text = run.text();
        assert_eq!(run.code, 0, "run {i}:\n{text}");
        assert!(
            text.contains("accepted 2000 of 2000 attempted"),
            "run {i}:\n{text}"
        );
        assert!(!text.contains("mailrig: error"), "run {i}:\n{text}");
        let report = mailrig_load::Report::read_json(&json)
            .unwrap_or_else(|e| panic!("run {i}: no --json report ({e}):\n{text}"));
        assert_eq!(report.counts.accepted, 2000);
    }
}

#[test]
fn open_loop_load_on_a_terminal_shows_progress_and_ends_with_its_report() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("open.json");
    let run = Pty::mailrig(&[
        "load",
        &format!("smtp://{}", sink.addr),
        "--rate",
        "200",
        "--duration",
        "3s",
        "--to",
        "a@b.test",
        "--json",
        json.to_str().unwrap(),
    ])
    .run();
    let text = run.text();
    assert_eq!(run.code, 0, "{text}");
    // The live line ran (it is drawn once a second on a terminal only) and the report followed it.
    assert!(
        text.contains("attempted") && text.contains("msg/s"),
        "{text}"
    );
    assert!(text.contains("open loop"), "{text}");
    let report = mailrig_load::Report::read_json(&json).expect("the --json report");
    assert_eq!(report.counts.failed, 0);
    assert!(report.counts.accepted > 0);
}

#[test]
fn ctrl_c_on_a_terminal_stops_load_with_a_report_and_exit_130() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("cancelled.json");
    // The progress line shows "attempted" after a second; then Ctrl-C is typed on the terminal.
    let run = Pty::mailrig(&[
        "load",
        &format!("smtp://{}", sink.addr),
        "--rate",
        "100",
        "--duration",
        "60s",
        "--to",
        "a@b.test",
        "--json",
        json.to_str().unwrap(),
    ])
    .type_after("attempted", "\\x03")
    .limit(Duration::from_secs(40))
    .run();
    let text = run.text();
    assert_eq!(run.code, 130, "{text}");
    assert!(
        text.contains("errors:"),
        "the report table is missing:\n{text}"
    );
    let report = mailrig_load::Report::read_json(&json).expect("the --json report");
    assert!(report.runs[0].cancelled);
}

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/mailrig-core/catalog/kanzlei-2-of-25.toml"
);

fn target(smtp_port: u16, imap_port: u16, boxes: &[&str]) -> String {
    let mut t = format!(
        "[probe]\ntimeout = 2\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n[read]\nprotocol = \"imap\"\nhost = \"127.0.0.1\"\nport = {imap_port}\ntls = \"none\"\npassword = \"secret\"\n",
    );
    for b in boxes {
        t.push_str(&format!("[[mailbox]]\naddress = \"{b}\"\n"));
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_on_a_terminal_shows_the_verdicts_and_exits_1() {
    let server = MockServer::builder()
        .scenario_file(SEED)
        .unwrap()
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("target.toml");
    let boxes = ["user01@patente.test", "user03@patente.test"];
    std::fs::write(
        &file,
        target(server.smtp_addr().port(), server.imap_addr().port(), &boxes),
    )
    .unwrap();
    let path = file.to_str().unwrap().to_string();
    let run =
        tokio::task::spawn_blocking(move || Pty::mailrig(&["probe", "--target", &path]).run())
            .await
            .unwrap();
    let text = run.text();
    assert_eq!(run.code, 1, "{text}");
    assert!(text.contains("user01@patente.test  delivered"), "{text}");
    assert!(text.contains("user03@patente.test  missing"), "{text}");
    server.shutdown().await;
}

#[test]
fn probe_on_a_terminal_that_cannot_run_says_why_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("target.toml");
    let closed = support::pty::free_port();
    std::fs::write(&file, target(closed, closed, &["anna@kanzlei.test"])).unwrap();
    let run = Pty::mailrig(&["probe", "--target", file.to_str().unwrap()]).run();
    let text = run.text();
    assert_eq!(run.code, 2, "{text}");
    assert!(text.contains("mailrig: error: "), "{text}");
}

fn serve_args() -> Vec<String> {
    let ca = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let mut args: Vec<String> = vec!["serve".into()];
    for l in [
        "--smtp", "--smtps", "--imap", "--imaps", "--pop3", "--pop3s", "--http",
    ] {
        args.push(l.into());
        args.push("127.0.0.1:0".into());
    }
    args.push("--ca-out".into());
    args.push(ca.to_str().unwrap().into());
    args
}

#[test]
fn serve_on_a_terminal_stops_cleanly_on_ctrl_c() {
    let run = Pty::mailrig(&serve_args())
        .type_after("Press Ctrl-C", "\\x03")
        .limit(Duration::from_secs(30))
        .run();
    let text = run.text();
    assert_eq!(run.code, 0, "{text}");
    assert!(text.contains("  SMTP   127.0.0.1:"), "{text}");
    assert!(text.contains("mailrig: shutting down"), "{text}");
}

#[test]
fn serve_on_a_terminal_stops_cleanly_on_sigterm() {
    let run = Pty::mailrig(&serve_args())
        .signal_after("Press Ctrl-C", "SIGTERM")
        .limit(Duration::from_secs(30))
        .run();
    let text = run.text();
    assert_eq!(run.code, 0, "{text}");
    assert!(text.contains("mailrig: shutting down"), "{text}");
}
