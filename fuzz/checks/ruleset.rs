//! Rulesets as the API (`wire::parse`, JSON) and the CLI (`parse_ruleset`, JSON or TOML) read them.

use settlegate::app::ApiError;
use settlegate::domain::rules::{parse_ruleset, RulesetFormat, RulesetInput};
use settlegate::http::wire::parse;

use super::assert_fields_named;

/// A ruleset that parses: its validation errors name fields; when there are none, it re-encodes (JSON and TOML)
/// and re-parses to an equal value that validates again.
fn check_parsed(input: &RulesetInput, from: &str) {
    let errors = input.validate();
    assert_fields_named(&errors, &format!("ruleset validation ({from})"));
    if !errors.is_empty() {
        return;
    }
    let json = serde_json::to_string(input).expect("a ruleset serialises as JSON");
    assert_eq!(parse_ruleset(&json, RulesetFormat::Json).as_ref(), Ok(input), "JSON round trip of {json}");
    match parse::<RulesetInput>(json.as_bytes()) {
        Ok(again) => assert_eq!(&again, input, "API round trip of {json}"),
        Err(e) => panic!("the API refuses the re-encoded ruleset {json}: {e}"),
    }
    let toml_text = toml::to_string(input).unwrap_or_else(|e| panic!("a valid ruleset does not encode as TOML: {e}"));
    assert_eq!(parse_ruleset(&toml_text, RulesetFormat::Toml).as_ref(), Ok(input), "TOML round trip of {toml_text}");
    assert!(input.validate().is_empty());
}

pub fn check_ruleset(data: &[u8]) {
    // The API's parser: a rejection names a field.
    let api = match parse::<RulesetInput>(data) {
        Ok(input) => {
            check_parsed(&input, "API JSON");
            Some(input)
        }
        Err(ApiError::Invalid(errors)) => {
            assert!(!errors.is_empty(), "a rejection without errors");
            assert_fields_named(&errors, "ruleset body");
            None
        }
        Err(other) => panic!("wire::parse returned {other:?}, not Invalid"),
    };
    let Ok(text) = std::str::from_utf8(data) else { return };
    // What the API accepts, the CLI's JSON reader reads as the same value (the API is stricter: no struct from an
    // array).
    let cli = parse_ruleset(text, RulesetFormat::Json).ok();
    if api.is_some() {
        assert_eq!(cli, api, "the CLI and the API read this JSON differently: {text:?}");
    }
    if let Some(input) = &cli {
        check_parsed(input, "CLI JSON");
    }
    if let Ok(input) = parse_ruleset(text, RulesetFormat::Toml) {
        check_parsed(&input, "TOML");
    }
}
