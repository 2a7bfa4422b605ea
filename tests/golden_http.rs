//! Every golden vector through the real HTTPS interface: mTLS with rcgen certificates, the release-shaped
//! `settlegate serve` binary, and a private Redis per file (each vector starts from an empty store).

mod common;
use std::collections::HashMap;
use std::sync::Arc;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_golden_vector_over_https() {
    let certs = Arc::new(Certs::new());
    let files = golden_files();
    let mut files_run = 0;
    for golden in &files {
        let file = &golden.name;
        let redis = Redis::start();
        let gw = Gateway::start(&redis.url(), &certs, "");
        seed(&gw.client(ADMIN), golden.rulesets(), golden.cardholders()).await;
        let clients: HashMap<&str, Client> = HOSPITALS.iter().map(|h| (*h, gw.client(h))).collect();
        for (i, step) in golden.steps().iter().enumerate() {
            let client = &clients[step["as"].as_str().unwrap()];
            let path = golden_path(file, step);
            let reply = client.post(path, &step["request"]).await;
            check_expectation(file, i, step, reply.status, &reply.body);
            assert!(reply.headers.contains_key("x-request-id"), "{file} step {i}: no X-Request-Id");
            if reply.status == 200 && step["op"] == "settle" {
                assert_eq!(reply.header("idempotent-replayed"), Some("true"), "{file} step {i}");
            }
            if reply.status >= 400 {
                assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{file} step {i}");
            }
        }
        eprintln!("golden over https: {file}: {} steps ok", golden.steps().len());
        files_run += 1;
    }
    eprintln!("golden over https: {files_run} files");
    assert_eq!(files_run, golden_json_count(), "every json file of tests/golden must run");
}
