//! Hardening of the connection layer, over real TLS against the real binary: idle connections, silent sockets,
//! unfinished headers and overload cannot take the gateway away from the hospitals.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads until the peer closes (Ok(0)) or fails; `true` when that happened within `within`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(s: &mut S, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// The gateway process's resident memory, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_of_one_hospital_cannot_hold_every_slot() {
    let stack = Stack::start("[limits]\nmax_connections = 20\nidle_connection_timeout_ms = 1000\n");
    let gw = &stack.gw;
    // Every slot held by H0001 connections that say nothing after the handshake.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tls_connect(gw.port, gw.certs.client_config("H0001")).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let reply = gw.request_as("H0002", "GET", "/v1/reconciliation", &[], fixed(Vec::new())).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.body);
    // It waited for a slot (they were all held) and got one once the idle ones were closed, within a second.
    assert!(waited < Duration::from_millis(2000), "another hospital served only after {waited:?}");
    for s in &mut idle {
        assert!(closed_within(s, Duration::from_secs(3)).await, "an idle connection was left open");
    }
    eprintln!("20 idle connections held every slot; H0002 served after {waited:?}, idle ones closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_from_one_address_are_bounded() {
    let stack = Stack::start("[limits]\nmax_handshakes_per_ip = 16\ntls_handshake_timeout_ms = 10000\n");
    let gw = &stack.gw;
    // 200 sockets from 127.0.0.2 that never start TLS.
    let mut silent = Vec::new();
    for _ in 0..200 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        silent.push(socket.connect(([127, 0, 0, 1], gw.port).into()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let reply = gw.request_as("H0001", "GET", "/v1/reconciliation", &[], fixed(Vec::new())).await.unwrap();
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert!(took < Duration::from_secs(1), "a hospital waited {took:?} behind silent sockets");
    let mut closed = 0;
    for s in &mut silent {
        if closed_within(s, Duration::from_millis(100)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 200 - 16, "every socket past max_handshakes_per_ip is closed at once");
    eprintln!("200 silent sockets from one address: {closed} closed at once; a hospital served in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_take_bounded_memory() {
    let stack = Stack::start("");
    let gw = &stack.gw;
    let before = rss_mib(gw.pid());
    let pad = vec![b'a'; 400 * 1024];
    let mut conns = Vec::new();
    for _ in 0..250 {
        let mut s = tls_connect(gw.port, gw.certs.client_config("H0001")).await.unwrap();
        let _ = s.write_all(b"GET /v1/reconciliation HTTP/1.1\r\nhost: localhost\r\nx-pad: ").await;
        let _ = tokio::time::timeout(Duration::from_millis(200), s.write_all(&pad)).await;
        conns.push(s);
    }
    let during = rss_mib(gw.pid());
    drop(conns);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_mib(gw.pid());
    eprintln!("250 connections x 400 KB of unfinished header: RSS {before} MiB before, {during} during, {after} after");
    assert!(during < before + 64, "RSS grew from {before} to {during} MiB");
    assert!(after < before + 32, "RSS stayed at {after} MiB (from {before})");
    let reply = gw.request_as("H0002", "GET", "/v1/reconciliation", &[], fixed(Vec::new())).await.unwrap();
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_in_flight_requests_are_shed_at_once() {
    let stack = Stack::start("[limits]\nmax_in_flight = 4\n");
    let gw = &stack.gw;
    // Four requests in flight: their bodies never finish.
    let mut stuck = Vec::new();
    for _ in 0..4 {
        let mut s = tls_connect(gw.port, gw.certs.client_config("H0001")).await.unwrap();
        s.write_all(b"POST /v1/eligibility HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
            .await
            .unwrap();
        stuck.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let shed = gw.request_as("H0002", "GET", "/v1/reconciliation", &[], fixed(Vec::new())).await.unwrap();
    let took = started.elapsed();
    assert_problem(&shed, 503, "unavailable", "past max_in_flight");
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert!(took < Duration::from_millis(500), "shedding took {took:?}");
    drop(stuck);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok = gw.request_as("H0002", "GET", "/v1/reconciliation", &[], fixed(Vec::new())).await.unwrap();
    assert_eq!(ok.status, 200, "served again once the stuck requests are gone");
    eprintln!("max_in_flight 4: the 5th request got 503 in {took:?}");
}
