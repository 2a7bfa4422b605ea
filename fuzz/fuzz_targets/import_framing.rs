#![no_main]
//! Property: see `checks/import_framing.rs` (`settlegate_fuzz::import_framing::check_import_framing`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| settlegate_fuzz::import_framing::check_import_framing(data));
