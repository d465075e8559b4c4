//! Fuzz target `target_toml`: the invariants of `mailrig_fuzz_checks::config::check_target`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailrig_fuzz_checks::config::check_target(data));
