//! The web page in a real browser: `node tests/ui/ui_test.mjs` drives headless
//! Debian chromium with playwright-core against a `mailrig serve` of the seed
//! scenario (kanzlei-2-of-25) started here on free loopback ports. The script
//! sends mail with swaks and checks: live arrival without reload, the message
//! view (HTML, text, headers, source, an attachment downloaded byte for
//! byte, MIME tree, journal), search by body text, a fault added and toggled
//! in the page changing swaks's reply, the seed's 23 dropped mailboxes marked
//! in the grid, and hostile HTML running no script and loading nothing remote.
//! Screenshots land in target/ui-screenshots/. A missing node, chromium,
//! swaks or playwright-core fails the test with the install command.
//!
//! It also checks that the message list's subject column stays inside the
//! list pane at 1280x800 with a message open, and that the journal view
//! loads older entries page by page.
//!
//! A second test, `tests/ui/login_test.mjs`, signs in to a server started
//! with `--http-token`: the 401 paths, the login form, the live page on the
//! cookie, the page's "Sign out" button, and `/?token=` as a link. A third,
//! `tests/ui/grid10k_test.mjs`, opens a world of 10,000 mailboxes.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailrig");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn need(cond: bool, what: &str) {
    assert!(
        cond,
        "this test needs {what}: run `bash scripts/install-test-deps.sh`"
    );
}

/// The browser, node, swaks and playwright-core are there, or the test fails
/// with the install command; returns the directory of the scripts.
fn browser_tools() -> PathBuf {
    let ui = repo().join("crates/mailrig/tests/ui");
    need(
        ui.join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core in crates/mailrig/tests/ui/node_modules",
    );
    need(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium (/usr/bin/chromium)",
    );
    need(
        Command::new("swaks").arg("--version").output().is_ok(),
        "swaks",
    );
    need(
        Command::new("node").arg("--version").output().is_ok(),
        "node",
    );
    ui
}

#[test]
fn signing_in_with_a_token_in_headless_chromium() {
    let ui = browser_tools();
    let token = "tr41ner;T0ken";
    let serve = support::serve::Serve::start_env(
        &[],
        &["--scenario", "kanzlei-2-of-25"],
        &[("MAILRIG_HTTP_TOKEN", token)],
    );
    let shots = repo().join("target/ui-screenshots");
    let result = Command::new("node")
        .arg(ui.join("login_test.mjs"))
        .arg(serve.url(""))
        .arg(serve.smtp.port().to_string())
        .arg(&shots)
        .arg(token)
        .current_dir(&ui)
        .output()
        .expect("run node");
    serve.stop();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    println!("{text}");
    assert!(
        result.status.success(),
        "the browser login test failed (screenshots in {}):\n{text}",
        shots.display()
    );
    assert!(text.contains("login tests passed: 5 steps"), "{text}");
}

#[test]
fn the_page_in_headless_chromium() {
    let ui = browser_tools();

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--scenario",
            "kanzlei-2-of-25",
            "--ca-out",
        ])
        .arg(dir.path().join("ca.pem"))
        .env_remove("MAILRIG_HTTP_TOKEN")
        .env("MAILRIG_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start mailrig serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        banner.push_str(&line);
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let field = |name: &str| {
        banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|r| r.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} line in the banner:\n{banner}"))
    };
    let http = field("HTTP ");
    let http = http
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let smtp_port = field("SMTP ").rsplit(':').next().unwrap().to_string();
    let shots = repo().join("target/ui-screenshots");

    let result = Command::new("node")
        .arg(ui.join("ui_test.mjs"))
        .args([&http, &smtp_port])
        .arg(&shots)
        .current_dir(&ui)
        .output()
        .expect("run node");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    println!("{text}");
    assert!(
        result.status.success(),
        "the browser test failed (screenshots in {}):\n{text}",
        shots.display()
    );
    assert!(text.contains("ui tests passed: 14 steps"), "{text}");
}

/// `tests/ui/grid10k_test.mjs`: the world grid of 10,000 mailboxes (four
/// domains of 2,500, a rule dropping mail for `u0042` of each) renders
/// grouped per domain, filters, collapses and shows only the problems.
#[test]
fn the_grid_of_10000_mailboxes_in_headless_chromium() {
    let ui = browser_tools();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("grid10k.toml");
    let mut toml = String::new();
    for d in 1..=4 {
        toml.push_str(&format!(
            "[[domain]]\nname = \"d{d}.test\"\nmailboxes = [\"u0001..u2500\"]\npassword = \"secret\"\n\n"
        ));
    }
    toml.push_str(
        "[[fault]]\nname = \"drop-0042\"\nstage = \"route\"\naction = \"drop\"\nmailbox = \"u0042\"\n",
    );
    std::fs::write(&scenario, toml).unwrap();
    let serve =
        support::serve::Serve::start_env(&[], &["--scenario", scenario.to_str().unwrap()], &[]);
    let shots = repo().join("target/ui-screenshots");
    let result = Command::new("node")
        .arg(ui.join("grid10k_test.mjs"))
        .arg(serve.url(""))
        .arg(serve.smtp.port().to_string())
        .arg(&shots)
        .current_dir(&ui)
        .output()
        .expect("run node");
    serve.stop();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    println!("{text}");
    assert!(
        result.status.success(),
        "the 10,000-mailbox grid test failed (screenshots in {}):\n{text}",
        shots.display()
    );
    assert!(text.contains("grid10k tests passed: 4 steps"), "{text}");
}
