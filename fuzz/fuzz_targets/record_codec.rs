#![no_main]
//! Property: see `checks/record_codec.rs` (`settlegate_fuzz::record_codec::check_record_codec`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| settlegate_fuzz::record_codec::check_record_codec(data));
