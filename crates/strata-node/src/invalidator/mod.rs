//! `strata invalidator`: consistency that does not depend on the writer
//! surviving.
//!
//! The request node deletes (or version-sets) a key in the cluster after
//! each write it makes, but a node can crash between its database commit
//! and that delete, a delete can be lost on the network, and other programs
//! write the database too. The invalidator closes all three: it reads the
//! committed changes from the origin's durable log and deletes every
//! changed key in the cluster — and so, through client tracking, in every
//! node's L1.
//!
//! Sources (one file each):
//! - `postgres.rs`: a logical replication slot with the built-in
//!   `test_decoding` plugin, polled over SQL (peek, apply, then advance).
//! - `outbox.rs`: SQLite's `strata_outbox` table, filled by triggers in the
//!   same transaction as the change.
//!
//! The loop is the same for both: **peek** a batch of changes without
//! consuming them, **apply** their deletes to the cluster, and only then
//! **advance** the source past them. A crash anywhere repeats at most the
//! last batch: at-least-once, in commit order, idempotent (deleting a key
//! twice is harmless). A delete that does not reach the key's owner stops
//! the loop before advancing, and it retries the same batch after
//! `retry_delay`: the cluster refused it (a node down, no failover target),
//! or it reached only a stand-in while the owner is down. The stand-in
//! delete keeps readers that fail over from stale copies, and the client
//! would replay the delete on the owner when it returns — but that debt
//! lives in this process only, so a restarted invalidator that had moved
//! on would leave an owner that was cut off (not emptied) serving the old
//! value. Invalidations wait while an owner is down, at most until the
//! client's probe brings it back or the cluster drops it.
//!
//! The latency from commit to L2 delete is measured per change (commit
//! timestamps come from the log itself) into a histogram.
//!
//! # Keys no cache can hold
//!
//! The log holds whatever was written to the database, by strata or not: an
//! empty key, a key longer than the wire allows, a row id that makes one
//! (`item:` and 300 bytes). The cluster client refuses such a key
//! ([`strata_client::check_key`]: the same rule every client call applies,
//! reused rather than restated), and since a batch is retried until every
//! delete is done, one bad key used to stop invalidation for good: the
//! same batch failed forever and no later change was ever applied. Such a
//! key can never be cached, so there is nothing to delete: the invalidator
//! applies the rest of the batch, advances past it, counts the bad keys
//! ([`InvalidatorStats::invalid_keys`], exported as
//! `strata_invalidator_invalid_keys`) and logs one warning per batch with
//! the first few of them, escaped and cut short. Only keys the client's
//! rule refuses are skipped; every other failure still retries the batch.
//!
//! # Lost slots
//!
//! After an error the source is reopened (a restarted database, a dropped
//! connection). A PostgreSQL slot that is gone — dropped, or invalidated
//! because it held more WAL than `max_slot_wal_keep_size` allows — means
//! changes were missed and nothing can say which, so the cluster must be
//! flushed (every L1 follows through tracking). The order matters: the
//! invalidator drops what is left of the slot and creates it again
//! *first*, and the flush comes after, as a `strata.flush` message that the
//! slot's creation writes into the WAL right behind the slot's starting
//! point (see `postgres.rs`). Every change committed after the new slot
//! began is in the slot; every change before it is covered by the flush,
//! which happens when the message is read, after the slot exists. (Flushing
//! first, as this code once did, left a gap: changes committed between the
//! flush and the new slot were neither flushed nor in the slot.) Because
//! the flush travels in the log, it is applied like any change — at least
//! once, surviving a restart of the invalidator, retried while the cluster
//! refuses it. The same holds when a reconnect finds the slot gone and
//! `SlotSource::connect` creates it: that path used to start the new slot
//! without any flush. Set `max_slot_wal_keep_size` so that a stopped
//! invalidator cannot fill the database's disk; the price of hitting it is
//! that one cluster flush.

pub mod outbox;
pub mod postgres;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use strata_client::{Client, ClientError};
use tokio_util::sync::CancellationToken;

use crate::origin::OriginError;
pub use outbox::OutboxSource;
pub use postgres::SlotSource;

/// One committed change: a cache key to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The cache key (`item:<id>`, or a key the application named), as
    /// bytes: another program may have written one that is not UTF-8.
    pub key: Vec<u8>,
    /// When the change committed, in ms since the Unix epoch, if known.
    pub committed_at_ms: Option<i64>,
}

/// Where a source is: what to advance past once a batch is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// The outbox's last sequence number in the batch.
    Outbox(i64),
    /// The replication slot's LSN to advance to.
    Lsn(String),
}

/// Changes peeked from a source, in commit order.
#[derive(Clone, Debug)]
pub struct ChangeBatch {
    /// The changes.
    pub changes: Vec<Change>,
    /// Flush the whole cluster first: a change named no key (PostgreSQL's
    /// `TRUNCATE`).
    pub flush_all: bool,
    /// Advance here after applying them.
    pub position: Position,
}

/// Why the invalidator stopped or a step failed.
#[derive(Debug, thiserror::Error)]
pub enum InvalidatorError {
    /// The origin's log could not be read or advanced.
    #[error(transparent)]
    Origin(#[from] OriginError),
    /// The cluster refused a delete.
    #[error("cluster: {0}")]
    Cluster(#[from] ClientError),
}

/// Settings.
#[derive(Clone, Debug)]
pub struct InvalidatorConfig {
    /// Most changes applied per batch.
    pub batch: usize,
    /// Pause between polls when the log is empty.
    pub poll_interval: Duration,
    /// Pause before retrying after an error.
    pub retry_delay: Duration,
}

impl Default for InvalidatorConfig {
    fn default() -> Self {
        InvalidatorConfig {
            batch: 1000,
            poll_interval: Duration::from_millis(20),
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// A change source.
#[derive(Debug)]
pub enum Source {
    /// SQLite's outbox table.
    Outbox(OutboxSource),
    /// A PostgreSQL logical replication slot (boxed: a client connection
    /// is much larger than the outbox's handle).
    Slot(Box<SlotSource>),
}

impl Source {
    /// Opens the source for the origin at `address` (as [`crate::origin::Origin::open`] takes it).
    pub async fn open(address: &str, slot: &str) -> Result<Source, OriginError> {
        if address.starts_with("postgres://") || address.starts_with("postgresql://") {
            return Ok(Source::Slot(Box::new(SlotSource::connect(address, slot).await?)));
        }
        let path = address.strip_prefix("sqlite:").unwrap_or(address);
        Ok(Source::Outbox(OutboxSource::open(path).await?))
    }

    async fn peek(&self, max: usize) -> Result<Option<ChangeBatch>, OriginError> {
        match self {
            Source::Outbox(source) => source.peek(max).await,
            Source::Slot(source) => {
                Ok(source
                    .peek(i32::try_from(max).unwrap_or(i32::MAX))
                    .await?
                    .map(|batch| ChangeBatch {
                        changes: batch.changes,
                        flush_all: batch.flush_all,
                        position: Position::Lsn(batch.upto_lsn),
                    }))
            }
        }
    }

    async fn advance(&self, position: &Position) -> Result<(), OriginError> {
        match (self, position) {
            (Source::Outbox(source), Position::Outbox(seq)) => source.advance(*seq).await,
            (Source::Slot(source), Position::Lsn(lsn)) => source.advance(lsn).await,
            (_, position) => Err(OriginError::Task(format!("position {position:?} is not this source's"))),
        }
    }
}

impl Invalidator {
    /// What [`run`](Self::run) does after a failed step: reopen a closed
    /// PostgreSQL connection, and reset a lost slot: recreate it, which
    /// queues a cluster flush in the new slot for the next steps to apply
    /// (see "Lost slots" in the module docs). Nothing to do for the outbox.
    pub async fn recover(&self) -> Result<(), InvalidatorError> {
        let mut source = self.source.lock().await;
        let Source::Slot(slot) = &*source else {
            return Ok(());
        };
        if slot.is_closed() {
            let reopened = SlotSource::connect(&self.address, slot.slot()).await?;
            *source = Source::Slot(Box::new(reopened));
        }
        let Source::Slot(slot) = &*source else {
            return Ok(());
        };
        if !slot.is_intact().await? {
            tracing::error!(
                slot = slot.slot(),
                "replication slot lost (dropped, or past max_slot_wal_keep_size): changes were missed; \
                 recreating the slot, then flushing the cluster"
            );
            // What is left of it (an invalidated slot keeps its name).
            let _ = slot.drop_slot().await;
            let recreated = SlotSource::connect(&self.address, slot.slot()).await?;
            *source = Source::Slot(Box::new(recreated));
            self.stats.slot_resets.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Counters and the latency histogram.
#[derive(Debug)]
pub struct InvalidatorStats {
    /// Keys deleted in the cluster.
    pub applied: AtomicU64,
    /// Batches applied.
    pub batches: AtomicU64,
    /// Steps that failed (and were retried).
    pub errors: AtomicU64,
    /// Times a lost slot was reset (slot recreated, cluster flush queued).
    pub slot_resets: AtomicU64,
    /// Keys in the log that no cache can hold (empty, or too long for the
    /// wire: see [`strata_client::check_key`]), skipped.
    pub invalid_keys: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

impl Default for InvalidatorStats {
    fn default() -> Self {
        InvalidatorStats {
            applied: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            slot_resets: AtomicU64::new(0),
            invalid_keys: AtomicU64::new(0),
            latency_us: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")),
        }
    }
}

impl InvalidatorStats {
    /// Commit-to-delete latency quantile `q` (0..=1), in milliseconds.
    pub fn latency_ms(&self, q: f64) -> f64 {
        self.latency_us.lock().value_at_quantile(q) as f64 / 1000.0
    }

    /// Changes whose latency was measured.
    pub fn measured(&self) -> u64 {
        self.latency_us.lock().len()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        use prometheus_client::metrics::counter::Counter;
        use prometheus_client::metrics::gauge::Gauge;
        let mut registry = prometheus_client::registry::Registry::with_prefix("strata_invalidator");
        for (name, help, value) in [
            ("applied", "Keys deleted in the cluster", &self.applied),
            ("batches", "Batches applied", &self.batches),
            ("errors", "Steps that failed and were retried", &self.errors),
            (
                "slot_resets",
                "Lost slots reset (slot recreated, cluster flushed)",
                &self.slot_resets,
            ),
            (
                "invalid_keys",
                "Keys in the log no cache can hold (empty or too long), skipped",
                &self.invalid_keys,
            ),
        ] {
            let counter = Counter::<u64>::default();
            counter.inc_by(value.load(Ordering::Relaxed));
            registry.register(name, help, counter);
        }
        for (name, q) in [
            ("latency_p50_ms", 0.5),
            ("latency_p99_ms", 0.99),
            ("latency_max_ms", 1.0),
        ] {
            let gauge = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
            gauge.set(self.latency_ms(q));
            registry.register(name, "Commit-to-delete latency since start", gauge);
        }
        strata_session::admin::encode(&registry)
    }

    /// Forgets the latencies measured so far.
    pub fn reset_latency(&self) {
        self.latency_us.lock().reset();
    }
}

/// The first few keys, each escaped (`\xNN` for anything not printable
/// ASCII) and cut to 64 bytes, with its length: a log line that neither
/// floods nor lets a key forge one.
fn describe_keys(keys: &[&[u8]]) -> String {
    const SHOWN: usize = 3;
    const KEY_BYTES: usize = 64;
    let mut text = String::new();
    for (index, key) in keys.iter().take(SHOWN).enumerate() {
        if index > 0 {
            text.push_str(", ");
        }
        let shown = &key[..key.len().min(KEY_BYTES)];
        let cut = if key.len() > KEY_BYTES { "…" } else { "" };
        text.push_str(&format!("\"{}{cut}\" ({} bytes)", shown.escape_ascii(), key.len()));
    }
    if keys.len() > SHOWN {
        text.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    text
}

/// The invalidator: a source tailed into a cluster.
#[derive(Debug)]
pub struct Invalidator {
    source: tokio::sync::Mutex<Source>,
    /// The PostgreSQL URL, to reconnect.
    address: String,
    client: Client,
    config: InvalidatorConfig,
    stats: Arc<InvalidatorStats>,
}

impl Invalidator {
    /// An invalidator applying `source`'s changes to `client`'s cluster.
    pub fn new(source: Source, client: Client, config: InvalidatorConfig) -> Self {
        Self::with_stats(source, client, config, Arc::default())
    }

    /// [`Self::new`], counting into `stats` (shared across restarts).
    pub fn with_stats(source: Source, client: Client, config: InvalidatorConfig, stats: Arc<InvalidatorStats>) -> Self {
        let address = match &source {
            Source::Slot(slot) => slot.url().to_owned(),
            Source::Outbox(_) => String::new(),
        };
        Invalidator {
            source: tokio::sync::Mutex::new(source),
            address,
            client,
            config,
            stats,
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<InvalidatorStats> {
        Arc::clone(&self.stats)
    }

    /// One peek–apply–advance round; the number of changes applied (keys
    /// no cache can hold are skipped, not counted), or `None` if the log
    /// was empty.
    pub async fn step(&self) -> Result<Option<usize>, InvalidatorError> {
        let source = self.source.lock().await;
        let Some(batch) = source.peek(self.config.batch).await? else {
            return Ok(None);
        };
        if batch.flush_all {
            self.client.flush_all().await?;
        }
        // Keys no cache can hold cannot be deleted, and were never cached:
        // skip them, or this batch would fail forever (module docs).
        let (mut keys, invalid): (Vec<&[u8]>, Vec<&[u8]>) = batch
            .changes
            .iter()
            .map(|change| change.key.as_slice())
            .partition(|key| strata_client::check_key(key).is_ok());
        // A transaction touching a key many times needs one delete.
        keys.sort_unstable();
        keys.dedup();
        // Every delete must reach the key's owner before the log moves on
        // (a stand-in's copy is not enough: see `delete_many_at_owners`).
        self.client.delete_many_at_owners(&keys).await?;
        let now_ms = crate::now_ms();
        {
            let mut latency = self.stats.latency_us.lock();
            for change in &batch.changes {
                if let Some(at) = change.committed_at_ms {
                    let micros = (now_ms - at).max(0) as u64 * 1000;
                    let _ = latency.record(micros.max(1));
                }
            }
        }
        source.advance(&batch.position).await?;
        if !invalid.is_empty() {
            tracing::warn!(
                skipped = invalid.len(),
                keys = %describe_keys(&invalid),
                "change log names keys no cache can hold (empty, or too long for the protocol); \
                 skipped them and applied the rest of the batch"
            );
            self.stats
                .invalid_keys
                .fetch_add(invalid.len() as u64, Ordering::Relaxed);
        }
        let applied = batch.changes.len() - invalid.len();
        self.stats.applied.fetch_add(applied as u64, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        Ok(Some(applied))
    }

    /// Steps until the log is empty (the checker's quiescence).
    pub async fn drain(&self) -> Result<usize, InvalidatorError> {
        let mut total = 0;
        loop {
            match self.step().await? {
                None => return Ok(total),
                Some(applied) => total += applied,
            }
        }
    }

    /// Runs until `shutdown`: steps while there are changes, polls every
    /// `poll_interval` when there are none, retries after `retry_delay` on
    /// errors (logged).
    pub async fn run(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let pause = match self.step().await {
                Ok(None) => self.config.poll_interval,
                Ok(Some(_)) => continue,
                Err(error) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "invalidator step failed; retrying");
                    if let Err(error) = self.recover().await {
                        tracing::warn!(%error, "invalidator cannot recover yet");
                    }
                    self.config.retry_delay
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_keys_are_logged_escaped_cut_short_and_few() {
        let long = vec![b'k'; 300];
        let keys: Vec<&[u8]> = vec![b"", b"a \"quoted\"\n\xff key", &long, b"x", b"y"];
        let text = describe_keys(&keys);
        assert!(
            text.starts_with(r#""" (0 bytes), "a \"quoted\"\n\xff key" (16 bytes), "kkk"#),
            "{text}"
        );
        assert!(text.contains("k…\" (300 bytes) and 2 more"), "{text}");
        assert!(!text.contains(&"k".repeat(65)), "{text}");
    }

    #[test]
    fn the_invalid_key_counter_is_exported() {
        let stats = InvalidatorStats::default();
        stats.invalid_keys.store(3, Ordering::Relaxed);
        let text = stats.render().unwrap();
        assert!(text.contains("strata_invalidator_invalid_keys_total 3"), "{text}");
    }
}
