//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use mailrig_probe::{MailboxResult, Report, Verdict};

/// The workspace root (for scripts and testdata).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The seed world: kanzlei.test (anna, bernd, clara) and patente.test (user01..user25).
pub fn seed_addresses() -> Vec<String> {
    let mut v: Vec<String> = ["anna", "bernd", "clara"]
        .iter()
        .map(|u| format!("{u}@kanzlei.test"))
        .collect();
    v.extend((1..=25).map(|i| format!("user{i:02}@patente.test")));
    v
}

/// Addresses with this verdict, sorted.
pub fn with_verdict(report: &Report, v: Verdict) -> Vec<String> {
    let mut out: Vec<String> = report
        .mailboxes
        .iter()
        .filter(|m| m.verdict == v)
        .map(|m| m.address.clone())
        .collect();
    out.sort();
    out
}

pub fn result<'a>(report: &'a Report, address: &str) -> &'a MailboxResult {
    report
        .mailboxes
        .iter()
        .find(|m| m.address == address)
        .unwrap_or_else(|| panic!("no result for {address}"))
}

/// `n` distinct addresses in 127.0.0.0/8 (never 127.0.0.1), different per
/// process and call, so tests running at once never share one.
pub fn loopback_addresses(n: u8) -> Vec<std::net::Ipv4Addr> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().rotate_left(16)
        ^ CALLS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9);
    let [a, b, c, _] = seed.to_le_bytes();
    (0..n)
        .map(|i| std::net::Ipv4Addr::new(127, a.max(1), b, c % 200 + 2 + i))
        .collect()
}

/// A TCP port free on every one of `ips` at once (MX hosts all on one port).
pub fn port_free_on(ips: &[std::net::Ipv4Addr]) -> u16 {
    use std::net::TcpListener;
    for _ in 0..50 {
        let Ok(port) = TcpListener::bind((ips[0], 0)).and_then(|l| l.local_addr()) else {
            continue;
        };
        let port = port.port();
        if ips[1..]
            .iter()
            .all(|ip| TcpListener::bind((*ip, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on all of {ips:?} after 50 tries");
}
