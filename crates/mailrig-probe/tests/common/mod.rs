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
