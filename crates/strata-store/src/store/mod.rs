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
//! The charges are not all a shard spends: size classes leave free chunks
//! in partly used pages, and the index and policy cost what they cost. So a
//! shard of at least 4 MiB also keeps what it *really holds* — its arena's
//! pages and large records, its index, slot table, policy and timer wheel —
//! within its capacity. When only that is over, it first frees a page by
//! moving its records into free chunks of their class elsewhere
//! (compaction, `Shard::compact_one`), and evicts only when no class has a
//! page's worth of free chunks. [`Store::set_reserve`] holds part of the
//! capacity back for memory the limit covers but the store does not own
//! (a server's client buffers). Measured with `scripts/memory-storm.py`:
//! RSS stays within the limit plus the process's base under mixed value
//! sizes (BENCHMARKS.md §6) — given an allocator that returns freed pages
//! (the `strata` binary's jemalloc; see `arena.rs`).
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
//! - `types.rs`: the values the store's API takes and gives.
//! - `builder.rs`: [`StoreBuilder`] and the default shard count.
//! - `ops.rs`: operations built on [`Store::compute`] and cross-key ones
//!   (counters, append, rename, copy, random key).
//! - `meta.rs`: memcached's meta-protocol reads (vivify, recache, stale) and
//!   strata's leases, on per-item state bits.
//! - `record.rs`: the byte layout of one item.
//! - `arena.rs`: the slab pages records live in, addressed by 4-byte locators.
//! - `shard.rs`: index, slots, policy, budget and timer wheel of one shard.
//! - `reads.rs`: the per-shard buffer of reads for the policy.
//! - `expiry.rs`: the timer wheel for active expiry.

mod arena;
mod builder;
mod expiry;
mod meta;
mod ops;
mod reads;
mod record;
mod shard;
mod types;

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use foldhash::fast::FixedState;
use parking_lot::{RwLock, RwLockWriteGuard};

use crate::clock::{Clock, Now};
use crate::error::StoreError;
use crate::policy::PolicyKind;
pub use builder::StoreBuilder;
pub use meta::{LeaseGrant, MetaDelete, MetaGet, MetaHit};
use reads::{Access, ReadBuffer};
use record::{Meta, State};
use shard::Shard;
pub use types::{Capacity, Change, Condition, ENTRY_OVERHEAD, EXPIRY_OVERHEAD, Expiry, Item, SetOptions, StoreStats};
use types::{Counters, RemovalCause, Weigher};

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
    capacity: parking_lot::RwLock<Capacity>,
    max_item_bytes: u64,
    policy: parking_lot::RwLock<PolicyKind>,
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

    fn shard_index(&self, hash: u64) -> usize {
        // The index uses the low bits (bucket) and top 7 bits (tag); take the
        // shard from the middle so the three are independent.
        ((hash >> 32) & self.shard_mask) as usize
    }

    fn shard_for(&self, hash: u64) -> &ShardCell {
        &self.shards[self.shard_index(hash)]
    }

    /// Changes the capacity (Redis `CONFIG SET maxmemory`); shrinking
    /// evicts down to the new limit at once.
    pub fn set_capacity(&self, capacity: Capacity) -> Result<(), StoreError> {
        let (total, weigher) = match capacity {
            Capacity::Bytes(bytes) => (bytes, Weigher::Bytes),
            Capacity::Entries(entries) => (entries, Weigher::Entries),
        };
        let current = match *self.capacity.read() {
            Capacity::Bytes(_) => Weigher::Bytes,
            Capacity::Entries(_) => Weigher::Entries,
        };
        if weigher != current {
            return Err(StoreError::Unsupported("changing between a byte and an entry capacity"));
        }
        let shards = self.shards.len() as u64;
        for (i, cell) in self.shards.iter().enumerate() {
            let share = total / shards + u64::from((i as u64) < total % shards);
            cell.write().set_capacity(share);
        }
        *self.capacity.write() = capacity;
        Ok(())
    }

    /// Holds `bytes` of a byte capacity back for memory the limit covers
    /// but the store does not hold — a server's client buffers — split
    /// over the shards like the capacity, and evicts what no longer fits.
    /// At most half of the capacity is held back: past that, what the
    /// memory outside the store may grow to is its owner's to bound.
    /// No effect on an entry capacity.
    pub fn set_reserve(&self, bytes: u64) {
        if !matches!(*self.capacity.read(), Capacity::Bytes(_)) {
            return;
        }
        let shards = self.shards.len() as u64;
        for (i, cell) in self.shards.iter().enumerate() {
            let share = bytes / shards + u64::from((i as u64) < bytes % shards);
            let mut shard = cell.state.write();
            if shard.reserve != share.min(shard.capacity / 2) {
                cell.drain_into(&mut shard);
                shard.set_reserve(share);
            }
        }
    }

    /// Switches every shard to another eviction policy (Redis
    /// `CONFIG SET maxmemory-policy`). Resident items are kept; the new
    /// policy starts without their history.
    pub fn set_policy(&self, policy: PolicyKind) {
        for cell in self.shards.iter() {
            let mut shard = cell.write();
            let capacity = shard.capacity;
            shard.set_policy(policy.build(capacity));
        }
        *self.policy.write() = policy;
    }

    /// Bytes charged for `key` against the capacity (Redis `MEMORY USAGE`),
    /// whatever the capacity mode.
    pub fn memory_usage(&self, key: &[u8]) -> Option<u64> {
        self.peek(key, |item| {
            let has_ttl = item.expire_at_ms().is_some();
            u64::from(Weigher::Bytes.charge(item.record.encoded_len(), has_ttl))
        })
    }

    /// The policy's frequency estimate for `key` (Redis `OBJECT FREQ`), if
    /// the key is present and the policy counts frequencies.
    pub fn frequency(&self, key: &[u8]) -> Option<Option<u32>> {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let shard = self.shard_for(hash).state.read();
        let record = shard.find(hash, key)?;
        if record.is_expired(now.get()) {
            return None;
        }
        Some(shard.policy.frequency(record.slot(), hash))
    }

    /// The clock this store reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The configured capacity.
    pub fn capacity(&self) -> Capacity {
        *self.capacity.read()
    }

    /// The eviction policy.
    pub fn policy(&self) -> PolicyKind {
        *self.policy.read()
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
                let last_access_ms = shard.last_access_ms(record);
                (Some(f(Item { record, last_access_ms })), access)
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
        let weight = match self.capacity() {
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
    /// item's new CAS version. A write clears the item's meta-protocol state
    /// (stale, placeholder, win sent), except a stale write
    /// ([`SetOptions::stale_if_older`]).
    pub fn set(&self, key: &[u8], value: &[u8], options: SetOptions) -> Result<u64, StoreError> {
        let hash = self.hash(key);
        let now = Now::new(self.clock.as_ref());
        let mut meta = Meta {
            cas: 0,
            expire_at: options.expiry.resolve(&now, None),
            flags: options.flags,
        };
        let mut state = State::default();
        let mut shard = self.shard_for(hash).write();
        self.check_size(&shard, key.len(), value.len(), &meta)?;
        let existing = shard.find_live(hash, key, &now);
        if let Some(slot) = existing {
            let current = shard.items.record(slot);
            if options.expiry == Expiry::Keep {
                meta.expire_at = current.expire_at();
            }
            match options.condition {
                Condition::IfAbsent => return Err(StoreError::NotStored),
                Condition::IfVersion(cas) if cas != current.cas() => {
                    if !(options.stale_if_older && cas < current.cas()) {
                        return Err(StoreError::Exists);
                    }
                    // An older version may land, marked stale, keeping the
                    // item's TTL and any win already handed out.
                    meta.expire_at = current.expire_at();
                    state = State(State::STALE | (current.state().0 & State::WIN_SENT));
                }
                _ => {}
            }
            self.check_size(&shard, key.len(), value.len(), &meta)?;
        } else {
            match options.condition {
                Condition::IfPresent => return Err(StoreError::NotStored),
                Condition::IfVersion(_) => return Err(StoreError::NotFound),
                _ => {}
            }
        }
        meta.cas = options.cas.unwrap_or_else(|| shard.next_cas());
        let copy = |out: &mut [u8]| out.copy_from_slice(value);
        match existing {
            Some(slot) => shard.rewrite(slot, hash, key, value.len(), &meta, state, copy),
            None => {
                shard.insert(hash, key, value.len(), &meta, state, &now, copy);
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
        let (change, result) = f(existing.map(|slot| shard.item(slot)));
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
                    Some(slot) => shard.rewrite(slot, hash, key, value.len(), &meta, State::default(), copy),
                    None => {
                        shard.insert(hash, key, value.len(), &meta, State::default(), &now, copy);
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
                        shard.set_meta(slot, hash, &meta, None);
                        Some(meta.cas)
                    }
                }
                None => None,
            },
        };
        self.expire_on_the_side(&mut shard, &now);
        Ok((result, cas))
    }

    /// Removes every item. Returns how many there were.
    pub fn flush(&self) -> usize {
        self.shards.iter().map(|cell| cell.write().clear()).sum()
    }

    /// [`Store::flush`] that returns at once (Redis's `FLUSHALL ASYNC`):
    /// each shard is emptied under its lock by swapping its structures for
    /// empty ones, and the old ones — every page of records — are freed on
    /// a thread of their own. Readers and writers never wait for the
    /// freeing. Returns how many items were removed.
    pub fn flush_async(&self) -> usize {
        let mut removed = 0;
        let mut garbage = Vec::with_capacity(self.shards.len());
        for cell in self.shards.iter() {
            let (count, contents) = cell.write().take_contents();
            removed += count;
            garbage.push(contents);
        }
        // Without a thread to spare the closure, and the garbage with it,
        // is dropped here: freed inline, as `flush` would.
        let _ = std::thread::Builder::new()
            .name("strata-flush".into())
            .spawn(move || drop(garbage));
        removed
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
                f(Item {
                    record,
                    last_access_ms: shard.last_access_ms(record),
                });
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
            policy: Some(self.policy()),
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
            stats.compactions += c.compactions;
            stats.expired_lazy += c.expired_lazy;
            stats.expired_active += c.expired_active;
            stats.items += shard.len() as u64;
            stats.items_with_ttl += shard.ttl_items() as u64;
            stats.used += shard.used;
            stats.capacity += shard.capacity;
            stats.overhead_bytes += shard.overhead_bytes() as u64;
            stats.record_bytes += shard.arena_bytes() as u64;
            stats.policy_stats.merge(&shard.policy.stats());
        }
        stats
    }
}

#[cfg(test)]
mod tests;
