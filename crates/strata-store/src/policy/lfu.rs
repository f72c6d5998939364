//! LFU with aging: evict the least frequently used item, LRU among ties.
//!
//! # Algorithm
//!
//! Every resident item has a use count (1 on insertion, +1 per hit or
//! overwrite). Items live in *frequency buckets*: one intrusive LRU list per
//! count, so a hit moves the item from bucket `f` to the head of bucket
//! `f + 1` and eviction takes the tail of the lowest non-empty bucket, both
//! O(1) (a 256-bit map of non-empty buckets finds the lowest with four
//! word tests). This is the O(1) LFU of Shah, Mitra & Matani (2010) with
//! the bucket list replaced by a fixed array, since counts are small.
//!
//! Plain LFU has two well-known failures, and the two additions below are
//! each aimed at one:
//!
//! - **Stale popularity.** Keys popular an hour ago would stay forever. So
//!   counts *age*: after `10 ×` (number of resident items) accesses, every
//!   count is halved. Halving walks all residents once, so its cost spread
//!   over the accesses that triggered it is a tenth of a step per access:
//!   O(1) amortized. Halving merges buckets `2k` and `2k + 1` into `k`; the
//!   items that came from `2k + 1` are placed as more recent than those from
//!   `2k` (each group keeps its own LRU order), so the finer count still
//!   breaks the tie.
//! - **No chance for newcomers / scans.** In-cache LFU forgets a key's count
//!   when it is evicted, so a hot key that was evicted once (say, during the
//!   cold start) comes back with count 1, loses against a scan of other
//!   count-1 keys, and is evicted again, forever. So the policy keeps a
//!   bounded *history* of evicted keys and their counts (a ghost FIFO of key
//!   hashes, trimmed to the cache's capacity in weight, i.e. as many entries
//!   as the cache holds in count mode). A returning key resumes from its
//!   remembered count, decayed by the agings it missed. This is what makes
//!   LFU scan-resistant in the conformance test.
//!
//! # Choices
//!
//! - Counts are `u8`, saturating at 255: with halving every ten cache-fulls
//!   of accesses, larger counts are rare and would buy nothing.
//! - History entries store `(count, aging epoch)` in the ghost's 16-bit
//!   value, so aging never has to walk the history: the remembered count is
//!   shifted right by the number of agings since it was stored.
//! - Deletes (`on_remove`) do not enter the history: a deleted key is not
//!   a victim of the policy.
//! - Weights play no part in the order (this is LFU, not a size-aware
//!   variant); they only bound the history, in the same units as the cache.
//! - Per resident slot: 8 bytes of links plus the 1-byte count, 9 bytes.
//!   History entries cost 30 to 46 bytes each (see [`Ghosts`]).

use super::ghost::Ghosts;
use super::list::{Links, List, SlotVec};
use super::{EvictionPolicy, PolicyKind, PolicyStats, Slot, SlotInfo};

/// One bucket per possible count.
const BUCKETS: usize = 256;
/// Counts are halved every `AGING_FACTOR × residents` accesses.
const AGING_FACTOR: u64 = 10;
/// Floor on the residents used for the aging period, so a nearly empty
/// cache does not age on every other access.
const MIN_AGING_RESIDENTS: u64 = 16;
/// The history's only ghost list.
const HISTORY: usize = 0;

/// LFU with frequency buckets, periodic halving and an eviction history.
#[derive(Debug)]
pub(crate) struct Lfu {
    links: Links,
    /// `buckets[f]`: residents with count `f`, most recently used at the head.
    buckets: Vec<List>,
    /// Bit `f` set when `buckets[f]` is not empty.
    nonempty: [u64; BUCKETS / 64],
    count: SlotVec<u8>,
    history: Ghosts,
    capacity: u64,
    residents: u64,
    accesses_since_aging: u64,
    aging_period: u64,
    /// Number of agings so far, wrapping; stamps history entries.
    epoch: u8,
    agings: u64,
}

impl Default for Lfu {
    fn default() -> Self {
        Self {
            links: Links::default(),
            buckets: vec![List::default(); BUCKETS],
            nonempty: [0; BUCKETS / 64],
            count: SlotVec::default(),
            history: Ghosts::default(),
            capacity: 0,
            residents: 0,
            accesses_since_aging: 0,
            aging_period: AGING_FACTOR * MIN_AGING_RESIDENTS,
            epoch: 0,
            agings: 0,
        }
    }
}

impl Lfu {
    fn push(&mut self, slot: Slot, count: u8) {
        let bucket = usize::from(count);
        self.links.push_head(&mut self.buckets[bucket], slot, 0);
        self.nonempty[bucket / 64] |= 1 << (bucket % 64);
        self.count.set(slot, count);
    }

    fn unlink(&mut self, slot: Slot) {
        let bucket = usize::from(self.count.get(slot));
        self.links.unlink(&mut self.buckets[bucket], slot, 0);
        if self.buckets[bucket].is_empty() {
            self.nonempty[bucket / 64] &= !(1 << (bucket % 64));
        }
    }

    fn lowest_bucket(&self) -> Option<usize> {
        self.nonempty
            .iter()
            .enumerate()
            .find(|&(_, &word)| word != 0)
            .map(|(index, &word)| index * 64 + word.trailing_zeros() as usize)
    }

    /// One more use of a resident item.
    fn bump(&mut self, slot: Slot) {
        let count = self.count.get(slot);
        self.unlink(slot);
        self.push(slot, count.saturating_add(1));
        self.tick();
    }

    fn tick(&mut self) {
        self.accesses_since_aging += 1;
        if self.accesses_since_aging >= self.aging_period {
            self.age();
        }
    }

    /// Halves every count: buckets `2k + 1` then `2k` become bucket `k`.
    fn age(&mut self) {
        let old = std::mem::replace(&mut self.buckets, vec![List::default(); BUCKETS]);
        self.nonempty = [0; BUCKETS / 64];
        for half in 0..BUCKETS / 2 {
            for from in [2 * half + 1, 2 * half] {
                let mut at = old[from].head();
                while let Some(slot) = at {
                    // Read the old neighbour before `push_tail` rewrites the links.
                    at = self.links.next(slot);
                    self.links.push_tail(&mut self.buckets[half], slot, 0);
                    // `half` < 128.
                    self.count.set(slot, half as u8);
                }
            }
            if !self.buckets[half].is_empty() {
                self.nonempty[half / 64] |= 1 << (half % 64);
            }
        }
        self.epoch = self.epoch.wrapping_add(1);
        self.agings += 1;
        self.accesses_since_aging = 0;
        self.aging_period = AGING_FACTOR * self.residents.max(MIN_AGING_RESIDENTS);
    }

    /// A history value: the count in the low byte, the epoch in the high.
    fn remembered(&self, count: u8) -> u16 {
        u16::from(self.epoch) << 8 | u16::from(count)
    }

    /// The count stored in a history value, halved once per aging since.
    fn recalled(&self, value: u16) -> u8 {
        let [count, stored_epoch] = value.to_le_bytes();
        let missed_agings = self.epoch.wrapping_sub(stored_epoch);
        count.checked_shr(u32::from(missed_agings)).unwrap_or(0)
    }
}

impl EvictionPolicy for Lfu {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Lfu
    }

    fn set_capacity(&mut self, capacity: u64) {
        self.capacity = capacity;
        self.history.trim(HISTORY, capacity);
    }

    fn on_miss(&mut self, _hash: u64) {}

    fn on_hit(&mut self, slot: Slot, _hash: u64, _info: &dyn SlotInfo) {
        self.bump(slot);
    }

    fn frequency(&self, slot: Slot, _hash: u64) -> Option<u32> {
        Some(u32::from(self.count.get(slot)))
    }

    fn on_insert(&mut self, slot: Slot, hash: u64, _weight: u32, _info: &dyn SlotInfo) {
        let past = self.history.remove(hash).map_or(0, |ghost| self.recalled(ghost.value));
        self.push(slot, past.saturating_add(1));
        self.residents += 1;
        self.tick();
    }

    fn on_update(&mut self, slot: Slot, _hash: u64, _old: u32, _new: u32, _info: &dyn SlotInfo) {
        self.bump(slot);
    }

    fn on_remove(&mut self, slot: Slot, _hash: u64, _weight: u32) {
        self.unlink(slot);
        self.residents -= 1;
    }

    fn evict(&mut self, info: &dyn SlotInfo) -> Option<Slot> {
        let bucket = self.lowest_bucket()?;
        let victim = self.buckets[bucket].tail()?;
        let count = self.count.get(victim);
        self.unlink(victim);
        self.residents -= 1;
        let value = self.remembered(count);
        self.history
            .push(HISTORY, info.hash(victim), info.weight(victim), value);
        self.history.trim(HISTORY, self.capacity);
        Some(victim)
    }

    fn clear(&mut self) {
        *self = Self {
            capacity: self.capacity,
            ..Self::default()
        };
    }

    fn stats(&self) -> PolicyStats {
        PolicyStats {
            values: vec![
                ("agings", self.agings),
                ("history_entries", self.history.len(HISTORY) as u64),
                ("lowest_count", self.lowest_bucket().unwrap_or(0) as u64),
            ],
        }
    }

    fn heap_bytes(&self) -> usize {
        self.links.heap_bytes()
            + self.count.heap_bytes()
            + self.buckets.capacity() * std::mem::size_of::<List>()
            + self.history.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Replayer;

    struct NoInfo;

    impl SlotInfo for NoInfo {
        fn hash(&self, slot: Slot) -> u64 {
            u64::from(slot) + 1000
        }
        fn weight(&self, _slot: Slot) -> u32 {
            1
        }
    }

    fn lfu_with(counts: &[u8]) -> Lfu {
        let mut lfu = Lfu::default();
        lfu.set_capacity(100);
        lfu.aging_period = u64::MAX; // age only when the test says so
        for (slot, &count) in (0..).zip(counts) {
            lfu.on_insert(slot, u64::from(slot) + 1000, 1, &NoInfo);
            for _ in 1..count {
                lfu.on_hit(slot, 0, &NoInfo);
            }
        }
        lfu
    }

    #[test]
    fn evicts_least_frequent_then_least_recent() {
        let mut lfu = lfu_with(&[3, 1, 2, 1, 5]);
        lfu.on_hit(1, 0, &NoInfo); // 1 now has 2, more recent than 2
        let order: Vec<_> = std::iter::from_fn(|| lfu.evict(&NoInfo)).collect();
        assert_eq!(order, vec![3, 2, 1, 0, 4]);
    }

    #[test]
    fn aging_halves_counts_and_keeps_the_finer_order() {
        let mut lfu = lfu_with(&[4, 5, 1, 9, 2, 3]);
        lfu.age();
        let counts: Vec<_> = (0..6).map(|slot| lfu.count.get(slot)).collect();
        assert_eq!(counts, vec![2, 2, 0, 4, 1, 1]);
        // Within merged buckets, the old higher count ranks as more recent:
        // bucket 1 holds 5 (from 3) ahead of 4 (from 2), so 4 goes first.
        let order: Vec<_> = std::iter::from_fn(|| lfu.evict(&NoInfo)).collect();
        assert_eq!(order, vec![2, 4, 5, 0, 1, 3]);
        assert_eq!(lfu.stats().get("agings"), Some(1));
    }

    #[test]
    fn aging_runs_every_ten_cache_fulls_of_accesses() {
        let mut replay = Replayer::new(PolicyKind::Lfu, 20);
        // 16 residents (the floor) -> first aging after 160 accesses.
        for round in 0..10u64 {
            for key in 0..16u64 {
                replay.access(key, 1);
            }
            let agings = replay.policy().stats().get("agings");
            assert_eq!(agings, Some(u64::from(round >= 9)), "round {round}");
        }
    }

    #[test]
    fn history_restores_decayed_counts() {
        let mut lfu = lfu_with(&[6, 1]);
        assert_eq!(lfu.evict(&NoInfo), Some(1));
        assert_eq!(lfu.evict(&NoInfo), Some(0)); // remembered with count 6
        lfu.age(); // 6 -> 3 while it is away
        lfu.on_insert(7, 1000, 1, &NoInfo); // slot 0's key returns in slot 7
        assert_eq!(lfu.count.get(7), 4, "3 remembered + this access");
        lfu.on_insert(8, 5555, 1, &NoInfo);
        assert_eq!(lfu.count.get(8), 1, "unknown keys start at 1");
        assert_eq!(lfu.recalled(lfu.remembered(200)), 200);
        for _ in 0..8 {
            lfu.age();
        }
        assert_eq!(lfu.recalled(u16::from_le_bytes([255, lfu.epoch.wrapping_sub(8)])), 0);
    }

    #[test]
    fn a_hot_set_outlives_its_cold_start_eviction() {
        // The hot keys are evicted once during warm-up (17 keys per round in
        // a cache of 10); the history, which remembers as many keys as the
        // cache holds, brings them back above the scan.
        let mut replay = Replayer::new(PolicyKind::Lfu, 10);
        let mut hits = 0;
        for round in 0..50u64 {
            for hot in 0..5u64 {
                hits += u64::from(replay.access(hot, 1) && round > 2);
            }
            for scan in 0..12u64 {
                replay.access(1_000 + round * 100 + scan, 1);
            }
        }
        assert_eq!(hits, 47 * 5);
        replay.drain_and_check();
    }
}
