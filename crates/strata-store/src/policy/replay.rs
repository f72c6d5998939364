//! Replaying a trace through a policy without storing values.
//!
//! [`Replayer`] is the store's shard logic with the values taken out: an
//! index from key hash to slot, a weight per slot, a capacity, and the same
//! calls into the same [`EvictionPolicy`] in the same order. The trace
//! simulator (`strata sim`) and the policy conformance tests use it.
//!
//! Semantics match libCacheSim's `cache->get`: a request either hits (the
//! policy sees `on_hit`) or misses (`on_miss`); on a miss the object is
//! admitted unless it is larger than the whole cache, after evicting until
//! it fits. A hit does not change the stored size.

use hashbrown::HashMap;

use super::{EvictionPolicy, PolicyKind, Slot, SlotInfo};

#[derive(Clone, Copy, Debug)]
struct Resident {
    hash: u64,
    weight: u32,
}

#[derive(Debug, Default)]
struct Residents(Vec<Resident>);

impl SlotInfo for Residents {
    fn hash(&self, slot: Slot) -> u64 {
        self.0[slot as usize].hash
    }

    fn weight(&self, slot: Slot) -> u32 {
        self.0[slot as usize].weight
    }
}

/// Drives one policy with `(key hash, weight)` requests and counts hits.
#[derive(Debug)]
pub struct Replayer {
    policy: Box<dyn EvictionPolicy>,
    capacity: u64,
    used: u64,
    index: HashMap<u64, Slot, foldhash::fast::FixedState>,
    residents: Residents,
    free: Vec<Slot>,
    hits: u64,
    misses: u64,
    evictions: u64,
}

impl Replayer {
    /// A cold cache of `capacity` weight units run by `kind`.
    pub fn new(kind: PolicyKind, capacity: u64) -> Self {
        Self::with_policy(kind.build(capacity), capacity)
    }

    /// A cold cache run by an already built policy.
    pub fn with_policy(mut policy: Box<dyn EvictionPolicy>, capacity: u64) -> Self {
        policy.set_capacity(capacity);
        Self {
            policy,
            capacity,
            used: 0,
            index: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x5742_7a7a)),
            residents: Residents::default(),
            free: Vec::new(),
            hits: 0,
            misses: 0,
            evictions: 0,
        }
    }

    /// One request for the key with `hash`, of `weight` units (1 when
    /// counting entries). Returns true on a hit.
    pub fn access(&mut self, hash: u64, weight: u32) -> bool {
        if let Some(&slot) = self.index.get(&hash) {
            self.hits += 1;
            self.policy.on_hit(slot, hash, &self.residents);
            return true;
        }
        self.misses += 1;
        self.policy.on_miss(hash);
        if u64::from(weight) <= self.capacity {
            self.make_room(u64::from(weight));
            self.insert(hash, weight);
        }
        false
    }

    /// Removes the key with `hash` as a delete would. Returns true if it was
    /// resident.
    pub fn remove(&mut self, hash: u64) -> bool {
        let Some(slot) = self.index.remove(&hash) else {
            return false;
        };
        let weight = self.residents.0[slot as usize].weight;
        self.policy.on_remove(slot, hash, weight);
        self.release(slot, weight);
        true
    }

    /// Overwrites a resident key with a new weight, as a `set` would; inserts
    /// it when absent. Returns true if it was resident.
    pub fn update(&mut self, hash: u64, weight: u32) -> bool {
        if let Some(&slot) = self.index.get(&hash) {
            let old = self.residents.0[slot as usize].weight;
            self.residents.0[slot as usize].weight = weight;
            self.used = self.used - u64::from(old) + u64::from(weight);
            self.policy.on_update(slot, hash, old, weight, &self.residents);
            self.make_room(0);
            true
        } else {
            if u64::from(weight) <= self.capacity {
                self.make_room(u64::from(weight));
                self.insert(hash, weight);
            }
            false
        }
    }

    fn make_room(&mut self, incoming: u64) {
        while self.used + incoming > self.capacity {
            let Some(victim) = self.policy.evict(&self.residents) else {
                break;
            };
            let Resident { hash, weight } = self.residents.0[victim as usize];
            let removed = self.index.remove(&hash);
            debug_assert_eq!(removed, Some(victim), "policy evicted a slot that is not resident");
            self.evictions += 1;
            self.release(victim, weight);
        }
    }

    fn insert(&mut self, hash: u64, weight: u32) {
        let resident = Resident { hash, weight };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.residents.0[slot as usize] = resident;
                slot
            }
            None => {
                self.residents.0.push(resident);
                Slot::try_from(self.residents.0.len() - 1).expect("more than 2^32 residents")
            }
        };
        self.index.insert(hash, slot);
        self.used += u64::from(weight);
        self.policy.on_insert(slot, hash, weight, &self.residents);
    }

    fn release(&mut self, slot: Slot, weight: u32) {
        self.used -= u64::from(weight);
        self.free.push(slot);
    }

    /// True if the key with `hash` is resident.
    pub fn contains(&self, hash: u64) -> bool {
        self.index.contains_key(&hash)
    }

    /// Requests that hit.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Requests that missed.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Items evicted to make room.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Hits as a fraction of requests (0 when there were none).
    pub fn hit_ratio(&self) -> f64 {
        let requests = self.hits + self.misses;
        if requests == 0 {
            0.0
        } else {
            self.hits as f64 / requests as f64
        }
    }

    /// Weight units in use.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Number of resident items.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when nothing is resident.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Evicts everything and checks that the policy gave back each resident
    /// slot exactly once before reporting empty.
    #[cfg(test)]
    pub(crate) fn drain_and_check(&mut self) {
        let kind = self.policy.kind();
        let mut seen = std::collections::HashSet::new();
        while let Some(victim) = self.policy.evict(&self.residents) {
            let hash = self.residents.0[victim as usize].hash;
            assert!(seen.insert(victim), "{kind}: slot {victim} evicted twice");
            assert_eq!(
                self.index.remove(&hash),
                Some(victim),
                "{kind}: evicted slot {victim} not resident"
            );
        }
        assert!(
            self.index.is_empty(),
            "{kind}: empty policy but {} residents left",
            self.index.len()
        );
    }

    /// The policy being driven.
    pub fn policy(&self) -> &dyn EvictionPolicy {
        self.policy.as_ref()
    }
}
