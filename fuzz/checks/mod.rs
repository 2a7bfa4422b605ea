//! The property of every fuzz target, as plain functions that panic when the property is violated.
//!
//! Shared by the libFuzzer targets (`fuzz/fuzz_targets/*.rs`, nightly, through this crate's lib) and by the stable
//! test `tests/fuzz_corpus.rs`, which replays every file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! through [`run`]. No libFuzzer here: only settlegate and what settlegate itself depends on, plus `arbitrary`.

pub mod bodies;
pub mod config;
pub mod import_framing;
pub mod record_codec;
pub mod ruleset;
pub mod settlement_id;

/// Every target, by the name of its `fuzz_targets/<name>.rs` and of its corpus directory.
pub const TARGETS: &[&str] = &[
    "settle_body",
    "quote_body",
    "reversal_body",
    "eligibility_body",
    "ruleset",
    "settlement_id",
    "config",
    "import_framing",
    "record_codec",
];

/// Runs the check of `target` on one input. Panics on a property violation or an unknown target.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "settle_body" => bodies::check_settle_body(data),
        "quote_body" => bodies::check_quote_body(data),
        "reversal_body" => bodies::check_reversal_body(data),
        "eligibility_body" => bodies::check_eligibility_body(data),
        "ruleset" => ruleset::check_ruleset(data),
        "settlement_id" => settlement_id::check_settlement_id(data),
        "config" => config::check_config(data),
        "import_framing" => import_framing::check_import_framing(data),
        "record_codec" => record_codec::check_record_codec(data),
        other => panic!("no fuzz target {other:?}"),
    }
}

/// A validation or parse error must say which field it is about.
pub fn assert_fields_named(errors: &[settlegate::domain::FieldError], context: &str) {
    for e in errors {
        assert!(!e.field.trim().is_empty(), "{context}: an error names no field: {e:?}");
    }
}
