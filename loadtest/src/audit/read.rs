//! The audit's reads: retried GETs, and a bounded fan-out that keeps the audit from flooding the gateway.

use std::future::Future;
use std::sync::Arc;

use http::Method;
use tokio::sync::Semaphore;

use crate::client::{Endpoint, JsonAnswer};

/// Attempts per read before the read counts as failed.
const READ_ATTEMPTS: usize = 3;

/// A read with a few attempts: the audit must not fail because one read timed out.
pub(super) async fn read_json(who: &Endpoint, path: &str) -> Result<JsonAnswer, String> {
    let mut last = String::new();
    for _ in 0..READ_ATTEMPTS {
        match who.json(Method::GET, path, None).await {
            Ok(answer) if answer.status < 500 => return Ok(answer),
            Ok(JsonAnswer { status, body: v }) => last = format!("HTTP {status} {v}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(format!("GET {path} as {}: {last}", who.name))
}

/// Runs `f` over `items` with at most `concurrency` at once; results in input order.
pub(super) async fn bounded<T, R, F, Fut>(items: Vec<T>, concurrency: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let n = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let fut = f(item);
        set.spawn(async move {
            let r = fut.await;
            drop(permit);
            (i, r)
        });
    }
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.expect("audit task");
        out[i] = Some(r);
    }
    out.into_iter().map(|r| r.expect("every item answered")).collect()
}
