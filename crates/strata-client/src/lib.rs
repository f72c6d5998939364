//! # strata-client
//!
//! The async Rust client for a strata cluster (or any memcached 1.6 pool):
//! keys placed on the ketama ring of [`strata_ring`], a few multiplexed,
//! pipelined connections per node (concurrent callers' requests share
//! writes and round trips), batches per node for multi-key calls, failover
//! to a gutter pool, warm-up after a topology change, and leases against
//! thundering herds and stale sets.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_client::ClientError> {
//! use std::time::Duration;
//! use strata_client::{Client, ClientConfig};
//! use strata_ring::ClusterConfig;
//!
//! let cluster = ClusterConfig::from_toml(r#"
//!     [pools.main]
//!     nodes = ["127.0.0.1:7311", "127.0.0.1:7312", "127.0.0.1:7313"]
//!     [pools.gutter]
//!     nodes = ["127.0.0.1:7320"]
//! "#).unwrap();
//! let client = Client::new(ClientConfig::new(cluster))?;
//! client.set(b"user:42", b"Ada", Some(Duration::from_secs(300))).await?;
//! let user = client
//!     .get_or_fill(b"user:42", Some(Duration::from_secs(300)), || async {
//!         Ok::<_, std::io::Error>(b"Ada".to_vec()) // the database, on a miss
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `server_pool.rs`: the connection pool to one cache server: multiplexed connections (a writer and a reader
//!   task each), batches, timeouts; optionally TLS and a password per connection;
//! - `health.rs`: the TKO state machine (up, down, due a probe);
//! - `recovery.rs`: the writes a down node missed, replayed before it
//!   serves again, so it never serves stale values;
//! - `meta.rs`: the meta commands sent and their replies;
//! - `tracking.rs`: the near-cache subscriber: RESP3 client tracking
//!   (BCAST) on every server, invalidations handed to a callback, a flush
//!   whenever a connection is lost;
//! - `route.rs`: where a key goes now — owner, gutter, or next on the ring —
//!   and the probe that brings a node back;
//! - `ops.rs`: get, set, delete, touch, and their multi-key forms; the
//!   conditional stores (cas, replace, append, prepend), incr/decr,
//!   get-and-touch, and `meta`, which sends a meta request as it came (for
//!   the proxy);
//! - `lease.rs`: `get_or_fill`, the lease protocol;
//! - `warmup.rs`: reading the previous owner after a topology change.
//!
//! The proxy (`strata proxy`) is this client behind RESP and memcached
//! front doors, in the `strata-proxy` crate.
//!
//! # Failure handling
//!
//! (Written out in full, with the reasons, in `docs/cluster.md`.)
//!
//! A request that fails (connect, timeout, reset) counts against its node;
//! `threshold` failures in a row mark it down (TKO). The failed request
//! itself is retried at once on the failover target, so callers see no
//! error unless the failover target fails too. While a node is down its
//! keys go to the gutter pool (writes with a short TTL, 60 s by default, as
//! in the memcache paper) or, if so configured, to the next node on the
//! ring. Every write diverted from a node is remembered, and when a probe
//! finds the node alive those keys are deleted on it (or, past a limit, it
//! is flushed) before it takes traffic again, so it never serves a value
//! that was overwritten or deleted while it was away.

mod health;
mod lease;
mod meta;
mod ops;
mod recovery;
mod route;
mod server_pool;
pub mod tracking;
mod warmup;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use strata_ring::{ClusterConfig, Ring, RingError, Scheme, Snapshot};
use tokio::time::Instant;

pub use health::HealthPolicy;
pub use lease::{Fill, VERSION_CAS_BASE, Versioned};
pub use meta::{MAX_KEY_BYTES, check_key};
pub use ops::StoreOutcome;
pub use server_pool::{PoolError, PoolSettings};
pub use tracking::{Invalidation, Tracker, TrackingConfig};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No node could serve the key: its owner is down and so is (or there
    /// is no) failover target.
    #[error("no node available for the key: {0}")]
    Unavailable(String),
    /// The node answered with an error.
    #[error("server error: {0}")]
    Server(String),
    /// The request itself was refused: by the node, as memcached's
    /// `CLIENT_ERROR` (`incr` of a value that is not a number), or by the
    /// client before sending (a request it cannot route by key). Unlike
    /// [`ClientError::Server`] it says nothing about the node's health, and
    /// a proxy hands it on as the client's error it is.
    #[error("refused: {0}")]
    Refused(String),
    /// The key is empty or too long for the protocol.
    #[error("invalid key of {len} bytes (1-250 plain bytes, or up to 187 bytes of any kind)")]
    InvalidKey {
        /// Its length.
        len: usize,
    },
    /// The cluster configuration is invalid.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The loader of `get_or_fill` failed; nothing was cached. The
    /// loader's own error, boxed: a caller that knows its loader's error
    /// type gets it back with `downcast`.
    #[error("loader failed: {0}")]
    Loader(Box<dyn std::error::Error + Send + Sync>),
}

/// A value as fetched from a cache server, with memcached's client flags
/// (opaque to the cache; clients use them for the serialization format).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The data.
    pub value: Vec<u8>,
    /// The flags stored with it.
    pub flags: u32,
    /// The node's CAS unique for this version of the item (0 if unknown).
    pub cas: u64,
    /// Its remaining TTL when fetched, in whole seconds as memcached's `t`
    /// reports it (`None`: it never expires).
    pub ttl: Option<Duration>,
}

/// Where a down node's keys go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failover {
    /// To the gutter pool, with short TTLs (needs a `gutter` pool).
    Gutter,
    /// To the next node on the ring that is up.
    NextOnRing,
    /// Nowhere: calls for its keys fail.
    None,
}

/// Lease settings for [`Client::get_or_fill`].
#[derive(Clone, Copy, Debug)]
pub struct LeaseSettings {
    /// How long a won lease stays exclusive.
    pub lease_ttl: Duration,
    /// How long a caller who lost the lease waits in all for the winner's
    /// fill before loading itself (without caching).
    pub max_wait: Duration,
    /// Pause between looks while waiting.
    pub wait_step: Duration,
    /// Whether a caller who lost the lease may take a stale value at once.
    pub serve_stale: bool,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            lease_ttl: Duration::from_secs(10),
            max_wait: Duration::from_millis(500),
            wait_step: Duration::from_millis(10),
            serve_stale: true,
        }
    }
}

/// Everything the client can be told.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Pools and the placement scheme.
    pub cluster: ClusterConfig,
    /// Connections, timeouts, TKO.
    pub node: PoolSettings,
    /// Where a down node's keys go.
    pub failover: Failover,
    /// TTL cap of writes to a failover target.
    pub gutter_ttl: Duration,
    /// After a topology change, for this long a miss on a key's new owner
    /// reads its previous owner (warm-up); zero disables it.
    pub warmup: Duration,
    /// Leases.
    pub lease: LeaseSettings,
}

impl ClientConfig {
    /// Defaults over `cluster`: gutter failover if it has a gutter pool,
    /// else the next node on the ring; 60 s gutter TTL; 60 s warm-up.
    pub fn new(cluster: ClusterConfig) -> Self {
        let failover = if cluster.gutter().is_empty() {
            Failover::NextOnRing
        } else {
            Failover::Gutter
        };
        ClientConfig {
            cluster,
            node: PoolSettings::default(),
            failover,
            gutter_ttl: Duration::from_secs(60),
            warmup: Duration::from_secs(60),
            lease: LeaseSettings::default(),
        }
    }
}

/// Counters of what the client did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Keys read.
    pub gets: AtomicU64,
    /// Reads that found the key.
    pub hits: AtomicU64,
    /// Keys written.
    pub sets: AtomicU64,
    /// Keys deleted.
    pub deletes: AtomicU64,
    /// Requests that failed on a node.
    pub node_errors: AtomicU64,
    /// Keys served by a failover target.
    pub failovers: AtomicU64,
    /// Nodes marked down.
    pub marked_down: AtomicU64,
    /// Nodes brought back by a probe.
    pub recovered: AtomicU64,
    /// Misses answered from the previous owner after a topology change.
    pub warmup_hits: AtomicU64,
    /// Leases won (this caller loaded).
    pub lease_wins: AtomicU64,
    /// Times a caller waited for another's fill.
    pub lease_waits: AtomicU64,
    /// Stale values served while another caller refilled.
    pub stale_served: AtomicU64,
    /// Loader calls made by `get_or_fill`.
    pub loads: AtomicU64,
}

/// A point-in-time copy of [`Stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[expect(missing_docs, reason = "the fields mirror Stats")]
pub struct StatsSnapshot {
    pub gets: u64,
    pub hits: u64,
    pub sets: u64,
    pub deletes: u64,
    pub node_errors: u64,
    pub failovers: u64,
    pub marked_down: u64,
    pub recovered: u64,
    pub warmup_hits: u64,
    pub lease_wins: u64,
    pub lease_waits: u64,
    pub stale_served: u64,
    pub loads: u64,
}

impl Stats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            gets: load(&self.gets),
            hits: load(&self.hits),
            sets: load(&self.sets),
            deletes: load(&self.deletes),
            node_errors: load(&self.node_errors),
            failovers: load(&self.failovers),
            marked_down: load(&self.marked_down),
            recovered: load(&self.recovered),
            warmup_hits: load(&self.warmup_hits),
            lease_wins: load(&self.lease_wins),
            lease_waits: load(&self.lease_waits),
            stale_served: load(&self.stale_served),
            loads: load(&self.loads),
        }
    }
}

/// The previous epoch of the main ring, consulted until `until`.
#[derive(Debug)]
struct Previous {
    snapshot: Arc<Snapshot>,
    until: Instant,
}

#[derive(Debug)]
struct Inner {
    config: RwLock<ClientConfig>,
    main: Ring,
    gutter: Ring,
    previous: Mutex<Option<Previous>>,
    nodes: RwLock<HashMap<String, Arc<server_pool::ServerPool>>>,
    /// The main ring's members as nodes, by index, for the epoch given:
    /// routing then costs no address formatting or map look-up.
    main_nodes: RwLock<(u64, Vec<Arc<server_pool::ServerPool>>)>,
    stats: Stats,
}

/// A cluster client. Cheap to clone; clones share connections and state.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// A client over `config`. Connects lazily, so it starts even while
    /// nodes are down.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let scheme = config.cluster.scheme;
        let main = Ring::new(scheme, config.cluster.main().to_vec())?;
        // The gutter is a small pool of spares: placed by ketama always.
        let gutter = Ring::new(Scheme::Ketama, config.cluster.gutter().to_vec())?;
        Ok(Client {
            inner: Arc::new(Inner {
                config: RwLock::new(config),
                main,
                gutter,
                previous: Mutex::new(None),
                nodes: RwLock::new(HashMap::new()),
                main_nodes: RwLock::new((0, Vec::new())),
                stats: Stats::default(),
            }),
        })
    }

    /// What the client has done so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// The main ring's current epoch.
    pub fn epoch(&self) -> u64 {
        self.inner.main.epoch()
    }

    /// The main ring's current snapshot.
    pub fn ring(&self) -> Arc<Snapshot> {
        self.inner.main.snapshot()
    }

    /// Whether any node is marked down now (so some keys are being served
    /// by a stand-in). Cheap: no allocation.
    pub fn any_down(&self) -> bool {
        self.inner.nodes.read().values().any(|node| node.health.is_down())
    }

    /// Addresses of the nodes currently marked down.
    pub fn down_nodes(&self) -> Vec<String> {
        let nodes = self.inner.nodes.read();
        let mut down: Vec<String> = nodes
            .values()
            .filter(|node| node.health.is_down())
            .map(|node| node.addr().to_owned())
            .collect();
        down.sort();
        down
    }

    /// Probes every node marked down now, without waiting for its backoff
    /// (each probe replays the writes the node missed before it serves
    /// again). Returns the addresses that are back. Operators call this
    /// after fixing a node; tests call it instead of waiting.
    pub async fn probe_down_nodes(&self) -> Vec<String> {
        let down: Vec<Arc<server_pool::ServerPool>> = {
            let nodes = self.inner.nodes.read();
            nodes.values().filter(|n| n.health.is_down()).cloned().collect()
        };
        let mut back = Vec::new();
        for node in down {
            self.inner.probe(Arc::clone(&node)).await;
            if !node.health.is_down() {
                back.push(node.addr().to_owned());
            }
        }
        back.sort();
        back
    }

    /// Adopts a new cluster configuration: a new epoch of the main ring
    /// (and of the gutter) if its members changed. The old main ring stays
    /// readable for warm-up during the configured grace period.
    pub fn update(&self, cluster: ClusterConfig) -> Result<u64, ClientError> {
        let inner = &self.inner;
        let before = inner.main.snapshot();
        let after = inner.main.replace_with(cluster.scheme, cluster.main().to_vec())?;
        inner.gutter.replace(cluster.gutter().to_vec())?;
        let warmup = {
            let mut config = inner.config.write();
            config.cluster = cluster;
            config.warmup
        };
        if after.epoch() != before.epoch() {
            tracing::info!(
                epoch = after.epoch(),
                members = after.members().len(),
                "cluster membership changed"
            );
            if !warmup.is_zero() {
                *inner.previous.lock() = Some(Previous {
                    snapshot: before,
                    until: Instant::now() + warmup,
                });
            }
        }
        Ok(after.epoch())
    }

    /// Re-reads a cluster file and adopts it (see [`Self::update`]).
    pub fn reload(&self, path: &std::path::Path) -> Result<u64, ReloadError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReloadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let cluster = ClusterConfig::from_toml(&text).map_err(|source| ReloadError::Parse {
            path: path.to_owned(),
            source,
        })?;
        Ok(self.update(cluster)?)
    }

    /// Watches a cluster file, reloading it whenever its contents change
    /// (checked every `interval`). A file that fails to parse is logged and
    /// ignored: the running configuration stays.
    pub fn watch(&self, path: PathBuf, interval: Duration) -> tokio::task::JoinHandle<()> {
        let client = self.clone();
        tokio::spawn(async move {
            let mut last = std::fs::read(&path).ok();
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                let now = std::fs::read(&path).ok();
                if now.is_some() && now != last {
                    match client.reload(&path) {
                        Ok(epoch) => tracing::info!(path = %path.display(), epoch, "cluster file reloaded"),
                        Err(error) => tracing::warn!(%error, "cluster file not reloaded"),
                    }
                    last = now;
                }
            }
        })
    }
}

/// Why a cluster file could not be reloaded.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// It could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// It did not parse.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: strata_ring::ClusterError,
    },
    /// Its members were refused.
    #[error(transparent)]
    Client(#[from] ClientError),
}
