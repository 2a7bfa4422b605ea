#![no_main]
//! Property: see `checks/` (`settlegate_fuzz::config::check_config`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| settlegate_fuzz::config::check_config(data));
