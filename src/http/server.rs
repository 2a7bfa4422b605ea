//! The accept loop: a bounded number of connections, a bounded TLS handshake, hyper's auto builder (HTTP/1.1 and
//! HTTP/2) with its timers set, and graceful shutdown (stop accepting, let requests in flight finish).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::tls::identity;
use super::{handle, Ctx};

pub async fn serve(
    ctx: Arc<Ctx>,
    listener: TcpListener,
    tls: rustls::ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let limits = ctx.limits.clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(Duration::from_secs(30));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // e.g. EMFILE: back off instead of spinning
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, ctx, builder, watcher) = (acceptor.clone(), ctx.clone(), builder.clone(), graceful.watcher());
        let handshake = Duration::from_millis(limits.tls_handshake_timeout_ms);
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake refused");
                    metrics::counter!("settlegate_tls_handshake_failures_total", "reason" => "refused").increment(1);
                    return;
                }
                Err(_) => {
                    metrics::counter!("settlegate_tls_handshake_failures_total", "reason" => "timeout").increment(1);
                    return;
                }
            };
            let who = Arc::new(identity(stream.get_ref().1.peer_certificates(), &ctx.admins));
            let service = service_fn(move |req| handle(ctx.clone(), who.clone(), req));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!(connections = graceful.count(), "shutting down: no new connections; finishing requests in flight");
    let grace = Duration::from_millis(limits.shutdown_grace_ms);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("grace period over; closing remaining connections");
    }
}
