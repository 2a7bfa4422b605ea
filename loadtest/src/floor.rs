//! The benchmark's reference servers, with the gateway's transport settings (hyper auto h1/h2 over rustls with
//! ring, TLS 1.2/1.3, client certificate required, TCP_NODELAY, bounded bodies and handshakes):
//!
//! - `ok`: reads the request body and answers a fixed JSON body: the TLS "200 OK" ceiling of this machine;
//! - `evalsha`: the same, plus one EVALSHA of a tiny script on one multiplexed Redis connection per request:
//!   the floor of an architecture that makes one Redis round trip per settlement;
//! - `ledger`: the same, but the EVALSHA makes the reads and writes one settlement must record
//!   ([`crate::ledger_floor`]): the floor of this contract's store;
//! - `ledger-batch`: the ledger floor with the requests that wait meanwhile recorded together, up to 32 per EVALSHA
//!   ([`crate::ledger_batch`]): what batching settlements into one script call could give.
//!
//! POST is answered 201 and everything else 200, so the settle scenario runs unchanged against them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{ledger_batch, ledger_floor, BoxError};

/// One INCR on a hash-tagged key: the smallest script that still is a real EVALSHA round trip with a write.
pub const FLOOR_SCRIPT: &str = "return redis.call('INCR', KEYS[1])";
const MAX_BODY_BYTES: usize = 65_536;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const KEYS: u64 = 1024;

/// What a floor server does per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FloorMode {
    // Answers at once: the TLS "200 OK" ceiling. (Plain comments: doc comments would become `--mode` help.)
    Ok,
    // One EVALSHA per request first: the floor of one Redis round trip per settlement.
    Evalsha,
    // One EVALSHA per request making a settlement's reads and writes (values precomputed): the store's floor.
    Ledger,
    // The ledger floor, the requests waiting meanwhile recorded together (up to 32 per EVALSHA).
    LedgerBatch,
}

/// How to run a floor server (the `floor` subcommand's arguments).
#[derive(Debug, Clone)]
pub struct FloorOptions {
    /// `ok` (TLS ceiling) or `evalsha` (one Redis round trip per request).
    pub mode: FloorMode,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The server certificate chain, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// The CA client certificates must chain to (mTLS, as the gateway requires).
    pub client_ca: PathBuf,
    /// Redis for `evalsha` and `ledger` modes.
    pub redis_url: Option<String>,
}

struct State {
    redis: Option<redis::aio::MultiplexedConnection>,
    script: redis::Script,
    /// `ledger` mode: the script is [`ledger_floor::LEDGER_SCRIPT`] with its keys and arguments.
    ledger: bool,
    /// `ledger-batch` mode: requests go to the batching task instead ([`ledger_batch::Batcher`]).
    batcher: Option<ledger_batch::Batcher>,
    counter: AtomicU64,
}

fn respond(status: StatusCode, body: &'static [u8]) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(body)))
        .expect("static response")
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Full<Bytes>>, Infallible> {
    let created = req.method() == Method::POST;
    if Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await.is_err() {
        return Ok(respond(StatusCode::PAYLOAD_TOO_LARGE, br#"{"code":"payload_too_large"}"#));
    }
    if let Some(batcher) = &state.batcher {
        let n = state.counter.fetch_add(1, Ordering::Relaxed);
        if !batcher.record(n).await {
            return Ok(respond(StatusCode::SERVICE_UNAVAILABLE, br#"{"code":"unavailable"}"#));
        }
    } else if let Some(conn) = &state.redis {
        let n = state.counter.fetch_add(1, Ordering::Relaxed);
        let mut conn = conn.clone();
        let result: redis::RedisResult<redis::Value> = if state.ledger {
            let (keys, args) = ledger_floor::invocation(n);
            let mut inv = state.script.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            for a in &args {
                inv.arg(a);
            }
            inv.invoke_async(&mut conn).await
        } else {
            state.script.key(format!("floor:{{{}}}", n % KEYS)).invoke_async(&mut conn).await
        };
        if result.is_err() {
            return Ok(respond(StatusCode::SERVICE_UNAVAILABLE, br#"{"code":"unavailable"}"#));
        }
    }
    Ok(if created {
        respond(StatusCode::CREATED, br#"{"ok":true}"#)
    } else {
        respond(StatusCode::OK, br#"{"ok":true}"#)
    })
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(opts: FloorOptions) -> Result<(), BoxError> {
    let acceptor = TlsAcceptor::from(Arc::new(crate::tls::server_config(&opts.cert, &opts.key, &opts.client_ca)?));
    let ledger = opts.mode == FloorMode::Ledger;
    let batched = opts.mode == FloorMode::LedgerBatch;
    let script = redis::Script::new(match opts.mode {
        FloorMode::Ledger => ledger_floor::LEDGER_SCRIPT,
        FloorMode::LedgerBatch => ledger_batch::LEDGER_BATCH_SCRIPT,
        FloorMode::Ok | FloorMode::Evalsha => FLOOR_SCRIPT,
    });
    let redis = match opts.mode {
        FloorMode::Ok => None,
        FloorMode::Evalsha | FloorMode::Ledger | FloorMode::LedgerBatch => {
            let url = opts.redis_url.as_deref().ok_or("--redis-url is required for every --mode but ok")?;
            let client = redis::Client::open(url)?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            script.prepare_invoke().load_async(&mut conn).await?;
            if ledger || batched {
                ledger_floor::seed(&mut conn).await?;
            }
            Some(conn)
        }
    };
    let batcher = if batched { redis.clone().map(ledger_batch::Batcher::start) } else { None };
    let state = Arc::new(State { redis, script, ledger, batcher, counter: AtomicU64::new(0) });
    let listener = TcpListener::bind(opts.listen).await?;
    eprintln!("floor server ({:?}) listening on {}", opts.mode, listener.local_addr()?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
                return;
            };
            let service = service_fn(move |req| handle(req, state.clone()));
            let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await;
        });
    }
    eprintln!("floor server: stopping");
    Ok(())
}
