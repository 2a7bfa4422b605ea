//! The Redis key layout (documented for operators in docs/REDIS_KEYS.md; keep the two in step).
//!
//! **One ledger slot.** Every key that a money script touches starts with the hash tag [`LEDGER_TAG`] (`{sg}`):
//! on Redis Cluster they all hash to one slot, so every script (settle, reverse, clearing, contributions, the
//! audit chain, cardholder writes) stays one atomic step on one primary, exactly as on a single node: the same
//! scripts, the same keys, one code path (docs/CLUSTER.md says why, and what a second ledger slot would need).
//! Inside it, each card's keys still carry the card's own braces `{<card_id>}` as a delimiter (card ids and
//! hospital ids cannot contain braces, `domain::is_valid_id`, so no two kinds of key can collide); Redis hashes
//! only the first tag. The keys no money script touches (report aggregates, check scratch, the id secret, the
//! console figures) carry the tag too: the gateway reads them in pipelines, and redis-rs's cluster pipelines stay
//! within one slot.

/// The hash tag of the ledger slot: the first `{…}` of every key a money script touches.
pub const LEDGER_TAG: &str = "{sg}";

/// The keys of the settle path, built by concatenation into one exact allocation: nine `format!`s per settlement
/// were the largest share of the gateway's formatting (docs/BENCHMARKS.md, issue 13).
fn join(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 8);
    for part in parts {
        key.push_str(part);
    }
    key
}

pub fn card(card_id: &str) -> String {
    join(&["{sg}:{", card_id, "}:card"])
}

pub fn usage(card_id: &str) -> String {
    join(&["{sg}:{", card_id, "}:usage"])
}

/// Field of [`usage`]: what `program` paid this card in `year`.
pub fn usage_paid_field(year: i32, program: &str) -> String {
    format!("{year}:{program}:paid")
}

/// Field of [`usage`]: how much of `program`'s deductible the card met in `year`.
pub fn usage_ded_field(year: i32, program: &str) -> String {
    format!("{year}:{program}:ded")
}

/// Hash of what every program paid all cards per year; field `"<year>:<program>"`.
pub const PROGRAM_PAID: &str = "{sg}:program_paid";

pub fn program_paid_field(year: i32, program: &str) -> String {
    format!("{year}:{program}")
}

/// `/` separates the hospital from its id: neither may contain it (`is_valid_id`), so two (hospital, id) pairs can
/// never share a key (with `:`, hospital `H1:x` + id `y` would collide with hospital `H1` + id `x:y`).
pub fn settlement(card_id: &str, hospital_id: &str, hsid: &str) -> String {
    join(&["{sg}:{", card_id, "}:stl:", hospital_id, "/", hsid])
}

/// Which card holds a hospital's settlement id (`S:<card>` settled, `T:<card>` cancelled first).
pub fn claim(hospital_id: &str, hsid: &str) -> String {
    join(&["{sg}:claim:{", hospital_id, "/", hsid, "}"])
}

/// A card's settlements of one (visit) year, in the order Redis applied them (newest last): a list of
/// `<hospital>/<hsid>` (the tail of the record's key). In the card's slot, appended by the settle script (an
/// `RPUSH` costs less than a sorted-set insert, and the order applied is the true order of one card).
pub fn history(card_id: &str, year: i32) -> String {
    let mut key = join(&["{sg}:{", card_id, "}:hist:"]);
    // a number's digits only: cheaper than a whole format! of the key
    std::fmt::Write::write_fmt(&mut key, format_args!("{year}")).expect("writing to a String cannot fail");
    key
}

/// Which settlement holds an `insurance.settlement_ref`: string `<card>|<hospital>|<hsid>`, set by the settle
/// script, deleted by the holder's reversal. Its own hash tag: one slot decides each ref (docs/CLUSTER.md).
pub fn insurance_ref(settlement_ref: &str) -> String {
    join(&["{sg}:ref:{", settlement_ref, "}"])
}

pub fn recon_events(day: &str, hospital_id: &str) -> String {
    join(&["{sg}:recon:", day, ":", hospital_id, ":events"])
}

pub fn recon_hospitals(day: &str) -> String {
    join(&["{sg}:recon:", day, ":hospitals"])
}

/// Hash of how many lines of each of the day's lists (`recon_events`) are already in the day's report entries:
/// field `<hospital>` → lines consumed (the aggregator's watermark). Tagged by day, with [`report_entries`], so the
/// script that moves both is one slot on a cluster.
pub fn report_consumed(day: &str) -> String {
    format!("{{sg}}:report:{day}:consumed")
}

/// String of the day's report entries (`store::report::entry`), appended a batch at a time.
pub fn report_entries(day: &str) -> String {
    format!("{{sg}}:report:{day}:entries")
}

/// Hash of the labels report entries name by id: `l:<label>` → id, `i:<id>` → label, `n` → the last id given.
pub const REPORT_LABELS: &str = "{sg}:report:labels";

/// The scratch hash of one two-sided reconciliation check (`POST /v1/reconciliation/check/details`): the hospital's
/// lines while they are compared, field `S|<hsid>` or `R|<hsid>`, value `total|relief|patient`. `nonce` is fresh
/// random hex per call, so no other read ever sees it; it expires on its own (`store::check::SCRATCH_TTL_S`).
pub fn check_scratch(nonce: &str) -> String {
    format!("{{sg}}:check:{nonce}")
}

/// Hash of one hospital's monthly clearing statement (`period` = `YYYY-MM`); `/` separates the two, as in
/// [`settlement`].
pub fn clearing(hospital_id: &str, period: &str) -> String {
    format!("{{sg}}:clearing:{hospital_id}/{period}")
}

/// Sorted set (every score 0, read by lexicographic range) of every clearing statement, member
/// `<period>/<hospital>`: listed by period, then hospital; one period is the range `[<period>/` … `(<period>0`.
pub const CLEARINGS: &str = "{sg}:clearings";

/// Sorted set (every score 0) of one hospital's clearing statements, member `<period>`.
pub fn hospital_clearings(hospital_id: &str) -> String {
    format!("{{sg}}:clearings:{hospital_id}")
}

/// The event stream (API.md "Events"): one Redis Stream entry per acknowledged change, appended by the same
/// script that makes the change. Entry fields: `type` (e.g. `settlement.settled`), `at` (RFC 3339), then either
/// `data` (the event's JSON data, made by the gateway: office writes such as clearings) or the settlement record's
/// fields as they stood after the change (settlements, reversals, cancellations; rendered when read; a settled
/// entry has the record's layout of this build: `line req ruleset_version hospital operator_name`). The entry id
/// (Redis's `<ms>-<seq>`) is the basis of the event's `event_id` and cursor (`store::events`).
pub const EVENTS: &str = "{sg}:events";

/// Hash of the archive's state (`store::archive`): `through` = the last archived day (every day up to it is
/// archived), `progress:<day>:<hospital>` = lines of that list archived so far, `records:<day>` / `lines:<day>` =
/// what the day's archiving removed so far (for its audit entry).
pub const ARCHIVE: &str = "{sg}:archive";

/// Hash of the days `settlegate export` wrote: field `<day>` = when (RFC 3339). Archiving waits for it.
pub const EXPORTED: &str = "{sg}:exported";

/// The field of [`PROGRAM_PAID`] holding the earliest visit date a new settlement may have (`YYYY-MM-DD`), raised
/// by archiving; the settle script reads it with the card's id check.
pub const VISIT_FLOOR_FIELD: &str = "visit_floor";

/// The audit chain (`store::audit`): hash, field `head` = `"<seq>|<sha256>"` of the last entry, field `<seq>` =
/// the stored entry JSON (`domain::audit`).
pub const AUDIT: &str = "{sg}:audit";

/// Field of [`PROGRAM_PAID`]: the net contributions (donations minus withdrawals) to `program`'s pool in `year`.
/// In the same hash as the paid total so that the settle script reads both in one command.
pub fn pool_contributions_field(year: i32, program: &str) -> String {
    format!("{year}:{program}:contrib")
}

/// One contribution (`POST /admin/v1/pools/{program}/contributions`): hash `req` (the canonical contribution, for
/// replay or conflict) and `json` (the contribution as served).
pub fn contribution(contribution_id: &str) -> String {
    format!("{{sg}}:contribution:{contribution_id}")
}

/// What each donor gave `program`'s pool in `year`, net: hash donor -> fen.
pub fn pool_donors(year: i32, program: &str) -> String {
    format!("{{sg}}:pool_donors:{year}:{program}")
}

/// Hash of published rulesets: field `latest` = highest version, field `<version>` = the ruleset's JSON.
pub const RULESETS: &str = "{sg}:rulesets";

/// The 32 random bytes the opaque `settlement_id`s are sealed with (`store::ids`): created once with `SET NX` by
/// whichever gateway instance needs it first, read by every instance. Losing it makes the `s2_` ids handed out
/// unreadable (the records stay, reachable by card and `hospital_settlement_id`).
pub const ID_SECRET: &str = "{sg}:secret:ids";

/// Hash of one wall-clock minute's settle latencies (`store::stats`): field `<instance>` = base64 of that gateway
/// instance's HDR histogram (µs, V2 serialization) of the minute. `minute` is the Unix minute (Unix seconds / 60).
/// Not money: rewritten every few seconds by its instance, expires after `store::stats::STATS_TTL_S`.
pub fn settle_stats(minute: i64) -> String {
    format!("{{sg}}:stats:settle:{minute}")
}

/// Hash of the gateway instances' heartbeats (`store::stats`): field `<instance>` = JSON `{"instance", "version",
/// "listen", "started_at", "seen_at"}`, rewritten every few seconds; a field silent for an hour is removed.
pub const INSTANCES: &str = "{sg}:instances";

/// Where a settlement lives: the card (its hash tag), the hospital and the hospital's own id. Its opaque
/// `settlement_id` is sealed and opened by `store::ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRef {
    pub card_id: String,
    pub hospital_id: String,
    pub hsid: String,
}

impl SettlementRef {
    pub fn new(card_id: &str, hospital_id: &str, hsid: &str) -> SettlementRef {
        SettlementRef { card_id: card_id.into(), hospital_id: hospital_id.into(), hsid: hsid.into() }
    }

    pub fn key(&self) -> String {
        settlement(&self.card_id, &self.hospital_id, &self.hsid)
    }
}

/// The web console's accounts (`store::console`): hash, field = account name, value = the account JSON (role,
/// street, argon2id hash, disabled). Office data: `{office}` on a cluster (docs/CLUSTER.md).
pub const USERS: &str = "{sg}:users";

/// Failed console logins in a row of one account (expires `console.lockout_minutes` after the last one).
pub fn login_failures(name: &str) -> String {
    format!("{{sg}}:console:failures:{name}")
}

/// One console session, by the SHA-256 (hex) of its cookie token: the token itself is never stored, so a copy of
/// Redis gives no usable session. Expires after `console.session_idle_minutes` without a request.
pub fn console_session(token_sha256: &str) -> String {
    format!("{{sg}}:console:session:{token_sha256}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settle path's keys, byte for byte as docs/REDIS_KEYS.md lists them (they are built by concatenation).
    #[test]
    fn settle_path_keys_are_the_documented_ones() {
        assert_eq!(card("C1"), "{sg}:{C1}:card");
        assert_eq!(usage("C1"), "{sg}:{C1}:usage");
        assert_eq!(settlement("C1", "H1", "a-1"), "{sg}:{C1}:stl:H1/a-1");
        assert_eq!(claim("H1", "a-1"), "{sg}:claim:{H1/a-1}");
        assert_eq!(history("C1", 2026), "{sg}:{C1}:hist:2026");
        assert_eq!(insurance_ref("INS-9"), "{sg}:ref:{INS-9}");
        assert_eq!(recon_events("2026-12-03", "H1"), "{sg}:recon:2026-12-03:H1:events");
        assert_eq!(recon_hospitals("2026-12-03"), "{sg}:recon:2026-12-03:hospitals");
    }

    #[test]
    fn hospital_and_id_never_collide() {
        assert_ne!(settlement("C", "H1:x", "y"), settlement("C", "H1", "x:y"));
        assert_ne!(claim("H1:x", "y"), claim("H1", "x:y"));
        assert_ne!(recon_events("2026-11-30", "H1:events"), recon_events("2026-11-30", "H1"));
        // a statement's hash is never one of the indexes, whatever the hospital id
        assert!(!clearing("H1", "2026-11").starts_with(CLEARINGS));
    }

    #[test]
    fn every_ledger_key_is_in_the_ledger_slot() {
        let slot = |k: &str| redis::cluster_routing::Slot::for_key(k);
        let ledger = slot(LEDGER_TAG);
        for k in [
            card("C1"),
            usage("C1"),
            settlement("C1", "H", "x"),
            history("C1", 2026),
            claim("H", "x"),
            insurance_ref("r"),
            recon_events("2026-11-30", "H"),
            recon_hospitals("2026-11-30"),
            clearing("H", "2026-11"),
            hospital_clearings("H"),
            contribution("c"),
            pool_donors(2026, "p"),
            login_failures("li"),
            console_session("ab"),
        ]
        .iter()
        .map(String::as_str)
        .chain([PROGRAM_PAID, CLEARINGS, EVENTS, AUDIT, RULESETS, USERS, ARCHIVE, EXPORTED])
        {
            assert!(k.starts_with(LEDGER_TAG), "{k}");
            assert_eq!(slot(k), ledger, "{k}");
        }
        // the card's own braces stay, as a delimiter
        assert_eq!(card("C1"), "{sg}:{C1}:card");
    }
}
