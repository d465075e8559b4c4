//! Shared helpers of the fault tests: start a catalog scenario, run real
//! clients (Python's smtplib/imaplib/poplib, swaks, curl) and read what they
//! saw. A missing tool fails the test with a hint; it never passes silently.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

use mailrig_core::JournalEntry;
use mailrig_core::fault::Stage;
use mailrig_server::MockServer;
use serde_json::{Value, json};

use super::{run, start_toml};

pub const SMTP_SEND: &str = include_str!("../py/smtp_send.py");

/// The path of a catalog file.
pub fn catalog(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crates/mailrig-core/catalog"
    ))
    .join(format!("{name}.toml"))
}

/// Starts a catalog scenario on port 0.
pub async fn start(name: &str) -> MockServer {
    MockServer::builder()
        .scenario_file(catalog(name))
        .unwrap_or_else(|e| panic!("{e}"))
        .start()
        .await
        .unwrap()
}

/// Starts a catalog scenario with some text replaced (a test-local copy, e.g.
/// seconds instead of minutes).
pub async fn start_edited(name: &str, from: &str, to: &str) -> MockServer {
    let text = std::fs::read_to_string(catalog(name)).unwrap();
    assert!(text.contains(from), "{name} has no {from:?}");
    start_toml(&text.replace(from, to)).await
}

/// curl against an SMTPS port at `smtps`, trusting `ca` and connecting by
/// `name` (resolved to that address): a TLS client that verifies the name
/// in the certificate (exit 0 when the handshake succeeds).
pub async fn curl_smtps_as(ca: String, name: &str, smtps: std::net::SocketAddr) -> Output {
    let port = smtps.port();
    let resolve = format!("{name}:{port}:{}", smtps.ip());
    curl_smtps_url(
        ca,
        &["--resolve", &resolve],
        format!("smtps://{name}:{port}/"),
    )
    .await
}

/// curl against the server's SMTPS port, trusting `ca`: what a TLS client
/// that verifies certificates makes of the handshake (exit 0 when it succeeds).
pub async fn curl_smtps(server: &MockServer, ca: String) -> Output {
    let url = format!("smtps://127.0.0.1:{}/", server.smtps_addr().port());
    curl_smtps_url(ca, &[], url).await
}

async fn curl_smtps_url(ca: String, extra: &[&str], url: String) -> Output {
    let mut args: Vec<String> = ["-sS", "--max-time", "10", "--cacert"]
        .map(String::from)
        .into();
    args.push(ca);
    args.extend(extra.iter().map(|a| a.to_string()));
    args.push(url);
    run("curl", args).await
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

/// Sends with smtplib (see tests/py/smtp_send.py for the request's keys).
pub async fn smtp(req: Value) -> Value {
    let out = python(SMTP_SEND, &[&req.to_string()]).await;
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A small message with a Message-ID.
pub fn message(from: &str, to: &str, id: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: test {id}\r\nMessage-ID: <{id}@extern.test>\r\n\r\nHallo.\r\n"
    )
}

/// One message to each address, over one connection on the SMTP port.
pub fn sends(port: u16, to: &[&str]) -> Value {
    let msgs: Vec<Value> = to
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"from": "sekretariat@extern.test", "to": [t],
                   "data": message("sekretariat@extern.test", t, &format!("m{i}"))})
        })
        .collect();
    json!({"port": port, "messages": msgs})
}

/// The i-th message's reply code at a step ("mail", "data") as a number.
pub fn code(r: &Value, i: usize, step: &str) -> Option<u64> {
    r["messages"][i][step].as_u64()
}

/// The journal entries of one rule.
pub fn by_rule(server: &MockServer, rule: &str) -> Vec<JournalEntry> {
    server
        .journal()
        .entries()
        .into_iter()
        .filter(|e| e.rule.as_deref() == Some(rule))
        .collect()
}

/// Asserts that `rule` fired `n` times, all at `stage`; returns the entries.
pub fn fired(server: &MockServer, rule: &str, stage: Stage, n: usize) -> Vec<JournalEntry> {
    let e = by_rule(server, rule);
    assert_eq!(e.len(), n, "{rule}: {:#?}", server.journal().entries());
    for x in &e {
        assert_eq!(x.stage, stage, "{x:?}");
    }
    e
}

/// How many messages are in the INBOX of `address`.
pub fn count(server: &MockServer, address: &str) -> usize {
    server
        .inbox(address)
        .unwrap_or_else(|| panic!("{address} is no mailbox"))
        .len()
}
