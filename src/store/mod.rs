//! The store: every read and every atomic step the gateway asks of Redis, behind one seam.
//!
//! * [`settle`] — settle / quote through `scripts/settle.lua`: idempotency, eligibility, the split and the record
//!   in one atomic step (one round trip).
//! * [`program_code`] — the settle script of one ruleset and visit type: its programs as Lua constants, then
//!   `scripts/settle.lua`.
//! * [`reverse`] — `scripts/reverse.lua`: undo exactly what was recorded, or record a tombstone.
//! * [`registry`] — cardholders and rulesets: plain reads, and writes of whole keys.
//! * [`cards`] — cardholder writes with a condition in the same atomic step (`scripts/put_cards.lua`: a street
//!   office's cards, the sync's suspensions) and the card-key scan of the sync.
//! * [`recon`] — reconciliation days and program totals: reads.
//! * [`check`] — the scratch hash of a two-sided reconciliation check (the only write a check makes).
//! * [`report`] — relief-report aggregates: the day lists consumed into compact per-day entries under a
//!   watermark (compare-and-set script), and the reads of a report.
//! * [`history`] — a card's settlements of a year, from its index in the card's slot.
//! * [`events`] — the event stream every change appends to in its own atomic step: reads and retention.
//! * [`clearing`] — monthly clearing statements: reads, and `scripts/clearing.lua` (compare-and-set, the event
//!   appended in the same step).
//! * [`audit`] — the audit chain: every office-write script (`scripts/audit.lua` + its own) appends its sealed
//!   entry with the change, compare-and-set on the chain's head.
//! * [`contributions`] — contributions to a program's pool (`scripts/contribution.lua`) and the pools' totals.
//! * [`preview`] — what a ruleset preview reads: the period's settle events in bounded pages, whether each still
//!   stands, the cards' current tags, the pools' contributions (reads only).
//! * [`codec`] — the record formats shared with the scripts, parser beside encoder; [`dayline`] — the day's
//!   reconciliation lines.
//! * [`ids`] — the opaque `settlement_id` (sealed with a secret shared through Redis, loaded once per process).
//! * [`keys`] — the key layout; [`link`] — the supervised connection; [`error`] — what a failure means.
//!
//! Errors say whether anything may have changed ([`StoreErrorKind`]): a call refused before it was sent is
//! `Unavailable` (nothing changed, retry safe); a write that was sent but not answered in time is `OutcomeUnknown`.

pub mod archive;
pub mod audit;
pub mod cards;
pub mod check;
pub mod clearing;
pub mod codec;
pub mod console;
pub mod contributions;
pub mod dayline;
pub mod error;
pub mod events;
pub mod history;
pub mod ids;
pub mod keys;
pub mod link;
pub mod preview;
pub mod program_code;
pub mod recon;
pub mod registry;
pub mod report;
pub mod reverse;
pub mod settle;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Script;
use ring::rand::SecureRandom;
use tokio::sync::OnceCell;

pub use clearing::{ClearingEvent, ClearingWrite, ClearingWriteOutcome, StoredClearing};
pub use dayline::{DayEvent, ProgramFen};
pub use error::{StoreError, StoreErrorKind, StoreResult};
use ids::IdCodec;
use keys::SettlementRef;
use link::{Conn, Link};
pub use program_code::settle_script;
pub use recon::{DayTotals, EVENTS_PAGE};
pub use registry::{CardholderEvent, ProgramYearUsage};
pub use reverse::{ReverseCall, ReverseOutcome};
pub use settle::{RulesInForce, ScriptReads, SettleCall, SettleMode, SettleOutcome};

/// The gateway's handle on Redis; one per process, shared by every request.
pub struct Store {
    /// The supervised connection: `None` while Redis is unreachable, so calls fail fast with 503.
    link: Arc<Link>,
    /// `scripts/settle.lua` with no programs, for a visit no ruleset is in force for (a ruleset's own scripts are
    /// in its `rulebook::CompiledRuleset`); loaded on first use, then called by SHA.
    settle_script: Script,
    /// `scripts/reverse.lua`.
    reverse_script: Script,
    /// `scripts/publish.lua`: the next ruleset version, its event and audit entry. Every office-write script is
    /// prefixed with `scripts/audit.lua` (`store::audit`).
    publish_script: Script,
    /// `scripts/clearing.lua`: a clearing statement, its event and audit entry.
    clearing_script: Script,
    /// `scripts/put_cards.lua`: a batch of cardholders (under a guard), its events and audit entry.
    put_cards_script: Script,
    /// `scripts/contribution.lua`: a contribution to a pool, its event and audit entry.
    contribution_script: Script,
    /// How long a call may wait for Redis's answer (`redis.response_timeout_ms`); past it, a write is 504.
    response_timeout: Duration,
    /// Seals and opens `settlement_id`s; its secret is read from Redis on first need, then kept ([`Store::ids`]).
    ids: OnceCell<IdCodec>,
    /// Replicas that must hold an acknowledged write (`redis.min_replicas_ack`; 0 = no `WAIT`).
    min_replicas_ack: u32,
    /// How long a write waits for them (`redis.replica_ack_timeout_ms`); past it the write is 504.
    replica_ack_timeout: Duration,
}

impl Store {
    pub fn new(link: Arc<Link>, response_timeout: Duration) -> Store {
        Store {
            link,
            settle_script: settle_script(None),
            reverse_script: Script::new(include_str!("scripts/reverse.lua")),
            publish_script: Script::new(concat!(
                include_str!("scripts/audit.lua"),
                include_str!("scripts/publish.lua")
            )),
            clearing_script: Script::new(concat!(
                include_str!("scripts/audit.lua"),
                include_str!("scripts/clearing.lua")
            )),
            put_cards_script: Script::new(concat!(
                include_str!("scripts/audit.lua"),
                include_str!("scripts/put_cards.lua")
            )),
            contribution_script: Script::new(concat!(
                include_str!("scripts/audit.lua"),
                include_str!("scripts/contribution.lua")
            )),
            response_timeout,
            ids: OnceCell::new(),
            min_replicas_ack: 0,
            replica_ack_timeout: Duration::ZERO,
        }
    }

    /// Acknowledges a write only once `replicas` replicas hold it (`WAIT` on the connection that sent it), waiting
    /// at most `timeout`; past it the write answers 504 `outcome_unknown` (docs/CLUSTER.md "Durability").
    pub fn with_replica_ack(mut self, replicas: u32, timeout: Duration) -> Store {
        self.min_replicas_ack = replicas;
        self.replica_ack_timeout = timeout;
        self
    }

    /// The id codec, its secret read from Redis on first need (one round trip: `SET NX` of fresh random bytes, so
    /// the first instance to ask creates it, then `GET`, so every instance uses the one that won), then kept for
    /// the life of the process. Concurrent first callers wait for one load; a failed load (Redis down: 503) is
    /// retried by the next call.
    pub async fn ids(&self) -> StoreResult<&IdCodec> {
        self.ids.get_or_try_init(|| self.load_id_secret()).await
    }

    async fn load_id_secret(&self) -> StoreResult<IdCodec> {
        const OP: &str = "id_secret";
        let mut fresh = [0u8; ids::SECRET_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut fresh)
            .map_err(|_| StoreError::new(OP, StoreErrorKind::Unavailable, "no system randomness"))?;
        let mut conn = self.conn(OP)?;
        // `writes: false`: creating the secret changes no settlement, and repeating it is harmless, so a timeout
        // here is "unavailable" (503), never "outcome unknown".
        let (stored,): (Option<Vec<u8>>,) = self
            .call(OP, false, async move {
                redis::pipe()
                    .cmd("SET")
                    .arg(keys::ID_SECRET)
                    .arg(&fresh[..])
                    .arg("NX")
                    .ignore()
                    .cmd("GET")
                    .arg(keys::ID_SECRET)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let stored =
            stored.ok_or_else(|| StoreError::corrupt(OP, format!("{} vanished after SET NX", keys::ID_SECRET)))?;
        IdCodec::new(&stored).ok_or_else(|| {
            StoreError::corrupt(
                OP,
                format!("{} holds {} bytes, not {}", keys::ID_SECRET, stored.len(), ids::SECRET_LEN),
            )
        })
    }

    /// Where a `settlement_id` of `hospital_id` points: `None` when it is malformed, forged, or another
    /// hospital's. An `s2_` id needs the id secret (loaded once); an `s1_` id of an earlier build does not.
    /// No settlement is read: the caller makes the one read of the record.
    pub async fn resolve_settlement_id(
        &self,
        hospital_id: &str,
        settlement_id: &str,
    ) -> StoreResult<Option<SettlementRef>> {
        if settlement_id.starts_with(ids::V2_PREFIX) {
            return Ok(self.ids().await?.decode(settlement_id, hospital_id));
        }
        Ok(ids::decode_v1(settlement_id).filter(|at| at.hospital_id == hospital_id))
    }

    fn conn(&self, op: &'static str) -> StoreResult<Conn> {
        self.link.current().ok_or_else(|| StoreError::new(op, StoreErrorKind::Unavailable, "no healthy connection"))
    }

    /// Runs one call with the response timeout. `writes`: whether the call may change data, which decides what a
    /// timeout means (a read that timed out changed nothing).
    async fn call<T, F>(&self, op: &'static str, writes: bool, fut: F) -> StoreResult<T>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.call_within(op, writes, self.response_timeout, fut).await
    }

    /// [`Store::call`] with its own bound.
    async fn call_within<T, F>(&self, op: &'static str, writes: bool, bound: Duration, fut: F) -> StoreResult<T>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let unknown = if writes { StoreErrorKind::OutcomeUnknown } else { StoreErrorKind::Unavailable };
        let started = Instant::now();
        let result = tokio::time::timeout(bound, fut).await;
        metrics::histogram!("settlegate_redis_call_seconds", "op" => op).record(started.elapsed().as_secs_f64());
        let error = match result {
            Ok(Ok(value)) => return Ok(value),
            Err(_elapsed) => StoreError::new(op, unknown, "no answer within the response timeout"),
            Ok(Err(e)) => StoreError::from_redis(op, unknown, e),
        };
        self.failed(op, error)
    }

    /// Counts a failed call, and stops sending to the connection (until the supervisor vouches for it again)
    /// unless the store answered.
    fn failed<T>(&self, op: &'static str, error: StoreError) -> StoreResult<T> {
        if error.kind != StoreErrorKind::Corrupt {
            self.link.mark_broken();
        }
        metrics::counter!("settlegate_redis_errors_total", "op" => op, "kind" => error.kind.as_str()).increment(1);
        Err(error)
    }

    /// Runs a script that may write, on `conn`. With `min_replicas_ack` > 0 the script is followed by
    /// `WAIT <min_replicas_ack> <replica_ack_timeout_ms>` in the same pipeline, on the same connection to the
    /// ledger's primary, so the `WAIT` counts the replicas holding this script's write even when the cluster
    /// client moved to a new primary in between (a `WAIT` sent after the script's answer, as its own request,
    /// could reach a promoted replica that never had the write and count its replicas: the failover test saw an
    /// acknowledged settlement lost that way). Too few replicas → `OutcomeUnknown` (504): the write is on the
    /// primary, and a retry with the same id tells whether it survived; the store answered, so the breaker stays
    /// closed. A refusal waits too, and a replay (the scripts write the id's claim again on a replay, so the `WAIT`
    /// covers the original write, whichever connection made it).
    async fn run_write<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        mut conn: Conn,
        inv: redis::ScriptInvocation<'_>,
    ) -> StoreResult<T> {
        let wanted = self.min_replicas_ack;
        if wanted == 0 {
            return self.call(op, true, async move { inv.invoke_async(&mut conn).await }).await;
        }
        let mut pipe = redis::pipe();
        pipe.invoke_script(&inv)
            .cmd("WAIT")
            .arg(wanted)
            .arg(u64::try_from(self.replica_ack_timeout.as_millis()).unwrap_or(u64::MAX));
        let bound = self.replica_ack_timeout + self.response_timeout;
        let mut replies =
            self.call_within(op, true, bound, async { conn.pipeline_to_ledger_primary(&pipe, 2).await }).await?;
        if is_noscript(replies.first()) {
            // a primary that never ran the script (a promoted replica): nothing ran; load it, then send again, each
            // call with its own bound (the first pipeline's WAIT may have used up its own)
            self.call(op, false, async { inv.load_async(&mut conn).await }).await?;
            replies =
                self.call_within(op, true, bound, async { conn.pipeline_to_ledger_primary(&pipe, 2).await }).await?;
        }
        let mut replies = replies.into_iter();
        let (Some(value), Some(acked)) = (replies.next(), replies.next()) else {
            return self.failed(op, StoreError::new(op, StoreErrorKind::OutcomeUnknown, "a short pipeline reply"));
        };
        let value = match value.extract_error() {
            Ok(v) => v,
            Err(e) => return self.failed(op, StoreError::from_redis(op, StoreErrorKind::OutcomeUnknown, e)),
        };
        let Ok(value) = redis::from_redis_value::<T>(value) else {
            return self.failed(op, StoreError::new(op, StoreErrorKind::Corrupt, "an unexpected script reply"));
        };
        let detail = match redis::from_redis_value::<u32>(acked) {
            Ok(n) if n >= wanted => return Ok(value),
            Ok(n) => format!("{n} of {wanted} replicas acknowledged within {:?}", self.replica_ack_timeout),
            Err(e) => format!("WAIT failed: {e}"),
        };
        metrics::counter!("settlegate_redis_errors_total", "op" => op, "kind" => "replica_ack").increment(1);
        Err(StoreError::new(op, StoreErrorKind::OutcomeUnknown, detail))
    }

    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn("ping")?;
        self.call("ping", false, async move { conn.to_ledger_primary::<String>(redis::cmd("PING")).await }).await?;
        Ok(())
    }

    /// Warns about Redis settings that can lose money records: eviction (an evicted idempotency record lets a retry
    /// pay twice) and persistence weaker than `appendfsync always`. Managed Redis may forbid CONFIG: then it says so.
    pub async fn check_server_settings(&self) {
        let Ok(mut conn) = self.conn("config") else { return };
        let settings: StoreResult<HashMap<String, String>> = self
            .call("config", false, async move {
                let get = redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .arg("appendonly")
                    .arg("appendfsync")
                    .to_owned();
                conn.to_ledger_primary(get).await
            })
            .await;
        let Ok(s) = settings else {
            tracing::warn!("could not read Redis CONFIG; make sure maxmemory-policy is noeviction");
            return;
        };
        let get = |k: &str| s.get(k).map(String::as_str).unwrap_or("?");
        if get("maxmemory-policy") != "noeviction" {
            tracing::error!(
                policy = get("maxmemory-policy"),
                "Redis may evict keys: set maxmemory-policy noeviction, \
                or an evicted idempotency record could let a retry pay twice"
            );
        }
        if get("appendonly") != "yes" || get("appendfsync") != "always" {
            tracing::warn!(
                appendonly = get("appendonly"),
                appendfsync = get("appendfsync"),
                "a Redis crash can lose acknowledged settlements; use appendonly yes + appendfsync always"
            );
        }
    }
}

/// Whether a pipeline's first reply is `NOSCRIPT` (the primary does not have the script).
fn is_noscript(reply: Option<&redis::Value>) -> bool {
    matches!(reply, Some(redis::Value::ServerError(e)) if e.kind() == Some(redis::ServerErrorKind::NoScript))
}
