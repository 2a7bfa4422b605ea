#![no_main]
//! Property: see `checks/` (`settlegate_fuzz::settlement_id::check_settlement_id`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| settlegate_fuzz::settlement_id::check_settlement_id(data));
