//! The accept loop and each connection's life, every stage bounded:
//!
//! 1. accept; at most `limits.max_handshakes` TLS handshakes at once, `limits.max_handshakes_per_ip` from one
//!    address (a flood of silent sockets from one place cannot crowd out the hospitals); a socket past either is
//!    closed at once;
//! 2. the handshake, within `limits.tls_handshake_timeout_ms`;
//! 3. a slot among `limits.max_connections` established connections, waited for at most the handshake timeout;
//! 4. hyper's auto builder (HTTP/1.1 and HTTP/2) with its header timeout and header size bound, while the
//!    connection is closed gracefully when it has had no request in progress for
//!    `limits.idle_connection_timeout_ms` (right after the handshake too), when the TLS files are reloaded, and at
//!    shutdown (stop accepting, let requests in flight finish within `limits.shutdown_grace_ms`).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::tls::{identity, Identity, TlsReloader};
use super::{handle, Body, Ctx};
use crate::config::LimitsConfig;

/// What a listener serves: the mTLS API ([`Ctx`]) or the web console (`console::Console`). The accept loop, the
/// limits and the connection's life are the same for both.
pub trait Site: Send + Sync + 'static {
    /// The limits of connections and requests.
    fn limits(&self) -> &LimitsConfig;
    /// Who a connection's client certificate chain (if any) says the caller is.
    fn identify(&self, chain: Option<&[rustls_pki_types::CertificateDer<'_>]>) -> Identity;
    /// Serves one request.
    fn handle(
        self: Arc<Self>,
        who: Arc<Identity>,
        req: http::Request<hyper::body::Incoming>,
    ) -> impl Future<Output = Result<http::Response<Body>, std::convert::Infallible>> + Send;
}

impl Site for Ctx {
    fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    fn identify(&self, chain: Option<&[rustls_pki_types::CertificateDer<'_>]>) -> Identity {
        identity(chain, &self.admins, &self.streets)
    }

    fn handle(
        self: Arc<Self>,
        who: Arc<Identity>,
        req: http::Request<hyper::body::Incoming>,
    ) -> impl Future<Output = Result<http::Response<Body>, std::convert::Infallible>> + Send {
        handle(self, who, req)
    }
}

/// The client's address, in every request's extensions (the console limits login attempts per address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub IpAddr);

/// How often an established connection checks whether it has been idle too long.
const IDLE_CHECK_INTERVAL: Duration = Duration::from_millis(250);

pub async fn serve<S: Site>(
    ctx: Arc<S>,
    listener: TcpListener,
    tls: Arc<TlsReloader>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = ctx.limits().clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes));
    let per_ip = Arc::new(PerIp::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let builder = Arc::new(builder(&limits));
    tokio::pin!(shutdown);

    loop {
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
        // Stage 1: bounded handshakes, in total and per address; refused sockets are closed (dropped) at once.
        let Ok(handshake_permit) = handshakes.clone().try_acquire_owned() else {
            metrics::counter!("settlegate_connections_refused_total", "reason" => "handshakes").increment(1);
            continue;
        };
        let Some(ip_slot) = per_ip.enter(peer.ip(), limits.max_handshakes_per_ip) else {
            metrics::counter!("settlegate_connections_refused_total", "reason" => "handshakes_per_ip").increment(1);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            ctx: ctx.clone(),
            tls: tls.clone(),
            builder: builder.clone(),
            connections: connections.clone(),
            stop: stop_rx.clone(),
        };
        tokio::spawn(conn.run(tcp, peer, handshake_permit, ip_slot));
    }
    // Stop accepting; ask every connection to finish, then wait for the slots to come back (or the grace to end).
    let open = limits.max_connections - connections.available_permits();
    tracing::info!(connections = open, "shutting down: no new connections; finishing requests in flight");
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let grace = Duration::from_millis(limits.shutdown_grace_ms);
    if tokio::time::timeout(grace, connections.acquire_many(all)).await.is_err() {
        tracing::warn!("grace period over; closing remaining connections");
    }
}

/// hyper's builder with the limits of `[limits]`.
fn builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Duration::from_secs(30));
    builder
}

/// What one connection task needs.
struct Connection<S> {
    ctx: Arc<S>,
    /// The current acceptor, and the generation that closes connections made under older TLS files.
    tls: Arc<TlsReloader>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    /// Slots of established connections.
    connections: Arc<Semaphore>,
    /// Turns true at shutdown.
    stop: watch::Receiver<bool>,
}

impl<S: Site> Connection<S> {
    async fn run(self, tcp: TcpStream, peer: std::net::SocketAddr, handshake: OwnedSemaphorePermit, ip: IpSlot) {
        let limits = self.ctx.limits();
        let handshake_timeout = Duration::from_millis(limits.tls_handshake_timeout_ms);
        let mut generation = self.tls.generation();
        let stream = match tokio::time::timeout(handshake_timeout, self.tls.acceptor().accept(tcp)).await {
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
        drop((handshake, ip));
        // Stage 3: a slot among the established connections.
        let Ok(Ok(_slot)) = tokio::time::timeout(handshake_timeout, self.connections.clone().acquire_owned()).await
        else {
            metrics::counter!("settlegate_connections_refused_total", "reason" => "connections").increment(1);
            return;
        };
        let who = Arc::new(self.ctx.identify(stream.get_ref().1.peer_certificates()));
        let activity = Arc::new(Activity::new());
        let (ctx, act) = (self.ctx.clone(), activity.clone());
        let service = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            let (ctx, who, act) = (ctx.clone(), who.clone(), act.clone());
            req.extensions_mut().insert(Peer(peer.ip()));
            async move {
                let _busy = act.begin();
                ctx.handle(who, req).await
            }
        });
        let conn = self.builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let idle_limit = Duration::from_millis(limits.idle_connection_timeout_ms);
        let mut stop = self.stop.clone();
        let mut closing = false;
        let mut tick = tokio::time::interval(IDLE_CHECK_INTERVAL);
        loop {
            let why = tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = tick.tick() => {
                    if closing || !activity.idle_for(idle_limit) { continue; }
                    metrics::counter!("settlegate_connections_closed_total", "reason" => "idle").increment(1);
                    "idle"
                }
                r = generation.changed(), if !closing => { let _ = r; "tls_reload" }
                r = stop.changed(), if !closing => { let _ = r; "shutdown" }
            };
            tracing::debug!(%peer, why, "closing the connection gracefully");
            conn.as_mut().graceful_shutdown();
            closing = true;
        }
    }
}

/// Whether a connection has a request in progress, and since when it has had none.
struct Activity {
    /// Requests of this connection being served now.
    busy: AtomicUsize,
    /// When the last request ended (or the connection was established), ms since `epoch`.
    idle_since_ms: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new() -> Activity {
        Activity { busy: AtomicUsize::new(0), idle_since_ms: AtomicU64::new(0), epoch: Instant::now() }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    fn idle_for(&self, limit: Duration) -> bool {
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        self.busy.load(Ordering::SeqCst) == 0
            && self.now_ms().saturating_sub(self.idle_since_ms.load(Ordering::SeqCst)) >= limit_ms
    }
}

/// A request in progress; its end restarts the idle clock.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since_ms.store(self.0.now_ms(), Ordering::SeqCst);
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Handshakes in progress per peer address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One handshake counted against its address; released on drop.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut table = self.0.lock().expect("per-ip lock");
        let n = table.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot { table: self.clone(), ip })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut table = self.table.0.lock().expect("per-ip lock");
        if let Some(n) = table.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                table.remove(&self.ip);
            }
        }
    }
}
