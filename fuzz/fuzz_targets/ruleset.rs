#![no_main]
//! Property: see `checks/` (`settlegate_fuzz::ruleset::check_ruleset`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| settlegate_fuzz::ruleset::check_ruleset(data));
