//! One audit check's tally: what it looked at, what was wrong, and a few examples for the report.

use serde::Serialize;

/// Examples kept per check: enough to start an investigation, few enough for report.json to stay small.
const MAX_EXAMPLES: usize = 10;

/// One audit check: how many things it looked at, how many were wrong, and a few examples.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// A stable snake_case name (`card_usage_equals_answers`, …): what dashboards and the verdict refer to.
    pub name: String,
    /// Nothing looked at was wrong.
    pub passed: bool,
    /// Things looked at: shows a check that passed only because it saw nothing.
    pub checked: u64,
    /// Things that were wrong.
    pub failed: u64,
    /// The first few of them (at most 10), each naming the id and both sides of the difference.
    pub examples: Vec<String>,
    /// Why a check is informational or limited, when it is (e.g. pool totals on a shared store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Check {
    /// A check that has looked at nothing yet (and so passes).
    pub fn new(name: &str) -> Check {
        Check { name: name.into(), passed: true, checked: 0, failed: 0, examples: Vec::new(), note: None }
    }

    /// One more thing looked at, and right.
    pub fn ok(&mut self) {
        self.checked += 1;
    }

    /// One more thing looked at, and wrong: the check fails; `example` is kept while there is room.
    pub fn fail(&mut self, example: String) {
        self.checked += 1;
        self.failed += 1;
        self.passed = false;
        self.keep(example);
    }

    /// One more thing looked at that differs without failing the check (an informational check, e.g. pool totals
    /// on a store shared with other traffic): `example` is kept like a failure's.
    pub fn differ(&mut self, example: String) {
        self.checked += 1;
        self.keep(example);
    }

    fn keep(&mut self, example: String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example);
        }
    }

    /// [`ok`](Check::ok) when `condition` holds, else [`fail`](Check::fail) with the example (built only then).
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
