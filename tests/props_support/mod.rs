//! What the property tests (tests/props_*.rs) share, included with `mod props_support;`: the strategies, the
//! counters the tests keep next to the store, random scenarios of operations and the test's model of the store
//! for them, and a counting metrics recorder. Nothing here talks to Redis: tests/common does.
#![allow(dead_code)] // each test binary uses a part of it

pub mod counters;
pub mod model;
pub mod recorder;
pub mod scenario;
pub mod strategies;
