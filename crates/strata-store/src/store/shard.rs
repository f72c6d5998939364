//! One shard: an index, the records, a policy, a byte budget and a timer
//! wheel, all behind the shard's lock.
//!
//! Slots are the shard's small integer handles for items (see
//! [`crate::policy`]). The index maps a key's hash to its slot; the key itself
//! lives only in the record, and equality is checked there. Nothing stores
//! the hash: the index rehashes on growth and the policy asks for hashes of
//! victims through [`SlotInfo`], both by hashing the key again, which is
//! cheaper in memory than 8 bytes per item.

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::expiry::{Entry, TimerWheel};
use super::record::Record;
use super::{Counters, RemovalCause, Weigher};
use crate::policy::{EvictionPolicy, Slot, SlotInfo};

/// The records of a shard, indexed by slot; also answers the policy's
/// questions about slots.
#[derive(Debug)]
pub(crate) struct Slots {
    pub(crate) records: Vec<Option<Record>>,
    pub(crate) hasher: FixedState,
    pub(crate) weigher: Weigher,
}

impl Slots {
    pub(crate) fn record(&self, slot: Slot) -> &Record {
        self.records[slot as usize].as_ref().expect("slot is occupied")
    }
}

impl SlotInfo for Slots {
    fn hash(&self, slot: Slot) -> u64 {
        self.hasher.hash_one(self.record(slot).key())
    }

    fn weight(&self, slot: Slot) -> u32 {
        self.weigher.weight(self.record(slot))
    }
}

/// A shard of the store. All methods run under the shard's lock.
#[derive(Debug)]
pub(crate) struct Shard {
    index: HashTable<Slot>,
    pub(crate) slots: Slots,
    free: Vec<Slot>,
    pub(crate) policy: Box<dyn EvictionPolicy>,
    pub(crate) used: u64,
    pub(crate) capacity: u64,
    wheel: TimerWheel,
    ttl_items: usize,
    /// Next CAS counter value; the shard number fills the low bits.
    cas_counter: u64,
    shard_id: u64,
    shard_bits: u32,
    pub(crate) counters: Counters,
    due: Vec<Entry>,
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
            slots: Slots {
                records: Vec::new(),
                hasher,
                weigher,
            },
            free: Vec::new(),
            policy,
            used: 0,
            capacity,
            wheel: TimerWheel::new(now_ms),
            ttl_items: 0,
            cas_counter: 1,
            shard_id,
            shard_bits,
            counters: Counters::default(),
            due: Vec::new(),
        }
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

    /// The slot holding `key`, expired or not.
    pub(crate) fn find(&self, hash: u64, key: &[u8]) -> Option<Slot> {
        let records = &self.slots.records;
        self.index
            .find(hash, |&slot| {
                records[slot as usize]
                    .as_ref()
                    .is_some_and(|record| record.key() == key)
            })
            .copied()
    }

    /// The live slot holding `key`: an expired item is removed on the way
    /// (lazy expiry) and reported absent.
    pub(crate) fn find_live(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<Slot> {
        let slot = self.find(hash, key)?;
        if self.slots.record(slot).is_expired(now_ms) {
            self.remove(slot, hash, RemovalCause::Expired);
            self.counters.expired_lazy += 1;
            return None;
        }
        Some(slot)
    }

    /// A read that counts: hit → policy sees the access; miss → the policy's
    /// frequency sketch sees it.
    pub(crate) fn lookup(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<Slot> {
        match self.find_live(hash, key, now_ms) {
            Some(slot) => {
                self.counters.hits += 1;
                self.policy.on_hit(slot, hash, &self.slots);
                Some(slot)
            }
            None => {
                self.counters.misses += 1;
                self.policy.on_miss(hash);
                None
            }
        }
    }

    /// Puts `record` in place of the item in `slot`.
    pub(crate) fn replace(&mut self, slot: Slot, hash: u64, record: Record) {
        self.rewrite(slot, hash, |_| record);
    }

    /// Replaces the record in `slot` with `f(old record)`, keeping the
    /// budget, TTL count, timer wheel and policy in step.
    pub(crate) fn rewrite(&mut self, slot: Slot, hash: u64, f: impl FnOnce(Record) -> Record) {
        let old_weight = self.slots.weight(slot);
        let old = self.slots.records[slot as usize].take().expect("slot is occupied");
        let old_ttl = old.expire_at().is_some();
        let record = f(old);
        let new_expiry = record.expire_at();
        self.slots.records[slot as usize] = Some(record);
        let new_weight = self.slots.weight(slot);
        self.used = self.used - u64::from(old_weight) + u64::from(new_weight);
        self.ttl_items = self.ttl_items - usize::from(old_ttl) + usize::from(new_expiry.is_some());
        if let Some(at) = new_expiry {
            self.schedule(slot, at);
        }
        self.policy.on_update(slot, hash, old_weight, new_weight, &self.slots);
        self.counters.sets += 1;
        // The update may have grown the item past the budget; the policy
        // chooses what goes (possibly this very item).
        self.make_room(0);
    }

    /// Inserts a new item; the caller has checked it is absent and fits.
    pub(crate) fn insert(&mut self, hash: u64, record: Record) -> Slot {
        let weight = self.slots.weigher.weight(&record);
        self.make_room(u64::from(weight));
        let expiry = record.expire_at();
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots.records[slot as usize] = Some(record);
                slot
            }
            None => {
                self.slots.records.push(Some(record));
                Slot::try_from(self.slots.records.len() - 1).expect("a shard holds fewer than 2^32 items")
            }
        };
        let Self { index, slots, .. } = self;
        index.insert_unique(hash, slot, |&s| slots.hash(s));
        self.used += u64::from(weight);
        if let Some(at) = expiry {
            self.ttl_items += 1;
            self.schedule(slot, at);
        }
        self.policy.on_insert(slot, hash, weight, &self.slots);
        self.counters.sets += 1;
        slot
    }

    /// Evicts until `incoming` more weight units fit.
    fn make_room(&mut self, incoming: u64) {
        while self.used + incoming > self.capacity {
            let Some(victim) = self.policy.evict(&self.slots) else {
                break;
            };
            let hash = self.slots.hash(victim);
            self.forget(victim, hash);
            self.counters.evictions += 1;
        }
    }

    /// Removes the item in `slot` for `cause`, telling the policy.
    pub(crate) fn remove(&mut self, slot: Slot, hash: u64, cause: RemovalCause) -> Record {
        let weight = self.slots.weight(slot);
        self.policy.on_remove(slot, hash, weight);
        if cause == RemovalCause::Deleted {
            self.counters.deletes += 1;
        }
        self.forget(slot, hash)
    }

    /// Drops `slot` from the index and the budget; the policy already let go.
    fn forget(&mut self, slot: Slot, hash: u64) -> Record {
        let weight = self.slots.weight(slot);
        match self.index.find_entry(hash, |&s| s == slot) {
            Ok(entry) => {
                entry.remove();
            }
            Err(_) => unreachable!("slot {slot} is resident but not indexed"),
        }
        let record = self.slots.records[slot as usize].take().expect("slot is occupied");
        self.used -= u64::from(weight);
        if record.expire_at().is_some() {
            self.ttl_items -= 1;
        }
        self.free.push(slot);
        record
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
        for (slot, record) in self.slots.records.iter().enumerate() {
            if let Some(at) = record.as_ref().and_then(Record::expire_at) {
                self.wheel.insert(slot as Slot, at);
            }
        }
    }

    /// True when the wheel holds something due at `now_ms`.
    pub(crate) fn expiry_due(&self, now_ms: u64) -> bool {
        self.wheel.next_deadline().is_some_and(|d| d <= now_ms)
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
            let Some(record) = self.slots.records.get(slot as usize).and_then(Option::as_ref) else {
                continue;
            };
            if record.expire_at() != Some(entry.expire_at()) || !record.is_expired(now_ms) {
                continue; // stale entry: the item changed or left
            }
            let hash = self.slots.hasher.hash_one(record.key());
            self.remove(slot, hash, RemovalCause::Expired);
            self.counters.expired_active += 1;
            removed += 1;
        }
        self.due = due;
        removed
    }

    /// Removes everything.
    pub(crate) fn clear(&mut self) -> usize {
        let removed = self.index.len();
        self.index.clear();
        self.slots.records.clear();
        self.free.clear();
        self.policy.clear();
        self.used = 0;
        self.wheel.clear();
        self.ttl_items = 0;
        removed
    }

    /// Heap bytes of the shard's own structures (records excluded).
    pub(crate) fn overhead_bytes(&self) -> usize {
        self.index.allocation_size()
            + self.slots.records.capacity() * std::mem::size_of::<Option<Record>>()
            + self.free.capacity() * std::mem::size_of::<Slot>()
            + self.policy.heap_bytes()
            + self.wheel.heap_bytes()
    }

    /// The occupied slots at or after `from`, for cursor iteration.
    pub(crate) fn next_occupied(&self, from: usize) -> Option<Slot> {
        self.slots
            .records
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, r)| r.is_some())
            .map(|(slot, _)| slot as Slot)
    }

    /// The number of slot positions (occupied or free).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.records.len()
    }
}
