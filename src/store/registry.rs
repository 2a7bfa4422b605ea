//! Cardholders and rulesets: what the relief office writes and every settlement reads. Plain reads, and writes of
//! whole keys with their event and audit entry (a batch of cardholders, a ruleset with its version: one script each).

use std::collections::HashMap;

use redis::AsyncCommands;

use super::audit;
use super::cards::Guard;
use super::codec::parse_card;
use super::error::{StoreError, StoreResult};
use super::keys;
use super::Store;
use crate::domain::audit::Actor;
use crate::domain::card::Cardholder;
use crate::domain::rules::{Ruleset, RulesetInput};
use crate::domain::split::ProgramUsage;

/// One program's use of a card in one year (`GET /admin/v1/cardholders/{card_id}` `usage`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProgramYearUsage {
    /// The program id.
    pub program: String,
    /// What the program paid this card that year (counts toward `annual_cap_fen`).
    pub paid_fen: i64,
    /// How much of the program's deductible the card met that year.
    pub deductible_met_fen: i64,
}

/// Which office write a [`Store::put_cardholders`] batch is, for its event.
#[derive(Debug, Clone, Copy)]
pub enum CardholderEvent<'a> {
    /// `PUT /admin/v1/cardholders/{card_id}` (and each suspension of the sync): every card evented whole. `at`: RFC
    /// 3339, local time.
    Put { at: &'a str },
    /// A batch of an import (HTTP or `settlegate cardholders import`), evented with its count.
    Import { at: &'a str },
}

impl Store {
    /// Stores a batch of cardholders (create or replace) with its events (`cardholder.put` per card, with the card
    /// as data, or `cardholder.import` with the batch's count) and its audit entry, in one atomic step: stored whole
    /// or not at all, so "unavailable" really means nothing changed.
    ///
    /// `expected_street`: a street office's write. Each card is then written only if the stored card is absent or
    /// of that street and the new card is of it too, checked in the same atomic step (`store::cards`); the answer
    /// lists the indices of the cards refused (always empty without it).
    pub async fn put_cardholders(
        &self,
        cards: &[Cardholder],
        event: &CardholderEvent<'_>,
        by: &Actor,
        expected_street: Option<&str>,
    ) -> StoreResult<Vec<usize>> {
        let guard = expected_street.map_or(Guard::None, Guard::Street);
        self.put_cards_guarded(cards, event, guard, by).await
    }

    /// The cardholder and, for `year`, the usage counters of every program it has any, by program id.
    pub async fn cardholder_with_usage(
        &self,
        card_id: &str,
        year: i32,
    ) -> StoreResult<Option<(Cardholder, Vec<ProgramYearUsage>)>> {
        let mut conn = self.conn("get_cardholder")?;
        let (card, usage): (HashMap<String, String>, HashMap<String, i64>) = self
            .call("get_cardholder", false, async move {
                redis::pipe().hgetall(keys::card(card_id)).hgetall(keys::usage(card_id)).query_async(&mut conn).await
            })
            .await?;
        let Some(card) = parse_card(&card).map_err(|e| StoreError::corrupt("get_cardholder", e))? else {
            return Ok(None);
        };
        let prefix = format!("{year}:");
        let mut programs: Vec<ProgramYearUsage> = Vec::new();
        for (field, value) in &usage {
            let Some((program, which)) = field.strip_prefix(&prefix).and_then(|rest| rest.rsplit_once(':')) else {
                continue;
            };
            let i = match programs.iter().position(|p| p.program == program) {
                Some(i) => i,
                None => {
                    programs.push(ProgramYearUsage { program: program.to_string(), ..Default::default() });
                    programs.len() - 1
                }
            };
            match which {
                "paid" => programs[i].paid_fen = *value,
                "ded" => programs[i].deductible_met_fen = *value,
                _ => {}
            }
        }
        programs.sort();
        Ok(Some((card, programs)))
    }

    /// For eligibility: the card and the usage of the named programs in `year` (one round trip), in the order of
    /// `programs`.
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
        let corrupt = |e: String| StoreError::corrupt("eligibility", e);
        let card: HashMap<String, String> =
            redis::from_redis_value(values.first().cloned().unwrap_or(redis::Value::Nil))
                .map_err(|_| corrupt("the card hash is not a hash of strings".into()))?;
        let Some(card) = parse_card(&card).map_err(corrupt)? else {
            return Ok(None);
        };
        let counters: Vec<Option<i64>> = match values.get(1) {
            // the conversion error quotes the reply; logs get only what was wrong
            Some(v) => redis::from_redis_value(v.clone()).map_err(|_| corrupt("usage counters not integers".into()))?,
            None => Vec::new(),
        };
        let usage = counters
            .chunks(2)
            .map(|c| ProgramUsage {
                paid_fen: c[0].unwrap_or(0),
                deductible_met_fen: c.get(1).copied().flatten().unwrap_or(0),
                program_paid_fen: 0,
                pool_contributions_fen: 0,
            })
            .collect();
        Ok(Some((card, usage)))
    }

    /// Publishes a validated ruleset as the next version, with its event and audit entry, in one script call
    /// (two concurrent publishes get two versions: the script refuses a version that is no longer next).
    pub async fn publish_ruleset(&self, input: &RulesetInput, published_at: &str, by: &Actor) -> StoreResult<u64> {
        const OP: &str = "publish_ruleset";
        for _ in 0..audit::AUDIT_ATTEMPTS {
            let version = self.latest_ruleset_version().await? + 1;
            let ruleset = Ruleset {
                version,
                effective_from: input.effective_from,
                published_at: published_at.to_string(),
                programs: input.programs.clone(),
            };
            let json = serde_json::to_string(&ruleset).expect("a ruleset serialises");
            let detail = serde_json::json!({"version": version, "effective_from": input.effective_from.to_string(),
                "programs": ruleset.programs.len()});
            let sealed = self.seal(&by.draft(published_at, "ruleset.publish", &version.to_string(), detail)).await?;
            let mut inv = self.publish_script.prepare_invoke();
            sealed.push(&mut inv);
            inv.key(keys::RULESETS).arg(version).arg(json);
            let conn = self.conn(OP)?;
            let reply: Vec<String> = { self.run_write(OP, conn, inv) }.await?;
            if !audit::is_stale(&reply) {
                return Ok(version);
            }
        }
        Err(audit::busy(OP))
    }

    /// The highest published version (0 = none yet): what every instance polls to notice a publish.
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
            let r: Ruleset = serde_json::from_str(&json)
                .map_err(|e| StoreError::corrupt("load_rulesets", format!("version {field}: {e}")))?;
            out.push(r);
        }
        out.sort_by_key(|r| r.version);
        Ok(out)
    }
}
