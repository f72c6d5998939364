//! The values the store's API takes and gives: capacities, expiries,
//! conditions, options, items, changes and statistics.

use std::time::Duration;

use super::arena;
use super::record::{RecordRef, State};
use crate::clock::Now;
use crate::policy::{PolicyKind, PolicyStats};

/// Bytes charged per item on top of its record's chunk: 4 for the slot
/// table entry, about 8 for the hash index entry (4-byte entries at
/// hashbrown's load factor), 8–13 for the policy's links, tags and sketch.
/// BENCHMARKS.md ("memory per item") compares the charge with measured
/// process memory.
pub const ENTRY_OVERHEAD: u32 = 24;

/// Extra bytes charged for an item with a TTL: its timer wheel entry.
pub const EXPIRY_OVERHEAD: u32 = 12;

/// How the store's capacity is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capacity {
    /// A hard limit on bytes: keys, values and per-item overhead.
    Bytes(u64),
    /// A limit on the number of items, whatever their size.
    Entries(u64),
}

/// How an item is weighed against the capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Weigher {
    Bytes,
    Entries,
}

impl Weigher {
    /// The weight of a record of `len` bytes.
    pub(crate) fn charge(self, len: usize, has_ttl: bool) -> u32 {
        match self {
            Weigher::Entries => 1,
            Weigher::Bytes => {
                let ttl = if has_ttl { EXPIRY_OVERHEAD } else { 0 };
                // Records are capped well below 4 GiB by max_item_bytes.
                u32::try_from(arena::footprint(len)).unwrap_or(u32::MAX) + ENTRY_OVERHEAD + ttl
            }
        }
    }
}

/// Why an item left the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RemovalCause {
    Deleted,
    Expired,
}

/// When an item expires, as given to a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expiry {
    /// Keep the existing item's expiry (Redis `KEEPTTL`); for a new item,
    /// never expire.
    Keep,
    /// Never expire (`PERSIST`).
    #[default]
    Never,
    /// Expire at this absolute time, ms since the Unix epoch.
    AtMs(u64),
    /// Expire this many ms from now.
    AfterMs(u64),
}

impl Expiry {
    /// Expire after `ttl`.
    pub fn after(ttl: Duration) -> Self {
        Expiry::AfterMs(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn resolve(self, now: &Now<'_>, current: Option<u64>) -> Option<u64> {
        match self {
            Expiry::Keep => current,
            Expiry::Never => None,
            Expiry::AtMs(at) => Some(at),
            Expiry::AfterMs(ms) => Some(now.get().saturating_add(ms)),
        }
    }
}

/// When a write may happen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Condition {
    /// Always (plain set).
    #[default]
    Always,
    /// Only if the key is absent (`add`, `SET NX`).
    IfAbsent,
    /// Only if the key is present (`replace`, `SET XX`).
    IfPresent,
    /// Only if the item's CAS version is this one (`cas`).
    IfVersion(u64),
}

/// Options of [`Store::set`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// When the write may happen.
    pub condition: Condition,
    /// When the item expires.
    pub expiry: Expiry,
    /// memcached's opaque client flags.
    pub flags: u32,
    /// Give the item this CAS version instead of a fresh one (memcached's
    /// `E` flag: versions from an external clock).
    pub cas: Option<u64>,
    /// With [`Condition::IfVersion`]: a version *older* than the item's is
    /// still stored, but the item is marked stale and keeps its TTL
    /// (memcached's `ms … I`).
    pub stale_if_older: bool,
}

impl SetOptions {
    /// A plain set with a TTL.
    pub fn ttl(ttl: Duration) -> Self {
        SetOptions {
            expiry: Expiry::after(ttl),
            ..SetOptions::default()
        }
    }
}

/// A stored item, seen from inside a callback (under the shard lock).
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    pub(crate) record: RecordRef<'a>,
    pub(crate) last_access_ms: u64,
}

impl<'a> Item<'a> {
    /// The key.
    pub fn key(&self) -> &'a [u8] {
        self.record.key()
    }

    /// The value.
    pub fn value(&self) -> &'a [u8] {
        self.record.value()
    }

    /// The CAS version: changes on every write of this key.
    pub fn cas(&self) -> u64 {
        self.record.cas()
    }

    /// memcached's client flags (0 if never set).
    pub fn flags(&self) -> u32 {
        self.record.meta().flags
    }

    /// Key and value at once (one header parse).
    pub fn key_value(&self) -> (&'a [u8], &'a [u8]) {
        self.record.key_value()
    }

    /// Expiry, ms since the Unix epoch; `None` never expires.
    pub fn expire_at_ms(&self) -> Option<u64> {
        self.record.expire_at()
    }

    /// Marked stale (memcached `md … I`, strata `LINVALIDATE`): the value
    /// may be served, but should be refreshed.
    pub fn is_stale(&self) -> bool {
        self.record.state().has(State::STALE)
    }

    /// A placeholder created on a miss for the caller who fills it (memcached
    /// `mg … N`, strata `LGET`): it has no value yet.
    pub fn is_placeholder(&self) -> bool {
        self.record.state().has(State::PLACEHOLDER)
    }

    /// Some client has been told it won the right to refill this item.
    pub fn win_sent(&self) -> bool {
        self.record.state().has(State::WIN_SENT)
    }

    /// The item has been read since it was written.
    pub fn fetched(&self) -> bool {
        self.record.state().has(State::FETCHED)
    }

    /// When the item was last read (or written), ms since the Unix epoch,
    /// estimated from its promotion epoch: exact to 1/8 of a cache turnover.
    pub fn last_access_ms(&self) -> u64 {
        self.last_access_ms
    }
}

/// What [`Store::compute`]'s callback decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Leave the item as it is (or absent).
    Keep,
    /// Delete the item.
    Remove,
    /// Store this value.
    Set {
        /// The new value.
        value: Vec<u8>,
        /// Its expiry ([`Expiry::Keep`] keeps the old one).
        expiry: Expiry,
        /// Client flags; `None` keeps the old ones (0 for a new item).
        flags: Option<u32>,
    },
    /// Change only the expiry of a present item (a touch).
    Expire(Expiry),
}

/// Counters summed over shards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Reads that found a live item.
    pub hits: u64,
    /// Reads that found nothing (or an expired item).
    pub misses: u64,
    /// Items written (new or replaced).
    pub sets: u64,
    /// Items removed by delete.
    pub deletes: u64,
    /// Items evicted to make room.
    pub evictions: u64,
    /// Pages freed by moving their records into other pages of their size
    /// class (to keep the memory really held within the limit).
    pub compactions: u64,
    /// Expired items removed when accessed.
    pub expired_lazy: u64,
    /// Expired items removed by active expiry.
    pub expired_active: u64,
    /// Items resident now.
    pub items: u64,
    /// Items resident now that carry a TTL.
    pub items_with_ttl: u64,
    /// Capacity units in use (bytes or entries).
    pub used: u64,
    /// The capacity in the same units.
    pub capacity: u64,
    /// Heap bytes of the engine's own structures (index, slot table, policy
    /// metadata, timer wheel), records excluded.
    pub overhead_bytes: u64,
    /// Heap bytes holding records (arena pages and large records).
    pub record_bytes: u64,
    /// The eviction policy.
    pub policy: Option<PolicyKind>,
    /// Policy-specific counters summed over shards.
    pub policy_stats: PolicyStats,
}

impl StoreStats {
    /// Expired items removed either way.
    pub fn expirations(&self) -> u64 {
        self.expired_lazy + self.expired_active
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) sets: u64,
    pub(crate) deletes: u64,
    pub(crate) evictions: u64,
    pub(crate) compactions: u64,
    pub(crate) expired_lazy: u64,
    pub(crate) expired_active: u64,
}
