//! CLOCK (second chance): FIFO with one reference bit per item.
//!
//! # Algorithm
//!
//! Items enter at the head of a FIFO with their reference bit clear; a hit
//! sets the bit. To evict, look at the tail: an item whose bit is set gets a
//! second chance (bit cleared, item moved to the head) and the next tail is
//! examined; the first item found with a clear bit is the victim.
//!
//! This is the textbook circular CLOCK written as a list: "move the
//! survivor to the head" is "advance the hand past it", and a new item
//! takes the victim's place just behind the hand, which in list terms is the
//! head. Each second chance consumes a bit that a hit set, so eviction is
//! O(1) amortized.
//!
//! # Choices
//!
//! - New items start with the bit clear (as in libCacheSim's `Clock.c` with
//!   its default 1-bit counter). Variants that set the bit on insertion, or
//!   that leave the hand on the newly placed item, differ by up to ten points
//!   on loop-heavy traces; the bit-clear variant reproduces every `clock`
//!   value of the reference table exactly, and libCacheSim's byte-mode miss
//!   counts on cloudPhysicsIO, so it is the one we ship.
//! - The bit is a byte in a [`SlotVec`]: 8 bytes of links plus 1, 9 bytes per
//!   slot.
//! - Weights play no part in the order; the caller keeps evicting until the
//!   new item fits.

use super::list::{Links, List, SlotVec};
use super::{EvictionPolicy, PolicyKind, PolicyStats, Slot, SlotInfo};

/// CLOCK with one reference bit.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    links: Links,
    list: List,
    referenced: SlotVec<bool>,
    /// Second chances given, for `stats`.
    second_chances: u64,
}

impl EvictionPolicy for Clock {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Clock
    }

    fn set_capacity(&mut self, _capacity: u64) {}

    fn on_miss(&mut self, _hash: u64) {}

    fn on_hit(&mut self, slot: Slot, _hash: u64, _info: &dyn SlotInfo) {
        self.referenced.set(slot, true);
    }

    fn on_insert(&mut self, slot: Slot, _hash: u64, _weight: u32, _info: &dyn SlotInfo) {
        self.links.push_head(&mut self.list, slot, 0);
        self.referenced.set(slot, false);
    }

    fn on_update(&mut self, slot: Slot, _hash: u64, _old: u32, _new: u32, _info: &dyn SlotInfo) {
        self.referenced.set(slot, true);
    }

    fn on_remove(&mut self, slot: Slot, _hash: u64, _weight: u32) {
        self.links.unlink(&mut self.list, slot, 0);
    }

    fn evict(&mut self, _info: &dyn SlotInfo) -> Option<Slot> {
        loop {
            let tail = self.list.tail()?;
            if !self.referenced.get(tail) {
                self.links.unlink(&mut self.list, tail, 0);
                return Some(tail);
            }
            self.referenced.set(tail, false);
            self.links.move_to_head(&mut self.list, tail);
            self.second_chances += 1;
        }
    }

    fn clear(&mut self) {
        self.links.clear();
        self.list = List::default();
        self.referenced.clear();
        self.second_chances = 0;
    }

    fn stats(&self) -> PolicyStats {
        PolicyStats {
            values: vec![("second_chances", self.second_chances)],
        }
    }

    fn heap_bytes(&self) -> usize {
        self.links.heap_bytes() + self.referenced.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn referenced_items_get_a_second_chance_at_the_head() {
        let mut clock = Clock::default();
        for slot in 0..4 {
            clock.on_insert(slot, u64::from(slot), 1, &NoInfo);
        }
        clock.on_hit(0, 0, &NoInfo);
        clock.on_hit(2, 2, &NoInfo);
        // Tail is 0 (referenced: moves to head), then 1 goes.
        assert_eq!(clock.evict(&NoInfo), Some(1));
        // Now head..tail is 0 3 2: 2 gets its second chance, 3 goes.
        assert_eq!(clock.evict(&NoInfo), Some(3));
        assert_eq!(clock.evict(&NoInfo), Some(0));
        assert_eq!(clock.evict(&NoInfo), Some(2));
        assert_eq!(clock.evict(&NoInfo), None);
        assert_eq!(clock.stats().get("second_chances"), Some(2));
    }

    #[test]
    fn all_referenced_degenerates_to_fifo() {
        let mut clock = Clock::default();
        for slot in 0..3 {
            clock.on_insert(slot, u64::from(slot), 1, &NoInfo);
            clock.on_hit(slot, u64::from(slot), &NoInfo);
        }
        assert_eq!(clock.evict(&NoInfo), Some(0));
        clock.on_remove(1, 1, 1);
        assert_eq!(clock.evict(&NoInfo), Some(2));
    }
}
