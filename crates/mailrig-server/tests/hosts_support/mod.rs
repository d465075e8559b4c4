//! Shared helpers of the hosts and collector tests: distinct random loopback
//! addresses (so tests running in parallel never share one), the two-domain
//! world they build on, swaks and Python clients against a host's address.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Output};
use std::time::Duration;

use mailrig_server::MockServer;

/// `n` distinct addresses in 127.0.0.0/8 (never 127.0.0.1), random per test.
pub fn addresses(n: u8) -> Vec<Ipv4Addr> {
    let (a, b) = (fastrand::u8(1..=254), fastrand::u8(0..=255));
    let base = fastrand::u8(2..=200);
    (0..n).map(|i| Ipv4Addr::new(127, a, b, base + i)).collect()
}

/// The domains every test world has: kanzlei.test (anna, bernd, clara) and
/// patente.test (user01..user05), password `secret`.
pub const DOMAINS: &str = "[[domain]]\nname = 'kanzlei.test'\nmailboxes = ['anna', 'bernd', 'clara']\npassword = 'secret'\n\n[[domain]]\nname = 'patente.test'\nmailboxes = ['user01..user05']\npassword = 'secret'\n\n";

/// Starts a world from scenario text (hosts on port 0 at their addresses).
pub async fn start(text: &str) -> MockServer {
    let s = mailrig_core::Scenario::parse(text, "<test>").unwrap_or_else(|e| panic!("{e}"));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    MockServer::builder().scenario(s).start().await.unwrap()
}

/// Runs a program; a missing program fails the test with an install hint.
pub async fn run(program: &str, args: Vec<String>) -> Output {
    let p = program.to_string();
    tokio::task::spawn_blocking(move || Command::new(&p).args(&args).output())
        .await
        .unwrap()
        .unwrap_or_else(|e| {
            panic!("{program} is needed for this test ({e}): run scripts/install-test-deps.sh")
        })
}

/// swaks sends one message to `to` at `server`, with this Message-ID; the
/// output is returned (assert on its status yourself).
pub async fn swaks(server: SocketAddr, to: &str, id: &str, extra: &[&str]) -> Output {
    let mut a: Vec<String> = vec![
        "--server".into(),
        server.ip().to_string(),
        "--port".into(),
        server.port().to_string(),
        "--from".into(),
        "sekretariat@extern.test".into(),
        "--to".into(),
        to.into(),
        "--header".into(),
        format!("Message-Id: <{id}@extern.test>"),
        "--timeout".into(),
        "10".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    run("swaks", a).await
}

/// swaks that must succeed.
pub async fn swaks_ok(server: SocketAddr, to: &str, id: &str) {
    let out = swaks(server, to, id, &[]).await;
    assert!(
        out.status.success(),
        "swaks to {to} at {server} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls until `f` is true, at most `limit`.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// Runs a Python script with arguments; fails the test if Python fails.
pub async fn python(script: &str, args: &[&str]) -> String {
    let mut a = vec!["-c".to_string(), script.to_string()];
    a.extend(args.iter().map(|s| s.to_string()));
    let out = run("python3", a).await;
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
