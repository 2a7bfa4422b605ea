//! The ops listener (plain HTTP, no client certificate): `/healthz` (process up), `/readyz` (Redis reachable and a
//! ruleset loaded) and `/metrics` (Prometheus text format).

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::http::routes::{self, Match, Role, Route};
use crate::http::{full, Body};
use crate::rulebook::RulebookCache;
use crate::store::link::Link;

/// Installs the global metrics recorder; `None` if one is installed already.
pub fn install_metrics() -> Option<PrometheusHandle> {
    let buckets = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
        .ok()?
        .install_recorder()
        .ok()
}

/// What the ops endpoints report on.
pub struct Ops {
    /// The Redis connection's health (`/readyz`).
    pub link: Arc<Link>,
    /// The loaded rulesets (`/readyz`: at least one).
    pub rules: Arc<RulebookCache>,
    /// The Prometheus recorder (`/metrics`); `None` when another recorder was installed first (tests).
    pub metrics: Option<PrometheusHandle>,
}

impl Ops {
    fn respond(&self, method: &str, path: &str) -> Response<Body> {
        let found = routes::find(method, path, |r| r == Role::Ops);
        let (status, content_type, body) = match &found {
            Match::Found { route: Route::Healthz, .. } => (StatusCode::OK, "text/plain", "ok\n".to_string()),
            Match::Found { route: Route::Readyz, .. } => {
                let redis = self.link.is_up();
                let version = self.rules.snapshot().latest_version();
                if redis && version > 0 {
                    (StatusCode::OK, "text/plain", format!("ready: redis up, ruleset version {version}\n"))
                } else {
                    let detail = format!("redis {}, ruleset version {version}", if redis { "up" } else { "down" });
                    let body = serde_json::json!({"type": "about:blank", "title": "Not ready", "status": 503,
                                                  "code": "unavailable", "detail": detail});
                    (StatusCode::SERVICE_UNAVAILABLE, "application/problem+json", body.to_string())
                }
            }
            Match::Found { route: Route::Metrics, .. } => match &self.metrics {
                Some(h) => (StatusCode::OK, "text/plain; version=0.0.4", h.render()),
                None => (StatusCode::OK, "text/plain; version=0.0.4", String::new()),
            },
            Match::WrongMethod { .. } => (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n".to_string()),
            Match::Found { .. } | Match::NotFound => (StatusCode::NOT_FOUND, "text/plain", "not found\n".to_string()),
        };
        let mut resp = Response::new(full(Bytes::from(body)));
        *resp.status_mut() = status;
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Match::WrongMethod { allowed } = &found {
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
        }
        resp
    }
}

/// Open connections on the ops listener.
const MAX_OPS_CONNECTIONS: usize = 64;

/// Serves the ops endpoints until the task is dropped.
pub async fn serve(ops: Arc<Ops>, listener: TcpListener) {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(std::time::Duration::from_secs(5));
    let builder = Arc::new(builder.http1_only());
    // A few scrapers and probes at a time; more wait in the kernel backlog.
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_OPS_CONNECTIONS));
    loop {
        let permit = connections.clone().acquire_owned().await.expect("semaphore never closed");
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "ops accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (ops, builder) = (ops.clone(), builder.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let resp = ops.respond(req.method().as_str(), req.uri().path());
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}
