//! The store: every read and every atomic step the gateway asks of Redis, behind one seam.
//!
//! * `settle` / `quote` run `scripts/settle.lua`: idempotency, eligibility, the split and the record in one
//!   atomic step (one round trip). Concurrent settlements of one card are serialised by Redis itself.
//! * `reverse` runs `scripts/reverse.lua`: undo exactly what was recorded, or record a tombstone.
//! * Everything else is plain reads, or writes of single keys (cardholders, rulesets).
//!
//! Errors say whether anything may have changed ([`StoreErrorKind`]): a call refused before it was sent is
//! `Unavailable` (nothing changed, retry safe); a write that was sent but not answered in time is `OutcomeUnknown`.

pub mod keys;
pub mod link;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script};

use crate::domain::bill::{Amounts, Bill, Insurance, Visit};
use crate::domain::card::{CardStatus, Cardholder, Ineligible};
use crate::domain::rules::{Bucket, Ruleset, RulesetInput, VisitType};
use crate::domain::settlement::{Settlement, SettlementStatus, Tombstone};
use crate::domain::split::{CappedBy, Payment, ProgramUsage};
use keys::SettlementRef;
use link::Link;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Not sent, or refused before it ran: nothing changed, a retry is safe.
    Unavailable,
    /// Sent, and no answer in time: it may still apply. Retrying a settle or reversal with the same ids is safe.
    OutcomeUnknown,
    /// Redis answered something this code does not understand (a bug, or data changed behind our back).
    Corrupt,
}

/// A store failure: which operation, what kind, and the underlying detail (for logs, never for clients).
#[derive(Debug, thiserror::Error)]
#[error("store {op}: {kind:?}: {detail}")]
pub struct StoreError {
    pub op: &'static str,
    pub kind: StoreErrorKind,
    pub detail: String,
}

impl StoreError {
    fn new(op: &'static str, kind: StoreErrorKind, detail: impl Into<String>) -> Self {
        StoreError { op, kind, detail: detail.into() }
    }

    /// Whether the same call may simply be made again.
    pub fn retry_safe(&self) -> bool {
        matches!(self.kind, StoreErrorKind::Unavailable | StoreErrorKind::OutcomeUnknown)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the settle script decided.
#[derive(Debug)]
pub enum SettleOutcome {
    /// Applied now. `check` is what the script read, for the engine cross-check.
    Settled {
        settlement: Settlement,
        check: ScriptReads,
    },
    /// The same request was settled before: the settlement as it stands now.
    Replayed(Settlement),
    /// A quote: what a settlement would be now.
    Quoted {
        settlement: Settlement,
        check: ScriptReads,
    },
    IdempotencyConflict,
    AlreadyReversed,
    CardNotFound,
    NotEligible(Ineligible),
    NoRulesInForce,
    /// A ledger counter is so large (> 2^62 fen) that recording could overflow: refused, nothing written.
    CounterLimit,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one value per request, moved once
pub enum ReverseOutcome {
    /// The settlement, now reversed; `changed` is false when it was reversed before.
    Reversed {
        settlement: Settlement,
        changed: bool,
    },
    /// A cancellation of an id never settled (now or before).
    Tombstone(Tombstone),
    NotFound,
    /// The id is held by a settlement of another card.
    Conflict,
}

/// What the settle script read before splitting: the card's tags and, per covering program in order, its counters.
/// The gateway re-runs the pure engine on these and must get the same split.
#[derive(Debug, Clone, Default)]
pub struct ScriptReads {
    pub card_tags: Vec<String>,
    pub usage: Vec<(String, ProgramUsage)>,
}

/// Everything the settle script needs besides the keys.
pub struct SettleCall<'a> {
    /// Empty for a quote.
    pub hospital_id: &'a str,
    /// Empty for a quote.
    pub hospital_settlement_id: &'a str,
    /// The validated bill: card, visit, amounts, insurance (the residual and canonical form derive from it).
    pub bill: Bill<'a>,
    /// The ruleset in force and its compiled program specs (see [`script_specs`]); `None` = no rules in force.
    pub ruleset: Option<(&'a Ruleset, &'a [String])>,
    pub settled_at: &'a str,
    pub settled_day: &'a str,
}

/// One day of one hospital: totals and the count of detail lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayTotals {
    pub settled_count: i64,
    pub reversed_count: i64,
    pub total_fen: i64,
    pub insurance_fen: i64,
    pub relief_fen: i64,
    pub patient_fen: i64,
    pub by_program: Vec<(String, i64)>,
}

/// One reconciliation detail line, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayEvent {
    pub reversal: bool,
    pub at: String,
    pub settlement_id: String,
    pub hospital_settlement_id: String,
    pub card_id: String,
    pub total_fen: i64,
    pub insurance_fen: i64,
    pub relief_fen: i64,
    pub patient_fen: i64,
    pub by_program: Vec<(String, i64)>,
}

pub struct Store {
    link: Arc<Link>,
    settle_script: Script,
    reverse_script: Script,
    publish_script: Script,
    response_timeout: Duration,
}

/// Events read per LRANGE while streaming a day's detail.
pub const EVENTS_PAGE: isize = 1000;

impl Store {
    pub fn new(link: Arc<Link>, response_timeout: Duration) -> Store {
        Store {
            link,
            settle_script: Script::new(include_str!("scripts/settle.lua")),
            reverse_script: Script::new(include_str!("scripts/reverse.lua")),
            publish_script: Script::new(
                "local v = redis.call('HINCRBY', KEYS[1], 'latest', 1)\n\
                 redis.call('HSET', KEYS[1], v, (string.gsub(ARGV[1], '\"version\":0', '\"version\":' .. v, 1)))\n\
                 return v",
            ),
            response_timeout,
        }
    }

    fn conn(&self, op: &'static str) -> StoreResult<MultiplexedConnection> {
        self.link.current().ok_or_else(|| StoreError::new(op, StoreErrorKind::Unavailable, "no healthy connection"))
    }

    /// Runs one call with the response timeout. `writes`: whether the call may change data, which decides what a
    /// timeout means (a read that timed out changed nothing).
    async fn call<T, F>(&self, op: &'static str, writes: bool, fut: F) -> StoreResult<T>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let unknown = if writes { StoreErrorKind::OutcomeUnknown } else { StoreErrorKind::Unavailable };
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(self.response_timeout, fut).await;
        metrics::histogram!("settlegate_redis_call_seconds", "op" => op).record(started.elapsed().as_secs_f64());
        let error = match result {
            Ok(Ok(value)) => return Ok(value),
            Err(_elapsed) => StoreError::new(op, unknown, "no answer within the response timeout"),
            Ok(Err(e)) => {
                let kind = if e.is_connection_refusal() {
                    StoreErrorKind::Unavailable
                } else if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() {
                    unknown
                } else if matches!(e.code(), Some("OOM" | "LOADING" | "READONLY" | "BUSY" | "MASTERDOWN" | "NOSCRIPT"))
                {
                    // refused by the server before the command ran
                    StoreErrorKind::Unavailable
                } else {
                    StoreErrorKind::Corrupt
                };
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    self.link.mark_broken();
                }
                StoreError::new(op, kind, e.to_string())
            }
        };
        if error.kind != StoreErrorKind::Corrupt {
            // a timeout or I/O failure: stop sending to this connection until the supervisor vouches for it again
            self.link.mark_broken();
        }
        metrics::counter!("settlegate_redis_errors_total", "op" => op, "kind" => format!("{:?}", error.kind))
            .increment(1);
        Err(error)
    }

    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn("ping")?;
        self.call("ping", false, async move { redis::cmd("PING").query_async::<String>(&mut conn).await }).await?;
        Ok(())
    }

    /// Warns about Redis settings that can lose money records: eviction (an evicted idempotency record lets a retry
    /// pay twice) and persistence weaker than `appendfsync always`. Managed Redis may forbid CONFIG: then it says so.
    pub async fn check_server_settings(&self) {
        let Ok(mut conn) = self.conn("config") else { return };
        let settings: StoreResult<HashMap<String, String>> = self
            .call("config", false, async move {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .arg("appendonly")
                    .arg("appendfsync")
                    .query_async(&mut conn)
                    .await
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

    // ---- cardholders -------------------------------------------------------------------------------------

    pub async fn put_cardholders(&self, cards: &[Cardholder]) -> StoreResult<()> {
        if cards.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn("put_cardholders")?;
        // MULTI/EXEC: a batch is stored whole or not at all, so "unavailable" really means nothing changed
        let mut pipe = redis::pipe();
        pipe.atomic();
        for c in cards {
            let tags = format!(",{},", c.tags.join(","));
            pipe.hset_multiple(
                keys::card(&c.card_id),
                &[
                    ("card_id", c.card_id.as_str()),
                    ("category", c.category.as_str()),
                    ("status", c.status.as_str()),
                    ("valid_from", &c.valid_from.to_string()),
                    ("valid_until", &c.valid_until.to_string()),
                    ("tags", &tags),
                ],
            )
            .ignore();
        }
        self.call("put_cardholders", true, async move { pipe.query_async::<()>(&mut conn).await }).await
    }

    /// The cardholder and, for `year`, the usage counters of every program it has any.
    pub async fn cardholder_with_usage(
        &self,
        card_id: &str,
        year: i32,
    ) -> StoreResult<Option<(Cardholder, Vec<(String, i64, i64)>)>> {
        let mut conn = self.conn("get_cardholder")?;
        let (card, usage): (HashMap<String, String>, HashMap<String, i64>) = self
            .call("get_cardholder", false, async move {
                redis::pipe().hgetall(keys::card(card_id)).hgetall(keys::usage(card_id)).query_async(&mut conn).await
            })
            .await?;
        let Some(card) =
            parse_card(&card).map_err(|e| StoreError::new("get_cardholder", StoreErrorKind::Corrupt, e))?
        else {
            return Ok(None);
        };
        let prefix = format!("{year}:");
        let mut programs: Vec<(String, i64, i64)> = Vec::new();
        for (field, value) in &usage {
            let Some(rest) = field.strip_prefix(&prefix) else {
                continue;
            };
            let Some((program, which)) = rest.rsplit_once(':') else {
                continue;
            };
            let entry = match programs.iter_mut().find(|p| p.0 == program) {
                Some(e) => e,
                None => {
                    programs.push((program.to_string(), 0, 0));
                    programs.last_mut().expect("just pushed")
                }
            };
            match which {
                "paid" => entry.1 = *value,
                "ded" => entry.2 = *value,
                _ => {}
            }
        }
        programs.sort();
        Ok(Some((card, programs)))
    }

    /// For eligibility: the card and the usage of the named programs in `year` (one round trip).
    pub async fn card_and_usage(
        &self,
        card_id: &str,
        year: i32,
        programs: &[&str],
    ) -> StoreResult<Option<(Cardholder, Vec<ProgramUsage>)>> {
        let mut conn = self.conn("eligibility")?;
        let mut fields = Vec::with_capacity(programs.len() * 2);
        for p in programs {
            fields.push(keys::usage_paid_field(year, p));
            fields.push(keys::usage_ded_field(year, p));
        }
        let mut pipe = redis::pipe();
        pipe.hgetall(keys::card(card_id));
        if !fields.is_empty() {
            pipe.cmd("HMGET").arg(keys::usage(card_id)).arg(&fields);
        }
        let values: Vec<redis::Value> =
            self.call("eligibility", false, async move { pipe.query_async(&mut conn).await }).await?;
        let corrupt = |e: String| StoreError::new("eligibility", StoreErrorKind::Corrupt, e);
        let card: HashMap<String, String> =
            redis::from_redis_value(values.first().cloned().unwrap_or(redis::Value::Nil))
                .map_err(|e| corrupt(e.to_string()))?;
        let Some(card) = parse_card(&card).map_err(corrupt)? else {
            return Ok(None);
        };
        let counters: Vec<Option<i64>> = match values.get(1) {
            Some(v) => redis::from_redis_value(v.clone()).map_err(|e| corrupt(e.to_string()))?,
            None => Vec::new(),
        };
        let usage = counters
            .chunks(2)
            .map(|c| ProgramUsage {
                paid_fen: c[0].unwrap_or(0),
                deductible_met_fen: c.get(1).copied().flatten().unwrap_or(0),
                program_paid_fen: 0,
            })
            .collect();
        Ok(Some((card, usage)))
    }

    // ---- rulesets ----------------------------------------------------------------------------------------

    /// Publishes a validated ruleset as the next version (atomic: two concurrent publishes get two versions).
    pub async fn publish_ruleset(&self, input: &RulesetInput, published_at: &str) -> StoreResult<u64> {
        let draft = Ruleset {
            version: 0,
            effective_from: input.effective_from,
            published_at: published_at.to_string(),
            programs: input.programs.clone(),
        };
        let json = serde_json::to_string(&draft).expect("a ruleset serialises");
        debug_assert!(json.starts_with("{\"version\":0,"));
        let mut conn = self.conn("publish_ruleset")?;
        let script = &self.publish_script;
        let version: u64 =
            self.call("publish_ruleset", true, async move {
                script.key(keys::RULESETS).arg(json).invoke_async(&mut conn).await
            })
            .await?;
        Ok(version)
    }

    pub async fn latest_ruleset_version(&self) -> StoreResult<u64> {
        let mut conn = self.conn("ruleset_version")?;
        let v: Option<u64> =
            self.call("ruleset_version", false, async move { conn.hget(keys::RULESETS, "latest").await }).await?;
        Ok(v.unwrap_or(0))
    }

    /// Every published ruleset, by version.
    pub async fn load_rulesets(&self) -> StoreResult<Vec<Ruleset>> {
        let mut conn = self.conn("load_rulesets")?;
        let all: HashMap<String, String> =
            self.call("load_rulesets", false, async move { conn.hgetall(keys::RULESETS).await }).await?;
        let mut out = Vec::new();
        for (field, json) in all {
            if field == "latest" {
                continue;
            }
            let r: Ruleset = serde_json::from_str(&json).map_err(|e| {
                StoreError::new("load_rulesets", StoreErrorKind::Corrupt, format!("version {field}: {e}"))
            })?;
            out.push(r);
        }
        out.sort_by_key(|r| r.version);
        Ok(out)
    }

    // ---- settle, quote, reverse --------------------------------------------------------------------------

    /// Settles (or, with `quote`, only computes) one bill in one atomic script call.
    pub async fn settle(&self, call: &SettleCall<'_>, quote: bool) -> StoreResult<SettleOutcome> {
        let op = if quote { "quote" } else { "settle" };
        let bill = &call.bill;
        let year = chrono::Datelike::year(&bill.visit.date);
        let residual = bill.residual();
        let settlement_id = if quote {
            String::new()
        } else {
            SettlementRef {
                card_id: bill.card_id.to_string(),
                hospital_id: call.hospital_id.to_string(),
                hsid: call.hospital_settlement_id.to_string(),
            }
            .encode()
        };
        let mut inv = self.settle_script.prepare_invoke();
        inv.key(keys::card(bill.card_id)).key(keys::usage(bill.card_id)).key(keys::PROGRAM_PAID);
        if !quote {
            inv.key(keys::settlement(bill.card_id, call.hospital_id, call.hospital_settlement_id))
                .key(keys::claim(call.hospital_id, call.hospital_settlement_id))
                .key(keys::recon_events(call.settled_day, call.hospital_id))
                .key(keys::recon_hospitals(call.settled_day));
        }
        let specs: &[String] = call.ruleset.map(|r| r.1).unwrap_or(&[]);
        inv.arg(op)
            .arg(bill.card_id)
            .arg(bill.canonical())
            .arg(bill.visit.date.to_string())
            .arg(year)
            .arg(residual[0])
            .arg(residual[1])
            .arg(residual[2])
            .arg(residual[3])
            .arg(bill.amounts.total_fen)
            .arg(call.ruleset.map(|r| r.0.version).unwrap_or(0))
            .arg(call.hospital_id)
            .arg(call.hospital_settlement_id)
            .arg(call.settled_at)
            .arg(call.settled_day)
            .arg(&settlement_id)
            .arg(specs.len())
            .arg(specs);
        let mut conn = self.conn(op)?;
        let reply: Vec<String> = self.call(op, !quote, async move { inv.invoke_async(&mut conn).await }).await?;
        let corrupt = |e: String| StoreError::new(op, StoreErrorKind::Corrupt, e);
        let Some(tag) = reply.first() else {
            return Err(corrupt("empty reply".into()));
        };
        Ok(match tag.as_str() {
            "replay" => SettleOutcome::Replayed(parse_settlement(&pairs(&reply[1..])).map_err(corrupt)?),
            "settled" | "quote" => {
                let [_, before, tags, category, insurance_fen, relief_fen, patient_fen, payments] = &reply[..] else {
                    return Err(corrupt(format!("reply of {} fields", reply.len())));
                };
                let int = |s: &str| s.parse::<i64>().map_err(|e| corrupt(format!("{s:?}: {e}")));
                let check = ScriptReads {
                    usage: parse_before(before).map_err(corrupt)?,
                    card_tags: tags.split(',').filter(|t| !t.is_empty()).map(String::from).collect(),
                };
                let settled = tag == "settled";
                let settlement = Settlement {
                    settlement_id: settled.then_some(settlement_id),
                    hospital_settlement_id: settled.then(|| call.hospital_settlement_id.to_string()),
                    hospital_id: settled.then(|| call.hospital_id.to_string()),
                    status: if settled { SettlementStatus::Settled } else { SettlementStatus::Quote },
                    card_id: bill.card_id.to_string(),
                    category: category.clone(),
                    visit: bill.visit,
                    amounts: bill.amounts,
                    insurance: bill.insurance,
                    ruleset_version: call.ruleset.map(|r| r.0.version).unwrap_or(0),
                    insurance_fen: int(insurance_fen)?,
                    payments: parse_payments(payments).map_err(corrupt)?,
                    relief_fen: int(relief_fen)?,
                    patient_fen: int(patient_fen)?,
                    settled_at: settled.then(|| call.settled_at.to_string()),
                    reversed_at: None,
                };
                if !settlement.check_invariants() {
                    return Err(corrupt(format!("settlement breaks the invariants: {settlement:?}")));
                }
                if settled {
                    SettleOutcome::Settled { settlement, check }
                } else {
                    SettleOutcome::Quoted { settlement, check }
                }
            }
            "conflict" => SettleOutcome::IdempotencyConflict,
            "already_reversed" => SettleOutcome::AlreadyReversed,
            "card_not_found" => SettleOutcome::CardNotFound,
            "no_rules_in_force" => SettleOutcome::NoRulesInForce,
            "counter_limit" => SettleOutcome::CounterLimit,
            "not_eligible" => SettleOutcome::NotEligible(match reply.get(1).map(String::as_str) {
                Some("suspended") => Ineligible::Suspended,
                Some("not_yet_valid") => Ineligible::NotYetValid,
                Some("expired") => Ineligible::Expired,
                other => return Err(corrupt(format!("unknown ineligibility {other:?}"))),
            }),
            other => return Err(corrupt(format!("unknown reply {other:?}"))),
        })
    }

    /// Reverses the settlement `at`; with `tombstone_if_absent`, records a cancellation when there is none.
    pub async fn reverse(
        &self,
        at: &SettlementRef,
        tombstone_if_absent: bool,
        reason: &str,
        reversed_at: &str,
        reversed_day: &str,
    ) -> StoreResult<ReverseOutcome> {
        let mut inv = self.reverse_script.prepare_invoke();
        inv.key(at.key())
            .key(keys::claim(&at.hospital_id, &at.hsid))
            .key(keys::usage(&at.card_id))
            .key(keys::PROGRAM_PAID)
            .key(keys::recon_events(reversed_day, &at.hospital_id))
            .key(keys::recon_hospitals(reversed_day))
            .arg(&at.card_id)
            .arg(&at.hospital_id)
            .arg(&at.hsid)
            .arg(reversed_at)
            .arg(reversed_day)
            .arg(reason)
            .arg(if tombstone_if_absent { "1" } else { "0" });
        let mut conn = self.conn("reverse")?;
        let reply: Vec<String> = self.call("reverse", true, async move { inv.invoke_async(&mut conn).await }).await?;
        let corrupt = |e: String| StoreError::new("reverse", StoreErrorKind::Corrupt, e);
        let Some(tag) = reply.first() else {
            return Err(corrupt("empty reply".into()));
        };
        let record = pairs(&reply[1..]);
        Ok(match tag.as_str() {
            "not_found" => ReverseOutcome::NotFound,
            "conflict" => ReverseOutcome::Conflict,
            "reversed" | "unchanged" | "tombstoned" => {
                if record.get("kind").map(String::as_str) == Some("tombstone") {
                    ReverseOutcome::Tombstone(parse_tombstone(&record).map_err(corrupt)?)
                } else {
                    ReverseOutcome::Reversed {
                        settlement: parse_settlement(&record).map_err(corrupt)?,
                        changed: tag == "reversed",
                    }
                }
            }
            other => return Err(corrupt(format!("unknown reply {other:?}"))),
        })
    }

    /// A settlement by where it lives; `None` when absent or when only a tombstone is there.
    pub async fn get_settlement(&self, at: &SettlementRef) -> StoreResult<Option<Settlement>> {
        let mut conn = self.conn("get_settlement")?;
        let key = at.key();
        let record: HashMap<String, String> =
            self.call("get_settlement", false, async move { conn.hgetall(key).await }).await?;
        if record.is_empty() || record.get("kind").map(String::as_str) != Some("settlement") {
            return Ok(None);
        }
        parse_settlement(&record).map(Some).map_err(|e| StoreError::new("get_settlement", StoreErrorKind::Corrupt, e))
    }

    // ---- pools and reconciliation -------------------------------------------------------------------------

    /// What each named program paid all cards in `year`.
    pub async fn program_paid(&self, year: i32, programs: &[String]) -> StoreResult<Vec<i64>> {
        if programs.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<String> = programs.iter().map(|p| keys::program_paid_field(year, p)).collect();
        let mut conn = self.conn("program_paid")?;
        let values: Vec<Option<i64>> = self
            .call("program_paid", false, async move {
                redis::cmd("HMGET").arg(keys::PROGRAM_PAID).arg(&fields).query_async(&mut conn).await
            })
            .await?;
        Ok(values.into_iter().map(|v| v.unwrap_or(0)).collect())
    }

    pub async fn day_hospitals(&self, day: &str) -> StoreResult<Vec<String>> {
        let mut conn = self.conn("recon_hospitals")?;
        let key = keys::recon_hospitals(day);
        let mut hospitals: Vec<String> =
            self.call("recon_hospitals", false, async move { conn.smembers(key).await }).await?;
        hospitals.sort();
        Ok(hospitals)
    }

    /// A hospital's day: the sum of its detail lines (so the totals always equal the sum over the detail).
    pub async fn day_totals(&self, day: &str, hospital_id: &str) -> StoreResult<DayTotals> {
        let mut totals = DayTotals::default();
        let mut by_program: std::collections::BTreeMap<String, i64> = Default::default();
        let mut start = 0;
        loop {
            let events = self.day_events(day, hospital_id, start).await?;
            for e in &events {
                let sum = |a: i64, b: i64| {
                    a.checked_add(b).ok_or_else(|| StoreError::new("recon_totals", StoreErrorKind::Corrupt, "overflow"))
                };
                if e.reversal {
                    totals.reversed_count += 1;
                } else {
                    totals.settled_count += 1;
                }
                totals.total_fen = sum(totals.total_fen, e.total_fen)?;
                totals.insurance_fen = sum(totals.insurance_fen, e.insurance_fen)?;
                totals.relief_fen = sum(totals.relief_fen, e.relief_fen)?;
                totals.patient_fen = sum(totals.patient_fen, e.patient_fen)?;
                for (program, fen) in &e.by_program {
                    let entry = by_program.entry(program.clone()).or_default();
                    *entry = sum(*entry, *fen)?;
                }
            }
            if (events.len() as isize) < EVENTS_PAGE {
                break;
            }
            start += EVENTS_PAGE;
        }
        totals.by_program = by_program.into_iter().collect();
        Ok(totals)
    }

    /// One page of a day's detail lines, from index `start`; fewer than [`EVENTS_PAGE`] lines means the end.
    pub async fn day_events(&self, day: &str, hospital_id: &str, start: isize) -> StoreResult<Vec<DayEvent>> {
        let mut conn = self.conn("recon_events")?;
        let key = keys::recon_events(day, hospital_id);
        let lines: Vec<String> = self
            .call("recon_events", false, async move { conn.lrange(key, start, start + EVENTS_PAGE - 1).await })
            .await?;
        lines
            .iter()
            .map(|l| parse_event(l).ok_or_else(|| StoreError::new("recon_events", StoreErrorKind::Corrupt, l.clone())))
            .collect()
    }
}

/// Compiles one program list for the settle script: `"id|covers|pool|tags|;cat=ratio,ded,annual,visit;..."`, only
/// the programs that serve `visit_type` (the script filters by category and tags, which it reads with the card).
pub fn script_specs(ruleset: &Ruleset, visit_type: VisitType) -> Vec<String> {
    let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
    ruleset
        .programs
        .iter()
        .filter(|p| p.serves(visit_type))
        .map(|p| {
            let covers: String = p.covers.iter().map(|b| char::from(b'1' + b.index() as u8)).collect();
            let mut cats = String::from(";");
            for (name, t) in &p.categories {
                cats.push_str(&format!(
                    "{name}={},{},{},{};",
                    t.ratio_bp,
                    t.deductible_fen.unwrap_or(0),
                    opt(t.annual_cap_fen),
                    opt(t.per_visit_cap_fen)
                ));
            }
            format!("{}|{}|{}|{}|{}", p.id, covers, opt(p.annual_pool_fen), p.required_tags().join(","), cats)
        })
        .collect()
}

const _: () = assert!(Bucket::InScope as usize == 0 && Bucket::SelfPay as usize == 3);

fn pairs(flat: &[String]) -> HashMap<String, String> {
    flat.chunks_exact(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect()
}

fn parse_card(fields: &HashMap<String, String>) -> Result<Option<Cardholder>, String> {
    if fields.is_empty() {
        return Ok(None);
    }
    let get = |k: &str| fields.get(k).ok_or_else(|| format!("card field {k} missing"));
    let date = |k: &str| get(k)?.parse::<NaiveDate>().map_err(|e| format!("card field {k}: {e}"));
    Ok(Some(Cardholder {
        card_id: get("card_id")?.clone(),
        category: get("category")?.clone(),
        valid_from: date("valid_from")?,
        valid_until: date("valid_until")?,
        status: match get("status")?.as_str() {
            "active" => CardStatus::Active,
            "suspended" => CardStatus::Suspended,
            other => return Err(format!("card status {other:?}")),
        },
        tags: get("tags")?.split(',').filter(|t| !t.is_empty()).map(String::from).collect(),
    }))
}

fn parse_before(s: &str) -> Result<Vec<(String, ProgramUsage)>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(';')
        .map(|line| {
            let (id, rest) = line.split_once(',').ok_or_else(|| format!("before {line:?}"))?;
            let n: Vec<i64> = rest
                .split(',')
                .map(|x| x.parse::<i64>().map_err(|e| format!("before {line:?}: {e}")))
                .collect::<Result<_, _>>()?;
            match n[..] {
                [paid, ded, program] => Ok((
                    id.to_string(),
                    ProgramUsage { paid_fen: paid, deductible_met_fen: ded, program_paid_fen: program },
                )),
                _ => Err(format!("before {line:?}")),
            }
        })
        .collect()
}

fn parse_payments(s: &str) -> Result<Vec<Payment>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(';')
        .map(|line| {
            let parts: Vec<&str> = line.split(',').collect();
            let [program, paid, ded, capped] = parts[..] else {
                return Err(format!("payment {line:?}"));
            };
            Ok(Payment {
                program: program.to_string(),
                paid_fen: paid.parse().map_err(|e| format!("payment {line:?}: {e}"))?,
                deductible_applied_fen: ded.parse().map_err(|e| format!("payment {line:?}: {e}"))?,
                capped_by: if capped.is_empty() {
                    None
                } else {
                    Some(CappedBy::parse(capped).ok_or_else(|| format!("capped_by {capped:?}"))?)
                },
            })
        })
        .collect()
}

/// Parses the canonical request (see `Bill::canonical`) back into the visit and amounts.
fn parse_canonical(s: &str) -> Result<(String, Visit, Amounts, Insurance), String> {
    let p: Vec<&str> = s.split('|').collect();
    if p.len() != 12 || p[0] != "v1" {
        return Err(format!("canonical request {s:?}"));
    }
    let n = |i: usize| p[i].parse::<i64>().map_err(|e| format!("canonical request field {i}: {e}"));
    let visit_type = match p[2] {
        "outpatient" => VisitType::Outpatient,
        "chronic" => VisitType::Chronic,
        "inpatient" => VisitType::Inpatient,
        other => return Err(format!("visit type {other:?}")),
    };
    let date = p[3].parse::<NaiveDate>().map_err(|e| e.to_string())?;
    Ok((
        p[1].to_string(),
        Visit { visit_type, date },
        Amounts {
            total_fen: n(4)?,
            in_scope_fen: n(5)?,
            pre_self_pay_fen: n(6)?,
            over_limit_fen: n(7)?,
            self_pay_fen: n(8)?,
        },
        Insurance { basic_fen: n(9)?, critical_illness_fen: n(10)?, other_fen: n(11)? },
    ))
}

fn parse_settlement(r: &HashMap<String, String>) -> Result<Settlement, String> {
    let get = |k: &str| r.get(k).ok_or_else(|| format!("record field {k} missing"));
    let int = |k: &str| get(k)?.parse::<i64>().map_err(|e| format!("record field {k}: {e}"));
    let (card_id, visit, amounts, insurance) = parse_canonical(get("req")?)?;
    let status = match get("status")?.as_str() {
        "settled" => SettlementStatus::Settled,
        "reversed" => SettlementStatus::Reversed,
        "quote" => SettlementStatus::Quote,
        other => return Err(format!("status {other:?}")),
    };
    let settlement = Settlement {
        settlement_id: r.get("settlement_id").cloned(),
        hospital_settlement_id: r.get("hsid").cloned(),
        hospital_id: r.get("hospital").cloned(),
        status,
        card_id,
        category: get("category")?.clone(),
        visit,
        amounts,
        insurance,
        ruleset_version: int("ruleset_version")? as u64,
        insurance_fen: int("insurance_fen")?,
        payments: parse_payments(get("payments")?)?,
        relief_fen: int("relief_fen")?,
        patient_fen: int("patient_fen")?,
        settled_at: r.get("settled_at").cloned(),
        reversed_at: r.get("reversed_at").cloned(),
    };
    if !settlement.check_invariants() {
        return Err(format!("record breaks the settlement invariants: {settlement:?}"));
    }
    Ok(settlement)
}

fn parse_tombstone(r: &HashMap<String, String>) -> Result<Tombstone, String> {
    let get = |k: &str| r.get(k).cloned().ok_or_else(|| format!("tombstone field {k} missing"));
    Ok(Tombstone { card_id: get("card_id")?, hospital_settlement_id: get("hsid")?, reversed_at: get("reversed_at")? })
}

fn parse_event(line: &str) -> Option<DayEvent> {
    let p: Vec<&str> = line.split('|').collect();
    if p.len() != 10 {
        return None;
    }
    let reversal = match p[0] {
        "S" => false,
        "R" => true,
        _ => return None,
    };
    let sign = if reversal { -1 } else { 1 };
    let n = |i: usize| p[i].parse::<i64>().ok().map(|v| v * sign);
    let by_program = parse_payments(p[9]).ok()?.into_iter().map(|pay| (pay.program, pay.paid_fen * sign)).collect();
    Some(DayEvent {
        reversal,
        at: p[1].to_string(),
        settlement_id: p[2].to_string(),
        hospital_settlement_id: p[3].to_string(),
        card_id: p[4].to_string(),
        total_fen: n(5)?,
        insurance_fen: n(6)?,
        relief_fen: n(7)?,
        patient_fen: n(8)?,
        by_program,
    })
}
