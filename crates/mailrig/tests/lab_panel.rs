//! The lab panel a trainer projects: a running greylisting-deadline lab (its `mailrig serve` gets
//! `--lab DIR`) with one hint revealed and one failed check answers `GET /api/v1/lab` with its
//! title, task, hints, last check and score, the same document as `lab status --format json`;
//! a `mailrig serve` without `--lab` answers 404. Then `node tests/ui/lab_panel_test.mjs` drives
//! headless Debian chromium with playwright-core: the page shows the panel, follows a wrong and a
//! right answer without a reload, and saves screenshots in target/ui-screenshots/. A missing node,
//! chromium or playwright-core fails the test with the install command.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::serve::Serve;
use support::{BIN, show};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn need(cond: bool, what: &str) {
    assert!(
        cond,
        "this test needs {what}: run `bash scripts/install-test-deps.sh`"
    );
}

fn lab(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("lab")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run mailrig lab")
}

/// `GET url` with curl: (status, body).
fn get(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl (scripts/install-test-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Stops the lab even when the test fails.
struct Running(PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = lab(&self.0, &["stop"]);
    }
}

#[test]
fn a_server_without_a_lab_has_no_lab_panel() {
    let serve = Serve::start(&[], &[]);
    let (code, body) = get(&serve.url("/api/v1/lab"));
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("started without --lab DIR"), "{body}");
    let (code, page) = get(&serve.url("/"));
    assert_eq!(code, 200);
    assert!(
        page.contains(r#"id="lab-panel""#) && page.contains("hidden"),
        "the page has the (hidden) panel: {page}"
    );
    serve.stop();
}

#[test]
fn the_page_shows_a_running_labs_task_and_last_check_in_headless_chromium() {
    let ui = repo().join("crates/mailrig/tests/ui");
    need(
        ui.join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core in crates/mailrig/tests/ui/node_modules",
    );
    need(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium (/usr/bin/chromium)",
    );
    need(
        Command::new("node").arg("--version").output().is_ok(),
        "node",
    );

    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("lab");
    let out = Command::new(BIN)
        .args([
            "lab",
            "start",
            "greylisting-deadline",
            "--port-base",
            "26200",
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let _running = Running(dir.clone());
    let base = "http://127.0.0.1:26203";

    // Started: the panel is there, with no check yet.
    let (code, body) = get(&format!("{base}/api/v1/lab"));
    assert_eq!(code, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["schema"], "mailrig-lab-panel/1");
    assert_eq!(doc["lab"], "greylisting-deadline");
    assert_eq!(doc["running"], true);
    assert!(doc["last_check"].is_null(), "{doc:#}");
    assert_eq!(doc["hints"]["used"], 0);

    assert!(lab(&dir, &["hint"]).status.success());
    let out = lab(&dir, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let (_, body) = get(&format!("{base}/api/v1/lab"));
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["hints"]["used"], 1);
    assert_eq!(doc["hints"]["revealed"].as_array().unwrap().len(), 1);
    assert_eq!(doc["score"]["score"], 135, "150 minus the first hint's 15");
    let last = &doc["last_check"];
    assert_eq!(last["solved"], false, "{doc:#}");
    assert_eq!(last["checks"][0]["summary"], "28 deferred");
    assert!(
        last["checks"][1]["problems"][0]
            .as_str()
            .unwrap()
            .contains("no answer yet"),
        "{doc:#}"
    );
    // The same document from the command line, for labs without a `mailrig serve`.
    let out = lab(&dir, &["status", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["last_check"], doc["last_check"]);
    assert_eq!(status["title"], doc["title"]);

    let shots = repo().join("target/ui-screenshots");
    let result = Command::new("node")
        .arg(ui.join("lab_panel_test.mjs"))
        .arg(base)
        .arg(BIN)
        .arg(&dir)
        .arg(&shots)
        .current_dir(&ui)
        .output()
        .expect("run node");
    let text = show(&result);
    assert!(
        result.status.success(),
        "the browser test failed (screenshots in {}):\n{text}",
        shots.display()
    );
    assert!(text.contains("lab panel tests passed: 4 steps"), "{text}");

    // Reset clears the last check; stop marks the panel stopped.
    assert!(lab(&dir, &["reset"]).status.success());
    let (_, body) = get(&format!("{base}/api/v1/lab"));
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(doc["last_check"].is_null(), "{doc:#}");
    assert!(lab(&dir, &["stop"]).status.success());
    let panel: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(".mailrig-lab/panel.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(panel["running"], false);
}
