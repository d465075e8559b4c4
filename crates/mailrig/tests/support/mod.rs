//! The one test-support module of the CLI's tests. Each test file says
//! `mod support;` and takes what it needs:
//! - here: the binary's path, running it to completion, showing its output;
//! - [`pty`]: running `mailrig` under a pseudo-terminal (as a person at a
//!   terminal meets it) and Postfix's `smtp-sink` on a free port;
//! - [`serve`]: a `mailrig serve` on free loopback ports, read from its banner,
//!   stopped with SIGTERM;
//! - [`readme`]: the README's fenced blocks and the markers that say how each
//!   is checked.

#![allow(dead_code)] // each test file uses its own subset

pub mod pty;
pub mod readme;
pub mod serve;

use std::path::Path;
use std::process::{Command, Output};

/// The `mailrig` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mailrig");

/// The seed's scenario file in the catalog.
pub fn catalog(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../crates/mailrig-core/catalog/{name}.toml"))
}

/// Runs `mailrig ARGS` to its end, piped, in a directory without scenario
/// files (the catalog is embedded); a binary that cannot start fails the test.
pub fn mailrig(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run the mailrig binary")
}

/// The same from async tests, in the caller's directory: the binary runs as a
/// child process the test awaits (killed if the test drops it), so the test's
/// own servers keep serving while it talks to them.
pub async fn mailrig_async(args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the mailrig binary")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit status and both streams, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

/// `n` distinct addresses in 127.0.0.0/8 (never 127.0.0.1), different per
/// test process and call, so tests running at once never share one.
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
    let (a, b, base) = (a.max(1), b, c % 200 + 2);
    (0..n)
        .map(|i| std::net::Ipv4Addr::new(127, a, b, base + i))
        .collect()
}

/// A TCP port free on every one of `ips` at once (several hosts of a world
/// listening on one port, as MX hosts all do on 25).
pub fn port_free_on(ips: &[std::net::Ipv4Addr]) -> u16 {
    use std::net::TcpListener;
    for _ in 0..50 {
        let Ok(first) = TcpListener::bind((ips[0], 0)) else {
            continue;
        };
        let Ok(port) = first.local_addr().map(|a| a.port()) else {
            continue;
        };
        if ips[1..]
            .iter()
            .all(|ip| TcpListener::bind((*ip, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on all of {ips:?} after 50 tries");
}
