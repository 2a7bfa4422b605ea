//! The floor server's `ledger` mode: per request, one EVALSHA that makes the Redis reads and writes one
//! settlement of this contract needs, and nothing else: no split, no spec parsing, no id sealing, no JSON. Its
//! saturation is the most any gateway could reach on this Redis while recording what the contract keeps per
//! settlement in one atomic script (docs/BENCHMARKS.md, issue 13: "the ledger floor").
//!
//! It takes the tightest layout the contract allows, tighter than settlegate's own: the record doubles as the id's
//! claim (one read, one write fewer than a separate claim), the card's usage counters live in the card's hash (one
//! read fewer), the day's hospital set is left out (settlegate adds it only with a day's first line). What remains
//! cannot be left out of the atomic step: read the id (replay or conflict), the card (eligibility, usage) and the
//! programs' year totals (pools, the visit floor); write the usage, the totals, the record, the day's
//! reconciliation line, the card's history and the event. Values are of the sizes a real settlement writes.

/// The script: 3 reads, 6 writes, the counters' new values computed from what it read (as any split must).
pub const LEDGER_SCRIPT: &str = r#"
local call, format, tonumber = redis.call, string.format, tonumber
local req, line, settled_at, hospital, hsid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if call('HGET', KEYS[1], 'req') then return {'replay'} end
local card = call('HMGET', KEYS[2], 'category', 'status', 'valid_from', 'valid_until', 'tags', 'street',
  'community', '2026:medical_assistance:paid', '2026:medical_assistance:ded', '2026:charity:paid')
local totals = call('HMGET', KEYS[3], 'visit_floor', '2026:medical_assistance', '2026:medical_assistance:contrib',
  '2026:charity', '2026:charity:contrib')
if card[2] ~= 'active' then return {'not_eligible'} end
local function add(s, fen) return format('%d', (tonumber(s) or 0) + fen) end
call('HSET', KEYS[2], '2026:medical_assistance:paid', add(card[8], 36000), '2026:medical_assistance:ded',
  add(card[9], 0), '2026:charity:paid', add(card[10], 4000))
call('HSET', KEYS[3], '2026:medical_assistance', add(totals[2], 36000), '2026:charity', add(totals[4], 4000))
call('HSET', KEYS[1], 'status', 'settled', 'line', line, 'req', req, 'ruleset_version', '1', 'hospital', hospital)
call('RPUSH', KEYS[4], line)
call('RPUSH', KEYS[5], hospital .. '/' .. hsid)
call('XADD', KEYS[6], '*', 'type', 'settlement.settled', 'at', settled_at, 'line', line, 'req', req,
  'ruleset_version', '1', 'hospital', hospital, 'operator_name', '')
return {'settled', card[1], card[5], '60000', '40000', '23456', 'medical_assistance,36000,0,;charity,4000,0,'}
"#;

/// Cards the requests cycle over (each seeded as an active card).
pub const CARDS: u64 = 1024;

/// The card id of request `n`.
fn card_of(n: u64) -> String {
    format!("C{:06}", 100_000 + n % CARDS)
}

/// The keys and arguments of request `n`: a new hospital settlement id every time.
pub fn invocation(n: u64) -> ([String; 6], [String; 5]) {
    let card = card_of(n);
    let hsid = format!("LF{n:012}");
    let req = format!("v1|{card}|outpatient|2026-12-04|123456|100000|2000|1000|20456|60000|0|0");
    let line = format!(
        "S|2026-12-04T10:00:00+08:00|s1_{n:022}|{hsid}|{card}|123456|60000|40000|23456|\
         medical_assistance,36000,0,;charity,4000,0,per_visit_cap|dibao|Jiefang Street|Xinhua Community||"
    );
    let keys = [
        format!("{{lf}}:stl:H0001/{hsid}"),
        format!("{{lf}}:{card}:card"),
        "{lf}:program_paid".to_string(),
        "{lf}:recon:2026-12-04:H0001:events".to_string(),
        format!("{{lf}}:{card}:hist:2026"),
        "{lf}:events".to_string(),
    ];
    (keys, [req, line, "2026-12-04T10:00:00+08:00".to_string(), "H0001".to_string(), hsid])
}

/// Seeds the cards: each an active `dibao` card with the fields settlegate's card hash holds.
pub async fn seed(conn: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    for n in 0..CARDS {
        pipe.hset_multiple(
            format!("{{lf}}:{}:card", card_of(n)),
            &[
                ("category", "dibao"),
                ("status", "active"),
                ("valid_from", "2026-01-01"),
                ("valid_until", "2027-12-31"),
                ("tags", ","),
                ("street", "Jiefang Street"),
                ("community", "Xinhua Community"),
            ],
        )
        .ignore();
    }
    pipe.query_async(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_has_its_own_id_and_a_card_of_the_seeded_ones() {
        let (k1, a1) = invocation(1);
        let (k2, _) = invocation(1 + CARDS);
        assert_ne!(k1[0], k2[0], "a new record key per request");
        assert_eq!(k1[1], k2[1], "the cards cycle");
        assert_eq!(k1[1], "{lf}:C100001:card");
        assert!(a1[1].starts_with("S|") && a1[0].starts_with("v1|C100001|"));
    }
}
