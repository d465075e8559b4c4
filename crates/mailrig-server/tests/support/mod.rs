//! The one test-support module of the server's integration tests. Each test
//! file says `mod support;` and imports the part it needs:
//! - [`imap`]: a raw-bytes IMAP client (exact bytes in, exact responses out,
//!   literals included) and message fixtures delivered into the store;
//! - [`pop3`]: a raw POP3 client (plain or TLS) and mailbox fillers;
//! - [`smtp`]: a raw SMTP client that asserts reply codes;
//! - [`dkim`]: a DKIM-signing sender domain in the world's DNS, lettre's signer;
//! - [`faults`]: catalog scenarios and real clients (smtplib, swaks, curl);
//! - [`hosts`]: random loopback addresses for `[[host]]` worlds, swaks to a host.
//!
//! What every part needs lives here once: starting a world, polling for
//! something that happens after a reply, running a third-party tool (a missing
//! tool fails the test with an install hint; tests never skip), and a TLS
//! client that trusts the world's CA.

#![allow(dead_code)]

pub mod dkim;
pub mod faults;
pub mod hosts;
pub mod imap;
pub mod pop3;
pub mod smtp;

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use mailrig_server::MockServer;

/// The seed's world without faults.
pub const KANZLEI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../crates/mailrig-core/catalog/kanzlei.toml"
);

/// Starts a world from scenario text, every listener on port 0. The text must
/// parse without warnings (a warning in a test's scenario is a typo).
pub async fn start_toml(text: &str) -> MockServer {
    let s = mailrig_core::Scenario::parse(text, "<test>").unwrap_or_else(|e| panic!("{e}"));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    MockServer::builder().scenario(s).start().await.unwrap()
}

/// Starts the seed's world without faults (`crates/mailrig-core/catalog/kanzlei.toml`).
pub async fn kanzlei() -> MockServer {
    MockServer::builder()
        .scenario_file(KANZLEI)
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// Polls until `f` is true, at most `limit` (for what happens after a reply).
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

/// Runs a program and returns what it did, whatever its exit status; a missing
/// program fails the test with an install hint.
pub async fn run(program: &str, args: Vec<String>) -> Output {
    tokio::process::Command::new(program)
        .args(&args)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("{program} is needed for this test ({e}): run scripts/install-test-deps.sh; the test does not skip")
        })
}

/// Runs a third-party tool that must succeed and returns its stdout.
pub async fn run_tool(program: &str, args: &[&str]) -> String {
    let out = run(program, args.iter().map(|a| a.to_string()).collect()).await;
    assert!(
        out.status.success(),
        "{program} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A TLS client trusting the CA in `pem` (the world's CA).
pub fn tls_connector_for(pem: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}
