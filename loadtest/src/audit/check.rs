//! One audit check's tally: what it looked at, what was wrong, and a few examples for the report.

use serde::Serialize;

/// Examples kept per check: enough to start an investigation, few enough for report.json to stay small.
pub(super) const MAX_EXAMPLES: usize = 10;

/// One audit check: how many things it looked at, how many were wrong, and a few examples.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub checked: u64,
    pub failed: u64,
    pub examples: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Check {
    pub fn new(name: &str) -> Check {
        Check { name: name.into(), passed: true, checked: 0, failed: 0, examples: Vec::new(), note: None }
    }
    pub fn ok(&mut self) {
        self.checked += 1;
    }
    pub fn fail(&mut self, example: String) {
        self.checked += 1;
        self.failed += 1;
        self.passed = false;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example);
        }
    }
    pub fn expect(&mut self, condition: bool, example: impl FnOnce() -> String) {
        if condition {
            self.ok();
        } else {
            self.fail(example());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_keep_a_few_examples() {
        let mut c = Check::new("x");
        for i in 0..25 {
            c.expect(i % 2 == 0, || format!("odd {i}"));
        }
        assert!(!c.passed);
        assert_eq!(c.checked, 25);
        assert_eq!(c.failed, 12);
        assert_eq!(c.examples.len(), MAX_EXAMPLES);
    }
}
