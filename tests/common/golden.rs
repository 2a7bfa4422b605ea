//! The golden vectors of tests/golden (format in tests/golden/README.md), run by tests/golden_engine.rs and
//! tests/golden_http.rs.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One golden vector file.
pub struct Golden {
    /// The file name, e.g. `worked_example.json`.
    pub name: String,
    pub vector: Value,
}

impl Golden {
    pub fn rulesets(&self) -> &[Value] {
        self.vector["rulesets"].as_array().unwrap_or_else(|| panic!("{}: no rulesets", self.name))
    }

    pub fn cardholders(&self) -> &[Value] {
        self.vector["cardholders"].as_array().unwrap_or_else(|| panic!("{}: no cardholders", self.name))
    }

    pub fn steps(&self) -> &[Value] {
        self.vector["steps"].as_array().unwrap_or_else(|| panic!("{}: no steps", self.name))
    }
}

/// The golden vectors: tests/golden of this repository.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// How many `*.json` files tests/golden holds (counted apart from [`golden_files`], for "every file ran").
pub fn golden_json_count() -> usize {
    let dir = golden_dir();
    let count = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".json"))
        .count();
    assert!(count >= 9, "{}: only {count} golden vectors", dir.display());
    count
}

/// Every golden vector of tests/golden, sorted by file name.
pub fn golden_files() -> Vec<Golden> {
    let dir = golden_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden vectors in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            let vector = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
            Golden { name, vector }
        })
        .collect()
}

/// The path a golden step's `op` is sent to.
pub fn golden_path(file: &str, step: &Value) -> &'static str {
    match step["op"].as_str().unwrap() {
        "settle" => "/v1/settlements",
        "quote" => "/v1/settlements/quote",
        "reverse" => "/v1/reversals",
        other => panic!("{file}: unknown op {other}"),
    }
}

/// Checks a golden step's expectation against a reply: status, then code or every listed field exactly.
pub fn check_expectation(file: &str, i: usize, step: &Value, status: u16, body: &Value) {
    let expect_status = u16::try_from(step["expect_status"].as_u64().unwrap()).unwrap();
    assert_eq!(status, expect_status, "{file} step {i}: status; body {body}");
    if let Some(code) = step.get("expect_code") {
        assert_eq!(&body["code"], code, "{file} step {i}: code; body {body}");
    }
    if let Some(expect) = step.get("expect").and_then(|e| e.as_object()) {
        for (k, v) in expect {
            assert_eq!(&body[k], v, "{file} step {i}: field {k}; body {body}");
        }
    }
}
