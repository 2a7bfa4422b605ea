//! Test harness: a private `redis-server` on a free port (never 6379), dev certificates, the real `settlegate`
//! binary, and an mTLS HTTP client (hyper over rustls). Everything is stopped on drop.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;

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
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Redis {
        for _attempt in 0..5 {
            if let Some(redis) = Redis::try_start(extra) {
                return redis;
            }
        }
        panic!("redis-server did not start in 5 attempts");
    }

    /// One attempt on a fresh free port; `None` when the server exited (e.g. the port was taken meanwhile).
    fn try_start(extra: &[&str]) -> Option<Redis> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--maxmemory-policy", "noeviction", "--dir"])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        let mut redis = Redis { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.cli(&["PING"]).trim() != "PONG" {
            if redis.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs redis-cli against this server and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
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

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
        self.stop();
    }
}

pub const HOSPITALS: [&str; 4] = ["H0001", "H0002", "H0003", "H0004"];
pub const ADMIN: &str = "relief-office";

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
        settlegate::certs::generate(dir.path(), &["localhost".into(), "127.0.0.1".into()], &clients).unwrap();
        settlegate::certs::generate(&dir.path().join("other"), &["localhost".into()], &["H0001".into()]).unwrap();
        Certs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
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
    pub fn start(redis_url: &str, certs: Arc<Certs>, extra: &str) -> Gateway {
        Gateway::start_env(redis_url, certs, extra, &[])
    }

    pub fn start_env(redis_url: &str, certs: Arc<Certs>, extra: &str, env: &[(&str, &str)]) -> Gateway {
        for _attempt in 0..5 {
            if let Some(gw) = Gateway::try_start(redis_url, certs.clone(), extra, env) {
                return gw;
            }
        }
        panic!("the gateway did not start in 5 attempts");
    }

    /// One attempt on fresh ports; `None` when the process exited (a port was taken meanwhile).
    fn try_start(redis_url: &str, certs: Arc<Certs>, extra: &str, env: &[(&str, &str)]) -> Option<Gateway> {
        let dir = tempfile::tempdir().unwrap();
        let [port, ops_port] = free_ports::<2>();
        let c = certs.path().display();
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\nops_listen = \"127.0.0.1:{ops_port}\"\ntimezone = \"Asia/Shanghai\"\n\
             [tls]\ncert = \"{c}/server.pem\"\nkey = \"{c}/server.key\"\nclient_ca = \"{c}/ca.pem\"\n\
             [admin]\nidentities = [\"{ADMIN}\"]\n[log]\nlevel = \"info\"\n{extra}\n"
        );
        // [redis] may come from `extra`; otherwise add it.
        let config = if extra.contains("[redis]") {
            config.replace("[redis]", &format!("[redis]\nurl = \"{redis_url}\""))
        } else {
            format!("{config}\n[redis]\nurl = \"{redis_url}\"\n")
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
        while ops_get_blocking(ops_port, "/healthz").0 != 200 {
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn client(&self, who: &str) -> Client {
        Client::new(
            self.port,
            &self.certs.path().join(format!("{who}.pem")),
            &self.certs.path().join(format!("{who}.key")),
            &self.certs.path().join("ca.pem"),
        )
    }

    pub async fn ops_get(&self, path: &str) -> (u16, String) {
        let port = self.ops_port;
        let path = path.to_string();
        tokio::task::spawn_blocking(move || ops_get_blocking(port, &path)).await.unwrap()
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
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A plain HTTP/1.0 GET on the ops port (std only; for start-up polling).
pub fn ops_get_blocking(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    (status, body)
}

pub fn tls_client_config(cert: Option<(&Path, &Path)>, ca: &Path) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match cert {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(cert).unwrap().map(|c| c.unwrap()).collect();
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key).unwrap()).unwrap()
        }
        None => builder.with_no_client_auth(),
    }
}

/// Opens a TLS connection and completes the handshake (and one read, since TLS 1.3 reports a refused client
/// certificate only after the handshake). Returns Err with the TLS error when refused.
pub async fn tls_connect(
    port: u16,
    config: rustls::ClientConfig,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.map_err(|e| e.to_string())
}

/// One mTLS HTTP/1.1 connection as one caller.
pub struct Client {
    port: u16,
    config: rustls::ClientConfig,
    sender: tokio::sync::Mutex<Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

impl Client {
    pub fn new(port: u16, cert: &Path, key: &Path, ca: &Path) -> Client {
        Client { port, config: tls_client_config(Some((cert, key)), ca), sender: tokio::sync::Mutex::new(None) }
    }

    async fn connect(&self) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
        let stream = tls_connect(self.port, self.config.clone()).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(sender)
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        let mut guard = self.sender.lock().await;
        if guard.as_ref().is_none_or(|s| s.is_closed()) {
            *guard = Some(self.connect().await?);
        }
        let sender = guard.as_mut().unwrap();
        sender.ready().await.map_err(|e| e.to_string())?;
        let mut req = http::Request::builder().method(method).uri(path).header("host", "localhost");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = sender.send_request(req.body(Full::new(Bytes::from(body))).unwrap()).await.map_err(|e| {
            *guard = None;
            e.to_string()
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Ok(Reply { status, headers, body, raw })
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some("application/json"), serde_json::to_vec(body).unwrap()).await.unwrap()
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, Some("application/json"), serde_json::to_vec(body).unwrap()).await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, Vec::new()).await.unwrap()
    }
}

/// Publishes rulesets and stores cardholders as the relief office; panics on failure.
pub async fn seed(admin: &Client, rulesets: &[Value], cardholders: &[Value]) {
    for r in rulesets {
        let reply = admin.post("/admin/v1/rulesets", r).await;
        assert_eq!(reply.status, 201, "publish: {}", reply.body);
    }
    for c in cardholders {
        let id = c["card_id"].as_str().unwrap();
        let reply = admin.put(&format!("/admin/v1/cardholders/{id}"), c).await;
        assert_eq!(reply.status, 200, "cardholder: {}", reply.body);
    }
}

/// The golden vectors of tests/golden (see its README.md), every `*.json` file, sorted by name.
pub fn golden_files() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden vectors in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect()
}

/// Checks a golden step's expectation against a reply: status, then code or every listed field exactly.
pub fn check_expectation(file: &str, i: usize, step: &Value, status: u16, body: &Value) {
    let expect_status = step["expect_status"].as_u64().unwrap() as u16;
    assert_eq!(status, expect_status, "{file} step {i}: status; body {body}");
    if let Some(code) = step.get("expect_code") {
        assert_eq!(&body["code"], code, "{file} step {i}: code; body {body}");
    }
    if let Some(expect) = step.get("expect").and_then(|e| e.as_object()) {
        for (k, v) in expect {
            assert_eq!(&body[k], v, "{file} step {i}: field {k}; body {body}");
        }
    }
}
