//! The hosts and collector tests' part: distinct random loopback addresses
//! (so tests running in parallel never share one), the two-domain world they
//! build on, and swaks against a host's address.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Output;

use super::run;

/// `n` distinct addresses in 127.0.0.0/8 (never 127.0.0.1), random per test.
pub fn addresses(n: u8) -> Vec<Ipv4Addr> {
    let (a, b) = (fastrand::u8(1..=254), fastrand::u8(0..=255));
    let base = fastrand::u8(2..=200);
    (0..n).map(|i| Ipv4Addr::new(127, a, b, base + i)).collect()
}

/// The domains every test world has: kanzlei.test (anna, bernd, clara) and
/// patente.test (user01..user05), password `secret`.
pub const DOMAINS: &str = "[[domain]]\nname = 'kanzlei.test'\nmailboxes = ['anna', 'bernd', 'clara']\npassword = 'secret'\n\n[[domain]]\nname = 'patente.test'\nmailboxes = ['user01..user05']\npassword = 'secret'\n\n";

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
