//! SIEVE (Zhang et al., "SIEVE is Simpler than LRU", NSDI'24).
//!
//! # Algorithm
//!
//! One FIFO list (new items at the head), one *visited* bit per item and a
//! *hand*. A hit only sets the visited bit: nothing moves, which is what
//! makes SIEVE cheap under concurrency. To evict, the hand walks from where
//! it stopped last time towards the head, clearing visited bits, and evicts
//! the first item that was not visited; it then rests on that item's
//! neighbour towards the head. When it passes the head it wraps to the tail.
//! Unlike CLOCK, survivors are not moved to the head: they keep their place,
//! so new items near the head are judged sooner than old survivors ("quick
//! demotion" of one-hit wonders, "lazy promotion" of popular ones).
//!
//! # Choices
//!
//! - The state machine is libCacheSim's `Sieve.c` step for step (hand
//!   starts at the tail; after an eviction it rests on the victim's
//!   head-side neighbour, or nowhere, meaning "the tail", when the victim was
//!   the head), because that is the implementation the published numbers
//!   come from; the reference-table test reproduces them exactly, in count
//!   mode and against libCacheSim's byte-mode miss counts.
//! - The visited bit is a full byte in a [`SlotVec`]: the list already costs
//!   8 bytes per slot and a byte keeps access trivially cheap. 9 bytes per
//!   slot in all.
//! - Deleting the item under the hand moves the hand to that item's
//!   head-side neighbour first, exactly as an eviction would, so the hand is
//!   never left dangling on a freed (and possibly reused) slot.
//! - Weights play no part: the order is the same in byte mode, and the
//!   caller keeps evicting until the new item fits.

use super::list::{Links, List, SlotVec};
use super::{EvictionPolicy, PolicyKind, PolicyStats, Slot, SlotInfo};

/// SIEVE: FIFO order, a visited bit and a roving hand.
#[derive(Debug, Default)]
pub(crate) struct Sieve {
    links: Links,
    list: List,
    visited: SlotVec<bool>,
    /// Where the next eviction starts looking; `None` means the tail.
    hand: Option<Slot>,
}

impl EvictionPolicy for Sieve {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Sieve
    }

    fn set_capacity(&mut self, _capacity: u64) {}

    fn on_miss(&mut self, _hash: u64) {}

    fn on_hit(&mut self, slot: Slot, _hash: u64, _info: &dyn SlotInfo) {
        self.visited.set(slot, true);
    }

    fn on_insert(&mut self, slot: Slot, _hash: u64, _weight: u32, _info: &dyn SlotInfo) {
        self.links.push_head(&mut self.list, slot, 0);
        self.visited.set(slot, false);
    }

    fn on_update(&mut self, slot: Slot, _hash: u64, _old: u32, _new: u32, _info: &dyn SlotInfo) {
        self.visited.set(slot, true);
    }

    fn on_remove(&mut self, slot: Slot, _hash: u64, _weight: u32) {
        if self.hand == Some(slot) {
            self.hand = self.links.prev(slot);
        }
        self.links.unlink(&mut self.list, slot, 0);
    }

    fn evict(&mut self, _info: &dyn SlotInfo) -> Option<Slot> {
        let tail = self.list.tail()?;
        let mut at = self.hand.unwrap_or(tail);
        // Terminates: every step clears a bit, and a full lap leaves none set.
        while self.visited.get(at) {
            self.visited.set(at, false);
            at = self.links.prev(at).unwrap_or(tail);
        }
        self.hand = self.links.prev(at);
        self.links.unlink(&mut self.list, at, 0);
        Some(at)
    }

    fn clear(&mut self) {
        self.links.clear();
        self.list = List::default();
        self.visited.clear();
        self.hand = None;
    }

    fn stats(&self) -> PolicyStats {
        PolicyStats {
            values: vec![("resident", self.list.len() as u64)],
        }
    }

    fn heap_bytes(&self) -> usize {
        self.links.heap_bytes() + self.visited.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Replayer;

    /// Resident slots carry no real hash or weight in these unit tests.
    struct NoInfo;

    impl SlotInfo for NoInfo {
        fn hash(&self, slot: Slot) -> u64 {
            u64::from(slot)
        }
        fn weight(&self, _slot: Slot) -> u32 {
            1
        }
    }

    fn filled(n: Slot) -> Sieve {
        let mut sieve = Sieve::default();
        for slot in 0..n {
            sieve.on_insert(slot, u64::from(slot), 1, &NoInfo);
        }
        sieve
    }

    #[test]
    fn evicts_first_unvisited_from_the_tail_and_keeps_survivors_in_place() {
        // List head..tail: 4 3 2 1 0. Visit 0 and 1: the hand clears them and
        // evicts 2; it then rests on 3.
        let mut sieve = filled(5);
        sieve.on_hit(0, 0, &NoInfo);
        sieve.on_hit(1, 1, &NoInfo);
        assert_eq!(sieve.evict(&NoInfo), Some(2));
        assert_eq!(sieve.hand, Some(3));
        // 0 and 1 were not moved: once the hand wraps they go first.
        assert_eq!(sieve.evict(&NoInfo), Some(3));
        assert_eq!(sieve.evict(&NoInfo), Some(4));
        assert_eq!(sieve.hand, None, "victim was the head: the hand wraps");
        assert_eq!(sieve.evict(&NoInfo), Some(0));
        assert_eq!(sieve.evict(&NoInfo), Some(1));
        assert_eq!(sieve.evict(&NoInfo), None);
    }

    #[test]
    fn all_visited_means_one_full_lap() {
        let mut sieve = filled(3);
        for slot in 0..3 {
            sieve.on_hit(slot, u64::from(slot), &NoInfo);
        }
        assert_eq!(sieve.evict(&NoInfo), Some(0));
        assert_eq!(sieve.hand, Some(1));
    }

    #[test]
    fn hand_survives_removal_of_its_item() {
        let mut sieve = filled(5);
        sieve.on_hit(0, 0, &NoInfo);
        assert_eq!(sieve.evict(&NoInfo), Some(1));
        assert_eq!(sieve.hand, Some(2));
        // Delete the item under the hand: it moves on to 3.
        sieve.on_remove(2, 2, 1);
        assert_eq!(sieve.hand, Some(3));
        // Reuse slot 2 for a new item at the head; the hand must not care.
        sieve.on_insert(2, 99, 1, &NoInfo);
        sieve.on_hit(3, 3, &NoInfo);
        assert_eq!(sieve.evict(&NoInfo), Some(4));
        // Remove the head while the hand rests on it: the hand wraps.
        assert_eq!(sieve.hand, Some(2));
        sieve.on_remove(2, 99, 1);
        assert_eq!(sieve.hand, None);
        assert_eq!(sieve.evict(&NoInfo), Some(0), "0's bit was cleared by the first lap");
        assert_eq!(sieve.evict(&NoInfo), Some(3), "3's bit was cleared by the second");
        assert_eq!(sieve.evict(&NoInfo), None);
    }

    #[test]
    fn deletes_under_the_hand_in_a_replay_stay_consistent() {
        let mut replay = Replayer::new(PolicyKind::Sieve, 8);
        for round in 0..200u64 {
            for key in 0..12u64 {
                replay.access((round * 7 + key) % 20, 1);
                if key % 5 == 0 {
                    replay.remove((round + key) % 20);
                }
            }
        }
        replay.drain_and_check();
    }
}
