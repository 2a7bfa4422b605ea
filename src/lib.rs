//! settlegate: a real-time medical settlement gateway.
//!
//! A hospital's billing system sends the bill over mutual TLS; the gateway checks the card in Redis, splits what
//! insurance left between the relief programs, a charity fund and the patient, records it atomically and answers
//! with the patient's share. One request walks a straight line through these modules:
//!
//! * [`domain`] — pure: money (fen, basis points, `pct`), cardholders, rulesets, bills, the split algorithm.
//! * [`store`] — Redis: the key layout, the supervised connection (fast 503 when Redis is down), and one atomic
//!   Lua script per money-moving operation.
//! * [`rulebook`] — the published rulesets cached in memory, refreshed from Redis within a second.
//! * [`app`] — the operations of API.md: validation order, the store call, the engine cross-check.
//! * [`http`] — TLS and identity, hyper serving with limits and timeouts, routing, JSON ⇄ domain, problem+json,
//!   per-hospital rate limits.
//! * [`ops`] — `/healthz`, `/readyz`, `/metrics` on the plain-HTTP ops listener.
//! * [`config`] — TOML + environment overrides, validated, with explicit defaults for every limit.
//! * [`certs`], [`demo`] — development certificates (rcgen) and the one-command demo.

pub mod app;
pub mod certs;
pub mod config;
pub mod demo;
pub mod domain;
pub mod gateway;
pub mod http;
pub mod ops;
pub mod rulebook;
pub mod store;
