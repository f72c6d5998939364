//! # strata-proxy
//!
//! `strata proxy`: the cluster client's routing, failover, warm-up and batching
//! behind two front doors — RESP and memcached's text protocol — for
//! applications in any language, in the spirit of twemproxy and mcrouter.
//!
//! Both front doors run on `strata-session`'s accept and connection loops
//! (connection limit with the server's refusals, backoff on accept errors,
//! optional idle timeout, bounded read buffer). Each connection reads into
//! one buffer, parses every complete request in
//! it (the same bounded parsers the server uses, so the same bad input is
//! refused the same way), executes them in order through one shared
//! [`Client`], and answers with one write. Runs of reads in a pipeline are
//! merged into one multi-get (and, on RESP, runs of plain SETs into one
//! multi-set), which the client splits by node and sends concurrently, so a
//! pipeline of N GETs costs one round trip per node, not N.
//!
//! What the proxy serves: what clients send — the RESP door speaks RESP2
//! and RESP3 (`HELLO 3`, which redis-py sends by default), and the
//! memcached door routes every single-key command, meta commands included,
//! to the key's node (see `resp.rs` and `memcache.rs`). What needs every
//! server or one server's state gets the protocol's error, saying so, and
//! the connection stays open.

mod memcache;
mod resp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use strata_client::Client;
use strata_session::{Gate, Incoming, Limits, NoInbox};

/// What a session did with its input.
pub(crate) use strata_session::Outcome;

/// Largest read buffer a proxy connection holds: one maximal request (the
/// parsers bound every request) plus a read; more if the largest value
/// accepted needs it.
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
    /// Close a client connection idle this long (`None`: never, as the
    /// server's default).
    pub idle_timeout: Option<Duration>,
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
    /// The last RESP connection's id (CLIENT ID, HELLO).
    pub(crate) last_client_id: AtomicU64,
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
        last_client_id: AtomicU64::new(0),
    });
    let shutdown = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let limits = Limits {
        idle_timeout: config.idle_timeout,
        max_buffer: MAX_BUFFER.max(config.max_value_bytes + 128 * 1024),
    };
    let mut tasks = JoinSet::new();
    for (listener, door) in [(resp, Door::Resp), (memcache, Door::Memcache)] {
        tasks.spawn(accept_loop(
            listener,
            door,
            Arc::clone(&shared),
            Arc::clone(&permits),
            limits.clone(),
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

/// Accepts and serves one front door's connections (the session layer's
/// accept and connection loops) until shutdown.
async fn accept_loop(
    listener: TcpListener,
    door: Door,
    shared: Arc<ProxyShared>,
    gate: Arc<Semaphore>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let refusal: &'static [u8] = match door {
        Door::Resp => b"-ERR max number of clients reached\r\n",
        Door::Memcache => b"SERVER_ERROR too many open connections\r\n",
    };
    let gate = Gate::plain(gate, refusal);
    let handle = |incoming: Incoming| {
        shared.stats.connections.fetch_add(1, Ordering::Relaxed);
        let (shared, limits, shutdown) = (Arc::clone(&shared), limits.clone(), shutdown.clone());
        async move {
            let Some(stream) = incoming.open().await else {
                return;
            };
            match door {
                Door::Resp => {
                    let id = shared.last_client_id.fetch_add(1, Ordering::Relaxed) + 1;
                    let front = Front {
                        session: resp::Session::new(id),
                        shared,
                    };
                    strata_session::serve(stream, front, limits, shutdown).await;
                }
                Door::Memcache => {
                    let front = Front {
                        session: memcache::Session::new(shared.max_value_bytes),
                        shared,
                    };
                    strata_session::serve(stream, front, limits, shutdown).await;
                }
            }
        }
    };
    strata_session::accept_loop(listener, gate, shutdown.clone(), || {}, handle).await;
}

/// One front door's session with what it shares, as the connection loop
/// runs it.
struct Front<S> {
    session: S,
    shared: Arc<ProxyShared>,
}

impl strata_session::Session for Front<resp::Session> {
    type Inbox = NoInbox;

    async fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Outcome {
        self.session.process(input, out, &self.shared).await
    }
}

impl strata_session::Session for Front<memcache::Session> {
    type Inbox = NoInbox;

    async fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Outcome {
        self.session.process(input, out, &self.shared).await
    }
}
