//! What the OpenAPI tests share (tests/openapi_exact.rs, tests/openapi_refusals.rs): docs/openapi.yaml loaded and
//! resolved, requests to the real binary over mTLS and to its ops port.
#![allow(dead_code)] // each test binary uses a part of it

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Full};
use regex_automata::meta::Regex;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

use crate::common::*;

pub const OPERATION_KEYS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

pub fn doc() -> Yaml {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.yaml");
    YamlLoader::load_from_str(&std::fs::read_to_string(file).unwrap()).unwrap().remove(0)
}

/// `components/schemas/NAME/pattern`, compiled.
pub fn pattern(doc: &Yaml, name: &str) -> Regex {
    let p = doc["components"]["schemas"][name]["pattern"].as_str().unwrap_or_else(|| panic!("{name}: no pattern"));
    Regex::new(p).unwrap_or_else(|e| panic!("{name}: {p}: {e}"))
}

/// Resolves a `$ref` to `#/components/<kind>/<name>`, or returns the node.
pub fn resolve<'a>(doc: &'a Yaml, node: &'a Yaml) -> &'a Yaml {
    match node["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/")) {
        Some(rest) => {
            let (kind, name) = rest.split_once('/').unwrap();
            &doc["components"][kind][name]
        }
        None => node,
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request on a fresh mTLS connection as `who`, with raw header values.
pub async fn call(
    gw: &Gateway,
    who: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let dir = gw.certs.path();
    let config = tls_client_config(
        Some((&dir.join(format!("{who}.pem")), &dir.join(format!("{who}.key")))),
        &dir.join("ca.pem"),
    );
    let stream = tls_connect(gw.port, config).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder().method(method).uri(path).header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, HeaderValue::from_bytes(v).unwrap());
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = sender.send_request(req.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, body: serde_json::from_slice(&raw).unwrap_or(Value::Null) }
}

pub async fn post(gw: &Gateway, who: &str, path: &str, body: &Value) -> Answer {
    call(gw, who, "POST", path, &[], Some("application/json"), serde_json::to_vec(body).unwrap()).await
}

/// A plain HTTP/1.1 request on the ops listener: status and headers (lower-case names).
pub fn ops_call(port: u16, method: &str, path: &str) -> (u16, BTreeMap<String, String>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let head = out.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().into()))
        .collect();
    (status, headers)
}

/// A documented path with its `{params}` filled with sample values.
pub fn concrete(path: &str) -> String {
    path.replace("{settlement_id}", "s1_QzEwMDAwMXxIMDAwMS0yMDI2MTEyOS0wMDAwNDJ8SDAwMDE")
        .replace("{card_id}", "C100001")
        .replace("{version}", "1")
        .replace("{clearing_id}", "cl_2026-11_H0001")
}

pub fn allow_set(v: Option<&str>) -> BTreeSet<String> {
    v.unwrap_or("").split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect()
}
