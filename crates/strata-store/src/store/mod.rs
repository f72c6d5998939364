//! The concurrent, sharded, memory-bounded store.
//!
//! # Concurrency
//!
//! Keys are spread over a power-of-two number of shards by their hash; each
//! shard is a `parking_lot::RwLock` around a [`Shard`], padded to its own
//! cache line. There is no global lock anywhere. A read takes only its
//! shard's shared lock: it finds the item, calls the caller's callback, and
//! appends the access to the shard's read buffer (`reads.rs`), which writers
//! apply to the policy in batches. So readers of one shard run in parallel
//! and never write the policy's cache lines. Writes take the exclusive lock,
//! drain the buffer, then change the shard. Callbacks that see an item
//! ([`Store::get`]) run under a shard lock, so they must be short and must
//! not call back into the store.
//!
//! The clock is read only when an item with a TTL is involved: most cache
//! items have none, and a clock read costs as much as a lookup.
//!
//! # Memory
//!
//! In [`Capacity::Bytes`] mode every item is charged
//!
//! ```text
//! chunk(record bytes) + ENTRY_OVERHEAD (+ EXPIRY_OVERHEAD if it has a TTL)
//! ```
//!
//! where the record packs key, value, slot, CAS and optional expiry and
//! flags (`record.rs`: 15 bytes of header for small items), `chunk` rounds
//! it up to its arena size class (`arena.rs`: to 8 bytes below 256, to about
//! 1/16 above), and the overheads stand for the slot table entry, the index
//! entry, the policy's per-slot metadata and the timer wheel entry. For 16-
//! byte keys and 32-byte values that is 64 + 24 = 88 bytes charged per item;
//! BENCHMARKS.md compares it with measured process memory per item. The
//! budget is split evenly over shards and is hard: an insert evicts until the
//! item fits, and an item that cannot fit is refused with
//! [`StoreError::TooLarge`].
//!
//! # Promotion epochs
//!
//! The policy sees at most one hit per item per *promotion epoch* (while
//! 1/8 of the capacity is inserted); repeated hits on an already promoted
//! item skip the read buffer entirely. See `Shard::epoch` for why this loses
//! no hit ratio and what it saves.
//!
//! # Layout
//!
//! - `record.rs`: the byte layout of one item.
//! - `arena.rs`: the slab pages records live in, addressed by 4-byte locators.
//! - `shard.rs`: index, slots, policy, budget and timer wheel of one shard.
//! - `reads.rs`: the per-shard buffer of reads for the policy.
//! - `expiry.rs`: the timer wheel for active expiry.

mod arena;
mod expiry;
mod reads;
mod record;
mod shard;

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use foldhash::fast::FixedState;
use parking_lot::{RwLock, RwLockWriteGuard};

use crate::clock::{Clock, Now, SystemClock};
use crate::error::StoreError;
use crate::policy::{PolicyKind, PolicyStats};
use reads::{Access, ReadBuffer};
use record::{Meta, RecordRef};
use shard::Shard;

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
    fn charge(self, len: usize, has_ttl: bool) -> u32 {
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

    fn resolve(self, now: &Now<'_>, current: Option<u64>) -> Option<u64> {
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
    record: RecordRef<'a>,
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
    /// Expired items removed when accessed.
    pub expired_lazy: u64,
    /// Expired items removed by active expiry.
    pub expired_active: u64,
    /// Items resident now.
    pub items: u64,
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
    pub(crate) expired_lazy: u64,
    pub(crate) expired_active: u64,
}

/// Builds a [`Store`].
#[derive(Clone, Debug)]
pub struct StoreBuilder {
    capacity: Capacity,
    max_item_bytes: u64,
    policy: PolicyKind,
    shards: Option<usize>,
    clock: Arc<dyn Clock>,
    hash_seed: Option<u64>,
    expiry_budget: usize,
}

impl StoreBuilder {
    fn new(capacity: Capacity) -> Self {
        Self {
            capacity,
            max_item_bytes: 1024 * 1024,
            policy: PolicyKind::DEFAULT,
            shards: None,
            clock: Arc::new(SystemClock),
            hash_seed: None,
            expiry_budget: 32,
        }
    }

    /// Largest item (key + value + header bytes) accepted; default 1 MiB.
    pub fn max_item_bytes(mut self, bytes: u64) -> Self {
        self.max_item_bytes = bytes;
        self
    }

    /// The eviction policy; default [`PolicyKind::DEFAULT`].
    pub fn policy(mut self, policy: PolicyKind) -> Self {
        self.policy = policy;
        self
    }

    /// Number of shards (rounded up to a power of two). By default: enough
    /// for the cores, but few enough that each shard holds at least four
    /// maximum-size items (bytes) or 256 items (entries).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.max(1));
        self
    }

    /// The clock expiry reads; default the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A fixed hash seed, for reproducible placement; default random (which
    /// keeps adversaries from choosing colliding keys).
    pub fn hash_seed(mut self, seed: u64) -> Self {
        self.hash_seed = Some(seed);
        self
    }

    /// Maximum expired items a write reclaims on the side (active expiry
    /// work per write); default 32. [`Store::run_pending_expiry`] does more.
    pub fn expiry_budget(mut self, entries: usize) -> Self {
        self.expiry_budget = entries;
        self
    }

    /// Builds the store.
    pub fn build(self) -> Store {
        let (total, weigher) = match self.capacity {
            Capacity::Bytes(bytes) => (bytes, Weigher::Bytes),
            Capacity::Entries(entries) => (entries, Weigher::Entries),
        };
        let shard_count = self
            .shards
            .unwrap_or_else(|| default_shards(self.capacity, self.max_item_bytes));
        let shard_count = shard_count.next_power_of_two().min(1 << 16);
        let shard_bits = shard_count.trailing_zeros();
        let seed = self.hash_seed.unwrap_or_else(random_seed);
        let hasher = FixedState::with_seed(seed);
        let now = self.clock.now_ms();
        let shards = (0..shard_count)
            .map(|i| {
                // Spread the remainder so the shard budgets sum to the total.
                let capacity = total / shard_count as u64 + u64::from((i as u64) < total % shard_count as u64);
                CachePadded::new(ShardCell {
                    filtered_hits: AtomicU64::new(0),
                    state: RwLock::new(Shard::new(
                        self.policy.build(capacity),
                        capacity,
                        hasher.clone(),
                        weigher,
                        i as u64,
                        shard_bits,
                        now,
                    )),
                    reads: ReadBuffer::default(),
                })
            })
            .collect();
        Store {
            shards,
            shard_mask: shard_count as u64 - 1,
            hasher,
            clock: self.clock,
            capacity: self.capacity,
            max_item_bytes: self.max_item_bytes,
            policy: self.policy,
            expiry_budget: self.expiry_budget,
        }
    }
}

fn default_shards(capacity: Capacity, max_item_bytes: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, usize::from);
    let max = (cores * 4).next_power_of_two();
    let by_size = match capacity {
        Capacity::Bytes(bytes) => bytes / max_item_bytes.max(1) / 4,
        Capacity::Entries(entries) => entries / 256,
    };
    let by_size = usize::try_from(by_size).unwrap_or(usize::MAX).max(1);
    // Round down to a power of two so no shard falls below the floor.
    let by_size = 1usize << (usize::BITS - 1 - by_size.leading_zeros());
    by_size.min(max)
}

fn random_seed() -> u64 {
    use std::collections::hash_map::RandomState;
    RandomState::new().hash_one(0x5eed_u64)
}

/// One shard and its read buffer.
///
/// `filtered_hits` sits right before the lock so that counting a hit that
/// skips the read buffer dirties the cache line the lock already dirtied.
#[derive(Debug)]
#[repr(C)]
struct ShardCell {
    /// Hits not shown to the policy (already promoted in this epoch).
    filtered_hits: AtomicU64,
    state: RwLock<Shard>,
    reads: ReadBuffer,
}

impl ShardCell {
    /// The shard, exclusively, with buffered reads applied.
    fn write(&self) -> RwLockWriteGuard<'_, Shard> {
        let mut shard = self.state.write();
        self.drain_into(&mut shard);
        shard
    }

    fn drain_into(&self, shard: &mut Shard) {
        if self.filtered_hits.load(Ordering::Relaxed) != 0 {
            shard.counters.hits += self.filtered_hits.swap(0, Ordering::Relaxed);
        }
        if !self.reads.is_pending() {
            return;
        }
        let (hits, misses) = self.reads.drain(|access| shard.apply_access(access));
        shard.counters.hits += hits;
        shard.counters.misses += misses;
    }
}

/// The storage engine: a concurrent, sharded, memory-bounded map from byte
/// keys to byte values with TTLs, CAS versions and eviction.
///
/// ```
/// use strata_store::{Capacity, SetOptions, Store};
///
/// let store = Store::builder(Capacity::Bytes(64 << 20)).build();
/// store.set(b"greeting", b"hello", SetOptions::default()).unwrap();
/// assert_eq!(store.get_value(b"greeting").as_deref(), Some(&b"hello"[..]));
/// ```
#[derive(Debug)]
pub struct Store {
    shards: Box<[CachePadded<ShardCell>]>,
    shard_mask: u64,
    hasher: FixedState,
    clock: Arc<dyn Clock>,
    capacity: Capacity,
    max_item_bytes: u64,
    policy: PolicyKind,
    expiry_budget: usize,
}

impl Store {
    /// Starts building a store with this capacity.
    pub fn builder(capacity: Capacity) -> StoreBuilder {
        StoreBuilder::new(capacity)
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard_for(&self, hash: u64) -> &ShardCell {
        // The index uses the low bits (bucket) and top 7 bits (tag); take the
        // shard from the middle so the three are independent.
        &self.shards[((hash >> 32) & self.shard_mask) as usize]
    }

    /// The clock this store reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The configured capacity.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    /// The eviction policy.
    pub fn policy(&self) -> PolicyKind {
        self.policy
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Largest item accepted.
    pub fn max_item_bytes(&self) -> u64 {
        self.max_item_bytes
    }

    /// Looks `key` up, counting a hit or miss and updating the policy, and
    /// calls `f` with the item under the shard's shared lock.
    pub fn get<R>(&self, key: &[u8], f: impl FnOnce(Item<'_>) -> R) -> Option<R> {
        self.read(key, true, f)
    }

    fn read<R>(&self, key: &[u8], counted: bool, f: impl FnOnce(Item<'_>) -> R) -> Option<R> {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let cell = self.shard_for(hash);
        let shard = cell.state.read();
        let mut expired = false;
        let (result, access) = match shard.find(hash, key) {
            Some(record) if record.expire_at().is_none_or(|at| at > now.get()) => {
                let access = if record.promoted_epoch() == shard.epoch() {
                    // Already promoted in this epoch: count it, skip the policy.
                    if counted {
                        cell.filtered_hits.fetch_add(1, Ordering::Relaxed);
                    }
                    None
                } else {
                    Some(Access::Hit {
                        slot: record.slot(),
                        hash,
                    })
                };
                (Some(f(Item { record })), access)
            }
            found => {
                expired = found.is_some();
                (None, Some(Access::Miss { hash }))
            }
        };
        let full = counted && access.is_some_and(|access| cell.reads.record(access));
        drop(shard);
        if expired {
            // Lazy expiry: reclaim it now, under the exclusive lock (rare).
            cell.write().find_live(hash, key, &now);
        } else if full && let Some(mut shard) = cell.state.try_write() {
            cell.drain_into(&mut shard);
        }
        result
    }

    /// A copy of the value of `key`, if present.
    pub fn get_value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key, |item| item.value().to_vec())
    }

    /// Looks `key` up without touching recency, frequency or hit counters.
    pub fn peek<R>(&self, key: &[u8], f: impl FnOnce(Item<'_>) -> R) -> Option<R> {
        self.read(key, false, f)
    }

    /// True if `key` is present (no recency update).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.peek(key, |_| ()).is_some()
    }

    fn check_size(&self, shard: &Shard, key_len: usize, value_len: usize, meta: &Meta) -> Result<(), StoreError> {
        let size = record::encoded_len(key_len, value_len, meta);
        if size as u64 > self.max_item_bytes {
            return Err(StoreError::TooLarge {
                size: size as u64,
                limit: self.max_item_bytes,
            });
        }
        let weight = match self.capacity {
            Capacity::Entries(_) => 1,
            Capacity::Bytes(_) => u64::from(Weigher::Bytes.charge(size, meta.expire_at.is_some())),
        };
        if weight > shard.capacity {
            return Err(StoreError::TooLarge {
                size: weight,
                limit: shard.capacity,
            });
        }
        Ok(())
    }

    /// Stores `value` under `key` if `options.condition` holds. Returns the
    /// item's new CAS version.
    pub fn set(&self, key: &[u8], value: &[u8], options: SetOptions) -> Result<u64, StoreError> {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let mut meta = Meta {
            cas: 0,
            expire_at: options.expiry.resolve(&now, None),
            flags: options.flags,
        };
        let mut shard = self.shard_for(hash).write();
        self.check_size(&shard, key.len(), value.len(), &meta)?;
        let existing = shard.find_live(hash, key, &now);
        if let Some(slot) = existing {
            let current = shard.items.record(slot);
            if options.expiry == Expiry::Keep {
                meta.expire_at = current.expire_at();
                self.check_size(&shard, key.len(), value.len(), &meta)?;
            }
            match options.condition {
                Condition::IfAbsent => return Err(StoreError::NotStored),
                Condition::IfVersion(cas) if current.cas() != cas => return Err(StoreError::Exists),
                _ => {}
            }
        } else {
            match options.condition {
                Condition::IfPresent => return Err(StoreError::NotStored),
                Condition::IfVersion(_) => return Err(StoreError::NotFound),
                _ => {}
            }
        }
        meta.cas = shard.next_cas();
        let copy = |out: &mut [u8]| out.copy_from_slice(value);
        match existing {
            Some(slot) => shard.rewrite(slot, hash, key, value.len(), &meta, copy),
            None => {
                shard.insert(hash, key, value.len(), &meta, copy);
            }
        }
        self.expire_on_the_side(&mut shard, &now);
        Ok(meta.cas)
    }

    fn expire_on_the_side(&self, shard: &mut Shard, now: &Now<'_>) {
        if self.expiry_budget > 0 && shard.expiry_due(now) {
            shard.expire(now.get(), self.expiry_budget);
        }
    }

    /// Deletes `key`. Returns true if it was present.
    pub fn delete(&self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let mut shard = self.shard_for(hash).write();
        match shard.find_live(hash, key, &now) {
            Some(slot) => {
                shard.remove(slot, hash, RemovalCause::Deleted);
                true
            }
            None => false,
        }
    }

    /// Deletes `key` only if its CAS version is `cas`.
    pub fn delete_if_version(&self, key: &[u8], cas: u64) -> Result<(), StoreError> {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let mut shard = self.shard_for(hash).write();
        let slot = shard.find_live(hash, key, &now).ok_or(StoreError::NotFound)?;
        if shard.items.record(slot).cas() != cas {
            return Err(StoreError::Exists);
        }
        shard.remove(slot, hash, RemovalCause::Deleted);
        Ok(())
    }

    /// Removes `key` and returns its value (Redis `GETDEL`).
    pub fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let mut shard = self.shard_for(hash).write();
        let slot = shard.lookup(hash, key, &now)?;
        let value = shard.items.record(slot).value().to_vec();
        shard.remove(slot, hash, RemovalCause::Deleted);
        Some(value)
    }

    /// Changes the expiry of a present `key` (memcached `touch`, Redis
    /// `EXPIRE`/`PERSIST`); counts as an access. Returns false if absent.
    pub fn touch(&self, key: &[u8], expiry: Expiry) -> bool {
        self.compute(key, |item| match item {
            Some(_) => (Change::Expire(expiry), true),
            None => (Change::Keep, false),
        })
        .map(|(present, _)| present)
        .unwrap_or(false)
    }

    /// Remaining time to live of `key`: `None` if absent, `Some(None)` if it
    /// never expires.
    pub fn ttl(&self, key: &[u8]) -> Option<Option<Duration>> {
        self.peek(key, |item| {
            item.expire_at_ms()
                .map(|at| Duration::from_millis(at.saturating_sub(self.clock.now_ms())))
        })
    }

    /// Reads and changes `key` atomically: `f` sees the live item (if any)
    /// and decides the [`Change`]; its second result is returned along with
    /// the new CAS version when something was written. `f` runs under the
    /// shard lock: keep it short.
    ///
    /// This is the primitive behind read-modify-write commands (GETSET,
    /// SETRANGE, INCRBYFLOAT, …); common ones have their own methods.
    pub fn compute<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<Item<'_>>) -> (Change, R),
    ) -> Result<(R, Option<u64>), StoreError> {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let mut shard = self.shard_for(hash).write();
        let existing = shard.lookup(hash, key, &now);
        let (change, result) = f(existing.map(|slot| Item {
            record: shard.items.record(slot),
        }));
        let cas = match change {
            Change::Keep => None,
            Change::Remove => {
                if let Some(slot) = existing {
                    shard.remove(slot, hash, RemovalCause::Deleted);
                }
                None
            }
            Change::Set { value, expiry, flags } => {
                let old = existing.map(|slot| shard.items.record(slot).meta());
                let meta = Meta {
                    cas: 0,
                    expire_at: expiry.resolve(&now, old.and_then(|m| m.expire_at)),
                    flags: flags.unwrap_or_else(|| old.map_or(0, |m| m.flags)),
                };
                self.check_size(&shard, key.len(), value.len(), &meta)?;
                let meta = Meta {
                    cas: shard.next_cas(),
                    ..meta
                };
                let copy = |out: &mut [u8]| out.copy_from_slice(&value);
                match existing {
                    Some(slot) => shard.rewrite(slot, hash, key, value.len(), &meta, copy),
                    None => {
                        shard.insert(hash, key, value.len(), &meta, copy);
                    }
                }
                Some(meta.cas)
            }
            Change::Expire(expiry) => match existing {
                Some(slot) => {
                    let old = shard.items.record(slot).meta();
                    let expire_at = expiry.resolve(&now, old.expire_at);
                    if expire_at.is_some_and(|at| at <= now.get()) {
                        // An expiry in the past deletes, as in Redis.
                        shard.remove(slot, hash, RemovalCause::Expired);
                        shard.counters.expired_lazy += 1;
                        None
                    } else {
                        let meta = Meta {
                            cas: shard.next_cas(),
                            expire_at,
                            ..old
                        };
                        shard.set_meta(slot, hash, &meta);
                        Some(meta.cas)
                    }
                }
                None => None,
            },
        };
        self.expire_on_the_side(&mut shard, &now);
        Ok((result, cas))
    }

    /// Adds `delta` to the signed 64-bit decimal integer stored at `key`
    /// (Redis `INCRBY`): a missing key counts as 0; a value that is not a
    /// canonical integer is [`StoreError::NotAnInteger`]; overflow is
    /// [`StoreError::Overflow`]. The expiry is kept.
    pub fn incr_by(&self, key: &[u8], delta: i64) -> Result<i64, StoreError> {
        let (result, _) = self.compute(key, |item| {
            let current = match item {
                None => 0,
                Some(item) => match parse_i64(item.value()) {
                    Some(n) => n,
                    None => return (Change::Keep, Err(StoreError::NotAnInteger)),
                },
            };
            match current.checked_add(delta) {
                Some(next) => (
                    Change::Set {
                        value: next.to_string().into_bytes(),
                        expiry: Expiry::Keep,
                        flags: None,
                    },
                    Ok(next),
                ),
                None => (Change::Keep, Err(StoreError::Overflow)),
            }
        })?;
        result
    }

    /// memcached `incr`/`decr`: the value must be an unsigned 64-bit decimal
    /// integer; increments wrap at 2^64, decrements stop at 0; a missing key
    /// is [`StoreError::NotFound`].
    pub fn incr_unsigned(&self, key: &[u8], delta: u64, decrement: bool) -> Result<u64, StoreError> {
        let (result, _) = self.compute(key, |item| {
            let Some(item) = item else {
                return (Change::Keep, Err(StoreError::NotFound));
            };
            let Some(current) = parse_u64(item.value()) else {
                return (Change::Keep, Err(StoreError::NotAnInteger));
            };
            let next = if decrement {
                current.saturating_sub(delta)
            } else {
                current.wrapping_add(delta)
            };
            (
                Change::Set {
                    value: next.to_string().into_bytes(),
                    expiry: Expiry::Keep,
                    flags: None,
                },
                Ok(next),
            )
        })?;
        result
    }

    /// Appends (or prepends) `data` to the value of `key`. A missing key is
    /// created when `create` is set (Redis `APPEND`), else it is
    /// [`StoreError::NotFound`] (memcached). Returns the new length.
    pub fn append(&self, key: &[u8], data: &[u8], prepend: bool, create: bool) -> Result<usize, StoreError> {
        let (result, _) = self.compute(key, |item| {
            let value = match item {
                None if !create => return (Change::Keep, Err(StoreError::NotFound)),
                None => data.to_vec(),
                Some(item) => {
                    let old = item.value();
                    let mut value = Vec::with_capacity(old.len() + data.len());
                    if prepend {
                        value.extend_from_slice(data);
                        value.extend_from_slice(old);
                    } else {
                        value.extend_from_slice(old);
                        value.extend_from_slice(data);
                    }
                    value
                }
            };
            let len = value.len();
            (
                Change::Set {
                    value,
                    expiry: Expiry::Keep,
                    flags: None,
                },
                Ok(len),
            )
        })?;
        result
    }

    /// Removes every item. Returns how many there were.
    pub fn flush(&self) -> usize {
        self.shards.iter().map(|cell| cell.write().clear()).sum()
    }

    /// Cursor-based iteration, for SCAN and snapshots. Start with cursor 0;
    /// each call visits up to `count` live items and returns the cursor to
    /// continue from, 0 when done. An item present for the whole iteration
    /// is visited exactly once; items added or removed meanwhile may or may
    /// not be. `f` runs under a shard lock.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Item<'_>)) -> u64 {
        let now = Now::new(self.clock.as_ref());
        let mut shard_index = (cursor >> 32) as usize;
        let mut slot = (cursor & u64::from(u32::MAX)) as usize;
        let mut visited = 0;
        while shard_index < self.shards.len() {
            let shard = self.shards[shard_index].state.read();
            while let Some(found) = shard.next_occupied(slot) {
                slot = found as usize + 1;
                let record = shard.items.record(found);
                if record.expire_at().is_some_and(|at| at <= now.get()) {
                    continue;
                }
                f(Item { record });
                visited += 1;
                if visited >= count.max(1) {
                    if slot >= shard.slot_count() {
                        shard_index += 1;
                        slot = 0;
                    }
                    return if shard_index >= self.shards.len() {
                        0
                    } else {
                        (shard_index as u64) << 32 | slot as u64
                    };
                }
            }
            shard_index += 1;
            slot = 0;
        }
        0
    }

    /// Active expiry: reclaims up to `budget` expired items per shard.
    /// Returns how many were removed. Servers call this on a timer; the
    /// store also does a little on every write.
    pub fn run_pending_expiry(&self, budget: usize) -> usize {
        let now = Now::new(self.clock.as_ref());
        self.shards
            .iter()
            .map(|cell| {
                if !cell.state.read().expiry_due(&now) {
                    return 0;
                }
                let mut shard = cell.write();
                if shard.expiry_due(&now) {
                    shard.expire(now.get(), budget)
                } else {
                    0
                }
            })
            .sum()
    }

    /// Number of items (expired ones not yet reclaimed included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|cell| cell.state.read().len()).sum()
    }

    /// True when no items are stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity units in use: bytes charged, or items.
    pub fn used(&self) -> u64 {
        self.shards.iter().map(|cell| cell.state.read().used).sum()
    }

    /// Counters and sizes, summed over shards.
    pub fn stats(&self) -> StoreStats {
        let mut stats = StoreStats {
            policy: Some(self.policy),
            ..StoreStats::default()
        };
        for cell in self.shards.iter() {
            let shard = cell.write();
            let c = shard.counters;
            stats.hits += c.hits;
            stats.misses += c.misses;
            stats.sets += c.sets;
            stats.deletes += c.deletes;
            stats.evictions += c.evictions;
            stats.expired_lazy += c.expired_lazy;
            stats.expired_active += c.expired_active;
            stats.items += shard.len() as u64;
            stats.used += shard.used;
            stats.capacity += shard.capacity;
            stats.overhead_bytes += shard.overhead_bytes() as u64;
            stats.record_bytes += shard.arena_bytes() as u64;
            stats.policy_stats.merge(&shard.policy.stats());
        }
        stats
    }
}

/// Parses a canonical signed decimal integer as Redis does (no spaces, no
/// `+`, no leading zeros).
fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    if text == "-0" {
        return None;
    }
    text.parse().ok()
}

/// Parses an unsigned decimal integer as memcached does, tolerating the
/// trailing spaces memcached's own `decr` leaves behind.
fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?.trim_end_matches(' ');
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests;
