//! Clearing statements (API.md "Clearing"): the record (one hash per hospital and month; its encoder beside its
//! parser), reads and listing, and the one write: `scripts/clearing.lua`, a compare-and-set that stores the
//! statement and appends its event to `{sg}:events` in the same atomic step.
//!
//! The figures are not computed here: the gateway sums the month's reconciliation days (reads) and asks this
//! module to record the result only if the statement is still the one it read (`rev`).

use std::collections::{BTreeMap, HashMap};

use redis::AsyncCommands;

use super::audit;
use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;
use crate::domain::audit::Actor;
use crate::domain::clearing::{clearing_id, Clearing, ClearingFigures, ClearingStatus, Period};

/// A statement as stored, with its compare-and-set token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClearing {
    pub clearing: Clearing,
    /// How many writes the statement has had (0: none, it does not exist).
    pub rev: u64,
}

/// The transition a write makes; it names the event appended with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearingEvent {
    /// A draft created, or recomputed with other figures (from nothing or `draft`).
    Created,
    /// Frozen (from `draft`).
    Confirmed,
    /// Paid (from `confirmed`).
    Paid,
}

impl ClearingEvent {
    /// The event's `type` in `{sg}:events`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClearingEvent::Created => "clearing.created",
            ClearingEvent::Confirmed => "clearing.confirmed",
            ClearingEvent::Paid => "clearing.paid",
        }
    }

    /// The audit entry's `action`.
    pub fn action(self) -> &'static str {
        match self {
            ClearingEvent::Created => "clearing.create",
            ClearingEvent::Confirmed => "clearing.confirm",
            ClearingEvent::Paid => "clearing.paid",
        }
    }
}

/// One write of a statement.
#[derive(Debug, Clone, Copy)]
pub struct ClearingWrite<'a> {
    /// The statement as it is to be stored (and as its event's `data`).
    pub clearing: &'a Clearing,
    pub event: ClearingEvent,
    /// The `rev` the gateway decided on; the write applies only if the statement still has it.
    pub expected_rev: u64,
    /// When (RFC 3339, local time): the event's `at`.
    pub at: &'a str,
    /// Who, for the audit entry.
    pub by: &'a Actor,
}

/// What the clearing script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearingWriteOutcome {
    /// Stored, with its event.
    Applied,
    /// The statement changed since it was read (or is not in the state the transition starts from): nothing was
    /// written.
    Stale,
}

/// The fields of a statement's hash (the script adds `rev`). `by_program` is `"program,fen;…"` by program id.
pub fn clearing_fields(c: &Clearing) -> Vec<(&'static str, String)> {
    let by_program: Vec<String> = c.figures.by_program.iter().map(|(p, fen)| format!("{p},{fen}")).collect();
    let mut fields = vec![
        ("hospital_id", c.hospital_id.clone()),
        ("period", c.period.to_string()),
        ("status", c.status.as_str().to_string()),
        ("settled_count", c.figures.settled_count.to_string()),
        ("reversed_count", c.figures.reversed_count.to_string()),
        ("relief_fen", c.figures.relief_fen.to_string()),
        ("by_program", by_program.join(";")),
        ("created_at", c.created_at.clone()),
    ];
    let optional = [("confirmed_at", &c.confirmed_at), ("payment_ref", &c.payment_ref), ("paid_at", &c.paid_at)];
    fields.extend(optional.into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))));
    fields
}

/// A statement's hash; `Ok(None)` when it is empty (no statement).
pub fn parse_clearing(r: &HashMap<String, String>) -> Result<Option<StoredClearing>, String> {
    if r.is_empty() {
        return Ok(None);
    }
    let get = |k: &str| r.get(k).ok_or_else(|| format!("clearing field {k} missing"));
    let int = |k: &str| get(k)?.parse::<i64>().map_err(|e| format!("clearing field {k}: {e}"));
    let hospital_id = get("hospital_id")?.clone();
    let period = Period::parse(get("period")?).ok_or("clearing field period")?;
    let status = ClearingStatus::parse(get("status")?).ok_or("clearing field status")?;
    let mut by_program = BTreeMap::new();
    for line in get("by_program")?.split(';').filter(|l| !l.is_empty()) {
        let (program, fen) = line.split_once(',').ok_or_else(|| format!("clearing by_program {line:?}"))?;
        let fen = fen.parse::<i64>().map_err(|e| format!("clearing by_program {line:?}: {e}"))?;
        by_program.insert(program.to_string(), fen);
    }
    let clearing = Clearing {
        clearing_id: clearing_id(&hospital_id, period),
        hospital_id,
        period,
        status,
        figures: ClearingFigures {
            settled_count: int("settled_count")?,
            reversed_count: int("reversed_count")?,
            relief_fen: int("relief_fen")?,
            by_program,
        },
        created_at: get("created_at")?.clone(),
        confirmed_at: r.get("confirmed_at").cloned(),
        payment_ref: r.get("payment_ref").cloned(),
        paid_at: r.get("paid_at").cloned(),
    };
    let rev = get("rev")?.parse::<u64>().map_err(|e| format!("clearing field rev: {e}"))?;
    Ok(Some(StoredClearing { clearing, rev }))
}

impl Store {
    /// One hospital's statement of one month, with its `rev`.
    pub async fn clearing(&self, hospital_id: &str, period: Period) -> StoreResult<Option<StoredClearing>> {
        const OP: &str = "get_clearing";
        let mut conn = self.conn(OP)?;
        let key = keys::clearing(hospital_id, &period.to_string());
        let record: HashMap<String, String> = self.call(OP, false, async move { conn.hgetall(key).await }).await?;
        parse_clearing(&record).map_err(|e| StoreError::corrupt(OP, e))
    }

    /// The statements of one hospital, of one period, of both, or all; by period, then hospital. Two round trips
    /// at most (the index, then every statement in one pipeline).
    pub async fn clearings(
        &self,
        hospital_id: Option<&str>,
        period: Option<Period>,
    ) -> StoreResult<Vec<StoredClearing>> {
        const OP: &str = "list_clearings";
        let wanted: Vec<(String, String)> = match (hospital_id, period) {
            (Some(h), Some(p)) => vec![(h.to_string(), p.to_string())],
            (Some(h), None) => {
                let mut conn = self.conn(OP)?;
                let key = keys::hospital_clearings(h);
                let periods: Vec<String> = self.call(OP, false, async move { conn.zrange(key, 0, -1).await }).await?;
                periods.into_iter().map(|p| (h.to_string(), p)).collect()
            }
            (None, period) => {
                let mut conn = self.conn(OP)?;
                // `<period>/<hospital>`: `/` sorts just below `0`, so one period is [`<period>/`, `<period>0`)
                let (min, max) = match period {
                    Some(p) => (format!("[{p}/"), format!("({p}0")),
                    None => ("-".to_string(), "+".to_string()),
                };
                let members: Vec<String> =
                    self.call(OP, false, async move { conn.zrangebylex(keys::CLEARINGS, min, max).await }).await?;
                members
                    .iter()
                    .map(|m| {
                        m.split_once('/')
                            .map(|(p, h)| (h.to_string(), p.to_string()))
                            .ok_or_else(|| StoreError::corrupt(OP, format!("{} member {m:?}", keys::CLEARINGS)))
                    })
                    .collect::<StoreResult<_>>()?
            }
        };
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (h, p) in &wanted {
            pipe.hgetall(keys::clearing(h, p));
        }
        let mut conn = self.conn(OP)?;
        let records: Vec<HashMap<String, String>> =
            self.call(OP, false, async move { pipe.query_async(&mut conn).await }).await?;
        let mut out = Vec::with_capacity(records.len());
        for record in &records {
            // an index member without its statement cannot happen (one script writes both); skip rather than fail
            if let Some(stored) = parse_clearing(record).map_err(|e| StoreError::corrupt(OP, e))? {
                out.push(stored);
            }
        }
        Ok(out)
    }

    /// Stores the statement and appends its event in one script call, if the statement still has
    /// `expected_rev` and is in a state the transition starts from.
    pub async fn write_clearing(&self, w: &ClearingWrite<'_>) -> StoreResult<ClearingWriteOutcome> {
        const OP: &str = "write_clearing";
        let c = w.clearing;
        let period = c.period.to_string();
        let rendered = c.render();
        let detail: serde_json::Value = serde_json::from_slice(&rendered).expect("a statement renders as JSON");
        let draft = w.by.draft(w.at, w.event.action(), &c.clearing_id, detail);
        let mut reply: Vec<String> = Vec::new();
        for _ in 0..audit::AUDIT_ATTEMPTS {
            let sealed = self.seal(&draft).await?;
            let mut inv = self.clearing_script.prepare_invoke();
            sealed.push(&mut inv);
            inv.key(keys::clearing(&c.hospital_id, &period))
                .key(keys::CLEARINGS)
                .key(keys::hospital_clearings(&c.hospital_id))
                .arg(w.event.as_str())
                .arg(w.expected_rev)
                .arg(w.at)
                .arg(&rendered)
                .arg(format!("{period}/{}", c.hospital_id))
                .arg(&period);
            for (field, value) in clearing_fields(c) {
                inv.arg(field).arg(value);
            }
            let conn = self.conn(OP)?;
            reply = { self.run_write(OP, conn, inv) }.await?;
            if !audit::is_stale(&reply) {
                break;
            }
        }
        if audit::is_stale(&reply) {
            return Err(audit::busy(OP));
        }
        match reply.first().map(String::as_str) {
            Some("applied") => Ok(ClearingWriteOutcome::Applied),
            Some("stale") => Ok(ClearingWriteOutcome::Stale),
            other => Err(StoreError::corrupt(OP, format!("unknown reply {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(status: ClearingStatus) -> StoredClearing {
        let mut figures = ClearingFigures { settled_count: 4, reversed_count: 2, relief_fen: -1, ..Default::default() };
        figures.by_program.insert("charity".into(), 0);
        figures.by_program.insert("medical_assistance".into(), -1);
        let mut clearing = Clearing::draft(
            "H:1_x",
            Period::parse("2026-11").unwrap(),
            figures,
            "2026-11-03T08:00:00.000+08:00".into(),
        );
        clearing.status = status;
        if status != ClearingStatus::Draft {
            clearing.confirmed_at = Some("2026-12-01T09:00:00.000+08:00".into());
        }
        if status == ClearingStatus::Paid {
            clearing.payment_ref = Some("PAY-2026-11-0001".into());
            clearing.paid_at = Some("2026-12-05".into());
        }
        StoredClearing { clearing, rev: 3 }
    }

    fn as_map(s: &StoredClearing) -> HashMap<String, String> {
        let mut m: HashMap<String, String> =
            clearing_fields(&s.clearing).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        m.insert("rev".into(), s.rev.to_string());
        m
    }

    #[test]
    fn records_round_trip() {
        for status in [ClearingStatus::Draft, ClearingStatus::Confirmed, ClearingStatus::Paid] {
            let s = stored(status);
            assert_eq!(parse_clearing(&as_map(&s)), Ok(Some(s)));
        }
        let mut empty = stored(ClearingStatus::Draft);
        empty.clearing.figures.by_program.clear();
        assert_eq!(parse_clearing(&as_map(&empty)), Ok(Some(empty)));
        assert_eq!(parse_clearing(&HashMap::new()), Ok(None));
    }

    #[test]
    fn broken_records_are_refused() {
        for (field, value) in
            [("status", "open"), ("period", "2026-13"), ("relief_fen", "1.5"), ("by_program", "charity"), ("rev", "-1")]
        {
            let mut m = as_map(&stored(ClearingStatus::Draft));
            m.insert(field.into(), value.into());
            assert!(parse_clearing(&m).is_err(), "{field}={value}");
        }
        let mut m = as_map(&stored(ClearingStatus::Draft));
        m.remove("created_at");
        assert!(parse_clearing(&m).is_err());
    }
}
