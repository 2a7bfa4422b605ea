//! Dev certificates and the real `settlegate serve` binary on free ports, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{read_reply, tls_client_config, tls_connect, Client, Reply, TestBody};
use super::cluster::Cluster;
use super::fixtures::TIMEZONE;
use super::redis_server::{free_ports, Redis};

pub const HOSPITALS: [&str; 4] = ["H0001", "H0002", "H0003", "H0004"];
pub const ADMIN: &str = "relief-office";
/// Two street offices (certificate CN, street label); a gateway serves them when started with [`STREETS_TOML`].
pub const STREETS: [(&str, &str); 2] = [("xc-jinrongjie", "jinrongjie"), ("xc-yuetan", "yuetan")];
/// A certificate of the test CA whose CN is listed nowhere (API.md: served as a hospital of that id).
pub const STRANGER: &str = "xc-nowhere";
/// The `[streets]` section naming [`STREETS`].
pub const STREETS_TOML: &str =
    "[streets]\nidentities = { \"xc-jinrongjie\" = \"jinrongjie\", \"xc-yuetan\" = \"yuetan\" }\n";

/// Certificates for the gateway, four hospitals and the relief office; plus a stranger CA's hospital.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let mut clients: Vec<String> = HOSPITALS.iter().map(|h| h.to_string()).collect();
        clients.push(ADMIN.into());
        clients.push("bad cn!".into());
        clients.extend(STREETS.iter().map(|(cn, _)| cn.to_string()));
        clients.push(STRANGER.into());
        settlegate::certs::generate(dir.path(), &["localhost".into(), "127.0.0.1".into()], &clients).unwrap();
        settlegate::certs::generate(&dir.path().join("other"), &["localhost".into()], &["H0001".into()]).unwrap();
        Certs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that signed the gateway's and every client's certificate.
    pub fn ca(&self) -> PathBuf {
        self.path().join("ca.pem")
    }

    /// `who`'s certificate and key.
    pub fn identity(&self, who: &str) -> Identity {
        Identity { cert: self.path().join(format!("{who}.pem")), key: self.path().join(format!("{who}.key")) }
    }

    /// A TLS client configuration presenting `who`'s certificate and trusting the gateway's CA.
    pub fn client_config(&self, who: &str) -> rustls::ClientConfig {
        let id = self.identity(who);
        tls_client_config(Some((&id.cert, &id.key)), &self.ca())
    }
}

/// A client certificate and its private key (PEM files).
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A plain HTTP answer of the ops port.
pub struct OpsReply {
    /// 0 when nothing answered.
    pub status: u16,
    pub body: String,
}

/// A running gateway process.
pub struct Gateway {
    child: Option<Child>,
    pub port: u16,
    pub ops_port: u16,
    pub certs: Arc<Certs>,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts `settlegate serve` against `redis_url`; `extra` is appended to the TOML (whole sections).
    pub fn start(redis_url: &str, certs: &Arc<Certs>, extra: &str) -> Gateway {
        Gateway::start_env(redis_url, certs, extra, &[])
    }

    pub fn start_env(redis_url: &str, certs: &Arc<Certs>, extra: &str, env: &[(&str, &str)]) -> Gateway {
        Gateway::launch(&format!("url = \"{redis_url}\""), certs, extra, env)
    }

    /// Starts `settlegate serve` on `cluster` (`[redis] cluster = [every node]`); `extra` as for [`Gateway::start`].
    pub fn start_on_cluster(cluster: &Cluster, certs: &Arc<Certs>, extra: &str) -> Gateway {
        Gateway::launch(&cluster.redis_toml(), certs, extra, &[])
    }

    /// `redis_line`: the `[redis]` section's address line (`url = …` or `cluster = […]`).
    fn launch(redis_line: &str, certs: &Arc<Certs>, extra: &str, env: &[(&str, &str)]) -> Gateway {
        for _attempt in 0..5 {
            if let Some(gw) = Gateway::try_start(redis_line, certs.clone(), extra, env) {
                return gw;
            }
        }
        panic!("the gateway did not start in 5 attempts");
    }

    /// One attempt on fresh ports; `None` when the process exited (a port was taken meanwhile).
    fn try_start(redis_line: &str, certs: Arc<Certs>, extra: &str, env: &[(&str, &str)]) -> Option<Gateway> {
        let dir = tempfile::tempdir().unwrap();
        let [port, ops_port] = free_ports::<2>();
        let c = certs.path().display();
        let tz = TIMEZONE.name();
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\nops_listen = \"127.0.0.1:{ops_port}\"\ntimezone = \"{tz}\"\n\
             [tls]\ncert = \"{c}/server.pem\"\nkey = \"{c}/server.key\"\nclient_ca = \"{c}/ca.pem\"\n\
             [admin]\nidentities = [\"{ADMIN}\"]\n[log]\nlevel = \"info\"\n{extra}\n"
        );
        // [redis] may come from `extra`; otherwise add it.
        let config = if extra.contains("[redis]") {
            config.replace("[redis]", &format!("[redis]\n{redis_line}"))
        } else {
            format!("{config}\n[redis]\n{redis_line}\n")
        };
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let log = dir.path().join("gateway.log");
        let child = Command::new(env!("CARGO_BIN_EXE_settlegate"))
            .args(["serve", "--config"])
            .arg(&path)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut gw = Gateway { child: Some(child), port, ops_port, certs, log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while ops_get_blocking(ops_port, "/healthz").status != 200 {
            if gw.child.as_mut().unwrap().try_wait().ok().flatten().is_some() {
                let log = gw.log_text();
                assert!(log.contains("Address already in use"), "gateway exited: {log}");
                return None;
            }
            assert!(Instant::now() < deadline, "gateway did not start: {}", gw.log_text());
            std::thread::sleep(Duration::from_millis(25));
        }
        Some(gw)
    }

    /// The config file it was started with (for the `settlegate` commands that read the same Redis).
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("gateway.toml")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// A client of one mTLS connection as `who` (a hospital, [`ADMIN`] or `"bad cn!"`).
    pub fn client(&self, who: &str) -> Client {
        let id = self.certs.identity(who);
        Client::new(self.port, &id.cert, &id.key, &self.certs.ca())
    }

    /// One request on a fresh mTLS connection as `who`, with chosen headers and body (the [`Client`] sends neither).
    pub async fn request_as(
        &self,
        who: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: TestBody,
    ) -> Result<Reply, String> {
        let stream = tls_connect(self.port, self.certs.client_config(who)).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = http::Request::builder().method(method).uri(path).header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read_reply(sender.send_request(req.body(body).unwrap()).await.map_err(|e| e.to_string())?).await
    }

    pub async fn ops_get(&self, path: &str) -> OpsReply {
        let port = self.ops_port;
        let path = path.to_string();
        tokio::task::spawn_blocking(move || ops_get_blocking(port, &path)).await.unwrap()
    }

    /// Polls `/readyz` until it answers `want`; returns how long that took.
    pub async fn wait_ready(&self, want: u16, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let reply = self.ops_get("/readyz").await;
            if reply.status == want {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "/readyz {} {} and not {want} within {within:?}",
                reply.status,
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `settlegate audit verify` on this gateway's config (the same Redis): its output.
    pub fn audit_verify(&self) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_settlegate"))
            .args(["audit", "verify", "--config"])
            .arg(self.config_path())
            .output()
            .unwrap()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // a failing test shows what the gateway said (the log lives in a temporary directory)
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- the last lines of the gateway's log ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A plain HTTP/1.0 GET on the ops port (std only; for start-up polling).
pub fn ops_get_blocking(port: u16, path: &str) -> OpsReply {
    use std::io::{Read, Write};
    let nothing = || OpsReply { status: 0, body: String::new() };
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return nothing() };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).is_err() {
        return nothing();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    OpsReply { status, body }
}

/// A private Redis with one gateway on it (fresh certificates): the setup of most HTTP tests. The gateway is
/// stopped before Redis. Keep the whole `Stack` to the end of the test (`let stack = Stack::start(""); let gw =
/// &stack.gw;`): a destructuring that drops `redis` would stop Redis at once.
pub struct Stack {
    pub gw: Gateway,
    pub redis: Redis,
}

impl Stack {
    /// `extra`: TOML sections appended to the gateway's config.
    pub fn start(extra: &str) -> Stack {
        Stack::on(Redis::start(), extra)
    }

    /// The gateway on a Redis started by the caller (e.g. [`Redis::start_with_digest`]).
    pub fn on(redis: Redis, extra: &str) -> Stack {
        let gw = Gateway::start(&redis.url(), &Arc::new(Certs::new()), extra);
        Stack { gw, redis }
    }
}
