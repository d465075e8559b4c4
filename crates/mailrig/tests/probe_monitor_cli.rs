//! `mailrig probe --every` as a monitor, run as a user runs it: the binary
//! against a fake server whose fault the test switches on for round two
//! only. The JSON Lines history, the Prometheus metrics served on
//! `--metrics` and the `--format nagios` lines all show the change; the
//! monitor also runs under a pseudo-terminal; bad flags are exit 2, and
//! UNKNOWN (exit 3) with `--format nagios`.

mod support;

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailrig_server::MockServer;
use support::pty::Pty;

const BIN: &str = env!("CARGO_BIN_EXE_mailrig");
const WORLD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/mailrig-core/catalog/kanzlei.toml"
);

fn target(server: &MockServer) -> String {
    format!(
        "[probe]\ntimeout = 1\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\n[read]\nhost = \"127.0.0.1\"\nport = {}\npassword = \"secret\"\n[[mailbox]]\naddress = \"user{{01..05}}@patente.test\"\n[[mailbox]]\naddress = \"anna@kanzlei.test\"\n",
        server.smtp_addr().port(),
        server.imap_addr().port()
    )
}

fn history_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// Waits (bounded) until the history has `n` lines.
fn wait_lines(path: &std::path::Path, n: usize) {
    let until = Instant::now() + Duration::from_secs(30);
    while history_lines(path) < n {
        assert!(Instant::now() < until, "no round {n} in the history");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("metrics listener");
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rounds_history_metrics_and_nagios_show_round_two() {
    let server = MockServer::builder()
        .scenario_file(WORLD)
        .unwrap()
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("target.toml");
    std::fs::write(&file, target(&server)).unwrap();
    let history = dir.path().join("history.jsonl");
    let mut child = Command::new(BIN)
        .args(["probe", "--target", file.to_str().unwrap()])
        .args(["--every", "1s", "--rounds", "3", "--format", "nagios"])
        .args(["--history", history.to_str().unwrap()])
        .args(["--metrics", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The metrics address is the first line on stderr.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("mailrig probe: metrics on http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics line: {first}"))
        .to_string();

    let h = history.clone();
    tokio::task::spawn_blocking(move || wait_lines(&h, 1))
        .await
        .unwrap();
    server
        .add_fault_toml(
            "name = \"lose\"\nstage = \"route\"\naction = \"drop\"\nmailbox = \"user05\"",
        )
        .unwrap();
    let h = history.clone();
    tokio::task::spawn_blocking(move || wait_lines(&h, 2))
        .await
        .unwrap();
    assert!(server.set_fault_enabled("lose", false));
    let metrics = {
        let a = addr.clone();
        tokio::task::spawn_blocking(move || http_get(&a, "/metrics"))
            .await
            .unwrap()
    };
    assert!(metrics.starts_with("HTTP/1.0 200 OK\r\n"), "{metrics}");
    assert!(
        metrics.contains("Content-Type: text/plain; version=0.0.4"),
        "{metrics}"
    );
    let lbl = "mailbox=\"user05@patente.test\",domain=\"patente.test\"";
    assert!(
        metrics.contains("mailrig_probe_rounds_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "mailrig_probe_mailbox_verdict{{{lbl},verdict=\"missing\"}} 1\n"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "mailrig_probe_mailbox_rounds_total{{{lbl},verdict=\"delivered\"}} 1\n"
        )),
        "{metrics}"
    );
    let not_found = {
        let a = addr.clone();
        tokio::task::spawn_blocking(move || http_get(&a, "/other"))
            .await
            .unwrap()
    };
    assert!(not_found.starts_with("HTTP/1.0 404"), "{not_found}");

    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // The exit code is the last round's: OK again.
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("MAILRIG PROBE OK - 6/6 delivered|delivered=6;;;0;6 "),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(
            "MAILRIG PROBE CRITICAL - 5/6 delivered, 1 missing (user05@patente.test missing)|"
        ),
        "{stdout}"
    );
    assert!(lines[2].starts_with("MAILRIG PROBE OK - "), "{stdout}");
    let verdicts: Vec<String> = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["mailboxes"][4]["verdict"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(verdicts, ["delivered", "missing", "delivered"]);
    server.shutdown().await;
}

/// The monitor on a terminal (a terminal once crashed `load`): two rounds,
/// `--only-failures` lists no delivered mailbox, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_on_a_terminal_runs_its_rounds() {
    let server = MockServer::builder()
        .scenario_file(WORLD)
        .unwrap()
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("target.toml");
    std::fs::write(&file, target(&server)).unwrap();
    let path = file.to_str().unwrap().to_string();
    let run = tokio::task::spawn_blocking(move || {
        Pty::mailrig(&[
            "probe",
            "--target",
            &path,
            "--every",
            "200ms",
            "--rounds",
            "2",
            "--only-failures",
        ])
        .run()
    })
    .await
    .unwrap();
    let text = run.text();
    assert_eq!(run.code, 0, "{text}");
    assert_eq!(text.matches("total 6/6 delivered").count(), 2, "{text}");
    assert!(!text.contains("user01@patente.test"), "{text}");
    assert!(!text.contains("mailrig: error"), "{text}");
    server.shutdown().await;
}

#[test]
fn bad_monitor_flags_name_the_flag_and_exit_2() {
    for (args, says) in [
        (vec!["--every", "5x"], "unknown unit 'x'"),
        (vec!["--every", "10ms"], "between 100 ms"),
        (vec!["--metrics", "127.0.0.1:0"], "--every"),
        (vec!["--rounds", "2"], "--every"),
        (vec!["--every", "1s", "--rounds", "0"], "--rounds"),
        (vec!["--every", "1s", "--metrics", "nowhere"], "--metrics"),
        (vec!["--format", "nagio"], "nagios"),
    ] {
        let out = Command::new(BIN)
            .args(["probe", "--target", "t.toml"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// With `--format nagios`, whatever stops the plugin is UNKNOWN (exit 3)
/// with one status line on stdout, as the Monitoring Plugins guidelines ask
/// for invalid arguments: a bad flag value, a bad `--timeout`, a target file
/// that cannot be read. Nagios would show exit 2 as CRITICAL.
#[test]
fn nagios_usage_errors_are_unknown_exit_3() {
    for (args, says) in [
        (
            vec!["--target", "t.toml", "--format", "nagios", "--every", "5x"],
            "usage: invalid value '5x' for '--every <INTERVAL>'",
        ),
        (
            vec!["--target", "t.toml", "--format=nagios", "--timeout", "0"],
            "--timeout 0",
        ),
        (
            vec!["--target", "/nonexistent/t.toml", "--format", "nagios"],
            "/nonexistent/t.toml: cannot read target file",
        ),
    ] {
        let out = Command::new(BIN).arg("probe").args(&args).output().unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {line}{err}");
        assert!(
            line.starts_with("MAILRIG PROBE UNKNOWN - could not run: "),
            "{args:?}: {line}"
        );
        assert_eq!(line.lines().count(), 1, "{args:?}: {line}");
        assert!(line.contains(says), "{args:?}: {line}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
