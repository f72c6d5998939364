//! The node: the read path through L1, L2 and the origin, and the write
//! strategies.
//!
//! **Read**: L1 (in process; concurrent misses on one key coalesce into
//! one load) → L2 with a lease-get (one loader per key across every node)
//! → the origin → fill L2 with the lease token and the row's version →
//! fill L1. L1 is filled only while every tracking connection is up (a
//! push may have been missed otherwise), and a push that arrives while a
//! load is in flight stops that load from filling L1. L1 entries also
//! expire after `l1.ttl_ms` whatever happens.
//!
//! **Write**: see [`Strategy`]. After the origin commits, the cache update
//! (delete or versioned set) is best-effort: if it fails or is lost, the
//! invalidator deletes the key again from the database's log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use strata_client::tracking::{Invalidation, Tracker, TrackingConfig};
use strata_client::{Client, ClientConfig, ClientError, Fill, LeaseSettings};
use strata_ring::ClusterConfig;
use strata_store::local::LocalCache;
use tokio_util::sync::CancellationToken;

use crate::config::{NodeConfig, Strategy};
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
    /// The origin failed.
    #[error("origin: {0}")]
    Origin(#[from] OriginError),
    /// Write-behind's journal refused the write (full, or an I/O error).
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The node could not start.
    #[error("{0}")]
    Start(String),
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
    faults_on: AtomicBool,
    /// Delayed cache updates still to be sent.
    delayed_updates: AtomicUsize,
    /// Bumped at every L1 flush (a tracking connection lost or regained):
    /// a load that spans one may have missed a push, so it fills nothing.
    l1_epoch: Arc<AtomicU64>,
}

const FROM_L2: u8 = 0;
const FROM_ORIGIN: u8 = 1;

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
                faults_on: AtomicBool::new(true),
                l1_epoch,
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
    pub fn set_faults(&self, on: bool) {
        self.inner.faults_on.store(on, Ordering::SeqCst);
    }

    /// Writes whose effects are still on their way: unflushed
    /// write-behind entries plus delayed cache updates.
    pub fn pending_writes(&self) -> usize {
        self.inner.write_behind.as_ref().map_or(0, WriteBehind::unflushed)
            + self.inner.delayed_updates.load(Ordering::SeqCst)
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

    /// Reads row `id`.
    pub async fn get(&self, id: &str) -> Result<Option<ReadItem>, NodeError> {
        check_id(id)?;
        let inner = &self.inner;
        if let Some(write_behind) = &inner.write_behind {
            match write_behind.pending(id) {
                Some(Pending::Put(value)) => {
                    return Ok(Some(ReadItem {
                        id: id.to_owned(),
                        value,
                        version: None,
                        updated_at_ms: 0,
                        source: ReadSource::Journal,
                    }));
                }
                Some(Pending::Delete) => return Ok(None),
                None => {}
            }
        }
        let key = cache_key(id);
        let from = AtomicU8::new(FROM_L2);
        let epoch = inner.l1_epoch.load(Ordering::SeqCst);
        let found = match inner.l1.as_ref().filter(|_| self.l1_usable()) {
            Some(l1) => {
                if let Some(bytes) = l1.get(&key) {
                    inner.metrics.l1_hits.inc();
                    return Ok(decode(id, &bytes).map(|row| self.read_item(row, ReadSource::L1)));
                }
                inner.metrics.l1_misses.inc();
                let load = || async {
                    let loaded = self.load_l2(id, &key, &from).await;
                    // Tracking was lost (or regained), or a server marked
                    // down, while this load ran: a push may have been
                    // missed, or the value came from a stand-in, so it must
                    // not go into L1. Invalidating our own flight stops its
                    // fill.
                    if inner.l1_epoch.load(Ordering::SeqCst) != epoch || !self.l1_usable() {
                        l1.invalidate(&key);
                    }
                    loaded
                };
                match l1.get_or_load_async(&key, load).await {
                    Ok(bytes) => Some(bytes),
                    Err(error) => match &*error {
                        LoadError::Absent => None,
                        LoadError::Origin(message) => {
                            return Err(NodeError::Origin(OriginError::Task(message.clone())));
                        }
                    },
                }
            }
            None => match self.load_l2(id, &key, &from).await {
                Ok(bytes) => Some(bytes),
                Err(LoadError::Absent) => None,
                Err(LoadError::Origin(message)) => return Err(NodeError::Origin(OriginError::Task(message))),
            },
        };
        let source = match from.load(Ordering::Relaxed) {
            FROM_ORIGIN => ReadSource::Origin,
            _ => ReadSource::L2,
        };
        Ok(found
            .and_then(|bytes| decode(id, &bytes))
            .map(|row| self.read_item(row, source)))
    }

    fn read_item(&self, row: Row, source: ReadSource) -> ReadItem {
        let sample = self.inner.config.verify_sample;
        if source != ReadSource::Origin && strikes(sample) {
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

    /// L2 and, on a miss, the origin.
    async fn load_l2(&self, id: &str, key: &str, from: &AtomicU8) -> Result<Vec<u8>, LoadError> {
        let inner = &self.inner;
        let ttl = Some(inner.config.l2_ttl());
        if inner.config.strategy == Strategy::Naive {
            match inner.client.get(key.as_bytes()).await {
                Ok(Some(bytes)) => {
                    inner.metrics.l2_hits.inc();
                    return Ok(bytes);
                }
                Ok(None) => {
                    inner.metrics.l2_misses.inc();
                }
                Err(error) => {
                    inner.metrics.l2_errors.inc();
                    tracing::debug!(%error, "L2 read failed; reading the origin");
                }
            }
            from.store(FROM_ORIGIN, Ordering::Relaxed);
            let row = self.load_origin(id).await?;
            let bytes = encode(&row);
            let _ = inner.client.set(key.as_bytes(), &bytes, ttl).await;
            return Ok(bytes);
        }
        let loaded = inner
            .client
            .get_or_fill_versioned(key.as_bytes(), ttl, || async {
                from.store(FROM_ORIGIN, Ordering::Relaxed);
                match self.load_origin(id).await {
                    Ok(row) => Ok(Some(Fill {
                        value: encode(&row),
                        version: row.version.max(0) as u64,
                    })),
                    Err(LoadError::Absent) => Ok(None),
                    Err(LoadError::Origin(message)) => Err(message),
                }
            })
            .await;
        match loaded {
            Ok(found) => {
                if from.load(Ordering::Relaxed) == FROM_L2 && found.is_some() {
                    inner.metrics.l2_hits.inc();
                } else {
                    inner.metrics.l2_misses.inc();
                }
                found.ok_or(LoadError::Absent)
            }
            Err(ClientError::Loader(message)) => Err(LoadError::Origin(message)),
            Err(error) => {
                // The cluster failed in a way get_or_fill could not route
                // around: serve from the origin, uncached.
                inner.metrics.l2_errors.inc();
                tracing::debug!(%error, "L2 failed; reading the origin");
                from.store(FROM_ORIGIN, Ordering::Relaxed);
                self.load_origin(id).await.map(|row| encode(&row))
            }
        }
    }

    /// One origin load, with the read-path faults.
    async fn load_origin(&self, id: &str) -> Result<Row, LoadError> {
        let inner = &self.inner;
        let faults = inner.faults();
        maybe_delay(faults.slow_origin, faults.origin_delay_ms).await;
        inner.metrics.origin_loads.inc();
        let row = inner.origin.get(id).await.map_err(|error| {
            inner.metrics.origin_errors.inc();
            LoadError::Origin(error.to_string())
        })?;
        // The stale-set race: the row read, then a pause before the fill.
        maybe_delay(faults.delayed_fill, faults.fill_delay_ms).await;
        row.ok_or(LoadError::Absent)
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
            return Err(NodeError::Origin(OriginError::Task(
                "the origin applied nothing".into(),
            )));
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
        let faults = self.faults();
        if strikes(faults.drop_delete) {
            self.metrics.cache_updates_dropped.inc();
            return;
        }
        if strikes(faults.delayed_delete) {
            // Late on the network: the writer is acknowledged first.
            let inner = Arc::clone(self);
            let delay = Duration::from_millis(faults.delete_delay_ms);
            self.delayed_updates.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                inner.send_cache_update(applied).await;
                inner.delayed_updates.fetch_sub(1, Ordering::SeqCst);
            });
            return;
        }
        self.send_cache_update(applied).await;
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

/// Why a load found nothing to return.
#[derive(Debug)]
enum LoadError {
    /// No such row.
    Absent,
    /// The origin failed.
    Origin(String),
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
