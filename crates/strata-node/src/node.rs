//! The node: the read path through L1, L2 and the origin, and the write
//! strategies.
//!
//! **Read**, one function per step, each returning the bytes with where
//! they came from ([`ReadSource`]) and the origin's own error:
//!
//! - `get`: a write-behind write not yet flushed answers first; else
//! - `read_l1_then_load`: L1 (in process; concurrent misses on one key
//!   coalesce into one load); on a miss, `load`, whose value fills L1 only
//!   while L1 is usable (every tracking connection up — a push may have
//!   been missed otherwise — and no cache server marked down), only if no
//!   push for the key arrived while it ran, and only if no L1 flush (the
//!   L1 epoch) happened meanwhile. L1 entries also expire after
//!   `l1.ttl_ms` whatever happens.
//! - `load` picks the strategy's load: `load_leased` (cache-aside,
//!   write-through, write-behind: lease-get → origin → fill L2 with the
//!   lease token and the row's version) or `load_naive` (plain get →
//!   origin → plain set).
//! - `load_origin`: one origin read (with the read-path faults when built
//!   with the `testing` feature).
//!
//! An origin error reaches the caller as [`NodeError::Origin`] holding the
//! origin's error itself (through the client's lease-get as a boxed error,
//! downcast back), so the HTTP reply names the database's complaint.
//!
//! **Write**: see [`Strategy`]. After the origin commits, the cache update
//! (delete or versioned set) is best-effort: if it fails or is lost, the
//! invalidator deletes the key again from the database's log.

use std::sync::Arc;
#[cfg(feature = "testing")]
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use strata_client::tracking::{Invalidation, Tracker, TrackingConfig};
use strata_client::{Client, ClientConfig, ClientError, Fill, LeaseSettings};
use strata_ring::ClusterConfig;
use strata_store::local::LocalCache;
use tokio_util::sync::CancellationToken;

use crate::config::{NodeConfig, Strategy};
#[cfg(feature = "testing")]
use crate::faults::{Faults, maybe_delay, strikes};
use crate::item::{cache_key, decode, encode};
use crate::journal::JournalError;
use crate::metrics::NodeMetrics;
use crate::origin::{Origin, OriginError, Row, Write};
use crate::writebehind::{Pending, WriteBehind};

/// Longest row id accepted (the cache key must fit memcached's 250 bytes).
pub const MAX_ID_BYTES: usize = 200;

/// Largest value accepted.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The id or value is not acceptable.
    #[error("{0}")]
    BadRequest(String),
    /// The origin failed: its own error (SQLite's, PostgreSQL's), shared
    /// by every reader of a coalesced L1 load.
    #[error("origin: {0}")]
    Origin(#[source] Arc<OriginError>),
    /// Write-behind's journal refused the write (full, or an I/O error).
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The node could not start.
    #[error("{0}")]
    Start(String),
}

impl From<OriginError> for NodeError {
    fn from(error: OriginError) -> Self {
        NodeError::Origin(Arc::new(error))
    }
}

impl NodeError {
    /// Whether retrying later may succeed (HTTP 503 rather than 4xx/500).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            NodeError::Origin(_) | NodeError::Journal(JournalError::Full { .. })
        )
    }
}

/// Where a read was answered from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadSource {
    /// The local cache.
    L1,
    /// The cluster.
    L2,
    /// The database (this read loaded it).
    Origin,
    /// This node's write-behind journal (not yet in the database).
    Journal,
}

/// A row as read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReadItem {
    /// The row's id.
    pub id: String,
    /// Its value.
    pub value: String,
    /// Its version in the origin (`None`: a write-behind write not yet
    /// flushed).
    pub version: Option<i64>,
    /// When it was written (ms since the Unix epoch; 0 when pending).
    pub updated_at_ms: i64,
    /// Where the read was answered from.
    pub source: ReadSource,
}

/// What a write did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum WriteAck {
    /// Committed to the origin.
    Committed {
        /// The row's version after the write (absent for a delete).
        version: Option<i64>,
        /// For a delete: whether there was a row.
        existed: Option<bool>,
    },
    /// Durable in the write-behind journal; reaches the origin later.
    Journaled {
        /// Its place in the journal.
        seq: u64,
    },
}

/// The request node.
#[derive(Clone, Debug)]
pub struct Node {
    inner: Arc<NodeInner>,
}

#[derive(Debug)]
pub(crate) struct NodeInner {
    pub(crate) config: NodeConfig,
    pub(crate) origin: Origin,
    pub(crate) client: Client,
    l1: Option<Arc<LocalCache<String, Vec<u8>>>>,
    tracker: Option<Tracker>,
    pub(crate) metrics: Arc<NodeMetrics>,
    write_behind: Option<WriteBehind>,
    shutdown: CancellationToken,
    /// The configured faults strike only while this is set (the checker
    /// clears it to let the system quiesce).
    #[cfg(feature = "testing")]
    faults_on: AtomicBool,
    /// Delayed cache updates (a fault) still to be sent.
    #[cfg(feature = "testing")]
    delayed_updates: AtomicUsize,
    /// Bumped at every L1 flush (a tracking connection lost or regained):
    /// a load that spans one may have missed a push, so it fills nothing.
    l1_epoch: Arc<AtomicU64>,
}

impl Node {
    /// Opens the origin, connects to the cluster, subscribes to
    /// invalidations and (write-behind) opens and replays the journal.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate().map_err(|error| NodeError::Start(error.to_string()))?;
        let origin = Origin::open(&config.origin).await?;
        let cluster = ClusterConfig::from_nodes(&config.l2).map_err(|error| NodeError::Start(error.to_string()))?;
        let mut client_config = ClientConfig::new(cluster);
        client_config.node.password = config.l2_password.as_ref().cloned();
        client_config.lease = LeaseSettings {
            lease_ttl: Duration::from_secs(config.l2_settings.lease_ttl_secs.max(1)),
            max_wait: Duration::from_millis(config.l2_settings.lease_wait_ms),
            serve_stale: config.l2_settings.serve_stale,
            ..LeaseSettings::default()
        };
        let client = Client::new(client_config).map_err(|error| NodeError::Start(error.to_string()))?;
        let metrics = Arc::new(NodeMetrics::default());
        let l1 = (config.l1.max_bytes > 0).then(|| {
            Arc::new(
                LocalCache::builder()
                    .max_bytes(config.l1.max_bytes)
                    .time_to_live(Duration::from_millis(config.l1.ttl_ms.max(1)))
                    .build(),
            )
        });
        let naive = config.strategy == Strategy::Naive;
        let l1_epoch = Arc::new(AtomicU64::new(0));
        let tracker = match (&l1, config.tracking.is_empty() || naive) {
            (Some(l1), false) => {
                let l1 = Arc::clone(l1);
                let epoch = Arc::clone(&l1_epoch);
                let counters = Arc::clone(&metrics);
                Some(Tracker::spawn(
                    TrackingConfig {
                        addrs: config.tracking.clone(),
                        prefixes: vec![crate::item::KEY_PREFIX.to_owned()],
                        reconnect_delay: Duration::from_millis(200),
                        password: config.l2_password.clone(),
                    },
                    move |invalidation| match invalidation {
                        Invalidation::Keys(keys) => {
                            counters.invalidations.inc_by(keys.len() as u64);
                            for key in keys {
                                if let Ok(key) = String::from_utf8(key) {
                                    l1.invalidate(&key);
                                }
                            }
                        }
                        Invalidation::All => {
                            counters.l1_flushes.inc();
                            // The epoch first: a load that began before
                            // this flush must not fill L1 after it.
                            epoch.fetch_add(1, Ordering::SeqCst);
                            l1.invalidate_all();
                        }
                    },
                ))
            }
            _ => None,
        };
        let shutdown = CancellationToken::new();
        let write_behind = match config.strategy {
            Strategy::WriteBehind => Some(WriteBehind::open(&config.write_behind)?),
            _ => None,
        };
        let node = Node {
            inner: Arc::new(NodeInner {
                config,
                origin,
                client,
                l1,
                tracker,
                metrics,
                write_behind,
                shutdown,
                #[cfg(feature = "testing")]
                faults_on: AtomicBool::new(true),
                l1_epoch,
                #[cfg(feature = "testing")]
                delayed_updates: AtomicUsize::new(0),
            }),
        };
        if node.inner.write_behind.is_some() {
            tokio::spawn(crate::writebehind::flush_loop(Arc::clone(&node.inner)));
        }
        Ok(node)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The origin.
    pub fn origin(&self) -> &Origin {
        &self.inner.origin
    }

    /// The cluster client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Counters.
    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.inner.metrics
    }

    /// Whether L1 may be used now: it exists; if tracking is configured,
    /// every tracking connection is up; and no cache server is marked down.
    /// While one is, its keys are read from a stand-in, and a later write
    /// that goes to the owner (from a client that sees it up again) finds
    /// nothing there to change — no push — so an L1 copy of the stand-in's
    /// value could outlive the write.
    pub fn l1_usable(&self) -> bool {
        self.inner.l1.is_some()
            && self.inner.tracker.as_ref().is_none_or(Tracker::is_healthy)
            && (self.inner.tracker.is_none() || !self.inner.client.any_down())
    }

    /// Whether the node is healthy: origin answers; tracking (if any) is up.
    pub async fn health(&self) -> Result<(), String> {
        self.inner.origin.ping().await.map_err(|error| error.to_string())?;
        if let Some(tracker) = &self.inner.tracker
            && !tracker.is_healthy()
        {
            return Err("a tracking connection is down (L1 bypassed)".into());
        }
        Ok(())
    }

    /// The L1 entry for `id`, decoded, without loading (for the checker).
    pub fn peek_l1(&self, id: &str) -> Option<Row> {
        let l1 = self.inner.l1.as_ref()?;
        let bytes = l1.get(&cache_key(id))?;
        decode(id, &bytes)
    }

    /// Turns the configured faults on or off (they start on).
    #[cfg(feature = "testing")]
    pub fn set_faults(&self, on: bool) {
        self.inner.faults_on.store(on, Ordering::SeqCst);
    }

    /// Writes whose effects are still on their way: unflushed
    /// write-behind entries plus (with the `testing` feature) cache updates
    /// delayed by a fault.
    pub fn pending_writes(&self) -> usize {
        let unflushed = self.inner.write_behind.as_ref().map_or(0, WriteBehind::unflushed);
        #[cfg(feature = "testing")]
        let unflushed = unflushed + self.inner.delayed_updates.load(Ordering::SeqCst);
        unflushed
    }

    /// Stops background work (the write-behind flusher makes a last
    /// attempt) and the tracking connections.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        if let Some(tracker) = &self.inner.tracker {
            tracker.shutdown();
        }
        if let Some(write_behind) = &self.inner.write_behind {
            write_behind.wait_stopped().await;
        }
    }

    /// Reads row `id`: a write-behind write not yet flushed, else L1 (if
    /// usable) and below it the strategy's load.
    pub async fn get(&self, id: &str) -> Result<Option<ReadItem>, NodeError> {
        check_id(id)?;
        if let Some(pending) = self.inner.write_behind.as_ref().and_then(|journal| journal.pending(id)) {
            return Ok(match pending {
                Pending::Put(value) => Some(ReadItem {
                    id: id.to_owned(),
                    value,
                    version: None,
                    updated_at_ms: 0,
                    source: ReadSource::Journal,
                }),
                Pending::Delete => None,
            });
        }
        let key = cache_key(id);
        let found = self.read_l1_then_load(id, &key).await?;
        Ok(found.and_then(|(bytes, source)| decode(id, &bytes).map(|row| self.read_item(row, source))))
    }

    /// L1 if it may be used now; on an L1 miss (or without L1),
    /// [`Self::load`]. Concurrent L1 misses on one key coalesce into one
    /// load, whose value fills L1 unless, while it ran, a push for the key
    /// arrived (the push invalidates the flight), L1 was flushed (the
    /// epoch moved: a push may have been missed) or L1 stopped being
    /// usable (tracking down, or a server marked down: the value may come
    /// from a stand-in).
    async fn read_l1_then_load(&self, id: &str, key: &str) -> Result<Option<(Vec<u8>, ReadSource)>, NodeError> {
        let inner = &self.inner;
        let epoch = inner.l1_epoch.load(Ordering::SeqCst);
        let Some(l1) = inner.l1.as_ref().filter(|_| self.l1_usable()) else {
            return Ok(self.load(id, key).await?);
        };
        if let Some(bytes) = l1.get(key) {
            inner.metrics.l1_hits.inc();
            return Ok(Some((bytes, ReadSource::L1)));
        }
        inner.metrics.l1_misses.inc();
        // L1 holds bytes only: where our own load found them is noted
        // here. A reader that joined another's flight (or found the value
        // filled meanwhile) did not load, and reports L2 as it always has.
        let mut loaded_from = None;
        let slot = &mut loaded_from;
        let load = move || {
            async move {
                let loaded = self.load(id, key).await;
                // Invalidating our own flight stops its fill.
                if inner.l1_epoch.load(Ordering::SeqCst) != epoch || !self.l1_usable() {
                    l1.invalidate(key);
                }
                match loaded {
                    Ok(Some((bytes, source))) => {
                        *slot = Some(source);
                        Ok(bytes)
                    }
                    Ok(None) => Err(L1LoadError::Absent),
                    Err(error) => Err(L1LoadError::Origin(Arc::new(error))),
                }
            }
        };
        match l1.get_or_load_async(key, load).await {
            Ok(bytes) => Ok(Some((bytes, loaded_from.unwrap_or(ReadSource::L2)))),
            Err(error) => match &*error {
                L1LoadError::Absent => Ok(None),
                L1LoadError::Origin(error) => Err(NodeError::Origin(Arc::clone(error))),
            },
        }
    }

    /// Below L1: the strategy's read of L2 and, on a miss, the origin.
    /// `None`: no such row.
    async fn load(&self, id: &str, key: &str) -> Result<Option<(Vec<u8>, ReadSource)>, OriginError> {
        match self.inner.config.strategy {
            Strategy::Naive => self.load_naive(id, key).await,
            Strategy::CacheAside | Strategy::WriteThrough | Strategy::WriteBehind => self.load_leased(id, key).await,
        }
    }

    /// Cache-aside, write-through and write-behind: a lease-get (one loader
    /// per key across every node); the lease winner reads the origin and
    /// fills with the lease's CAS and the row's version, so a fill older
    /// than a write since is refused. If the cluster fails in a way the
    /// client cannot route around, the origin answers, uncached.
    async fn load_leased(&self, id: &str, key: &str) -> Result<Option<(Vec<u8>, ReadSource)>, OriginError> {
        let inner = &self.inner;
        let mut loaded = false;
        let filled = inner
            .client
            .get_or_fill_versioned(key.as_bytes(), Some(inner.config.l2_ttl()), || {
                loaded = true;
                self.origin_fill(id)
            })
            .await;
        match filled {
            Ok(found) => {
                if !loaded && found.is_some() {
                    inner.metrics.l2_hits.inc();
                } else {
                    inner.metrics.l2_misses.inc();
                }
                let source = if loaded { ReadSource::Origin } else { ReadSource::L2 };
                Ok(found.map(|bytes| (bytes, source)))
            }
            // Our loader's error: the origin's, boxed by the client.
            Err(ClientError::Loader(error)) => Err(match error.downcast::<OriginError>() {
                Ok(error) => *error,
                Err(other) => OriginError::Task(other.to_string()),
            }),
            Err(error) => {
                inner.metrics.l2_errors.inc();
                tracing::debug!(%error, "L2 failed; reading the origin");
                let row = self.load_origin(id).await?;
                Ok(row.map(|row| (encode(&row), ReadSource::Origin)))
            }
        }
    }

    /// The naive strategy: a plain get; on a miss (or an L2 error) the
    /// origin, then a plain set — no lease, no version: the stale-set race
    /// left open on purpose, as the baseline the checker measures.
    async fn load_naive(&self, id: &str, key: &str) -> Result<Option<(Vec<u8>, ReadSource)>, OriginError> {
        let inner = &self.inner;
        match inner.client.get(key.as_bytes()).await {
            Ok(Some(bytes)) => {
                inner.metrics.l2_hits.inc();
                return Ok(Some((bytes, ReadSource::L2)));
            }
            Ok(None) => {
                inner.metrics.l2_misses.inc();
            }
            Err(error) => {
                inner.metrics.l2_errors.inc();
                tracing::debug!(%error, "L2 read failed; reading the origin");
            }
        }
        let Some(row) = self.load_origin(id).await? else {
            return Ok(None);
        };
        let bytes = encode(&row);
        let _ = inner
            .client
            .set(key.as_bytes(), &bytes, Some(inner.config.l2_ttl()))
            .await;
        Ok(Some((bytes, ReadSource::Origin)))
    }

    /// The lease winner's loader: the row as a versioned fill.
    async fn origin_fill(&self, id: &str) -> Result<Option<Fill>, OriginError> {
        Ok(self.load_origin(id).await?.map(|row| Fill {
            value: encode(&row),
            version: row.version.max(0) as u64,
        }))
    }

    /// One origin load, with the read-path faults.
    async fn load_origin(&self, id: &str) -> Result<Option<Row>, OriginError> {
        let inner = &self.inner;
        #[cfg(feature = "testing")]
        let faults = inner.faults();
        #[cfg(feature = "testing")]
        maybe_delay(faults.slow_origin, faults.origin_delay_ms).await;
        inner.metrics.origin_loads.inc();
        let row = inner.origin.get(id).await.inspect_err(|_| {
            inner.metrics.origin_errors.inc();
        })?;
        // The stale-set race: the row read, then a pause before the fill.
        #[cfg(feature = "testing")]
        maybe_delay(faults.delayed_fill, faults.fill_delay_ms).await;
        Ok(row)
    }

    fn read_item(&self, row: Row, source: ReadSource) -> ReadItem {
        let sample = self.inner.config.verify_sample;
        if source != ReadSource::Origin && sampled(sample) {
            self.verify_in_background(row.clone());
        }
        ReadItem {
            id: row.id,
            value: row.value,
            version: Some(row.version),
            updated_at_ms: row.updated_at_ms,
            source,
        }
    }

    /// Re-reads a cached row from the origin, off the request path, to
    /// measure how often (and how far) cached reads are stale.
    fn verify_in_background(&self, cached: Row) {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            let Ok(fresh) = inner.origin.get(&cached.id).await else {
                return;
            };
            inner.metrics.verified.inc();
            let stale = match fresh {
                Some(fresh) => fresh.version > cached.version,
                None => true,
            };
            if stale {
                inner.metrics.verified_stale.inc();
            }
        });
    }

    /// Writes row `id`.
    pub async fn put(&self, id: &str, value: &str) -> Result<WriteAck, NodeError> {
        check_id(id)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(NodeError::BadRequest(format!(
                "value of {} bytes exceeds the limit of {MAX_VALUE_BYTES}",
                value.len()
            )));
        }
        self.write(Write::Put {
            id: id.to_owned(),
            value: value.to_owned(),
        })
        .await
    }

    /// Deletes row `id`.
    pub async fn delete(&self, id: &str) -> Result<WriteAck, NodeError> {
        check_id(id)?;
        self.write(Write::Delete { id: id.to_owned() }).await
    }

    async fn write(&self, write: Write) -> Result<WriteAck, NodeError> {
        let inner = &self.inner;
        inner.metrics.writes.inc();
        if let Some(write_behind) = &inner.write_behind {
            let id = write.id().to_owned();
            let seq = write_behind.append(write).await?;
            self.drop_l1(&id);
            return Ok(WriteAck::Journaled { seq });
        }
        let applied = inner
            .origin
            .apply(std::slice::from_ref(&write))
            .await
            .inspect_err(|_| {
                inner.metrics.origin_errors.inc();
            })?;
        let Some(applied) = applied.into_iter().next() else {
            return Err(OriginError::Task("the origin applied nothing".into()).into());
        };
        let ack = match &applied {
            crate::origin::Applied::Put(row) => WriteAck::Committed {
                version: Some(row.version),
                existed: None,
            },
            crate::origin::Applied::Deleted { existed, .. } => WriteAck::Committed {
                version: None,
                existed: Some(*existed),
            },
        };
        inner.update_cache(applied).await;
        self.drop_l1(write.id());
        Ok(ack)
    }

    fn drop_l1(&self, id: &str) {
        if let Some(l1) = &self.inner.l1 {
            l1.invalidate(&cache_key(id));
        }
    }
}

impl NodeInner {
    /// The cache step after the origin committed `applied`: delete, or a
    /// versioned set under write-through and write-behind. Best-effort
    /// (the invalidator repairs what is lost), with the write-path faults.
    pub(crate) async fn update_cache(self: &Arc<Self>, applied: crate::origin::Applied) {
        #[cfg(feature = "testing")]
        if self.update_cache_faulted(&applied) {
            return;
        }
        self.send_cache_update(applied).await;
    }

    /// The write-path faults: the update dropped, or sent late from a task
    /// of its own. Whether one struck (and the update is dealt with).
    #[cfg(feature = "testing")]
    fn update_cache_faulted(self: &Arc<Self>, applied: &crate::origin::Applied) -> bool {
        let faults = self.faults();
        if strikes(faults.drop_delete) {
            self.metrics.cache_updates_dropped.inc();
            return true;
        }
        if strikes(faults.delayed_delete) {
            // Late on the network: the writer is acknowledged first.
            let inner = Arc::clone(self);
            let delay = Duration::from_millis(faults.delete_delay_ms);
            let applied = applied.clone();
            self.delayed_updates.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                inner.send_cache_update(applied).await;
                inner.delayed_updates.fetch_sub(1, Ordering::SeqCst);
            });
            return true;
        }
        false
    }

    async fn send_cache_update(&self, applied: crate::origin::Applied) {
        let versioned = matches!(self.config.strategy, Strategy::WriteThrough | Strategy::WriteBehind);
        let result = match applied {
            crate::origin::Applied::Put(row) if versioned => self
                .client
                .set_versioned(
                    cache_key(&row.id).as_bytes(),
                    &encode(&row),
                    row.version.max(0) as u64,
                    Some(self.config.l2_ttl()),
                )
                .await
                .map(|_| ()),
            crate::origin::Applied::Put(row) => self.client.delete(cache_key(&row.id).as_bytes()).await.map(|_| ()),
            crate::origin::Applied::Deleted { id, .. } => {
                self.client.delete(cache_key(&id).as_bytes()).await.map(|_| ())
            }
        };
        if let Err(error) = result {
            self.metrics.cache_update_errors.inc();
            tracing::warn!(%error, "cache update after a write failed; the invalidator will repair it");
        }
    }

    /// The faults in force: the configured ones, or none once turned off.
    #[cfg(feature = "testing")]
    fn faults(&self) -> &Faults {
        static NONE: Faults = Faults {
            slow_origin: 0.0,
            origin_delay_ms: 0,
            delayed_fill: 0.0,
            fill_delay_ms: 0,
            drop_delete: 0.0,
            delayed_delete: 0.0,
            delete_delay_ms: 0,
        };
        if self.faults_on.load(Ordering::Relaxed) {
            &self.config.faults
        } else {
            &NONE
        }
    }

    pub(crate) fn is_shutting_down(&self) -> &CancellationToken {
        &self.shutdown
    }

    pub(crate) fn write_behind(&self) -> Option<&WriteBehind> {
        self.write_behind.as_ref()
    }
}

/// Why an L1 flight returned no value (L1 caches only values, so "no
/// such row" travels as an error too).
#[derive(Debug)]
enum L1LoadError {
    /// No such row.
    Absent,
    /// The origin failed (shared by every reader of the flight).
    Origin(Arc<OriginError>),
}

/// Draws whether an event of probability `p` happens now.
fn sampled(p: f64) -> bool {
    p > 0.0 && rand::random::<f64>() < p
}

fn check_id(id: &str) -> Result<(), NodeError> {
    if id.is_empty() {
        return Err(NodeError::BadRequest("the id is empty".into()));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(NodeError::BadRequest(format!(
            "the id is {} bytes; at most {MAX_ID_BYTES} are allowed",
            id.len()
        )));
    }
    if id.bytes().any(|byte| byte.is_ascii_control() || byte == b' ') {
        return Err(NodeError::BadRequest(
            "the id contains spaces or control characters".into(),
        ));
    }
    Ok(())
}
