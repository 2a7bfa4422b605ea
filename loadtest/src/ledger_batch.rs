//! The floor server's `ledger-batch` mode: the ledger floor ([`crate::ledger_floor`]) with the settlements that
//! wait meanwhile recorded together, up to [`MAX_BATCH`] per EVALSHA. It measures what batching concurrent
//! settlements of one shard into one script call could give (issue 13's last candidate), before anyone builds it
//! into the gateway: its saturation is the most any gateway could reach on this Redis while recording what the
//! contract keeps per settlement, batched (docs/BENCHMARKS.md, issue 13).
//!
//! It takes the best batched layout the contract allows: the program totals (shared by every card) are read once
//! and written once per batch, every day line of the batch goes in one RPUSH; per settlement remain the id's read,
//! the card's read and its usage write, the record, the card's history and the event (an XADD adds one entry).
//! The records are the ledger floor's, and so are the values and their sizes.
//!
//! A request waits for the batch in flight to be answered only when [`IN_FLIGHT`] batches are already out: with
//! one batch at a time a request that arrives just after it left would wait a whole round trip.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::ledger_floor::invocation;

/// The most settlements one EVALSHA records (the load tool keeps 32 requests in flight at saturation).
pub const MAX_BATCH: usize = 32;
/// Batches out at once.
pub const IN_FLIGHT: usize = 2;
/// Requests waiting for a batch (the queue's bound; a full queue makes a request wait to enqueue).
pub const QUEUE: usize = 1024;

/// KEYS: 1 the program totals, 2 the day's reconciliation list, 3 the event stream, then per settlement i
/// (0-based) 4 + 3i its record, 5 + 3i its card, 6 + 3i the card's year history. ARGV per settlement, 5 + 5i .. :
/// req, line, settled_at, hospital, hsid (the ledger floor's arguments). Returns one reply per settlement.
pub const LEDGER_BATCH_SCRIPT: &str = r#"
local call, format, tonumber = redis.call, string.format, tonumber
local n = #ARGV / 5
local totals = call('HMGET', KEYS[1], 'visit_floor', '2026:medical_assistance', '2026:medical_assistance:contrib',
  '2026:charity', '2026:charity:contrib')
local paid_ma, paid_ch = tonumber(totals[2]) or 0, tonumber(totals[4]) or 0
local replies, lines = {}, {}
for i = 0, n - 1 do
  local k, a = 3 + 3 * i, 5 * i
  local req, line, settled_at, hospital, hsid = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  if call('HGET', KEYS[k + 1], 'req') then
    replies[i + 1] = {'replay'}
  else
    local card = call('HMGET', KEYS[k + 2], 'category', 'status', 'valid_from', 'valid_until', 'tags', 'street',
      'community', '2026:medical_assistance:paid', '2026:medical_assistance:ded', '2026:charity:paid')
    if card[2] ~= 'active' then
      replies[i + 1] = {'not_eligible'}
    else
      local function add(s, fen) return format('%d', (tonumber(s) or 0) + fen) end
      call('HSET', KEYS[k + 2], '2026:medical_assistance:paid', add(card[8], 36000), '2026:medical_assistance:ded',
        add(card[9], 0), '2026:charity:paid', add(card[10], 4000))
      paid_ma, paid_ch = paid_ma + 36000, paid_ch + 4000
      call('HSET', KEYS[k + 1], 'status', 'settled', 'line', line, 'req', req, 'ruleset_version', '1', 'hospital',
        hospital)
      lines[#lines + 1] = line
      call('RPUSH', KEYS[k + 3], hospital .. '/' .. hsid)
      call('XADD', KEYS[3], '*', 'type', 'settlement.settled', 'at', settled_at, 'line', line, 'req', req,
        'ruleset_version', '1', 'hospital', hospital, 'operator_name', '')
      replies[i + 1] = {'settled', card[1], card[5], '60000', '40000', '23456',
        'medical_assistance,36000,0,;charity,4000,0,'}
    end
  end
end
if #lines > 0 then
  call('HSET', KEYS[1], '2026:medical_assistance', format('%d', paid_ma), '2026:charity', format('%d', paid_ch))
  call('RPUSH', KEYS[2], unpack(lines))
end
return replies
"#;

/// One request's place in a batch: its number and where its outcome goes (true: recorded).
type Waiter = (u64, oneshot::Sender<bool>);

/// The handle requests enqueue on.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Waiter>,
}

impl Batcher {
    /// Starts the batching task on `conn` (the script already loaded there).
    pub fn start(conn: redis::aio::MultiplexedConnection) -> Batcher {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(conn, rx));
        Batcher { queue: tx }
    }

    /// Records settlement `n` in the next batch; false when Redis refused the batch or the batcher is gone.
    pub async fn record(&self, n: u64) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.queue.send((n, tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

async fn run(conn: redis::aio::MultiplexedConnection, mut rx: mpsc::Receiver<Waiter>) {
    let script = Arc::new(redis::Script::new(LEDGER_BATCH_SCRIPT));
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut batch: Vec<Waiter> = Vec::with_capacity(MAX_BATCH);
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        // the first waiter, then whoever else is already queued
        match rx.recv().await {
            Some(w) => batch.push(w),
            None => return,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let waiters = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let (script, mut conn) = (script.clone(), conn.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let ok = invoke(&script, &mut conn, &waiters).await;
            for (i, (_, tx)) in waiters.into_iter().enumerate() {
                let _ = tx.send(ok.get(i).copied().unwrap_or(false));
            }
        });
    }
}

/// One EVALSHA for the batch; per settlement, whether it was recorded.
async fn invoke(script: &redis::Script, conn: &mut redis::aio::MultiplexedConnection, waiters: &[Waiter]) -> Vec<bool> {
    let calls: Vec<_> = waiters.iter().map(|(n, _)| invocation(*n)).collect();
    let mut inv = script.prepare_invoke();
    // the keys every settlement shares (totals, day list, events), once, then each settlement's own
    let (shared, _) = &calls[0];
    inv.key(&shared[2]).key(&shared[3]).key(&shared[5]);
    for (keys, _) in &calls {
        inv.key(&keys[0]).key(&keys[1]).key(&keys[4]);
    }
    for (_, args) in &calls {
        for a in args {
            inv.arg(a);
        }
    }
    match inv.invoke_async::<Vec<Vec<String>>>(conn).await {
        Ok(replies) => replies.iter().map(|r| r.first().map(String::as_str) == Some("settled")).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger_floor::{seed, LEDGER_SCRIPT};

    /// A private redis-server on a free port, stopped when dropped.
    struct Server(std::process::Child, u16);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    fn start_redis() -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install -y redis-server)");
        Server(child, port)
    }
    async fn connect(port: u16) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        for _ in 0..100 {
            if let Ok(c) = client.get_multiplexed_async_connection().await {
                return c;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server on {port} did not start");
    }

    /// What the records leave behind, the event ids (times) left out.
    async fn state(conn: &mut redis::aio::MultiplexedConnection, n: u64) -> Vec<String> {
        let mut out = Vec::new();
        let totals: Vec<(String, String)> =
            redis::cmd("HGETALL").arg("{lf}:program_paid").query_async(conn).await.unwrap();
        out.push(format!("{totals:?}"));
        let day: Vec<String> = redis::cmd("LRANGE")
            .arg("{lf}:recon:2026-12-04:H0001:events")
            .arg(0)
            .arg(-1)
            .query_async(conn)
            .await
            .unwrap();
        out.push(format!("{day:?}"));
        for i in 0..n {
            let (keys, _) = invocation(i);
            for k in [&keys[0], &keys[1]] {
                let mut h: Vec<(String, String)> = redis::cmd("HGETALL").arg(k).query_async(conn).await.unwrap();
                h.sort();
                out.push(format!("{k} {h:?}"));
            }
            let hist: Vec<String> = redis::cmd("LRANGE").arg(&keys[4]).arg(0).arg(-1).query_async(conn).await.unwrap();
            out.push(format!("{hist:?}"));
        }
        let events: Vec<redis::Value> =
            redis::cmd("XRANGE").arg("{lf}:events").arg("-").arg("+").query_async(conn).await.unwrap();
        out.push(format!("{} events", events.len()));
        out
    }

    #[tokio::test]
    async fn a_batch_records_what_the_same_settlements_one_by_one_record() {
        let server = start_redis();
        let mut conn = connect(server.1).await;
        // two settlements on one card (n and n + CARDS) inside one batch, and more than one batch
        let ns: Vec<u64> = vec![0, 1, 2, crate::ledger_floor::CARDS, 3];
        seed(&mut conn).await.unwrap();
        let single = redis::Script::new(LEDGER_SCRIPT);
        for &n in &ns {
            let (keys, args) = invocation(n);
            let mut inv = single.prepare_invoke();
            keys.iter().for_each(|k| {
                inv.key(k);
            });
            args.iter().for_each(|a| {
                inv.arg(a);
            });
            let _: redis::Value = inv.invoke_async(&mut conn).await.unwrap();
        }
        let one_by_one = state(&mut conn, 4 + crate::ledger_floor::CARDS).await;
        let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
        seed(&mut conn).await.unwrap();
        let script = redis::Script::new(LEDGER_BATCH_SCRIPT);
        let waiters = |ns: &[u64]| ns.iter().map(|&n| (n, oneshot::channel().0)).collect::<Vec<Waiter>>();
        assert_eq!(invoke(&script, &mut conn, &waiters(&ns[..4])).await, vec![true; 4]);
        assert_eq!(invoke(&script, &mut conn, &waiters(&ns[4..])).await, vec![true]);
        assert_eq!(state(&mut conn, 4 + crate::ledger_floor::CARDS).await, one_by_one);
        // the same id again is a replay, recorded once
        assert_eq!(invoke(&script, &mut conn, &waiters(&[0])).await, vec![false]);
        assert_eq!(state(&mut conn, 4 + crate::ledger_floor::CARDS).await, one_by_one);
    }
}
