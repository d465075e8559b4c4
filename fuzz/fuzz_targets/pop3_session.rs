//! Fuzz target `pop3_session`: the invariants of `mailrig_fuzz_checks::session::check_pop3`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailrig_fuzz_checks::session::check_pop3(data));
