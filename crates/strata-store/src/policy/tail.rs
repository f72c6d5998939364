//! Tail regions: is this slot among the last `depth` units of its list?
//!
//! The adaptive W-TinyLFU needs to know, when an item is hit, whether the
//! segment holding it would have lost it had it been `depth` weight units
//! smaller, that is, whether the item sits in the segment's last `depth`
//! units. Counting positions in a linked list is O(n); instead a
//! [`TailRegion`] keeps a *boundary*, the region member nearest the head,
//! and the region's total weight. Members are flagged by their owner (one
//! bit of the policy's per-slot tag), so membership is an O(1) lookup:
//!
//! - a new item enters at the head, outside the region;
//! - when a member leaves (evicted, hit and moved, removed), the region's
//!   weight drops, and if it was the boundary the boundary moves one step
//!   towards the tail;
//! - [`TailRegion::extend`] then moves the boundary towards the head, one
//!   item at a time, until the region weighs `depth` again.
//!
//! Each item enters and leaves the region at most once per stay on the
//! list, so the upkeep is O(1) amortized per operation, and no memory is
//! spent per slot beyond the owner's flag bit.

use super::Slot;
use super::list::{Links, List};

/// The tail-side members of one list, up to a target weight.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TailRegion {
    /// The member nearest the head, if any.
    boundary: Option<Slot>,
    weight: u64,
}

impl TailRegion {
    /// Called just before `slot`, a member, is unlinked from the list.
    pub(crate) fn leave(&mut self, links: &Links, slot: Slot, weight: u32) {
        self.weight -= u64::from(weight);
        if self.boundary == Some(slot) {
            self.boundary = links.next(slot);
        }
    }

    /// A member's weight changed in place.
    pub(crate) fn reweigh(&mut self, old: u32, new: u32) {
        self.weight = self.weight - u64::from(old) + u64::from(new);
    }

    /// Takes items from just above the boundary into the region until it
    /// weighs at least `depth` or holds the whole list. `enter` flags a new
    /// member and returns its weight.
    pub(crate) fn extend(&mut self, links: &Links, list: &List, depth: u64, mut enter: impl FnMut(Slot) -> u32) {
        while self.weight < depth {
            let next = match self.boundary {
                None => list.tail(),
                Some(boundary) => links.prev(boundary),
            };
            let Some(slot) = next else { break };
            self.weight += u64::from(enter(slot));
            self.boundary = Some(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn tracks_the_last_items_through_removals() {
        let mut links = Links::default();
        let mut list = List::default();
        let mut region = TailRegion::default();
        let mut members = HashSet::new();
        // Slots 0..10 pushed at the head: 0 is the tail.
        for slot in 0..10 {
            links.push_head(&mut list, slot, 1);
        }
        region.extend(&links, &list, 3, |slot| {
            members.insert(slot);
            1
        });
        assert_eq!(members, HashSet::from([0, 1, 2]));
        // Evict the tail and remove the boundary: the region refills from
        // above.
        for slot in [0, 2] {
            region.leave(&links, slot, 1);
            members.remove(&slot);
            links.unlink(&mut list, slot, 1);
        }
        region.extend(&links, &list, 3, |slot| {
            members.insert(slot);
            1
        });
        assert_eq!(members, HashSet::from([1, 3, 4]));
        // A non-member leaving changes nothing.
        links.unlink(&mut list, 9, 1);
        region.extend(&links, &list, 3, |_| unreachable!("region is full"));
    }

    #[test]
    fn weights_count_and_a_short_list_is_all_region() {
        let mut links = Links::default();
        let mut list = List::default();
        let mut region = TailRegion::default();
        links.push_head(&mut list, 7, 5);
        links.push_head(&mut list, 8, 5);
        let mut entered = Vec::new();
        region.extend(&links, &list, 100, |slot| {
            entered.push(slot);
            5
        });
        assert_eq!(entered, [7, 8]);
        region.reweigh(5, 50);
        links.push_head(&mut list, 9, 5);
        region.extend(&links, &list, 100, |slot| {
            entered.push(slot);
            5
        });
        assert_eq!(entered, [7, 8, 9]);
        region.extend(&links, &list, 50, |_| unreachable!("60 units already"));
    }
}
