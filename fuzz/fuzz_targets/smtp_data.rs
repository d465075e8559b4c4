//! Fuzz target `smtp_data`: the invariants of `mailrig_fuzz_checks::data::check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailrig_fuzz_checks::data::check(data));
