//! # strata-proxy
//!
//! `strata proxy`: the cluster client's routing, failover, warm-up and batching
//! behind two front doors — RESP and memcached's text protocol — for
//! applications in any language, in the spirit of twemproxy and mcrouter.
//!
//! Each connection reads into one buffer, parses every complete request in
//! it (the same bounded parsers the server uses, so the same bad input is
//! refused the same way), executes them in order through one shared
//! [`Client`], and answers with one write. Runs of reads in a pipeline are
//! merged into one multi-get (and, on RESP, runs of plain SETs into one
//! multi-set), which the client splits by node and sends concurrently, so a
//! pipeline of N GETs costs one round trip per node, not N.
//!
//! What the proxy serves: the commands a cache client uses (see
//! `resp.rs` and `memcache.rs`); others get the protocol's error, in its
//! wording, and the connection stays open.

mod memcache;
mod resp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use strata_client::Client;

/// Largest read buffer a proxy connection holds: one maximal request (the
/// parsers bound every request) plus a read.
const MAX_BUFFER: usize = 2 * 1024 * 1024;

/// Where and how the proxy listens.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// RESP listener (port 0: any free port).
    pub resp: SocketAddr,
    /// memcached listener.
    pub memcache: SocketAddr,
    /// Connections beyond this many are refused.
    pub max_connections: usize,
    /// Largest value accepted, bytes.
    pub max_value_bytes: usize,
}

/// Counters of the proxy's front doors.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests served.
    pub requests: AtomicU64,
    /// Requests refused (unknown, unsupported, malformed).
    pub refused: AtomicU64,
    /// Requests whose cluster call failed.
    pub failed: AtomicU64,
}

/// A running proxy.
#[derive(Debug)]
pub struct RunningProxy {
    /// Where RESP clients connect.
    pub resp_addr: SocketAddr,
    /// Where memcached clients connect.
    pub memcache_addr: SocketAddr,
    /// Its counters.
    pub stats: Arc<ProxyStats>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl RunningProxy {
    /// Stops accepting; connections finish what they have read.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until every connection has closed (after [`Self::shutdown`]).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

#[derive(Clone, Copy, Debug)]
enum Door {
    Resp,
    Memcache,
}

/// Shared by every proxy connection.
#[derive(Debug)]
pub(crate) struct ProxyShared {
    pub(crate) client: Client,
    pub(crate) stats: Arc<ProxyStats>,
    pub(crate) max_value_bytes: usize,
}

/// Binds both listeners and serves on the current runtime.
pub async fn start(client: Client, config: ProxyConfig) -> std::io::Result<RunningProxy> {
    let resp = TcpListener::bind(config.resp).await?;
    let memcache = TcpListener::bind(config.memcache).await?;
    let (resp_addr, memcache_addr) = (resp.local_addr()?, memcache.local_addr()?);
    let stats = Arc::new(ProxyStats::default());
    let shared = Arc::new(ProxyShared {
        client,
        stats: Arc::clone(&stats),
        max_value_bytes: config.max_value_bytes,
    });
    let shutdown = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let mut tasks = JoinSet::new();
    for (listener, door) in [(resp, Door::Resp), (memcache, Door::Memcache)] {
        tasks.spawn(accept_loop(
            listener,
            door,
            Arc::clone(&shared),
            Arc::clone(&permits),
            shutdown.clone(),
        ));
    }
    tracing::info!(%resp_addr, %memcache_addr, "strata proxy listening");
    Ok(RunningProxy {
        resp_addr,
        memcache_addr,
        stats,
        shutdown,
        tasks,
    })
}

async fn accept_loop(
    listener: TcpListener,
    door: Door,
    shared: Arc<ProxyShared>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut stream, _)) = accepted else { continue };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            let refusal: &[u8] = match door {
                Door::Resp => b"-ERR max number of clients reached\r\n",
                Door::Memcache => b"SERVER_ERROR too many open connections\r\n",
            };
            let _ = stream.write_all(refusal).await;
            continue;
        };
        shared.stats.connections.fetch_add(1, Ordering::Relaxed);
        let (shared, shutdown) = (Arc::clone(&shared), shutdown.clone());
        connections.spawn(async move {
            serve(stream, door, &shared, shutdown).await;
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

async fn serve(mut stream: TcpStream, door: Door, shared: &ProxyShared, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let mut input: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut resp_session = resp::Session::default();
    let mut mc_session = memcache::Session::new(shared.max_value_bytes);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            read = stream.read(&mut chunk) => read,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => input.extend_from_slice(&chunk[..n]),
        }
        let outcome = match door {
            Door::Resp => resp_session.process(&input, &mut out, shared).await,
            Door::Memcache => mc_session.process(&input, &mut out, shared).await,
        };
        input.drain(..outcome.consumed);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
        }
        if outcome.close || input.len() > MAX_BUFFER {
            break;
        }
    }
    let _ = stream.shutdown().await;
}

/// What a session did with its input.
pub(crate) struct Outcome {
    pub(crate) consumed: usize,
    pub(crate) close: bool,
}
