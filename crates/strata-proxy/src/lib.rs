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
//!
//! # Trust
//!
//! - Clients: with [`ProxyConfig::requirepass`], both doors ask for a
//!   password as strata's server does — `AUTH` / `HELLO … AUTH` on the RESP
//!   door (`-NOAUTH`, `-WRONGPASS`), memcached's ASCII auth `set` on the
//!   memcached door — with the server's constant-time comparison and its
//!   bound of ten failed attempts per connection (`strata_session::auth`).
//!   Nothing reaches a server before a connection has authenticated.
//! - Servers: the cluster client authenticates each new connection to a
//!   password-protected server (`strata_client::PoolSettings::password`).
//! - TLS: each door may have a TLS port beside its plain one
//!   ([`ProxyConfig::tls_resp`], [`ProxyConfig::tls_memcache`]), served by
//!   `strata-session`'s TLS (the handshake on the connection's task, within
//!   a deadline).

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
use strata_session::{Gate, Incoming, Limits, NoInbox, Secret, TlsAcceptor};

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
    /// The password clients must present (both doors), as the server's
    /// `requirepass`; `None`: none.
    pub requirepass: Option<Secret>,
    /// RESP over TLS listener, if any (needs `tls`).
    pub tls_resp: Option<SocketAddr>,
    /// memcached over TLS listener, if any (needs `tls`).
    pub tls_memcache: Option<SocketAddr>,
    /// The TLS ports' certificate and key.
    pub tls: Option<TlsAcceptor>,
}

impl Default for ProxyConfig {
    /// Both plain doors on free loopback ports, no password, no TLS.
    fn default() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            resp: any,
            memcache: any,
            max_connections: 10_000,
            max_value_bytes: 1024 * 1024,
            idle_timeout: None,
            requirepass: None,
            tls_resp: None,
            tls_memcache: None,
            tls: None,
        }
    }
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
    /// Failed password checks.
    pub auth_failures: AtomicU64,
}

/// A running proxy.
#[derive(Debug)]
pub struct RunningProxy {
    /// Where RESP clients connect.
    pub resp_addr: SocketAddr,
    /// Where memcached clients connect.
    pub memcache_addr: SocketAddr,
    /// Where RESP clients connect over TLS, if configured.
    pub tls_resp_addr: Option<SocketAddr>,
    /// Where memcached clients connect over TLS, if configured.
    pub tls_memcache_addr: Option<SocketAddr>,
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
    /// The password clients must present.
    pub(crate) requirepass: Option<Secret>,
}

/// Binds every listener and serves on the current runtime. Fails if a
/// listener cannot be bound, or a TLS port is asked for without `tls`.
pub async fn start(client: Client, config: ProxyConfig) -> std::io::Result<RunningProxy> {
    if (config.tls_resp.is_some() || config.tls_memcache.is_some()) && config.tls.is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a TLS port needs a certificate and key",
        ));
    }
    let resp = TcpListener::bind(config.resp).await?;
    let memcache = TcpListener::bind(config.memcache).await?;
    let (resp_addr, memcache_addr) = (resp.local_addr()?, memcache.local_addr()?);
    let mut listeners = vec![(resp, Door::Resp, None), (memcache, Door::Memcache, None)];
    let (mut tls_resp_addr, mut tls_memcache_addr) = (None, None);
    for (addr, door) in [(config.tls_resp, Door::Resp), (config.tls_memcache, Door::Memcache)] {
        let Some(addr) = addr else { continue };
        let listener = TcpListener::bind(addr).await?;
        let bound = Some(listener.local_addr()?);
        match door {
            Door::Resp => tls_resp_addr = bound,
            Door::Memcache => tls_memcache_addr = bound,
        }
        listeners.push((listener, door, config.tls.clone()));
    }
    let stats = Arc::new(ProxyStats::default());
    let shared = Arc::new(ProxyShared {
        client,
        stats: Arc::clone(&stats),
        max_value_bytes: config.max_value_bytes,
        last_client_id: AtomicU64::new(0),
        requirepass: config.requirepass.clone(),
    });
    let shutdown = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let limits = Limits {
        idle_timeout: config.idle_timeout,
        max_buffer: MAX_BUFFER.max(config.max_value_bytes + 128 * 1024),
        client_memory: strata_session::ClientMemory::default(),
    };
    let mut tasks = JoinSet::new();
    for (listener, door, tls) in listeners {
        tasks.spawn(accept_loop(
            listener,
            door,
            tls,
            Arc::clone(&shared),
            Arc::clone(&permits),
            limits.clone(),
            shutdown.clone(),
        ));
    }
    tracing::info!(%resp_addr, %memcache_addr, ?tls_resp_addr, ?tls_memcache_addr, "strata proxy listening");
    Ok(RunningProxy {
        resp_addr,
        memcache_addr,
        tls_resp_addr,
        tls_memcache_addr,
        stats,
        shutdown,
        tasks,
    })
}

/// Accepts and serves one front door's connections (the session layer's
/// accept and connection loops, over TLS with `tls`) until shutdown.
async fn accept_loop(
    listener: TcpListener,
    door: Door,
    tls: Option<TlsAcceptor>,
    shared: Arc<ProxyShared>,
    gate: Arc<Semaphore>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let refusal: &'static [u8] = match door {
        Door::Resp => b"-ERR max number of clients reached\r\n",
        Door::Memcache => b"SERVER_ERROR too many open connections\r\n",
    };
    let gate = Gate {
        connections: gate,
        refusal,
        tls,
    };
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
                        session: resp::Session::new(id, shared.requirepass.is_none()),
                        shared,
                    };
                    strata_session::serve(stream, front, limits, shutdown).await;
                }
                Door::Memcache => {
                    let front = Front {
                        session: memcache::Session::new(shared.max_value_bytes, shared.requirepass.is_none()),
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
