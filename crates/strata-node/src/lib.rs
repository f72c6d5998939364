//! # strata-node
//!
//! The request-handling node: an HTTP/JSON service over an origin database
//! (SQLite embedded by default, PostgreSQL by URL) with a local cache (L1)
//! in process and the strata cluster (L2) behind it, kept consistent with
//! the origin by leases, versioned sets, server-pushed near-cache
//! invalidation and an invalidator that tails the database's log.
//!
//! # Layout
//!
//! - [`origin`]: the origin table (`items`: id, value, version,
//!   updated_at) on SQLite or PostgreSQL, with the same behaviour on both.
//! - [`invalidator`]: `strata invalidator`: reads committed changes from the
//!   origin's durable log (a PostgreSQL logical replication slot, or the
//!   SQLite outbox table) and deletes the changed keys in the cluster.
//! - [`journal`]: write-behind's durable local journal (fsync before the
//!   acknowledgement, replay on restart, bounded with backpressure).
//! - `pgtest` (hidden): starts a private PostgreSQL for tests and the
//!   consistency checker.
//!
//! - `node.rs`: [`Node`]: the read path (L1 → L2 lease-get → origin) and
//!   the write strategies ([`Strategy`]).
//! - `writebehind.rs`: write-behind's flusher and pending-write overlay.
//! - [`http`]: the HTTP/JSON routes (axum).
//! - [`config`]: settings and the TOML file; `faults` (with the `testing`
//!   feature only): injected trouble for the consistency checker.
//! - [`item`]: the cache key and the bytes a row is cached as.
//! - [`metrics`]: counters and their Prometheus text.

pub mod config;
#[cfg(feature = "testing")]
pub mod faults;
pub mod http;
pub mod invalidator;
pub mod item;
pub mod journal;
pub mod metrics;
mod node;
pub mod origin;
#[cfg(feature = "testing")]
pub mod pgtest;
mod writebehind;

pub use config::{NodeConfig, Strategy};

/// Wall-clock milliseconds since the Unix epoch: the origin's
/// `updated_at`, and commit-to-delete latency against the log's commit
/// timestamps (both wall-clock by nature; nothing here waits on it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
pub use node::{MAX_ID_BYTES, MAX_VALUE_BYTES, Node, NodeError, ReadItem, ReadSource, WriteAck};
