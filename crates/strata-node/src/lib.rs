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
//! The `Node` itself (read path, write strategies), its configuration and
//! the HTTP routes are added in the files named in their module docs.

pub mod invalidator;
pub mod journal;
pub mod origin;
#[doc(hidden)]
pub mod pgtest;
