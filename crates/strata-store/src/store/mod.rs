//! The concurrent, sharded, memory-bounded store.
//!
//! # Concurrency
//!
//! Keys are spread over a power-of-two number of shards by their hash; each
//! shard is a `parking_lot::Mutex` around a [`Shard`], padded to its own cache
//! line. There is no global lock anywhere: a read locks one shard, briefly.
//! A read must lock because it updates the policy's recency or frequency
//! state; with enough shards the lock is almost never contended, and a plain
//! mutex held for ~100 ns beats a read-write lock whose reader count bounces
//! between cores. Callbacks that see an item ([`Store::get`]) run under the
//! shard lock, so they must be short and must not call back into the store.
//!
//! # Memory
//!
//! In [`Capacity::Bytes`] mode every item is charged
//! `record bytes + ENTRY_OVERHEAD (+ EXPIRY_OVERHEAD if it has a TTL)`,
//! where the record holds key, value, CAS and optional expiry and flags in one
//! packed allocation (see `record.rs`), and the overheads stand for the slot
//! pointer, the index entry, the policy's per-slot metadata and the timer
//! wheel entry. The budget is split evenly over shards and is hard: an insert
//! evicts until the item fits, and an item that cannot fit is refused with
//! [`StoreError::TooLarge`]. BENCHMARKS.md compares the charge with measured
//! process memory.
//!
//! # Layout
//!
//! - `record.rs`: one item in one allocation.
//! - `shard.rs`: index, slots, policy and budget of one shard.
//! - `expiry.rs`: the timer wheel for active expiry.

mod expiry;
mod record;
mod shard;

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use foldhash::fast::FixedState;
use parking_lot::Mutex;

use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;
use crate::policy::{PolicyKind, PolicyStats};
use record::{Meta, Record};
use shard::Shard;

/// Bytes charged per item on top of its record: 8 for the slot pointer,
/// ~8 for the hash index entry, ~8–13 for the policy's links and tags, and
/// allocator rounding. Calibrated against measured process memory (see
/// BENCHMARKS.md, "memory per item").
pub const ENTRY_OVERHEAD: u32 = 32;

/// Extra bytes charged for an item with a TTL: its timer wheel entry.
pub const EXPIRY_OVERHEAD: u32 = 16;

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
    fn weight(self, record: &Record) -> u32 {
        match self {
            Weigher::Entries => 1,
            Weigher::Bytes => {
                let ttl = if record.expire_at().is_some() {
                    EXPIRY_OVERHEAD
                } else {
                    0
                };
                // Records are capped well below 4 GiB by max_item_bytes.
                u32::try_from(record.encoded_len()).unwrap_or(u32::MAX) + ENTRY_OVERHEAD + ttl
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

    fn resolve(self, now_ms: u64, current: Option<u64>) -> Option<u64> {
        match self {
            Expiry::Keep => current,
            Expiry::Never => None,
            Expiry::AtMs(at) => Some(at),
            Expiry::AfterMs(ms) => Some(now_ms.saturating_add(ms)),
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
    record: &'a Record,
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
                CachePadded::new(Mutex::new(Shard::new(
                    self.policy.build(capacity),
                    capacity,
                    hasher.clone(),
                    weigher,
                    i as u64,
                    shard_bits,
                    now,
                )))
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
    shards: Box<[CachePadded<Mutex<Shard>>]>,
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

    fn shard_for(&self, hash: u64) -> &Mutex<Shard> {
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
    /// calls `f` with the item under the shard lock.
    pub fn get<R>(&self, key: &[u8], f: impl FnOnce(Item<'_>) -> R) -> Option<R> {
        let hash = self.hash(key);
        let now = self.clock.now_ms();
        let mut shard = self.shard_for(hash).lock();
        let slot = shard.lookup(hash, key, now)?;
        Some(f(Item {
            record: shard.slots.record(slot),
        }))
    }

    /// A copy of the value of `key`, if present.
    pub fn get_value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key, |item| item.value().to_vec())
    }

    /// Looks `key` up without touching recency, frequency or hit counters.
    pub fn peek<R>(&self, key: &[u8], f: impl FnOnce(Item<'_>) -> R) -> Option<R> {
        let hash = self.hash(key);
        let now = self.clock.now_ms();
        let mut shard = self.shard_for(hash).lock();
        let slot = shard.find_live(hash, key, now)?;
        Some(f(Item {
            record: shard.slots.record(slot),
        }))
    }

    /// True if `key` is present (no recency update).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.peek(key, |_| ()).is_some()
    }

    fn check_size(&self, shard: &Shard, key_len: usize, value_len: usize, meta: &Meta) -> Result<(), StoreError> {
        let size = record::encoded_len(key_len, value_len, meta) as u64;
        if size > self.max_item_bytes {
            return Err(StoreError::TooLarge {
                size,
                limit: self.max_item_bytes,
            });
        }
        let weight = match self.capacity {
            Capacity::Entries(_) => 1,
            Capacity::Bytes(_) => {
                size + u64::from(ENTRY_OVERHEAD)
                    + if meta.expire_at.is_some() {
                        u64::from(EXPIRY_OVERHEAD)
                    } else {
                        0
                    }
            }
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
        let now = self.clock.now_ms();
        let fresh_expiry = options.expiry.resolve(now, None);
        let meta = Meta {
            cas: 0,
            expire_at: fresh_expiry,
            flags: options.flags,
        };
        // Copy the value before taking the lock; only bookkeeping happens
        // under it.
        let record = Record::new(key, value, meta);
        let mut shard = self.shard_for(hash).lock();
        self.check_size(&shard, key.len(), value.len(), &meta)?;
        let existing = shard.find_live(hash, key, now);
        match (options.condition, existing) {
            (Condition::IfAbsent, Some(_)) | (Condition::IfPresent, None) => return Err(StoreError::NotStored),
            (Condition::IfVersion(_), None) => return Err(StoreError::NotFound),
            (Condition::IfVersion(cas), Some(slot)) if shard.slots.record(slot).cas() != cas => {
                return Err(StoreError::Exists);
            }
            _ => {}
        }
        let cas = shard.next_cas();
        let record = match (options.expiry, existing) {
            (Expiry::Keep, Some(slot)) => {
                let kept = shard.slots.record(slot).expire_at();
                record.with_meta(Meta {
                    cas,
                    expire_at: kept,
                    flags: options.flags,
                })
            }
            _ => {
                let mut record = record;
                record.set_cas(cas);
                record
            }
        };
        match existing {
            Some(slot) => shard.replace(slot, hash, record),
            None => {
                shard.insert(hash, record);
            }
        }
        self.expire_on_the_side(&mut shard, now);
        Ok(cas)
    }

    fn expire_on_the_side(&self, shard: &mut Shard, now: u64) {
        if self.expiry_budget > 0 && shard.expiry_due(now) {
            shard.expire(now, self.expiry_budget);
        }
    }

    /// Deletes `key`. Returns true if it was present.
    pub fn delete(&self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        let now = self.clock.now_ms();
        let mut shard = self.shard_for(hash).lock();
        match shard.find_live(hash, key, now) {
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
        let now = self.clock.now_ms();
        let mut shard = self.shard_for(hash).lock();
        let slot = shard.find_live(hash, key, now).ok_or(StoreError::NotFound)?;
        if shard.slots.record(slot).cas() != cas {
            return Err(StoreError::Exists);
        }
        shard.remove(slot, hash, RemovalCause::Deleted);
        Ok(())
    }

    /// Removes `key` and returns its value (Redis `GETDEL`).
    pub fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let hash = self.hash(key);
        let now = self.clock.now_ms();
        let mut shard = self.shard_for(hash).lock();
        let slot = shard.lookup(hash, key, now)?;
        let record = shard.remove(slot, hash, RemovalCause::Deleted);
        Some(record.value().to_vec())
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
        let now = self.clock.now_ms();
        self.peek(key, |item| {
            item.expire_at_ms()
                .map(|at| Duration::from_millis(at.saturating_sub(now)))
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
        let now = self.clock.now_ms();
        let mut shard = self.shard_for(hash).lock();
        let existing = shard.lookup(hash, key, now);
        let (change, result) = f(existing.map(|slot| Item {
            record: shard.slots.record(slot),
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
                let old = existing.map(|slot| shard.slots.record(slot).meta());
                let meta = Meta {
                    cas: 0,
                    expire_at: expiry.resolve(now, old.and_then(|m| m.expire_at)),
                    flags: flags.unwrap_or_else(|| old.map_or(0, |m| m.flags)),
                };
                self.check_size(&shard, key.len(), value.len(), &meta)?;
                let cas = shard.next_cas();
                let record = Record::new(key, &value, Meta { cas, ..meta });
                match existing {
                    Some(slot) => shard.replace(slot, hash, record),
                    None => {
                        shard.insert(hash, record);
                    }
                }
                Some(cas)
            }
            Change::Expire(expiry) => match existing {
                Some(slot) => {
                    let old = shard.slots.record(slot).meta();
                    let expire_at = expiry.resolve(now, old.expire_at);
                    if expire_at.is_some_and(|at| at <= now) {
                        // An expiry in the past deletes, as in Redis.
                        shard.remove(slot, hash, RemovalCause::Expired);
                        shard.counters.expired_lazy += 1;
                        None
                    } else {
                        let cas = shard.next_cas();
                        let meta = Meta { cas, expire_at, ..old };
                        shard.rewrite(slot, hash, |record| record.with_meta(meta));
                        Some(cas)
                    }
                }
                None => None,
            },
        };
        self.expire_on_the_side(&mut shard, now);
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
        self.shards.iter().map(|shard| shard.lock().clear()).sum()
    }

    /// Cursor-based iteration, for SCAN and snapshots. Start with cursor 0;
    /// each call visits up to `count` live items and returns the cursor to
    /// continue from, 0 when done. An item present for the whole iteration
    /// is visited exactly once; items added or removed meanwhile may or may
    /// not be. `f` runs under a shard lock.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Item<'_>)) -> u64 {
        let now = self.clock.now_ms();
        let mut shard_index = (cursor >> 32) as usize;
        let mut slot = (cursor & u64::from(u32::MAX)) as usize;
        let mut visited = 0;
        while shard_index < self.shards.len() {
            let shard = self.shards[shard_index].lock();
            while let Some(found) = shard.next_occupied(slot) {
                slot = found as usize + 1;
                let record = shard.slots.record(found);
                if record.is_expired(now) {
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
        let now = self.clock.now_ms();
        self.shards
            .iter()
            .map(|shard| {
                let mut shard = shard.lock();
                if shard.expiry_due(now) {
                    shard.expire(now, budget)
                } else {
                    0
                }
            })
            .sum()
    }

    /// Number of items (expired ones not yet reclaimed included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }

    /// True when no items are stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity units in use: bytes charged, or items.
    pub fn used(&self) -> u64 {
        self.shards.iter().map(|shard| shard.lock().used).sum()
    }

    /// Counters and sizes, summed over shards.
    pub fn stats(&self) -> StoreStats {
        let mut stats = StoreStats {
            policy: Some(self.policy),
            ..StoreStats::default()
        };
        for shard in self.shards.iter() {
            let shard = shard.lock();
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
