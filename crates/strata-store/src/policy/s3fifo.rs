//! S3-FIFO (Yang et al., "FIFO queues are all you need for cache
//! eviction", SOSP'23).
//!
//! # Algorithm
//!
//! Three FIFO queues: a small queue S (10% of the capacity) where new items
//! start, a main queue M (the rest), and a ghost queue G of key hashes
//! recently evicted from S. Each item has a 2-bit frequency, bumped (up to
//! 3) by hits; nothing moves on a hit. A miss whose key is in G goes straight
//! to M; any other miss goes to S. To evict:
//!
//! - while S holds at least its 10% share, look at S's tail: an item that
//!   was accessed at least once since insertion moves to M's head with its
//!   frequency reset; one that was not is evicted and its hash enters G;
//! - otherwise look at M's tail: an item with a frequency above zero goes
//!   back to M's head with its frequency decremented (CLOCK with a 2-bit
//!   counter); one at zero is evicted.
//!
//! Most objects are requested once; S evicts them quickly ("quick
//! demotion") without letting them pollute M, while G remembers them long
//! enough that a key which does come back is admitted to M directly.
//!
//! # Choices
//!
//! - Sizes are weights: S's share is `capacity / 10` (rounded down, as
//!   libCacheSim does), M's is the rest, and G is trimmed, oldest first, to
//!   the weight M may hold, which in count mode is "as many entries as M".
//! - Promotion threshold: "accessed at least once" (frequency ≥ 1), as the
//!   paper's text says, with the frequency reset on promotion. The paper's
//!   pseudocode reads `freq > 1`, and libCacheSim's default
//!   `move-to-main-threshold=2` follows it. Against the reference table's
//!   `s3fifo` column (a textbook simulator), `≥ 1` with reset reproduces 78 of
//!   108 cells to the hundredth and is 0.04 points off on average (worst:
//!   1.45 points, `lirs_cpp` at 50 entries); the `> 1` reading was off by
//!   about 1.2 points on average in our trials, so we ship `≥ 1`.
//! - One victim per call. The paper's EVICT-S may evict from M *and* keep
//!   going until something leaves S, i.e. evict more than was needed; the
//!   [`EvictionPolicy`] contract is one victim per call with the caller
//!   asking again while the new item does not fit. So when promoting an item
//!   would overfill M, we first evict from M, then promote, and return M's
//!   victim. Against the `s3fifo` column this is the closer of the two
//!   readings. Against `lcs-s3fifo` (libCacheSim: threshold 2, G sized 90% of
//!   the cache, M allowed to overfill while S promotes) we differ by design:
//!   5 points on average, most on loop traces where the ghost size decides
//!   everything; in byte mode on cloudPhysicsIO we miss 0.5 to 8.5% fewer
//!   requests than libCacheSim's expected counts.
//! - The ghost check happens in `on_miss` (as libCacheSim does in `find`),
//!   before the caller evicts to make room, so evictions for this very
//!   request cannot push the key out of G first. An insert without its own
//!   `on_miss` looks G up itself.
//! - Per resident slot: 8 bytes of links plus 1 byte holding the 2-bit
//!   frequency and the queue bit, 9 bytes. Ghosts cost 30 to 46 bytes each
//!   (see [`Ghosts`]).

use super::ghost::Ghosts;
use super::list::{Links, List, SlotVec};
use super::{EvictionPolicy, PolicyKind, PolicyStats, Slot, SlotInfo};

/// Low two bits of a slot's byte: its access frequency, 0..=3.
const FREQ_MASK: u8 = 0b11;
/// Set when the slot is on M, clear when on S.
const IN_MAIN: u8 = 0b100;
/// The only ghost list used.
const G: usize = 0;

/// The most recent miss, remembered between `on_miss` and `on_insert`.
#[derive(Clone, Copy, Debug)]
struct PendingMiss {
    hash: u64,
    /// The key was found in G (and removed from it).
    was_ghost: bool,
}

/// S3-FIFO: small, main and ghost FIFO queues.
#[derive(Debug, Default)]
pub(crate) struct S3Fifo {
    links: Links,
    small: List,
    main: List,
    meta: SlotVec<u8>,
    ghosts: Ghosts,
    /// Weight S may hold before it must give items up.
    small_target: u64,
    /// Weight M may hold; also G's bound.
    main_target: u64,
    pending: Option<PendingMiss>,
    promoted: u64,
    ghost_admits: u64,
}

impl S3Fifo {
    fn queue(&mut self, slot: Slot) -> &mut List {
        if self.meta.get(slot) & IN_MAIN != 0 {
            &mut self.main
        } else {
            &mut self.small
        }
    }

    fn touch(&mut self, slot: Slot) {
        let meta = self.meta.get_mut(slot);
        if *meta & FREQ_MASK < FREQ_MASK {
            *meta += 1;
        }
    }

    /// CLOCK over M: reinserts items with a frequency above zero, one
    /// decrement each, and evicts the first item at zero.
    fn evict_main(&mut self, info: &dyn SlotInfo) -> Option<Slot> {
        loop {
            let tail = self.main.tail()?;
            let meta = self.meta.get_mut(tail);
            if *meta & FREQ_MASK == 0 {
                self.links.unlink(&mut self.main, tail, info.weight(tail));
                return Some(tail);
            }
            *meta -= 1;
            self.links.move_to_head(&mut self.main, tail);
        }
    }

    /// S's tail: promotes accessed items to M until one can be evicted (or M
    /// must give one up first).
    fn evict_small(&mut self, info: &dyn SlotInfo) -> Option<Slot> {
        while let Some(tail) = self.small.tail() {
            let weight = info.weight(tail);
            if self.meta.get(tail) & FREQ_MASK == 0 {
                self.links.unlink(&mut self.small, tail, weight);
                self.ghosts.push(G, info.hash(tail), weight, 0);
                self.ghosts.trim(G, self.main_target);
                return Some(tail);
            }
            let main_victim = if self.main.weight() + u64::from(weight) > self.main_target {
                self.evict_main(info)
            } else {
                None
            };
            self.links.unlink(&mut self.small, tail, weight);
            self.links.push_head(&mut self.main, tail, weight);
            self.meta.set(tail, IN_MAIN);
            self.promoted += 1;
            if main_victim.is_some() {
                return main_victim;
            }
        }
        None
    }
}

impl EvictionPolicy for S3Fifo {
    fn kind(&self) -> PolicyKind {
        PolicyKind::S3Fifo
    }

    fn set_capacity(&mut self, capacity: u64) {
        self.small_target = capacity / 10;
        self.main_target = capacity - self.small_target;
        self.ghosts.trim(G, self.main_target);
    }

    fn on_miss(&mut self, hash: u64) {
        let was_ghost = self.ghosts.remove(hash).is_some();
        self.pending = Some(PendingMiss { hash, was_ghost });
    }

    fn on_hit(&mut self, slot: Slot, _hash: u64, _info: &dyn SlotInfo) {
        self.touch(slot);
    }

    fn on_insert(&mut self, slot: Slot, hash: u64, weight: u32, _info: &dyn SlotInfo) {
        let was_ghost = match self.pending.take() {
            Some(pending) if pending.hash == hash => pending.was_ghost,
            _ => self.ghosts.remove(hash).is_some(),
        };
        if was_ghost {
            self.links.push_head(&mut self.main, slot, weight);
            self.meta.set(slot, IN_MAIN);
            self.ghost_admits += 1;
        } else {
            self.links.push_head(&mut self.small, slot, weight);
            self.meta.set(slot, 0);
        }
    }

    fn on_update(&mut self, slot: Slot, _hash: u64, old_weight: u32, new_weight: u32, _info: &dyn SlotInfo) {
        self.queue(slot).reweigh(old_weight, new_weight);
        self.touch(slot);
    }

    fn on_remove(&mut self, slot: Slot, _hash: u64, weight: u32) {
        let queue = if self.meta.get(slot) & IN_MAIN != 0 {
            &mut self.main
        } else {
            &mut self.small
        };
        self.links.unlink(queue, slot, weight);
    }

    fn evict(&mut self, info: &dyn SlotInfo) -> Option<Slot> {
        let small_first = !self.small.is_empty() && (self.small.weight() >= self.small_target || self.main.is_empty());
        if small_first {
            // `evict_small` empties S only by promoting everything into M,
            // so M has something to give if it found no victim in S.
            self.evict_small(info).or_else(|| self.evict_main(info))
        } else {
            self.evict_main(info)
        }
    }

    fn clear(&mut self) {
        *self = Self {
            small_target: self.small_target,
            main_target: self.main_target,
            ..Self::default()
        };
    }

    fn stats(&self) -> PolicyStats {
        PolicyStats {
            values: vec![
                ("small_weight", self.small.weight()),
                ("main_weight", self.main.weight()),
                ("ghost_weight", self.ghosts.weight(G)),
                ("ghost_entries", self.ghosts.len(G) as u64),
                ("promoted", self.promoted),
                ("ghost_admits", self.ghost_admits),
            ],
        }
    }

    fn heap_bytes(&self) -> usize {
        self.links.heap_bytes() + self.meta.heap_bytes() + self.ghosts.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Replayer;

    fn stat(replay: &Replayer, name: &str) -> u64 {
        replay.policy().stats().get(name).unwrap_or(u64::MAX)
    }

    #[test]
    fn ghost_hit_is_readmitted_straight_to_main() {
        // Capacity 10: S may hold 1, M 9, G 9 entries.
        let mut replay = Replayer::new(PolicyKind::S3Fifo, 10);
        for key in 0..10 {
            replay.access(key, 1);
        }
        // Full, all in S. A new key evicts S's tail (0) into G.
        replay.access(10, 1);
        assert!(!replay.contains(0));
        assert_eq!(stat(&replay, "ghost_entries"), 1);
        assert_eq!(stat(&replay, "main_weight"), 0);
        // 0 comes back: it leaves G and enters M directly (1 goes to G).
        assert!(!replay.access(0, 1));
        assert!(replay.contains(0) && !replay.contains(1));
        assert_eq!(stat(&replay, "main_weight"), 1);
        assert_eq!(stat(&replay, "ghost_admits"), 1);
        assert_eq!(stat(&replay, "ghost_entries"), 1, "0 left G, 1 entered it");
        // A key accessed in S is promoted instead of being evicted.
        assert!(replay.access(2, 1));
        replay.access(11, 1);
        assert!(replay.contains(2) && !replay.contains(3));
        assert_eq!((stat(&replay, "promoted"), stat(&replay, "main_weight")), (1, 2));
        replay.drain_and_check();
    }

    #[test]
    fn hot_keys_promoted_from_small_survive_a_scan() {
        let mut replay = Replayer::new(PolicyKind::S3Fifo, 10);
        // Make 0..9 hot: each is inserted into S and hit there.
        for key in 0..9 {
            replay.access(key, 1);
            replay.access(key, 1);
        }
        for key in 100..200 {
            replay.access(key, 1);
        }
        // The first eviction promoted all of them; the scan went through S.
        assert!((0..9).all(|key| replay.contains(key)));
        assert_eq!((stat(&replay, "main_weight"), stat(&replay, "promoted")), (9, 9));
        assert_eq!(stat(&replay, "ghost_entries"), 9, "G holds as many entries as M");
        replay.drain_and_check();
    }

    #[test]
    fn main_is_a_clock_with_two_bit_counters() {
        let mut s3 = S3Fifo::default();
        s3.set_capacity(10);
        // Slots 0, 1, 2 enter M through G; head..tail is 2 1 0.
        for slot in 0..3 {
            s3.ghosts.push(G, u64::from(slot), 1, 0);
            s3.on_insert(slot, u64::from(slot), 1, &NoInfo);
        }
        s3.on_hit(0, 0, &NoInfo);
        s3.on_hit(0, 0, &NoInfo);
        s3.on_hit(1, 1, &NoInfo);
        // 0 (2 -> 1) and 1 (1 -> 0) go round; 2 is evicted.
        assert_eq!(s3.evict(&NoInfo), Some(2));
        // 0 (1 -> 0) goes round once more, then 1 is evicted, then 0.
        assert_eq!(s3.evict(&NoInfo), Some(1));
        assert_eq!(s3.evict(&NoInfo), Some(0));
        assert_eq!(s3.evict(&NoInfo), None);
        assert_eq!(s3.ghosts.len(G), 0, "evictions from M leave no ghost");
    }

    #[test]
    fn frequency_saturates_at_three() {
        let mut s3 = S3Fifo::default();
        s3.set_capacity(10);
        s3.on_insert(0, 0, 1, &NoInfo);
        for _ in 0..10 {
            s3.on_hit(0, 0, &NoInfo);
        }
        assert_eq!(s3.meta.get(0), 3);
    }

    struct NoInfo;

    impl SlotInfo for NoInfo {
        fn hash(&self, slot: Slot) -> u64 {
            u64::from(slot)
        }
        fn weight(&self, _slot: Slot) -> u32 {
            1
        }
    }

    #[test]
    fn byte_mode_sizes_queues_by_weight() {
        let mut replay = Replayer::new(PolicyKind::S3Fifo, 1000);
        for key in 0..40 {
            replay.access(key, 50);
        }
        assert!(replay.used() <= 1000);
        assert!(stat(&replay, "ghost_weight") <= 900);
        replay.drain_and_check();
    }
}
