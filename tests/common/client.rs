//! An mTLS HTTP client (hyper over rustls, ring only) and the checks of a problem+json answer.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::SupportedProtocolVersion;
use serde_json::Value;

/// A client configuration trusting `ca`, presenting `cert` (certificate and key files) if given; TLS 1.3 and 1.2.
pub fn tls_client_config(cert: Option<(&Path, &Path)>, ca: &Path) -> rustls::ClientConfig {
    tls_config(cert, ca, rustls::DEFAULT_VERSIONS)
}

/// Like [`tls_client_config`], but TLS 1.2 only.
pub fn tls12_only_config(cert: Option<(&Path, &Path)>, ca: &Path) -> rustls::ClientConfig {
    tls_config(cert, ca, &[&rustls::version::TLS12])
}

fn tls_config(
    cert: Option<(&Path, &Path)>,
    ca: &Path,
    versions: &[&'static SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
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

/// Opens a TLS connection and completes the handshake (TLS 1.3 reports a refused client certificate only after
/// the handshake, on the first read). Returns Err with the TLS error when refused.
pub async fn tls_connect(
    port: u16,
    config: rustls::ClientConfig,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.map_err(|e| e.to_string())
}

/// An HTTP answer: status, headers, the body as sent and as JSON (`Null` when it is not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub raw: Bytes,
}

impl Reply {
    /// A header's value as text (`None` when absent).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Reads a whole response.
pub async fn read_reply(resp: http::Response<hyper::body::Incoming>) -> Result<Reply, String> {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Ok(Reply { status, headers, body, raw })
}

/// One mTLS HTTP/1.1 connection as one caller (reconnected when the gateway closed it).
pub struct Client {
    port: u16,
    config: rustls::ClientConfig,
    sender: tokio::sync::Mutex<Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>,
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
        read_reply(resp).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some("application/json"), serde_json::to_vec(body).unwrap()).await.unwrap()
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, Some("application/json"), serde_json::to_vec(body).unwrap()).await.unwrap()
    }

    /// A GET; retried once on a new connection when the pooled one turns out closed (the server closes a
    /// connection after refusing a body it did not read, e.g. a 413 import).
    pub async fn get(&self, path: &str) -> Reply {
        match self.send("GET", path, None, Vec::new()).await {
            Ok(reply) => reply,
            Err(_) => self.send("GET", path, None, Vec::new()).await.unwrap(),
        }
    }
}

/// A request body for [`crate::common::Gateway::request_as`].
pub type TestBody = BoxBody<Bytes, std::io::Error>;

/// A body of known length (sent with Content-Length).
pub fn fixed(bytes: Vec<u8>) -> TestBody {
    Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed()
}

/// A body of unknown length (sent chunked, no Content-Length): `chunks` pieces of `chunk` bytes each.
pub fn chunked(chunk: Vec<u8>, chunks: usize) -> TestBody {
    let frames = (0..chunks).map(move |_| Ok::<_, std::io::Error>(Frame::data(Bytes::from(chunk.clone()))));
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// A problem+json answer with this status and code (and an X-Request-Id).
#[track_caller]
pub fn assert_problem(r: &Reply, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: status; body {}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.body["code"], code, "{what}: code; body {}", r.body);
    assert_eq!(r.body["status"], status, "{what}: body.status; body {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "{what}: content type");
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()), "{what}: no X-Request-Id");
}

/// A 400 `invalid_request` whose first field error names `field`.
#[track_caller]
pub fn assert_invalid(r: &Reply, field: &str, what: &str) {
    assert_problem(r, 400, "invalid_request", what);
    let errors = r.body["errors"].as_array().unwrap_or_else(|| panic!("{what}: no errors[]; body {}", r.body));
    assert!(!errors.is_empty(), "{what}: errors[] empty");
    assert_eq!(errors[0]["field"], field, "{what}: errors[0].field; body {}", r.body);
    assert!(errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: errors[0].message; {}", r.body);
}
