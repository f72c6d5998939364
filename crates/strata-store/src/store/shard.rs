//! One shard: an index, the records, a policy, a byte budget and a timer
//! wheel, all behind the shard's lock.
//!
//! Two handles name an item. Its *locator* ([`Loc`]) is where its record
//! sits in the arena; the index maps the key's hash to it, so a lookup reads
//! the index and then the record. Its *slot* is the dense number the policy
//! and the timer wheel know it by; the record stores its slot, and `locs`
//! maps a slot back to the locator (for evicting and expiring). A slot is
//! stable for as long as the key stays, even when the record moves because
//! its value changed size.
//!
//! Nothing stores the hash: the index rehashes on growth and the policy asks
//! for hashes of victims through [`SlotInfo`], both by hashing the key again,
//! which is cheaper in memory than 8 bytes per item.

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::arena::{Arena, Loc, footprint};
use super::expiry::{Entry, TimerWheel};
use super::reads::Access;
use super::record::{self, Header, Meta, RecordRef, State};
use super::{Counters, RemovalCause, Weigher};
use crate::clock::Now;
use crate::policy::{EvictionPolicy, Slot, SlotInfo};

/// A slot with no item.
const NO_LOC: Loc = Loc::MAX;

/// The smallest shard capacity whose real memory `make_room` counts.
const HELD_BUDGET_MIN: u64 = 4 << 20;

/// Promotion epochs per turnover of the cache's capacity.
const PROMOTIONS_PER_TURNOVER: u64 = 8;

/// The records of a shard; also answers the policy's questions about slots.
#[derive(Debug)]
pub(crate) struct Items {
    arena: Arena,
    /// Slot → locator (NO_LOC for free slots).
    locs: Vec<Loc>,
    hasher: FixedState,
    weigher: Weigher,
}

impl Items {
    pub(crate) fn at(&self, loc: Loc) -> RecordRef<'_> {
        RecordRef::new(self.arena.chunk(loc))
    }

    pub(crate) fn record(&self, slot: Slot) -> RecordRef<'_> {
        self.at(self.locs[slot as usize])
    }

    fn charge(&self, record: RecordRef<'_>) -> u32 {
        self.weigher.charge(record.encoded_len(), record.expire_at().is_some())
    }
}

impl SlotInfo for Items {
    fn hash(&self, slot: Slot) -> u64 {
        self.hasher.hash_one(self.record(slot).key())
    }

    fn weight(&self, slot: Slot) -> u32 {
        match self.weigher {
            // Every item weighs 1: no need to read its record.
            Weigher::Entries => 1,
            Weigher::Bytes => self.charge(self.record(slot)),
        }
    }
}

/// A shard of the store. All methods run under the shard's lock.
#[derive(Debug)]
pub(crate) struct Shard {
    index: HashTable<Loc>,
    pub(crate) items: Items,
    free_slots: Vec<Slot>,
    pub(crate) policy: Box<dyn EvictionPolicy>,
    pub(crate) used: u64,
    pub(crate) capacity: u64,
    /// `structure_bytes` when `make_room` last ran.
    structures: u64,
    /// Capacity held back for memory outside the store ([`super::Store::set_reserve`]).
    pub(crate) reserve: u64,
    wheel: TimerWheel,
    ttl_items: usize,
    /// Next CAS counter value; the shard number fills the low bits.
    cas_counter: u64,
    shard_id: u64,
    shard_bits: u32,
    pub(crate) counters: Counters,
    due: Vec<Entry>,
    /// Weight inserted since the shard was made; promotion epochs count it.
    inserted: u64,
    /// Weight inserted per promotion epoch.
    epoch_span: u64,
    /// When each promotion epoch (by number modulo 64) began.
    epoch_started_ms: [u64; record::EPOCHS as usize],
}

/// Where a shard's CAS counter starts: not at 1, but at the clock — a
/// restarted server must never hand out a CAS version its previous life
/// handed out, or a lease token (a CAS) taken before the restart could
/// match an unrelated item after it and let a stale fill in. The clock in
/// microseconds keeps each new life above the last unless the last minted
/// more than one version per microsecond per shard over its whole life;
/// with many shards (fewer bits left for the counter) milliseconds, then
/// seconds. The counter stays below 2^61 after shifting, far from the
/// versioned-item range at 2^62 that clients use.
fn cas_seed(now_ms: u64, shard_bits: u32) -> u64 {
    let room = 1u64 << (61 - shard_bits.min(40));
    [now_ms.saturating_mul(1000), now_ms, now_ms / 1000]
        .into_iter()
        .find(|&seed| seed < room / 2)
        .unwrap_or(0)
        .max(1)
}

impl Shard {
    pub(crate) fn new(
        policy: Box<dyn EvictionPolicy>,
        capacity: u64,
        hasher: FixedState,
        weigher: Weigher,
        shard_id: u64,
        shard_bits: u32,
        now_ms: u64,
    ) -> Self {
        Self {
            index: HashTable::new(),
            items: Items {
                arena: Arena::default(),
                locs: Vec::new(),
                hasher,
                weigher,
            },
            free_slots: Vec::new(),
            policy,
            used: 0,
            capacity,
            structures: 0,
            reserve: 0,
            wheel: TimerWheel::new(now_ms),
            ttl_items: 0,
            cas_counter: cas_seed(now_ms, shard_bits),
            shard_id,
            shard_bits,
            counters: Counters::default(),
            due: Vec::new(),
            inserted: 0,
            epoch_span: (capacity / PROMOTIONS_PER_TURNOVER).max(1),
            epoch_started_ms: [now_ms; record::EPOCHS as usize],
        }
    }

    /// The current promotion epoch. The policy sees at most one hit per item
    /// per epoch: readers skip the read buffer for an item whose record says
    /// it was already promoted in this epoch. An epoch lasts while 1/8 of the
    /// capacity is inserted, so an item promoted in it is still among the most
    /// recent eighth of the cache and promoting it again would barely change
    /// the eviction order — while it costs the policy three to five cache
    /// misses. Measured on the reference traces (BENCHMARKS.md), the default
    /// policy loses nothing (its mean shortfall moves from 0.16 to 0.07
    /// points), LRU, ARC and S3-FIFO move by under 0.1.
    pub(crate) fn epoch(&self) -> u8 {
        ((self.inserted / self.epoch_span) % u64::from(record::EPOCHS)) as u8
    }

    /// A fresh CAS version: unique across shards (the shard number is in
    /// the low bits) and increasing within one.
    pub(crate) fn next_cas(&mut self) -> u64 {
        let cas = (self.cas_counter << self.shard_bits) | self.shard_id;
        self.cas_counter += 1;
        cas
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The record holding `key`, expired or not.
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<RecordRef<'_>> {
        let items = &self.items;
        self.index
            .find(hash, |&loc| record::key_is(items.arena.chunk(loc), key))
            .map(|&loc| items.at(loc))
    }

    /// The live slot holding `key`: an expired item is removed on the way
    /// (lazy expiry) and reported absent.
    pub(crate) fn find_live(&mut self, hash: u64, key: &[u8], now: &Now<'_>) -> Option<Slot> {
        let record = self.find(hash, key)?;
        let slot = record.slot();
        if record.expire_at().is_some_and(|at| at <= now.get()) {
            self.remove(slot, hash, RemovalCause::Expired);
            self.counters.expired_lazy += 1;
            return None;
        }
        Some(slot)
    }

    /// A read that counts: hit → policy sees the access; miss → the policy's
    /// frequency sketch sees it.
    pub(crate) fn lookup(&mut self, hash: u64, key: &[u8], now: &Now<'_>) -> Option<Slot> {
        match self.find_live(hash, key, now) {
            Some(slot) => {
                self.counters.hits += 1;
                self.promote(slot, hash);
                Some(slot)
            }
            None => {
                self.counters.misses += 1;
                self.policy.on_miss(hash);
                None
            }
        }
    }

    /// Counts a hit on `slot` and, unless `bump` is false, shows it to the
    /// policy (memcached's `u` flag reads without bumping).
    pub(crate) fn count_hit(&mut self, slot: Slot, hash: u64, bump: bool) {
        self.counters.hits += 1;
        if bump {
            self.promote(slot, hash);
        }
    }

    /// Counts a miss and shows it to the policy.
    pub(crate) fn count_miss(&mut self, hash: u64) {
        self.counters.misses += 1;
        self.policy.on_miss(hash);
    }

    /// Applies an access buffered by a reader (see `reads.rs`). A hit whose
    /// slot has been freed since is counted but not shown to the policy; one
    /// whose slot was reused goes to the new item, which is harmless noise.
    pub(crate) fn apply_access(&mut self, access: Access) {
        match access {
            Access::Hit { slot, hash } => {
                self.counters.hits += 1;
                if self.items.locs.get(slot as usize).is_some_and(|&loc| loc != NO_LOC) {
                    self.promote(slot, hash);
                }
            }
            Access::Miss { hash } => {
                self.counters.misses += 1;
                self.policy.on_miss(hash);
            }
        }
    }

    /// Shows a hit on `slot` to the policy and stamps the current epoch on
    /// its record.
    fn promote(&mut self, slot: Slot, hash: u64) {
        self.policy.on_hit(slot, hash, &self.items);
        let epoch = self.epoch();
        let loc = self.items.locs[slot as usize];
        let chunk = self.items.arena.chunk_mut(loc);
        record::set_promoted_epoch(chunk, epoch);
        let state = RecordRef::new(chunk).state();
        if !state.has(State::FETCHED) {
            record::set_state(chunk, State(state.0 | State::FETCHED));
        }
    }

    /// Sets the state bits of the item in `slot` in place.
    pub(crate) fn set_state(&mut self, slot: Slot, state: State) {
        let loc = self.items.locs[slot as usize];
        record::set_state(self.items.arena.chunk_mut(loc), state);
    }

    /// Counts inserted weight towards promotion epochs, noting when each
    /// epoch began (for estimating how long ago an item was last used).
    fn advance_epochs(&mut self, weight: u64, now: &Now<'_>) {
        let before = self.inserted / self.epoch_span;
        self.inserted += weight;
        let after = self.inserted / self.epoch_span;
        if after != before {
            self.epoch_started_ms[(after % u64::from(record::EPOCHS)) as usize] = now.get();
        }
    }

    /// When the item was last shown to the policy, estimated from its
    /// promotion epoch (ms since the Unix epoch): exact to one epoch (1/8 of
    /// a cache turnover), and no older than eight turnovers ago, since epoch
    /// numbers wrap.
    pub(crate) fn last_access_ms(&self, record: RecordRef<'_>) -> u64 {
        self.epoch_started_ms[usize::from(record.promoted_epoch())]
    }

    /// Inserts a new item; the caller has checked it is absent and fits.
    /// `fill` writes the value.
    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of a record, passed without building one"
    )]
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: &[u8],
        value_len: usize,
        meta: &Meta,
        state: State,
        now: &Now<'_>,
        fill: impl FnOnce(&mut [u8]),
    ) -> Slot {
        let len = record::encoded_len(key.len(), value_len, meta);
        let weight = self.items.weigher.charge(len, meta.expire_at.is_some());
        self.make_room(u64::from(weight), len);
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.items.locs.push(NO_LOC);
                Slot::try_from(self.items.locs.len() - 1).expect("a shard holds fewer than 2^32 items")
            }
        };
        let loc = self.items.arena.alloc(len);
        // Not yet promoted in this epoch, so its first hit reaches the policy.
        let epoch = self.epoch().wrapping_add(record::EPOCHS - 1);
        record::write(
            self.items.arena.chunk_mut(loc),
            Header { slot, epoch, state },
            key,
            value_len,
            meta,
            fill,
        );
        self.items.locs[slot as usize] = loc;
        self.advance_epochs(u64::from(weight), now);
        let Self { index, items, .. } = self;
        index.insert_unique(hash, loc, |&l| items.hasher.hash_one(items.at(l).key()));
        self.used += u64::from(weight);
        if let Some(at) = meta.expire_at {
            self.ttl_items += 1;
            self.schedule(slot, at);
        }
        self.policy.on_insert(slot, hash, weight, &self.items);
        self.counters.sets += 1;
        slot
    }

    /// Replaces the item in `slot` with a new value and metadata, in place
    /// when the new record fits the same chunk size.
    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of a record, passed without building one"
    )]
    pub(crate) fn rewrite(
        &mut self,
        slot: Slot,
        hash: u64,
        key: &[u8],
        value_len: usize,
        meta: &Meta,
        state: State,
        fill: impl FnOnce(&mut [u8]),
    ) {
        let old_loc = self.items.locs[slot as usize];
        let old = self.items.at(old_loc);
        let old_weight = self.items.charge(old);
        let old_len = old.encoded_len();
        let old_ttl = old.expire_at().is_some();
        let len = record::encoded_len(key.len(), value_len, meta);
        // A large record's chunk is exactly as long as the record it was
        // allocated for, though its footprint is rounded up: equal
        // footprints alone do not mean the new record fits.
        let capacity = self.items.arena.chunk(old_loc).len();
        // An overwrite is an access the policy sees (`on_update`).
        let epoch = self.epoch();
        if footprint(len) == footprint(old_len) && len <= capacity {
            record::write(
                self.items.arena.chunk_mut(old_loc),
                Header { slot, epoch, state },
                key,
                value_len,
                meta,
                fill,
            );
        } else {
            let loc = self.items.arena.alloc(len);
            record::write(
                self.items.arena.chunk_mut(loc),
                Header { slot, epoch, state },
                key,
                value_len,
                meta,
                fill,
            );
            self.relocate(slot, hash, old_loc, loc);
        }
        self.after_rewrite(slot, hash, old_weight, old_ttl);
    }

    /// Changes only the metadata (and, if given, the state bits) of the item
    /// in `slot`.
    pub(crate) fn set_meta(&mut self, slot: Slot, hash: u64, meta: &Meta, state: Option<State>) {
        let old_loc = self.items.locs[slot as usize];
        let old = self.items.at(old_loc);
        let state = state.unwrap_or(old.state());
        let old_weight = self.items.charge(old);
        let old_ttl = old.expire_at().is_some();
        if record::set_meta_in_place(self.items.arena.chunk_mut(old_loc), meta) {
            record::set_state(self.items.arena.chunk_mut(old_loc), state);
        } else {
            // The layout changes (a TTL or flags appear or vanish): copy the
            // key and value into a new record. Rare, so a temporary is fine.
            let (key, value) = self.items.at(old_loc).key_value();
            let (key, value) = (key.to_vec(), value.to_vec());
            let len = record::encoded_len(key.len(), value.len(), meta);
            let loc = self.items.arena.alloc(len);
            let epoch = self.epoch();
            record::write(
                self.items.arena.chunk_mut(loc),
                Header { slot, epoch, state },
                &key,
                value.len(),
                meta,
                |out| out.copy_from_slice(&value),
            );
            self.relocate(slot, hash, old_loc, loc);
        }
        self.after_rewrite(slot, hash, old_weight, old_ttl);
    }

    /// Points the index and slot table at `new` instead of `old`, and frees
    /// `old`.
    fn relocate(&mut self, slot: Slot, hash: u64, old: Loc, new: Loc) {
        match self.index.find_mut(hash, |&l| l == old) {
            Some(entry) => *entry = new,
            None => unreachable!("slot {slot} is resident but not indexed"),
        }
        self.items.locs[slot as usize] = new;
        self.items.arena.free(old);
    }

    fn after_rewrite(&mut self, slot: Slot, hash: u64, old_weight: u32, old_ttl: bool) {
        let record = self.items.record(slot);
        let new_weight = self.items.charge(record);
        let new_expiry = record.expire_at();
        self.used = self.used - u64::from(old_weight) + u64::from(new_weight);
        self.ttl_items = self.ttl_items - usize::from(old_ttl) + usize::from(new_expiry.is_some());
        if let Some(at) = new_expiry {
            self.schedule(slot, at);
        }
        self.policy.on_update(slot, hash, old_weight, new_weight, &self.items);
        self.counters.sets += 1;
        // The update may have grown the item past the budget; the policy
        // chooses what goes (possibly this very item).
        self.make_room(0, 0);
    }

    /// Evicts until `incoming` more weight units, and a record of
    /// `incoming_len` bytes (0: none), fit.
    ///
    /// With a byte capacity, two budgets must hold, and eviction goes on
    /// while either is over: the items' charges (`used`), and the memory the
    /// shard really holds once the record is allocated — its arena's pages
    /// and mappings and its own structures (index, slot table, policy,
    /// timer wheel). The charges alone miss what size classes leave free in
    /// partly used pages and what the structures cost past the per-item
    /// estimate: measured, 1 B–1 KiB values under a 64 MiB limit held
    /// 79 MiB. A record that fits a free chunk of its class needs no new
    /// memory, so the real budget evicts only when a page or mapping must
    /// be added (or the limit was lowered).
    ///
    /// The real budget applies to shards of at least [`HELD_BUDGET_MIN`]:
    /// in a smaller one a page per size class in use is a large part of
    /// the whole, and counting pages would evict most items to make room
    /// for a few half-empty pages. What such a shard can hold past its
    /// charges is bounded by its classes (under 1.2 MiB), not by its load.
    fn make_room(&mut self, incoming: u64, incoming_len: usize) {
        let bytes = self.items.weigher == Weigher::Bytes && self.capacity >= HELD_BUDGET_MIN;
        if bytes {
            self.structures = self.structure_bytes() as u64;
        }
        let limit = self.capacity - self.reserve;
        loop {
            let charged_over = self.used + incoming > limit;
            let held_over = bytes && {
                let growth = if incoming_len == 0 {
                    0
                } else {
                    self.items.arena.growth_for(incoming_len)
                };
                (self.items.arena.allocated_bytes() + growth) as u64 + self.structures > limit
            };
            if !charged_over && !held_over {
                break;
            }
            // Over only in real memory: free a page by moving records
            // rather than evicting them, if their class has room.
            if !charged_over && self.compact_one() {
                continue;
            }
            let Some(victim) = self.policy.evict(&self.items) else {
                break;
            };
            let hash = self.items.hash(victim);
            self.forget(victim, hash);
            self.counters.evictions += 1;
        }
    }

    /// Frees one page by moving its records into the free chunks of their
    /// class's other pages (the index and slot table follow them); false
    /// if no class has a page's worth of free chunks to move into. Size
    /// classes leave free chunks scattered over partly used pages as items
    /// of every size come and go; without this, the real budget could only
    /// evict until some page happened to empty.
    fn compact_one(&mut self) -> bool {
        let Some(page_no) = self.items.arena.compactable_page() else {
            return false;
        };
        let live = self.items.arena.evacuate(page_no);
        let targets: Vec<Loc> = live.iter().map(|&old| self.items.arena.alloc_like(old)).collect();
        for (&old, &new) in live.iter().zip(&targets) {
            self.items.arena.copy_chunk(old, new);
            let record = self.items.at(new);
            let slot = record.slot();
            let hash = self.items.hasher.hash_one(record.key());
            self.relocate(slot, hash, old, new);
        }
        self.counters.compactions += 1;
        true
    }

    /// Removes the item in `slot` for `cause`, telling the policy.
    pub(crate) fn remove(&mut self, slot: Slot, hash: u64, cause: RemovalCause) {
        let weight = self.items.weight(slot);
        self.policy.on_remove(slot, hash, weight);
        if cause == RemovalCause::Deleted {
            self.counters.deletes += 1;
        }
        self.forget(slot, hash);
    }

    /// Drops `slot` from the index, the arena and the budget; the policy
    /// already let go.
    fn forget(&mut self, slot: Slot, hash: u64) {
        let loc = self.items.locs[slot as usize];
        let record = self.items.at(loc);
        let weight = self.items.charge(record);
        let had_ttl = record.expire_at().is_some();
        match self.index.find_entry(hash, |&l| l == loc) {
            Ok(entry) => {
                entry.remove();
            }
            Err(_) => unreachable!("slot {slot} is resident but not indexed"),
        }
        self.items.arena.free(loc);
        self.items.locs[slot as usize] = NO_LOC;
        self.used -= u64::from(weight);
        if had_ttl {
            self.ttl_items -= 1;
        }
        self.free_slots.push(slot);
    }

    fn schedule(&mut self, slot: Slot, expire_at: u64) {
        self.wheel.insert(slot, expire_at);
        // Stale entries (deleted items, superseded TTLs) are dropped when they
        // fire; rebuild if they would otherwise dominate.
        if self.wheel.len() > 2 * self.ttl_items + 1024 {
            self.rebuild_wheel();
        }
    }

    fn rebuild_wheel(&mut self) {
        self.wheel.clear();
        for (slot, &loc) in self.items.locs.iter().enumerate() {
            if loc != NO_LOC
                && let Some(at) = self.items.at(loc).expire_at()
            {
                self.wheel.insert(slot as Slot, at);
            }
        }
    }

    /// True when the wheel holds something due at `now` (reads the clock
    /// only if the wheel holds anything).
    pub(crate) fn expiry_due(&self, now: &Now<'_>) -> bool {
        self.wheel.next_deadline().is_some_and(|d| d <= now.get())
    }

    /// Active expiry: removes up to `budget` items whose time has passed.
    /// Returns how many were removed.
    pub(crate) fn expire(&mut self, now_ms: u64, budget: usize) -> usize {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        self.wheel.poll(now_ms, budget, &mut due);
        let mut removed = 0;
        for entry in &due {
            let slot = entry.slot;
            let Some(&loc) = self.items.locs.get(slot as usize).filter(|&&l| l != NO_LOC) else {
                continue;
            };
            let record = self.items.at(loc);
            if record.expire_at() != Some(entry.expire_at()) || !record.is_expired(now_ms) {
                continue; // stale entry: the item changed or left
            }
            let hash = self.items.hasher.hash_one(record.key());
            self.remove(slot, hash, RemovalCause::Expired);
            self.counters.expired_active += 1;
            removed += 1;
        }
        self.due = due;
        removed
    }

    /// Changes the capacity, evicting down to it if it shrank.
    pub(crate) fn set_capacity(&mut self, capacity: u64) {
        self.capacity = capacity;
        self.reserve = self.reserve.min(capacity / 2);
        self.epoch_span = (capacity / PROMOTIONS_PER_TURNOVER).max(1);
        self.policy.set_capacity(capacity);
        self.make_room(0, 0);
    }

    /// Replaces the eviction policy, handing it every resident item (in
    /// slot order: the old policy's ordering does not carry over).
    /// Holds `reserve` bytes of the capacity back (at most half of it),
    /// evicting if the rest is over.
    pub(crate) fn set_reserve(&mut self, reserve: u64) {
        let reserve = reserve.min(self.capacity / 2);
        let grew = reserve > self.reserve;
        self.reserve = reserve;
        if grew {
            self.make_room(0, 0);
        }
    }

    pub(crate) fn set_policy(&mut self, mut policy: Box<dyn EvictionPolicy>) {
        policy.set_capacity(self.capacity);
        for slot in 0..self.items.locs.len() as Slot {
            if self.items.locs[slot as usize] != NO_LOC {
                let (hash, weight) = (self.items.hash(slot), self.items.weight(slot));
                policy.on_insert(slot, hash, weight, &self.items);
            }
        }
        self.policy = policy;
        self.make_room(0, 0);
    }

    /// Items that carry a TTL.
    pub(crate) fn ttl_items(&self) -> usize {
        self.ttl_items
    }

    /// The item in `slot`, for a callback.
    pub(crate) fn item(&self, slot: Slot) -> super::Item<'_> {
        let record = self.items.record(slot);
        super::Item {
            record,
            last_access_ms: self.last_access_ms(record),
        }
    }

    /// The occupied slot at `index` (0-based) in slot order, for picking a
    /// random item: `None` if that position is free.
    pub(crate) fn slot_at(&self, index: usize) -> Option<Slot> {
        (self.items.locs.get(index).is_some_and(|&l| l != NO_LOC)).then_some(index as Slot)
    }

    /// Removes everything.
    pub(crate) fn clear(&mut self) -> usize {
        let removed = self.index.len();
        self.index = HashTable::new();
        self.items.arena.clear();
        self.items.locs = Vec::new();
        self.free_slots = Vec::new();
        self.policy.clear();
        self.used = 0;
        self.wheel.clear();
        self.ttl_items = 0;
        removed
    }

    /// Empties the shard like [`Shard::clear`], but hands back the
    /// memory instead of freeing it, so the caller can free it after the
    /// lock is released (`FLUSHALL ASYNC`): the write lock is held only for
    /// a few pointer swaps, however large the shard was.
    pub(crate) fn take_contents(&mut self) -> (usize, Box<dyn Send>) {
        let removed = self.index.len();
        let garbage = (
            std::mem::take(&mut self.index),
            std::mem::take(&mut self.items.arena),
            std::mem::take(&mut self.items.locs),
            std::mem::take(&mut self.free_slots),
        );
        self.policy.clear();
        self.used = 0;
        self.wheel.clear();
        self.ttl_items = 0;
        (removed, Box::new(garbage))
    }

    /// Heap bytes of the shard's own structures (record chunks excluded).
    pub(crate) fn overhead_bytes(&self) -> usize {
        self.structure_bytes() + self.items.arena.bookkeeping_bytes()
    }

    /// The structures' bytes, in constant time (the arena's partial-page
    /// lists, a few bytes per class, left out): what `make_room` counts.
    fn structure_bytes(&self) -> usize {
        self.index.allocation_size()
            + self.items.locs.capacity() * std::mem::size_of::<Loc>()
            + self.free_slots.capacity() * std::mem::size_of::<Slot>()
            + self.items.arena.page_table_bytes()
            + self.policy.heap_bytes()
            + self.wheel.heap_bytes()
            + self.due.capacity() * std::mem::size_of::<Entry>()
    }

    /// Bytes of record memory held (pages and large records).
    pub(crate) fn arena_bytes(&self) -> usize {
        self.items.arena.allocated_bytes()
    }

    /// The first occupied slot at or after `from`, for cursor iteration.
    pub(crate) fn next_occupied(&self, from: usize) -> Option<Slot> {
        self.items
            .locs
            .iter()
            .skip(from)
            .position(|&loc| loc != NO_LOC)
            .map(|i| (from + i) as Slot)
    }

    /// The number of slot positions (occupied or free).
    pub(crate) fn slot_count(&self) -> usize {
        self.items.locs.len()
    }
}

#[cfg(test)]
mod cas_seed_tests {
    use super::cas_seed;

    #[test]
    fn seeds_leave_room_below_the_versioned_range_for_every_shard_count() {
        let now_ms = 1_800_000_000_000; // 2027
        for bits in 0..=16 {
            let seed = cas_seed(now_ms, bits);
            assert!(seed >= 1);
            assert!((seed << bits) < 1 << 61, "{bits} bits: {seed}");
            // A later start is never below an earlier one.
            assert!(cas_seed(now_ms + 1, bits) >= seed);
        }
        assert_eq!(cas_seed(0, 4), 1);
    }
}
