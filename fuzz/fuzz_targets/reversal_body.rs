#![no_main]
//! Property: see `checks/` (`settlegate_fuzz::bodies::check_reversal_body`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| settlegate_fuzz::bodies::check_reversal_body(data));
