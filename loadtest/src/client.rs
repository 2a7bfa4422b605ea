//! The HTTPS client: hyper's client connections over tokio-rustls, in a small bounded keep-alive pool.
//!
//! One [`Endpoint`] per identity (hospital or relief office), each with its own client certificate and its own
//! pool, the way a hospital's billing system holds its connections: HTTP/1.1 by default (at most `pool_size`
//! connections, each carrying one request at a time, kept alive and reused), HTTP/2 optionally (one connection,
//! at most `pool_size` concurrent streams). A bounded pool matters for the open model: an unbounded pool (like
//! hyper-util's legacy client) opens a new connection for every request that finds none idle, so a burst of
//! arrivals becomes a storm of TLS handshakes that the measurement then blames on the server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::BoxError;

/// Upper bound of one identity's pool.
pub const MAX_POOL_SIZE: usize = 4096;

/// A pooled connection idle this long is not reused: below the gateway's default `limits.idle_connection_timeout_ms`
/// (5 000), as a hospital's client would set it, so that a request is never sent on a connection the server is
/// closing for idleness at that moment (that race showed as one `io` error in a smoke run).
const MAX_IDLE: Duration = Duration::from_millis(4000);

/// Where the gateway (or a floor server) listens.
#[derive(Debug, Clone)]
pub struct Target {
    /// `https://host:port`, no trailing slash.
    pub base: String,
    /// The address the host resolved to, once: no DNS lookup per connection.
    pub addr: SocketAddr,
    /// The name the server certificate must carry (SNI and verification).
    pub server_name: ServerName<'static>,
}

impl Target {
    /// Parses `https://host:port` and resolves the host once.
    pub fn parse(url: &str) -> Result<Target, BoxError> {
        let uri: Uri = url.parse().map_err(|e| format!("target {url:?}: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("target {url:?}: must be https://host:port").into());
        }
        let host = uri.host().ok_or_else(|| format!("target {url:?}: no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(443);
        use std::net::ToSocketAddrs;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("target {url:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("target {url:?}: host does not resolve"))?;
        let server_name = ServerName::try_from(host.clone()).map_err(|e| format!("target {url:?}: {e}"))?;
        let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or(host);
        Ok(Target { base: format!("https://{authority}"), addr, server_name })
    }
}

type Body = Full<Bytes>;

/// A sender on one pooled connection.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Body>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

impl Sender {
    async fn send(&mut self, req: Request<Body>) -> hyper::Result<http::Response<hyper::body::Incoming>> {
        match self {
            Sender::H1(s) => s.send_request(req).await,
            Sender::H2(s) => s.send_request(req).await,
        }
    }
}

/// One identity's keep-alive pool: at most `size` requests in flight, each on its own HTTP/1.1 connection
/// (reused last-in first-out), or all as streams of one HTTP/2 connection. A request that finds the pool busy
/// waits for a connection, as a billing system's fixed-size pool would make it wait.
struct Pool {
    /// Where new connections go.
    target: Arc<Target>,
    /// The identity's TLS client config (its own client certificate).
    tls: tokio_rustls::TlsConnector,
    /// One multiplexed HTTP/2 connection instead of HTTP/1.1 connections.
    http2: bool,
    /// Bound on TCP + TLS + HTTP handshake.
    connect_timeout: Duration,
    /// `size` permits: requests in flight at most.
    permits: Semaphore,
    /// Idle HTTP/1.1 connections and when each went idle, reused last-in first-out (the warmest first).
    idle: Mutex<Vec<(hyper::client::conn::http1::SendRequest<Body>, Instant)>>,
    /// The shared HTTP/2 connection, once opened; an async lock, since opening it awaits the handshake.
    h2: tokio::sync::Mutex<Option<hyper::client::conn::http2::SendRequest<Body>>>,
    /// Connections opened so far.
    opened: AtomicU64,
}

impl Pool {
    /// TCP (no Nagle) + TLS + HTTP handshake; the connection is driven by its own task.
    async fn connect(&self) -> Result<Sender, Failure> {
        let connect = async {
            let tcp = TcpStream::connect(self.target.addr).await.map_err(|e| format!("tcp: {e}"))?;
            tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
            let tls = self.tls.connect(self.target.server_name.clone(), tcp).await.map_err(|e| format!("tls: {e}"))?;
            let io = TokioIo::new(tls);
            if self.http2 {
                let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .handshake(io)
                    .await
                    .map_err(|e| format!("h2: {e}"))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok::<_, String>(Sender::H2(sender))
            } else {
                let (sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("h1: {e}"))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(Sender::H1(sender))
            }
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(sender)) => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                Ok(sender)
            }
            Ok(Err(e)) => Err(Failure::Connect(e)),
            Err(_) => Err(Failure::Connect("connect timed out".into())),
        }
    }

    /// A ready sender and whether it is a new connection: an idle HTTP/1.1 connection (closed ones are
    /// dropped), the shared HTTP/2 connection, or a new one.
    async fn checkout(&self) -> Result<(Sender, bool), Failure> {
        if self.http2 {
            let mut shared = self.h2.lock().await;
            if let Some(sender) = shared.as_ref().filter(|s| !s.is_closed()) {
                let mut sender = sender.clone();
                if sender.ready().await.is_ok() {
                    return Ok((Sender::H2(sender), false));
                }
            }
            let Sender::H2(sender) = self.connect().await? else { unreachable!("an http2 pool connects h2") };
            *shared = Some(sender.clone());
            return Ok((Sender::H2(sender), true));
        }
        loop {
            let candidate = self.idle.lock().expect("pool").pop();
            match candidate {
                // idle too long: the server may be closing it right now (dropped, not raced)
                Some((_stale, since)) if since.elapsed() >= MAX_IDLE => continue,
                Some((mut sender, _)) if !sender.is_closed() => {
                    if sender.ready().await.is_ok() {
                        return Ok((Sender::H1(sender), false));
                    }
                }
                Some(_closed) => continue,
                None => return Ok((self.connect().await?, true)),
            }
        }
    }

    /// Returns an HTTP/1.1 connection whose exchange completed to the idle list.
    fn checkin(&self, sender: Sender) {
        if let Sender::H1(s) = sender {
            if !s.is_closed() {
                self.idle.lock().expect("pool").push((s, Instant::now()));
            }
        }
    }
}

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No complete answer within the request timeout: the outcome is unknown.
    Timeout,
    /// Could not connect or handshake: the request was not sent.
    Connect(String),
    /// The connection broke while the request was out: the outcome is unknown.
    Io(String),
}

impl Failure {
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect(_) => "connect",
            Failure::Io(_) => "io",
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `Idempotent-Replayed: true`: the gateway answered a retry from its record, not by settling again.
    pub replayed: bool,
    /// The `Next-Cursor` header (the event stream's paging), when the answer has one.
    pub next_cursor: Option<String>,
    /// The whole body, read before the request counts as answered.
    pub body: Bytes,
}

impl Answer {
    /// The `code` of a problem+json body, if it is one.
    pub fn problem_code(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Problem {
            code: String,
        }
        serde_json::from_slice::<Problem>(&self.body).ok().map(|p| p.code)
    }

    /// The error code to count when this answer was not the expected one: the problem `code`, else `http_NNN`.
    pub fn error_code(&self) -> String {
        self.problem_code().unwrap_or_else(|| format!("http_{}", self.status))
    }

    pub fn json(&self) -> Result<serde_json::Value, BoxError> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

pub const JSON: &str = "application/json";
pub const NDJSON: &str = "application/x-ndjson";

/// A request body and its media type.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The serialised body, sent as it is (cheap to clone: a retry resends the very same bytes).
    pub bytes: Bytes,
    /// The `Content-Type` the gateway dispatches on: [`JSON`] for the API, [`NDJSON`] for the bulk import.
    pub content_type: &'static str,
}

impl Payload {
    /// A JSON body that is already serialised.
    pub fn json(bytes: Bytes) -> Payload {
        Payload { bytes, content_type: JSON }
    }

    /// A JSON body serialised from `value`.
    pub fn json_of(value: &impl Serialize) -> Payload {
        Payload::json(json_bytes(value))
    }

    /// An NDJSON body (one JSON document per line).
    pub fn ndjson(bytes: Bytes) -> Payload {
        Payload { bytes, content_type: NDJSON }
    }
}

/// `value` as JSON bytes; the tool's own bodies always serialise.
pub fn json_bytes(value: &impl Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("the tool's request bodies serialise"))
}

/// The answer of a setup or audit request, read as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonAnswer {
    /// HTTP status: callers branch on it (200 found, 404 absent, 201 published, 5xx retried).
    pub status: u16,
    /// The parsed body, `Null` when the body was empty (a 404 without a problem body, for instance).
    pub body: serde_json::Value,
}

/// One identity's view of the target: its certificate and its connection pool.
pub struct Endpoint {
    /// The identity's certificate name (a hospital id, or the relief office): names it in errors and reports.
    pub name: String,
    /// The target's `https://host:port`, for HTTP/2 request URIs.
    base: String,
    /// The `Host` header of HTTP/1.1 requests.
    authority: http::HeaderValue,
    /// Its own connections, as a billing system holds its own.
    pool: Pool,
    /// Bound on one exchange, pool wait included.
    request_timeout: Duration,
}

impl Endpoint {
    pub fn new(
        target: &Arc<Target>,
        ca: &Path,
        certs_dir: &Path,
        name: &str,
        http2: bool,
        request_timeout: Duration,
        pool_size: usize,
    ) -> Result<Endpoint, BoxError> {
        let config = crate::tls::client_config(ca, certs_dir, name, http2)?;
        let authority = http::HeaderValue::from_str(target.base.trim_start_matches("https://"))?;
        let pool = Pool {
            target: target.clone(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            http2,
            connect_timeout: request_timeout.min(Duration::from_secs(5)),
            permits: Semaphore::new(pool_size.clamp(1, MAX_POOL_SIZE)),
            idle: Mutex::new(Vec::new()),
            h2: tokio::sync::Mutex::new(None),
            opened: AtomicU64::new(0),
        };
        Ok(Endpoint { name: name.to_string(), base: target.base.clone(), authority, pool, request_timeout })
    }

    /// Connections this identity opened so far (keep-alive reuse shows as a small number).
    pub fn connections_opened(&self) -> u64 {
        self.pool.opened.load(Ordering::Relaxed)
    }

    /// Opens `n` connections (one for HTTP/2) before the load starts, so that the measured phase does not
    /// begin with a burst of handshakes.
    pub async fn prewarm(&self, n: usize) -> Result<(), BoxError> {
        if self.pool.http2 {
            let (sender, _) = self.pool.checkout().await.map_err(|f| format!("{}: {f:?}", self.name))?;
            drop(sender);
            return Ok(());
        }
        let mut senders = Vec::new();
        for _ in 0..n.min(MAX_POOL_SIZE) {
            senders.push(self.pool.connect().await.map_err(|f| format!("{}: {f:?}", self.name))?);
        }
        for s in senders {
            self.pool.checkin(s);
        }
        Ok(())
    }

    /// One request; the whole exchange (waiting for a pooled connection, connecting, sending, reading the
    /// full body) is bounded by the request timeout.
    pub async fn call(&self, method: Method, path_and_query: &str, body: Option<Payload>) -> Result<Answer, Failure> {
        self.call_with_timeout(method, path_and_query, body, self.request_timeout).await
    }

    fn request(&self, method: &Method, path_and_query: &str, body: Option<&Payload>) -> Request<Body> {
        let mut builder = Request::builder().method(method.clone());
        builder = if self.pool.http2 {
            builder.uri(format!("{}{}", self.base, path_and_query))
        } else {
            builder.uri(path_and_query).header(http::header::HOST, self.authority.clone())
        };
        let body = match body {
            Some(payload) => {
                builder = builder.header(http::header::CONTENT_TYPE, payload.content_type);
                Full::new(payload.bytes.clone())
            }
            None => Full::new(Bytes::new()),
        };
        builder.body(body).expect("valid request")
    }

    pub async fn call_with_timeout(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Payload>,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let exchange = async {
            let _permit = self.pool.permits.acquire().await.expect("pool semaphore is never closed");
            // A pooled connection that the server closed in the meantime fails before the request is written
            // (`is_canceled`): that one attempt is retried on another connection. Nothing else is retried.
            for attempt in 0..2 {
                let (mut sender, fresh) = self.pool.checkout().await?;
                let response = match sender.send(self.request(&method, path_and_query, body.as_ref())).await {
                    Ok(r) => r,
                    Err(e) if e.is_canceled() && !fresh && attempt == 0 => continue,
                    Err(e) => return Err(Failure::Io(e.to_string())),
                };
                let status = response.status().as_u16();
                let replayed = response
                    .headers()
                    .get("idempotent-replayed")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
                let next_cursor =
                    response.headers().get("next-cursor").and_then(|v| v.to_str().ok()).map(str::to_string);
                let body = response.into_body().collect().await.map_err(|e| Failure::Io(e.to_string()))?.to_bytes();
                self.pool.checkin(sender);
                return Ok(Answer { status, replayed, next_cursor, body });
            }
            Err(Failure::Io("pooled connection closed twice".into()))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// For setup and audit paths: a JSON request whose failure is an error, not a statistic.
    pub async fn json(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<JsonAnswer, BoxError> {
        let body = body.map(Payload::json_of);
        let answer = self
            .call(method.clone(), path_and_query, body)
            .await
            .map_err(|f| format!("{method} {path_and_query} as {}: {} {f:?}", self.name, f.code()))?;
        let value = if answer.body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&answer.body).map_err(|e| {
                format!(
                    "{method} {path_and_query} as {}: {} with a body that is not JSON ({e}): {}",
                    self.name,
                    answer.status,
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                )
            })?
        };
        Ok(JsonAnswer { status: answer.status, body: value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = Target::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!(t.base, "https://127.0.0.1:8443");
        assert_eq!(t.addr.port(), 8443);
        assert!(matches!(t.server_name, ServerName::IpAddress(_)));
        let t = Target::parse("https://localhost:9443/").unwrap();
        assert_eq!(t.base, "https://localhost:9443");
        assert!(matches!(t.server_name, ServerName::DnsName(_)));
        assert!(Target::parse("http://127.0.0.1:8443").is_err());
    }

    #[test]
    fn error_codes_come_from_problem_json() {
        let a = Answer {
            status: 409,
            replayed: false,
            next_cursor: None,
            body: Bytes::from_static(br#"{"type":"about:blank","status":409,"code":"already_reversed"}"#),
        };
        assert_eq!(a.error_code(), "already_reversed");
        let a = Answer { status: 502, replayed: false, next_cursor: None, body: Bytes::from_static(b"bad gateway") };
        assert_eq!(a.error_code(), "http_502");
    }
}
