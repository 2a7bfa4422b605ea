//! A private `redis-server` per test, on a free port (never 6379), stopped and its directory removed on drop.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free ports (all bound at once, so the kernel cannot hand out the same one twice).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<StdListener> = (0..N).map(|_| StdListener::bind("127.0.0.1:0").unwrap()).collect();
    let ports = std::array::from_fn(|i| listeners[i].local_addr().unwrap().port());
    assert!(!ports.contains(&6379));
    ports
}

/// A private redis-server, stopped (and its directory removed) on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
    /// The command line, kept for [`Redis::restart`].
    args: Vec<String>,
    /// False once [`Redis::stop`] (or [`Redis::kill9`]) ended it, until [`Redis::restart`].
    running: bool,
    _dir: tempfile::TempDir,
}

/// What "the store is unchanged" compares: the number of keys and a digest of every key and value.
#[derive(Debug, PartialEq, Eq)]
pub struct StoreState {
    pub keys: String,
    pub digest: String,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// With `extra` arguments after the defaults (a later `--dir` or `--appendonly` wins).
    pub fn start_with(extra: &[&str]) -> Redis {
        for _attempt in 0..5 {
            if let Some(redis) = Redis::try_start(extra) {
                return redis;
            }
        }
        panic!("redis-server did not start in 5 attempts");
    }

    /// A Redis whose `DEBUG DIGEST` may be read, for [`Redis::state`].
    pub fn start_with_digest() -> Redis {
        Redis::start_with(&["--enable-debug-command", "yes"])
    }

    /// One attempt on a fresh free port; `None` when the server exited (e.g. the port was taken meanwhile).
    fn try_start(extra: &[&str]) -> Option<Redis> {
        Redis::start_on(free_port(), extra)
    }

    /// One attempt on `port`; `None` when the server exited (e.g. the port was taken meanwhile).
    pub fn start_on(port: u16, extra: &[&str]) -> Option<Redis> {
        let dir = tempfile::tempdir().unwrap();
        let dir_arg = dir.path().display().to_string();
        let port_arg = port.to_string();
        let defaults = ["--port", &port_arg, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
        let more = ["--maxmemory-policy", "noeviction", "--dir", &dir_arg];
        let args: Vec<String> = defaults.iter().chain(&more).chain(extra).map(|a| (*a).to_string()).collect();
        let mut redis = Redis { child: spawn(&args), port, args, running: true, _dir: dir };
        redis.wait_until_up().then_some(redis)
    }

    /// Waits for PONG; `false` when the server exited first.
    fn wait_until_up(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Stops the server (if it still runs) and starts it again on the same port with the same arguments, so in
    /// the same directory: with `--appendonly yes` it reads back what it had written.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(&self.args);
        self.running = true;
        assert!(self.wait_until_up(), "redis-server did not restart on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs redis-cli against this server and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The keys holding data: every key but the gateway's own operational figures, which each instance rewrites
    /// every few seconds whatever the requests (its heartbeat `{sg}:instances`, the per-minute latencies
    /// `{sg}:stats:settle:*`). Sorted.
    pub fn data_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .cli(&["--scan"])
            .lines()
            .filter(|k| !k.is_empty() && *k != "{sg}:instances" && !k.starts_with("{sg}:stats:"))
            .map(String::from)
            .collect();
        keys.sort();
        keys
    }

    /// The number of [`Redis::data_keys`] and a digest of their values (`DEBUG DIGEST-VALUE`, which needs
    /// [`Redis::start_with_digest`]): what "the store is unchanged" compares.
    pub fn state(&self) -> StoreState {
        let keys = self.data_keys();
        let mut args = vec!["DEBUG", "DIGEST-VALUE"];
        args.extend(keys.iter().map(String::as_str));
        let digest = if keys.is_empty() { String::new() } else { self.cli(&args) };
        let lines: Vec<&str> = digest.lines().collect();
        assert_eq!(lines.len(), keys.len(), "DEBUG DIGEST-VALUE: {digest:?}");
        assert!(lines.iter().all(|d| d.len() == 40), "DEBUG DIGEST-VALUE: {digest:?}");
        let combined = keys.iter().zip(&lines).map(|(k, d)| format!("{k}={d}")).collect::<Vec<_>>().join(",");
        StoreState { keys: keys.len().to_string(), digest: combined }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.pid().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig} failed");
    }

    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// `kill -9` (no shutdown, nothing saved), and reaps it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.running = false;
    }

    /// Whether it runs (started, or restarted, and not stopped since).
    pub fn is_running(&self) -> bool {
        self.running
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new("redis-server")
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (.ci/run installs it)")
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
        self.stop();
    }
}
