//! The invariants mailrig's fuzz targets check, in one place for both users:
//! the cargo-fuzz targets in `fuzz/` (nightly) and the stable test
//! `tests/fuzz_regressions.rs`, which replays every input that ever failed
//! (`fuzz/regressions/<target>/`) and the seed corpus (`fuzz/corpus/<target>/`)
//! through the very same functions, so the two cannot drift.
//!
//! Each `check` takes the raw fuzz input and panics, naming the broken
//! invariant, when the code under test misbehaves. "No panic" is only the
//! floor: every target also checks a property of the result.
//!
//! * [`config`] — scenario TOML, probe target TOML, fault-rule JSON;
//! * [`data`] — the SMTP DATA reader against a reference decoder, cut anywhere;
//! * [`session`] — SMTP, IMAP and POP3 sessions fed a byte stream cut anywhere;
//! * [`split`] — how a fuzz input chooses its read boundaries.

pub mod config;
pub mod data;
pub mod session;
pub mod split;

/// A check: panics when the input shows a broken invariant.
pub type Check = fn(&[u8]);

/// Every fuzz target by name (the name of its file in `fuzz/fuzz_targets/` and
/// of its folders under `fuzz/corpus/` and `fuzz/regressions/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("scenario_toml", config::check_scenario),
    ("target_toml", config::check_target),
    ("fault_json", config::check_fault),
    ("smtp_data", data::check),
    ("smtp_session", session::check_smtp),
    ("imap_session", session::check_imap),
    ("pop3_session", session::check_pop3),
];
