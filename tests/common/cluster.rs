//! A private Redis Cluster per test: `primaries` × (1 + `replicas`) `redis-server`s on free ports (never 6379),
//! joined by `redis-cli --cluster create`, with a short `cluster-node-timeout` so that a failover takes seconds.
//! Every node is stopped, and its directory removed, on drop.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::net::TcpListener;

use super::redis_server::Redis;

/// How long a node may be unreachable before the others fail it over (ms). Short, for the failover tests.
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// `n` distinct free ports (never 6379) whose cluster bus ports (port + 10000) are free too: redis-server refuses
/// a cluster port above 55535, and about a fifth of the kernel's free ports are.
fn cluster_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    for _ in 0..1000 {
        if held.len() == n {
            break;
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port != 6379 && port <= 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            held.push(listener);
        }
    }
    assert_eq!(held.len(), n, "no {n} free ports with free bus ports");
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// A running cluster.
pub struct Cluster {
    /// Every node, primaries first as `--cluster create` was given them; a node stays in its place when it is
    /// killed and restarted (it keeps its port and directory, so its `nodes.conf`).
    pub nodes: Vec<Redis>,
}

impl Cluster {
    /// 3 primaries and 3 replicas (one each): what the tests run on.
    pub fn start() -> Cluster {
        Cluster::start_with(3, 1)
    }

    /// `primaries` primaries with `replicas` replicas each. The ports are drawn at once (all distinct); a start
    /// that fails (a port taken meanwhile) is tried again on new ones.
    pub fn start_with(primaries: usize, replicas: usize) -> Cluster {
        for _attempt in 0..3 {
            if let Some(c) = Cluster::try_start(primaries, replicas) {
                return c;
            }
        }
        panic!("the cluster did not start in 3 attempts");
    }

    fn try_start(primaries: usize, replicas: usize) -> Option<Cluster> {
        let n = primaries * (1 + replicas);
        assert!((3..=16).contains(&n) && primaries >= 3, "a cluster of {primaries} primaries, {replicas} replicas");
        let ports = cluster_ports(n);
        let timeout = NODE_TIMEOUT_MS.to_string();
        let mut nodes = Vec::new();
        for port in &ports[..n] {
            let args = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                &timeout,
                // a replica that lost its primary long ago may still be promoted (the tests kill and restart)
                "--cluster-replica-validity-factor",
                "0",
                "--enable-debug-command",
                "yes",
            ];
            nodes.push(Redis::start_on(*port, &args)?);
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        create.args(ports[..n].iter().map(|p| format!("127.0.0.1:{p}")));
        create.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        let out = create.stdin(Stdio::null()).output().expect("redis-cli must be installed (.ci/run installs it)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("All 16384 slots covered"), "cluster create: {text}");
        let cluster = Cluster { nodes };
        cluster.wait_ok(Duration::from_secs(30));
        Some(cluster)
    }

    /// The seed URLs for `[redis] cluster`: every node.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(Redis::url).collect()
    }

    /// `[redis]` with `cluster = [every node]`, for a gateway's config.
    pub fn redis_toml(&self) -> String {
        let seeds: Vec<String> = self.seeds().iter().map(|s| format!("\"{s}\"")).collect();
        format!("cluster = [{}]", seeds.join(", "))
    }

    /// Waits until every running node reports `cluster_state:ok` and sees every slot served, and every running
    /// replica's link to its primary is up (its first sync is done: before it, a write waiting for a replica's
    /// acknowledgement would time out).
    pub fn wait_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let ok = self.nodes.iter().filter(|n| n.is_running()).all(|n| {
                let info = n.cli(&["CLUSTER", "INFO"]);
                let replication = n.cli(&["INFO", "replication"]);
                let synced = replication.contains("role:master") || replication.contains("master_link_status:up");
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384") && synced
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster is not ok within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The node that is now the primary of the ledger slot (the slot of the hash tag `{sg}`), as an index into
    /// [`Cluster::nodes`], asked of a running node.
    pub fn ledger_primary(&self) -> usize {
        let asker = self.nodes.iter().find(|n| n.is_running()).expect("a running node");
        let slot: u16 = asker.cli(&["CLUSTER", "KEYSLOT", "{sg}"]).trim().parse().expect("a slot");
        let port = primary_port_of_slot(&asker.cli(&["CLUSTER", "NODES"]), slot);
        self.nodes.iter().position(|n| n.port == port).expect("the ledger's primary is one of ours")
    }

    /// The replicas of the node at `primary` (indices into [`Cluster::nodes`]), from `CLUSTER NODES`.
    pub fn replicas_of(&self, primary: usize) -> Vec<usize> {
        let id = self.nodes[primary].cli(&["CLUSTER", "MYID"]).trim().to_string();
        let nodes = self.nodes[primary].cli(&["CLUSTER", "NODES"]);
        let ports: Vec<u16> = nodes
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() > 3 && f[2].contains("slave") && f[3] == id)
            .map(|f| f[1].split('@').next().unwrap().rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        self.nodes.iter().enumerate().filter(|(_, n)| ports.contains(&n.port)).map(|(i, _)| i).collect()
    }

    /// Empties every primary (a replica follows its primary): a clean store between two golden vectors.
    pub fn flush(&self) {
        for n in self.nodes.iter().filter(|n| n.is_running()) {
            if n.cli(&["ROLE"]).starts_with("master") {
                assert_eq!(n.cli(&["FLUSHALL", "SYNC"]).trim(), "OK");
            }
        }
    }
}

/// The port of the primary serving `slot`, from `CLUSTER NODES` (`<id> <ip:port@bus> <flags> <master> … <slots>`).
fn primary_port_of_slot(nodes: &str, slot: u16) -> u16 {
    for line in nodes.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
            continue;
        }
        let serves = f[8..].iter().any(|range| {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            match (lo.parse::<u16>(), hi.parse::<u16>()) {
                (Ok(lo), Ok(hi)) => (lo..=hi).contains(&slot),
                _ => false,
            }
        });
        if serves {
            let addr = f[1].split('@').next().unwrap();
            return addr.rsplit(':').next().unwrap().parse().unwrap();
        }
    }
    panic!("no primary serves slot {slot}: {nodes}");
}
