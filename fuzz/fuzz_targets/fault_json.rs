//! Fuzz target `fault_json`: the invariants of `mailrig_fuzz_checks::config::check_fault`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailrig_fuzz_checks::config::check_fault(data));
