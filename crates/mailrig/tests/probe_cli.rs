//! `mailrig probe` and `mailrig demo` as a user runs them: the binary against a
//! fake server started by the test, its exit codes (0 all delivered, 1 some
//! not, 2 the probe could not run), the JSON and JUnit reports, and a broken
//! target file.

use std::process::Command;

use mailrig_server::MockServer;

mod support;

use support::BIN;
const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/mailrig-core/catalog/kanzlei-2-of-25.toml"
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
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = support::mailrig_async(&args).await;
    (
        out.status.code(),
        support::stdout(&out),
        support::stderr(&out),
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
    // The same verdicts as a self-contained page, written to a file.
    let page = dir.path().join("report.html");
    let (code, _, err) = run(vec![
        "probe".into(),
        "--target".into(),
        file.display().to_string(),
        "--format".into(),
        "html".into(),
        "--output".into(),
        page.display().to_string(),
    ])
    .await;
    assert_eq!(code, Some(1), "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("class=\"cell v-missing\" title=")
            && html.contains("data-address=\"user03@patente.test\""),
        "{html}"
    );
    assert_eq!(
        html.matches("class=\"cell v-delivered\"").count(),
        2,
        "{html}"
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
            "/../../crates/mailrig-core/catalog/kanzlei.toml"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_catches_the_pop3_collector_seed() {
    let (code, out, err) = run(vec![
        "demo".into(),
        "--scenario".into(),
        "kanzlei-pop3-collector".into(),
        "--timeout".into(),
        "3".into(),
    ])
    .await;
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains("patente.test  2/25 delivered, 23 stuck-upstream"),
        "{out}"
    );
    assert_eq!(
        out.matches("stuck-upstream  accepted with 250 and at the upstream IMAP")
            .count(),
        23,
        "{out}"
    );
    assert!(out.contains("kanzlei.test  3/3 delivered"), "{out}");
    assert!(out.contains("reading back from host 'firm'"), "{out}");
    assert_eq!(
        out.matches("waiting at provider, never collected").count(),
        23,
        "one line per mailbox left at the provider:\n{out}"
    );
    assert!(
        !out.contains("user01@patente.test          1 message(s) waiting"),
        "{out}"
    );
    let (code, _, err) = run(vec!["demo".into(), "--scenario".into(), "no-such".into()]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a catalog scenario"), "{err}");
}

/// A target whose SMTP and IMAP ports were free a moment ago: nothing listens there.
fn unreachable_target(dir: &std::path::Path) -> std::path::PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = dir.join("down.toml");
    std::fs::write(
        &file,
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\n[read]\nprotocol = \"imap\"\nhost = \"127.0.0.1\"\nport = {port}\npassword = \"x\"\n[[mailbox]]\naddress = \"anna@kanzlei.test\"\n"
        ),
    )
    .unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_cannot_run_still_writes_its_junit_and_json_reports() {
    let dir = tempfile::tempdir().unwrap();
    let down = unreachable_target(dir.path());
    let junit = dir.path().join("junit.xml");
    let (code, out, err) = run(vec![
        "probe".into(),
        "--target".into(),
        down.display().to_string(),
        "--format".into(),
        "junit".into(),
        "--output".into(),
        junit.display().to_string(),
    ])
    .await;
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.starts_with("mailrig: error: probe: cannot run: "),
        "{err}"
    );
    let xml =
        std::fs::read_to_string(&junit).expect("a JUnit file even though the probe could not run");
    // A JUnit reader (Python's ElementTree, as CI collectors parse it) sees one test case with an error.
    let script = "import sys, xml.etree.ElementTree as ET\nr = ET.parse(sys.argv[1]).getroot()\nprint(r.get('tests'), r.get('errors'), len(r.findall('./testsuite/testcase/error')))";
    let py = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&junit)
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), "1 1 1", "{xml}");
    assert!(
        xml.contains("could not run") && xml.contains("cannot reach the SMTP server"),
        "{xml}"
    );

    // JSON to standard output with `--output -`: the schema's keys, `error` set, nothing in a file `-`.
    let (code, out, err) = tokio::task::spawn_blocking({
        let down = down.clone();
        let cwd = dir.path().to_path_buf();
        move || {
            let o = Command::new(BIN)
                .current_dir(cwd)
                .args(["probe", "--target"])
                .arg(down)
                .args(["--format", "json", "--output", "-"])
                .output()
                .unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(2), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["schema"], "mailrig.probe.report/v1");
    assert!(v["error"].as_str().unwrap().contains("cannot reach"), "{v}");
    assert_eq!(v["summary"]["all_delivered"], false);
    assert!(
        !dir.path().join("-").exists(),
        "--output - wrote a file called '-'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_colours_follow_color_and_no_color() {
    let server = MockServer::builder()
        .scenario_file(SEED)
        .unwrap()
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("target.toml");
    std::fs::write(&file, target(&server, &["user01@patente.test"])).unwrap();
    let path = file.display().to_string();
    // Into a pipe: no colour by default, colour with --color always.
    let (_, plain, _) = run(vec!["probe".into(), "--target".into(), path.clone()]).await;
    assert!(!plain.contains('\x1b'), "{plain}");
    let (_, forced, _) = run(vec![
        "probe".into(),
        "--target".into(),
        path.clone(),
        "--color".into(),
        "always".into(),
    ])
    .await;
    assert!(forced.contains("\x1b[32m"), "{forced}");
    // On a terminal: colour by default, none with NO_COLOR or --color never.
    let p = path.clone();
    let (tty, no_color, never) = tokio::task::spawn_blocking(move || {
        (
            support::pty::Pty::mailrig(&["probe", "--target", &p]).run(),
            support::pty::Pty::mailrig(&["probe", "--target", &p])
                .env("NO_COLOR", "1")
                .run(),
            support::pty::Pty::mailrig(&["probe", "--color", "never", "--target", &p]).run(),
        )
    })
    .await
    .unwrap();
    assert!(tty.screen.contains("\x1b[32m"), "{}", tty.screen);
    assert!(!no_color.screen.contains("\x1b[32m"), "{}", no_color.screen);
    assert!(!never.screen.contains("\x1b[32m"), "{}", never.screen);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_and_load_share_one_trust_policy_and_the_same_tls_flags() {
    let server = MockServer::builder()
        .scenario_file(SEED)
        .unwrap()
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // STARTTLS for sending (lettre's TLS), implicit TLS for reading (rustls): both must trust the CA.
    let file = dir.path().join("tls.toml");
    std::fs::write(
        &file,
        format!(
            "[probe]\ntimeout = 3\n[smtp]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\n[read]\nprotocol = \"imap\"\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\npassword = \"secret\"\n[[mailbox]]\naddress = \"user01@patente.test\"\n",
            server.smtp_addr().port(),
            server.imaps_addr().port()
        ),
    )
    .unwrap();
    let ca = server.ca_path().display().to_string();
    let path = file.display().to_string();
    let probe = |extra: &[&str]| {
        let mut args = vec!["probe".to_string(), "--target".into(), path.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        run(args)
    };
    let (code, out, err) = probe(&["--tls-ca", &ca]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (code, out, err) = probe(&["--tls-insecure"]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    // Without the CA the mock's certificates are not trusted: nothing is reported delivered.
    let (code, out, err) = probe(&[]).await;
    assert_ne!(code, Some(0), "{out}\n{err}");
    let (code, _, err) = probe(&["--tls-ca", "/nonexistent/ca.pem"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--tls-ca /nonexistent/ca.pem"), "{err}");

    // `mailrig load` takes the same flags for the same server.
    let smtps = format!("smtps://localhost:{}", server.smtps_addr().port());
    let load = |extra: &[&str]| {
        let mut args: Vec<String> = ["load", &smtps, "-n", "2", "--to", "user01@patente.test"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        run(args)
    };
    let (code, out, err) = load(&["--tls-ca", &ca]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (code, out, err) = load(&["--tls-insecure"]).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (code, out, err) = load(&[]).await;
    assert_eq!(
        code,
        Some(1),
        "an untrusted certificate fails every message: {out}\n{err}"
    );
    server.shutdown().await;
}

/// The catalog's `spam-filter-junk` (a `misfile` fault): the prober's mail
/// for bernd and user04 is accepted and lands in their Junk folder, so
/// exactly those two are `misfiled (Junk)` and the others delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_misfiled_junk_for_the_spam_filter_scenario() {
    let server = MockServer::builder()
        .scenario_file(support::catalog("spam-filter-junk"))
        .unwrap()
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("target.toml");
    let boxes = [
        "anna@kanzlei.test",
        "bernd@kanzlei.test",
        "user03@patente.test",
        "user04@patente.test",
    ];
    std::fs::write(&file, target(&server, &boxes)).unwrap();
    let (code, out, err) = run(vec![
        "probe".into(),
        "--target".into(),
        file.display().to_string(),
        "--format".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(code, Some(1), "misfiled is not delivered: {out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let verdicts: Vec<(String, String, serde_json::Value)> = report["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["address"].as_str().unwrap().to_string(),
                m["verdict"].as_str().unwrap().to_string(),
                m["folders"].clone(),
            )
        })
        .collect();
    let want = |a: &str, v: &str, f: serde_json::Value| (a.to_string(), v.to_string(), f);
    let none = serde_json::json!([]);
    let junk = serde_json::json!(["Junk"]);
    assert_eq!(
        verdicts,
        [
            want("anna@kanzlei.test", "delivered", none.clone()),
            want("bernd@kanzlei.test", "misfiled", junk.clone()),
            want("user03@patente.test", "delivered", none),
            want("user04@patente.test", "misfiled", junk),
        ],
        "{out}"
    );
    // The table (into a pipe: no colour).
    let (code, table, err) = run(vec![
        "probe".into(),
        "--target".into(),
        file.display().to_string(),
    ])
    .await;
    assert_eq!(code, Some(1), "{table}\n{err}");
    assert_eq!(table.matches("misfiled (Junk)").count(), 2, "{table}");
    server.shutdown().await;
}
