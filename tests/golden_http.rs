//! Every golden vector through the real HTTPS interface: mTLS with rcgen certificates, the release-shaped
//! `settlegate serve` binary, and a private Redis per file (each vector starts from an empty store).

mod common;
use std::sync::Arc;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_golden_vector_over_https() {
    let certs = Arc::new(Certs::new());
    let files = golden_files();
    for (file, vector) in &files {
        let redis = Redis::start();
        let gw = Gateway::start(&redis.url(), certs.clone(), "");
        let admin = gw.client(ADMIN);
        seed(&admin, vector["rulesets"].as_array().unwrap(), vector["cardholders"].as_array().unwrap()).await;
        let clients: std::collections::HashMap<&str, Client> = HOSPITALS.iter().map(|h| (*h, gw.client(h))).collect();
        for (i, step) in vector["steps"].as_array().unwrap().iter().enumerate() {
            let client = &clients[step["as"].as_str().unwrap()];
            let path = match step["op"].as_str().unwrap() {
                "settle" => "/v1/settlements",
                "quote" => "/v1/settlements/quote",
                "reverse" => "/v1/reversals",
                other => panic!("{file}: unknown op {other}"),
            };
            let reply = client.post(path, &step["request"]).await;
            check_expectation(file, i, step, reply.status, &reply.body);
            assert!(reply.headers.contains_key("x-request-id"), "{file} step {i}: no X-Request-Id");
            if reply.status == 200 && step["op"] == "settle" {
                assert_eq!(reply.headers.get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
            }
            if reply.status >= 400 {
                let ct = reply.headers.get("content-type").unwrap().to_str().unwrap();
                assert_eq!(ct, "application/problem+json", "{file} step {i}");
            }
        }
        eprintln!("golden over https: {file}: {} steps ok", vector["steps"].as_array().unwrap().len());
    }
    eprintln!("golden over https: {} files", files.len());
}
