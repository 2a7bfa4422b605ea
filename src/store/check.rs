//! The scratch hash of a two-sided reconciliation check (`POST /v1/reconciliation/check/details`,
//! docs/DESIGN.md "Two-sided reconciliation"). The hospital's lines go into `{sg}:check:<nonce>` in batches, the
//! gateway's day is then read a page at a time and each page takes its counterparts out of the hash, and what is
//! left is read with HSCAN. Neither side is ever held in the gateway's memory whole.
//!
//! This hash is the only thing the check writes: it is named by a fresh random nonce (no other read ever sees it),
//! every write to it sets its expiry again ([`SCRATCH_TTL_S`]) in the same MULTI/EXEC, so a gateway that dies
//! mid-check leaves nothing behind for long, and the check deletes it when it ends. Calls here are not ledger
//! writes: a timeout is "unavailable" (503), never "outcome unknown".

use super::error::{StoreError, StoreResult};
use super::Store;

/// Seconds the scratch hash lives after its last write.
pub const SCRATCH_TTL_S: u64 = 900;

/// Fields read per HSCAN when listing what is left.
pub const SCAN_PAGE: usize = 1000;

/// Which side a scratch field names: `S|<hsid>` for a `settled` line, `R|<hsid>` for a `reversed` one.
pub fn scratch_field(reversal: bool, hospital_settlement_id: &str) -> String {
    format!("{}|{hospital_settlement_id}", if reversal { 'R' } else { 'S' })
}

/// The line a scratch field names: (reversal, hospital_settlement_id); `None` for a field this code never writes.
pub fn parse_scratch_field(field: &str) -> Option<(bool, &str)> {
    match field.split_once('|')? {
        ("S", hsid) => Some((false, hsid)),
        ("R", hsid) => Some((true, hsid)),
        _ => None,
    }
}

/// A scratch value: `total|relief|patient`, signed as the hospital sent them.
pub fn scratch_value(amounts: [i64; 3]) -> String {
    format!("{}|{}|{}", amounts[0], amounts[1], amounts[2])
}

pub fn parse_scratch_value(value: &str) -> Option<[i64; 3]> {
    let mut parts = value.split('|').map(|p| p.parse::<i64>().ok());
    let amounts = [parts.next()??, parts.next()??, parts.next()??];
    parts.next().is_none().then_some(amounts)
}

impl Store {
    /// Adds `(field, value)` pairs to the scratch hash `key` with HSETNX, and sets its expiry, in one MULTI/EXEC (so
    /// the hash never exists without an expiry). For each pair: `true` when it was new, `false` when the field was
    /// there already (a repeated line: the first value stays).
    pub async fn scratch_put(&self, key: &str, pairs: &[(String, String)]) -> StoreResult<Vec<bool>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn("check_put")?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (field, value) in pairs {
            pipe.cmd("HSETNX").arg(key).arg(field).arg(value);
        }
        pipe.cmd("EXPIRE").arg(key).arg(SCRATCH_TTL_S).ignore();
        let added: Vec<bool> = self.call("check_put", false, async move { pipe.query_async(&mut conn).await }).await?;
        if added.len() != pairs.len() {
            return Err(StoreError::corrupt("check_put", format!("{} answers to {} HSETNX", added.len(), pairs.len())));
        }
        Ok(added)
    }

    /// Takes `fields` out of the scratch hash: their values (`None` where absent), deleted in the same MULTI/EXEC
    /// (HMGET, HDEL, EXPIRE). A key that does not exist stays absent.
    pub async fn scratch_take(&self, key: &str, fields: &[String]) -> StoreResult<Vec<Option<String>>> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn("check_take")?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HMGET").arg(key).arg(fields);
        pipe.cmd("HDEL").arg(key).arg(fields).ignore();
        pipe.cmd("EXPIRE").arg(key).arg(SCRATCH_TTL_S).ignore();
        let (values,): (Vec<Option<String>>,) =
            self.call("check_take", false, async move { pipe.query_async(&mut conn).await }).await?;
        if values.len() != fields.len() {
            return Err(StoreError::corrupt(
                "check_take",
                format!("{} values for {} fields", values.len(), fields.len()),
            ));
        }
        Ok(values)
    }

    /// One HSCAN page of what is left in the scratch hash, from `cursor` (0 to begin): the next cursor (0 = done)
    /// and the pairs, which are then deleted, so a field that HSCAN would return twice (it may, when the hash is
    /// resized between calls) is counted once.
    pub async fn scratch_drain(&self, key: &str, cursor: u64) -> StoreResult<(u64, Vec<(String, String)>)> {
        let mut conn = self.conn("check_scan")?;
        let (next, flat): (u64, Vec<String>) = self
            .call("check_scan", false, async move {
                redis::cmd("HSCAN").arg(key).arg(cursor).arg("COUNT").arg(SCAN_PAGE).query_async(&mut conn).await
            })
            .await?;
        if flat.len() % 2 != 0 {
            return Err(StoreError::corrupt("check_scan", "HSCAN answered an odd number of items"));
        }
        let mut pairs = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(field), Some(value)) = (it.next(), it.next()) {
            pairs.push((field, value));
        }
        if !pairs.is_empty() {
            let fields: Vec<&str> = pairs.iter().map(|(f, _)| f.as_str()).collect();
            let mut conn = self.conn("check_scan")?;
            self.call("check_scan", false, async move {
                redis::cmd("HDEL").arg(key).arg(&fields).query_async::<i64>(&mut conn).await
            })
            .await?;
        }
        Ok((next, pairs))
    }

    /// How many fields the scratch hash holds.
    pub async fn scratch_len(&self, key: &str) -> StoreResult<u64> {
        let mut conn = self.conn("check_len")?;
        self.call("check_len", false, async move { redis::cmd("HLEN").arg(key).query_async(&mut conn).await }).await
    }

    /// Deletes the scratch hash.
    pub async fn scratch_drop(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.conn("check_drop")?;
        self.call("check_drop", false, async move { redis::cmd("DEL").arg(key).query_async::<i64>(&mut conn).await })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_values_round_trip() {
        for (reversal, hsid) in [(false, "H-1"), (true, "a:b.c_d-9")] {
            assert_eq!(parse_scratch_field(&scratch_field(reversal, hsid)), Some((reversal, hsid)));
        }
        assert_eq!(parse_scratch_field("X|H-1"), None);
        assert_eq!(parse_scratch_field("S"), None);
        for amounts in [[0, 0, 0], [-160_000, -80_000, -80_000], [i64::MAX, i64::MIN, 7]] {
            assert_eq!(parse_scratch_value(&scratch_value(amounts)), Some(amounts));
        }
        for bad in ["", "1|2", "1|2|3|4", "1|x|3", "1||3"] {
            assert_eq!(parse_scratch_value(bad), None, "{bad:?}");
        }
    }
}
