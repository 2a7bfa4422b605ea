//! settlegate: a real-time medical settlement gateway.
//!
//! A hospital's billing system sends the bill over mutual TLS; the gateway checks the card in Redis, splits what
//! insurance left between the relief programs, a charity fund and the patient, records it atomically and answers
//! with the patient's share. The rules it implements are in `docs/RULES.md`, the interface it serves in
//! `docs/API.md`.
//!
//! # Layout
//! One request walks a straight line down these modules; no arrow runs back up (domain ← store ← app ← http ←
//! gateway):
//!
//! * [`domain`] — pure: money (fen, basis points, `pct`), cardholders, rulesets, bills, and the split algorithm
//!   step by step (the readable statement of `docs/RULES.md` and the test oracle).
//! * [`store`] — Redis: the key layout, the record codec, the supervised connection (fast 503 when Redis is down),
//!   and one atomic Lua script per money-moving operation (`settle`, `reverse`), each beside the Rust that calls it.
//! * [`rulebook`] — the published rulesets cached in memory, compiled for the settle script, refreshed from Redis
//!   within a second.
//! * [`app`] — the operations of the API: validation order, the store call, the engine cross-check; one
//!   [`app::ApiError`] per API error code.
//! * [`http`] — TLS and identity, hyper serving with limits and timeouts, the route table (method, path, role),
//!   request reading, JSON ⇄ domain, problem+json, streamed import and NDJSON detail, per-hospital rate limits.
//! * [`ops`] — `/healthz`, `/readyz`, `/metrics` on the plain-HTTP ops listener.
//! * [`console`] — the relief office's web console on `[console] listen`: password logins (argon2id), sessions
//!   in Redis, CSRF tokens, server-rendered page shells and built-in assets; every action goes through the admin
//!   API's own dispatch as the signed-in account.
//! * [`gateway`] — start-up wiring of `settlegate serve`: logging, metrics, the Redis link and its supervisor, the
//!   refreshers, both listeners, and graceful shutdown.
//! * [`config`] — TOML + environment overrides, validated, with explicit defaults for every limit.
//! * [`sync`] — `settlegate cardholders import`: the nightly cardholder sync (a million lines streamed, progress,
//!   `--dry-run`, `--suspend-missing` in bounded memory).
//! * [`export`] — `settlegate export`: the relief office's daily files of settlement events and their manifest.
//! * [`redact`] — what may reach a log line: masked card ids, escaped client-chosen text.
//! * [`certs`], [`demo`] — development certificates (rcgen) and the one-command demo.

pub mod app;
pub mod certs;
pub mod config;
pub mod console;
pub mod demo;
pub mod domain;
pub mod export;
pub mod gateway;
pub mod http;
pub mod ops;
pub mod redact;
pub mod rulebook;
pub mod store;
pub mod sync;
