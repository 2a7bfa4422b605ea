//! Test harness, included by each test file with `mod common;`: a private `redis-server` on a free port (never
//! 6379) or a private Redis Cluster, dev certificates, the real `settlegate` binary, an mTLS HTTP client (hyper over rustls), the gateway in
//! process (`App` on a private Redis), the fixtures (today, cardholders, bills, rulesets) and the golden vectors.
//! Everything that runs is stopped on drop.
#![allow(dead_code)] // each test binary uses a part of the harness

pub mod admin;
pub mod app;
pub mod client;
pub mod cluster;
pub mod fixtures;
pub mod gateway;
pub mod golden;
pub mod reading;
pub mod redis_server;

// Each test file takes what it needs with `use common::*;` (a file that needs none of a module's items would
// otherwise warn of an unused import).
#[allow(unused_imports)]
pub use admin::*;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use cluster::*;
#[allow(unused_imports)]
pub use fixtures::*;
#[allow(unused_imports)]
pub use gateway::*;
#[allow(unused_imports)]
pub use golden::*;
#[allow(unused_imports)]
pub use reading::*;
#[allow(unused_imports)]
pub use redis_server::*;
