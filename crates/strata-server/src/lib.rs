//! # strata-server
//!
//! The global cache: one process serving the strata engine over the Redis
//! protocol (RESP2 and RESP3) and the memcached protocol (text and meta),
//! each on its own port, plus an admin HTTP port with Prometheus metrics.
//! Existing clients, CLIs and load generators of either protocol work
//! unchanged.
//!
//! Each protocol may also have a TLS port beside its plain one
//! (`tls-port`, `memcache-tls-port`; see [`config`]): the same sessions
//! over `strata-session`'s TLS streams, so `redis-cli --tls` and `openssl
//! s_client` work against them. `requirepass` guards every port, plain or
//! TLS; `protected-mode` refuses remote clients while no password is set.
//!
//! # Layout
//!
//! - [`config`]: settings, their defaults and the TOML file.
//! - `conn.rs`: the protocols' session trait and its adapter onto
//!   `strata-session`, whose accept and connection loops every port shares
//!   (one read buffer, parse every complete request, one batched write;
//!   pushes written between batches).
//! - `resp/`: the RESP session and its commands, one file per group.
//! - `push.rs`: the pushes a RESP connection is sent unasked, each
//!   connection's byte-bounded queue of them, and the registry of
//!   connections by client id.
//! - `tracking/`: client-side caching (`CLIENT TRACKING`): who tracks what,
//!   the bounded default-mode key table, and the invalidations every write
//!   of either protocol sends.
//! - `pubsub.rs`: SUBSCRIBE/PSUBSCRIBE/PUBLISH's channel index.
//! - `memcache/`: the memcached session: text and meta commands.
//! - `metrics.rs`: counters, latency histogram, Prometheus collector.
//! - `admin.rs`: the HTTP endpoint (`/metrics`, `/healthz`), served by `strata_session::admin`.
//! - `glob.rs`: Redis's glob patterns (KEYS, SCAN MATCH, CONFIG GET).
//! - `fuzzing.rs` (feature `testing`): entry points for the session fuzz targets in `fuzz/`
//!   (a whole session over a real engine).
//!
//! [`Server::start`] binds every listener and spawns the accept loops, the
//! active-expiry task and the admin endpoint on the current tokio runtime;
//! [`RunningServer::shutdown`] stops accepting, lets every connection
//! finish the requests it has read, and returns when all are closed.

pub mod config;

mod admin;
mod conn;
#[cfg(feature = "testing")]
pub mod fuzzing;
mod glob;
mod memcache;
mod metrics;
mod pubsub;
mod push;
mod resp;
mod tracking;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use strata_store::{Capacity, Store};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{ByteSize, Config, ConfigError};
pub use metrics::{Metrics, resident_bytes};

/// The server's version, reported by INFO, HELLO and `version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Redis version strata reports to clients that check one: the command
/// set it implements is Redis 7.2's for strings and the generic keyspace.
pub const REDIS_COMPAT_VERSION: &str = "7.2.0";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A TLS port's certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] strata_session::TlsError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// State every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<Store>,
    pub(crate) config: RwLock<Config>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) next_client_id: AtomicU64,
    pub(crate) memcache: memcache::McCounters,
    pub(crate) resp_addr: SocketAddr,
    pub(crate) memcache_addr: SocketAddr,
    /// A delayed `flush_all`'s deadline, engine-clock milliseconds; 0: none.
    pub(crate) flush_at_ms: AtomicU64,
    /// Every open RESP connection's push queue, by client id.
    pub(crate) clients: push::Clients,
    /// Client tracking: who is told when a key changes.
    pub(crate) tracking: tracking::Tracking,
    pub(crate) pubsub: pubsub::PubSub,
}

impl Shared {
    pub(crate) fn new(
        store: Arc<Store>,
        config: Config,
        metrics: Arc<Metrics>,
        resp_addr: SocketAddr,
        memcache_addr: SocketAddr,
    ) -> Self {
        let tracking = tracking::Tracking::new(config.tracking_table_max_keys);
        let clients = push::Clients::new(Arc::clone(&metrics.push_disconnects), metrics.client_memory.clone());
        Self {
            store,
            config: RwLock::new(config),
            metrics,
            next_client_id: AtomicU64::new(1),
            memcache: memcache::McCounters::default(),
            resp_addr,
            memcache_addr,
            flush_at_ms: AtomicU64::new(0),
            clients,
            tracking,
            pubsub: pubsub::PubSub::default(),
        }
    }

    /// `key` was changed by client `writer` (`tracking::NO_CLIENT` if no
    /// RESP client made the change): every command that changes a key
    /// calls this after the change, so tracking clients are told. One
    /// atomic load when nobody tracks.
    #[inline]
    pub(crate) fn key_modified(&self, key: &[u8], writer: u64) {
        self.tracking.key_modified(&self.clients, key, writer);
    }

    /// Whether the reply that starts at `start` in `out` has passed
    /// `limit` (`reply-buffer-limit`); if so it is dropped — never sent,
    /// nor kept: one client must not take the memory of the others — and
    /// the caller closes the connection. Logged and counted.
    /// `command` names the command for the log line, only when needed
    /// (this runs after every request).
    #[inline]
    pub(crate) fn reply_over_limit(
        &self,
        out: &mut Vec<u8>,
        start: usize,
        limit: usize,
        command: impl FnOnce() -> String,
    ) -> bool {
        let size = out.len() - start;
        if size <= limit {
            return false;
        }
        let command = command();
        tracing::warn!(
            %command,
            reply_bytes = size,
            limit,
            "closing a connection whose reply passed reply-buffer-limit"
        );
        out.truncate(start);
        self.metrics.reply_limit_disconnects.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// A write to `key` was refused because its value is too large: remove
    /// the old value, as memcached does (`SERVER_ERROR object too large
    /// for cache` unlinks the key), so that no client reads the value the
    /// failed write meant to replace. Both protocols and every path that
    /// can refuse a value come here.
    pub(crate) fn remove_refused(&self, key: &[u8], writer: u64) {
        if self.store.delete(key) {
            self.key_modified(key, writer);
        }
    }

    /// The whole keyspace was flushed (after the flush).
    pub(crate) fn flushed(&self) {
        self.tracking.flushed(&self.clients);
    }

    /// Sets (or with `None` clears) the pending delayed flush.
    pub(crate) fn set_flush_deadline(&self, at_ms: Option<u64>) {
        self.flush_at_ms.store(at_ms.unwrap_or(0), Ordering::Relaxed);
    }

    /// Runs a delayed flush whose deadline has come. Called before every
    /// batch of requests, and by the background expiry loop.
    pub(crate) fn run_due_flush(&self) {
        let at = self.flush_at_ms.load(Ordering::Relaxed);
        if at != 0
            && self.store.clock().now_ms() >= at
            && self
                .flush_at_ms
                .compare_exchange(at, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.store.flush();
            self.flushed();
        }
    }

    /// The password clients must present, if any.
    pub(crate) fn requirepass(&self) -> Option<strata_session::Secret> {
        self.config.read().requirepass.clone()
    }

    /// The lease period.
    pub(crate) fn lease(&self) -> Duration {
        Duration::from_millis(self.config.read().lease_ms)
    }
}

/// A server that is listening.
#[derive(Debug)]
pub struct RunningServer {
    /// Where RESP clients connect.
    pub resp_addr: SocketAddr,
    /// Where memcached clients connect.
    pub memcache_addr: SocketAddr,
    /// The admin HTTP endpoint.
    pub admin_addr: SocketAddr,
    /// Where RESP clients connect over TLS (`tls-port`), if configured.
    pub tls_addr: Option<SocketAddr>,
    /// Where memcached clients connect over TLS (`memcache-tls-port`), if
    /// configured.
    pub memcache_tls_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    shared: Arc<Shared>,
}

impl RunningServer {
    /// Stops accepting; connections finish what they have read, then close.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until every task has ended (after [`Self::shutdown`]).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// The engine, for tests and embedding.
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }
}

/// The cache server.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Validates `config`, builds the engine, binds every listener and
    /// starts serving on the current tokio runtime.
    pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
        config.validate()?;
        let mut builder = Store::builder(Capacity::Bytes(config.maxmemory.0))
            .policy(config.policy()?)
            .max_item_bytes(config.max_item_size.0);
        if let Some(shards) = config.shards {
            builder = builder.shards(shards);
        }
        let store = Arc::new(builder.build());
        Self::start_with_store(config, store).await
    }

    /// Like [`Self::start`], over an engine built by the caller (tests pass
    /// one with a manual clock).
    pub async fn start_with_store(config: Config, store: Arc<Store>) -> Result<RunningServer, ServerError> {
        config.validate()?;
        let bind = |port: u16| SocketAddr::new(config.bind, port);
        let resp = listen(bind(config.resp_port)).await?;
        let memcache = listen(bind(config.memcache_port)).await?;
        let admin = listen(bind(config.admin_port)).await?;
        let local = |l: &TcpListener, fallback| l.local_addr().unwrap_or(fallback);
        let resp_addr = local(&resp, bind(config.resp_port));
        let memcache_addr = local(&memcache, bind(config.memcache_port));
        let admin_addr = local(&admin, bind(config.admin_port));
        let metrics = Arc::new(Metrics::new(
            &resp::COMMAND_NAMES,
            memcache::COMMAND_NAMES,
            store.clone(),
        ));
        // The TLS ports: one acceptor (certificate, key, client CA) for both,
        // its failed handshakes counted in the metrics.
        let acceptor = match config.tls_files()? {
            Some(files) => Some(
                strata_session::TlsAcceptor::from_files(&files)?
                    .counting_failures_in(Arc::clone(&metrics.tls_handshake_failures)),
            ),
            None => None,
        };
        let mut tls_listeners = Vec::new();
        for (port, kind) in [
            (config.tls_port, Kind::Resp),
            (config.memcache_tls_port, Kind::Memcache),
        ] {
            if let Some(port) = port {
                let listener = listen(bind(port)).await?;
                let addr = local(&listener, bind(port));
                tls_listeners.push((listener, kind, addr));
            }
        }
        let tls_addr = tls_listeners
            .iter()
            .find(|(_, kind, _)| matches!(kind, Kind::Resp))
            .map(|(_, _, addr)| *addr);
        let memcache_tls_addr = tls_listeners
            .iter()
            .find(|(_, kind, _)| matches!(kind, Kind::Memcache))
            .map(|(_, _, addr)| *addr);
        let shutdown = CancellationToken::new();
        let connections = Arc::new(Semaphore::new(config.max_connections));
        let effort = u64::from(config.active_expire_effort);
        let shared = Arc::new(Shared::new(
            store.clone(),
            config,
            metrics.clone(),
            resp_addr,
            memcache_addr,
        ));
        let mut tasks = JoinSet::new();
        let plain = [(resp, Kind::Resp, None), (memcache, Kind::Memcache, None)];
        let tls = tls_listeners
            .into_iter()
            .map(|(listener, kind, _)| (listener, kind, acceptor.clone()));
        for (listener, kind, tls) in plain.into_iter().chain(tls) {
            tasks.spawn(accept_loop(
                listener,
                kind,
                tls,
                shared.clone(),
                connections.clone(),
                shutdown.clone(),
            ));
        }
        tasks.spawn(admin::serve(admin, metrics, shutdown.clone()));
        tasks.spawn(expire_loop(shared.clone(), effort, shutdown.clone()));
        tracing::info!(%resp_addr, %memcache_addr, %admin_addr, ?tls_addr, ?memcache_tls_addr, "strata server listening");
        {
            let config = shared.config.read();
            if config.protected_mode && config.requirepass.is_none() && !config.bind.is_loopback() {
                tracing::warn!(
                    bind = %config.bind,
                    "no password is set: protected mode refuses every client that is not on a loopback \
                     address (set requirepass, or protected-mode = false behind a firewall)"
                );
            }
        }
        Ok(RunningServer {
            resp_addr,
            memcache_addr,
            admin_addr,
            tls_addr,
            memcache_tls_addr,
            shutdown,
            tasks,
            shared,
        })
    }
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Resp,
    Memcache,
}

/// Accepts and serves one protocol's connections (the session layer's
/// accept and connection loops, over TLS with `tls`) until shutdown.
async fn accept_loop(
    listener: TcpListener,
    kind: Kind,
    tls: Option<strata_session::TlsAcceptor>,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let refusal: &'static [u8] = match kind {
        Kind::Resp => b"-ERR max number of clients reached\r\n",
        Kind::Memcache => b"SERVER_ERROR too many open connections\r\n",
    };
    let gate = strata_session::Gate {
        connections,
        refusal,
        tls,
    };
    let metrics = Arc::clone(&shared.metrics);
    let on_refused = move || {
        metrics.rejected_connections.fetch_add(1, Ordering::Relaxed);
    };
    let handle = |incoming: strata_session::Incoming| {
        let denied = incoming
            .peer_addr()
            .ok()
            .and_then(|peer| protected_refusal(&shared.config.read(), peer.ip(), kind));
        shared.metrics.connections.fetch_add(1, Ordering::Relaxed);
        shared.metrics.connections_total.fetch_add(1, Ordering::Relaxed);
        let (shared, shutdown) = (Arc::clone(&shared), shutdown.clone());
        async move {
            let limits = {
                let config = shared.config.read();
                strata_session::Limits {
                    idle_timeout: (config.timeout > 0).then(|| Duration::from_secs(config.timeout)),
                    max_buffer: max_request_bytes(&config) + 64 * 1024,
                    client_memory: shared.metrics.client_memory.clone(),
                }
            };
            let metrics = Arc::clone(&shared.metrics);
            // On a TLS port, the handshake (within its deadline); the
            // refusal below then goes out inside TLS, where the client can
            // read it.
            let Some(stream) = incoming.open().await else {
                metrics.connections.fetch_sub(1, Ordering::Relaxed);
                return;
            };
            if let Some(message) = denied {
                let mut stream = stream;
                metrics.rejected_connections.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("refused a non-loopback client in protected mode");
                let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, message).await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
                metrics.connections.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            match kind {
                Kind::Resp => {
                    let session = resp::RespSession::new(Arc::clone(&shared));
                    let stats = metrics.local(metrics::Protocol::Resp);
                    let served = conn::Served::new(session, stats, Arc::clone(&metrics));
                    strata_session::serve(stream, served, limits, shutdown).await;
                }
                Kind::Memcache => {
                    let session = memcache::McSession::new(Arc::clone(&shared));
                    let stats = metrics.local(metrics::Protocol::Memcache);
                    let served = conn::Served::new(session, stats, Arc::clone(&metrics));
                    strata_session::serve(stream, served, limits, shutdown).await;
                }
            }
            metrics.connections.fetch_sub(1, Ordering::Relaxed);
        }
    };
    strata_session::accept_loop(listener, gate, shutdown.clone(), on_refused, handle).await;
}

/// Redis's protected-mode refusal, word for word on the RESP port.
const PROTECTED_RESP: &[u8] = b"-DENIED strata is running in protected mode because protected mode is enabled and no \
password is set. In this mode connections are only accepted from the loopback interface. If you want to connect \
from external computers to strata you may adopt one of the following solutions: 1) Set a password with \
`requirepass` in the config file or CONFIG SET requirepass from a loopback client (the setting also guards the \
memcached port). 2) Turn protected mode off with `protected-mode = false` in the config file, if you are sure \
only trusted networks can reach this server (a firewall). 3) Bind to a loopback address only.\r\n";
const PROTECTED_MEMCACHE: &[u8] = b"SERVER_ERROR strata is in protected mode: no password is set, so only loopback \
clients are accepted; set requirepass, or protected-mode = false behind a firewall\r\n";

/// Whether a client at `peer` is refused by protected mode, and the
/// message to send it: protected mode on, no password, and a client that
/// is not on a loopback address (a server bound to loopback cannot have
/// one, so this only ever bites a server bound to a public address).
fn protected_refusal(config: &Config, peer: std::net::IpAddr, kind: Kind) -> Option<&'static [u8]> {
    let loopback = match peer {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        // An IPv4 client of a dual-stack socket arrives mapped.
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    if !config.protected_mode || config.requirepass.is_some() || loopback {
        return None;
    }
    Some(match kind {
        Kind::Resp => PROTECTED_RESP,
        Kind::Memcache => PROTECTED_MEMCACHE,
    })
}

/// The largest request a connection may buffer: one maximal item plus
/// room for the command around it.
pub(crate) fn max_request_bytes(config: &Config) -> usize {
    usize::try_from(config.max_item_size.0).unwrap_or(usize::MAX / 2) + 64 * 1024
}

/// Active expiry: every `100 / effort` ms, reclaim up to `256 × effort`
/// expired items per shard.
async fn expire_loop(shared: Arc<Shared>, effort: u64, shutdown: CancellationToken) {
    let store = Arc::clone(&shared.store);
    let period = Duration::from_millis((100 / effort.max(1)).max(10));
    let budget = usize::try_from(256 * effort).unwrap_or(256);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {
                store.run_pending_expiry(budget);
                shared.run_due_flush();
                // Client buffers come out of the same limit as the data.
                store.set_reserve(shared.metrics.client_memory.bytes() as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn protected_mode_refuses_only_remote_clients_of_a_server_without_a_password() {
        let remote = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mapped = IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped());
        let open = Config {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ..Config::default()
        };
        assert_eq!(protected_refusal(&open, remote, Kind::Resp), Some(PROTECTED_RESP));
        assert_eq!(
            protected_refusal(&open, remote, Kind::Memcache),
            Some(PROTECTED_MEMCACHE)
        );
        for local in [loopback, mapped, IpAddr::V6(Ipv6Addr::LOCALHOST)] {
            assert_eq!(protected_refusal(&open, local, Kind::Resp), None, "{local}");
        }
        let with_password = Config {
            requirepass: Some("s3cret".into()),
            ..open.clone()
        };
        assert_eq!(protected_refusal(&with_password, remote, Kind::Resp), None);
        let unprotected = Config {
            protected_mode: false,
            ..open
        };
        assert_eq!(protected_refusal(&unprotected, remote, Kind::Resp), None);
        assert!(PROTECTED_RESP.starts_with(b"-DENIED ") && PROTECTED_RESP.ends_with(b"\r\n"));
        assert_eq!(PROTECTED_RESP.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    }
}
