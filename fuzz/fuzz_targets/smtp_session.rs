//! Fuzz target `smtp_session`: the invariants of `mailrig_fuzz_checks::session::check_smtp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailrig_fuzz_checks::session::check_smtp(data));
