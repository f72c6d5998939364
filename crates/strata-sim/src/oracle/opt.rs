//! OPT: Belady's MIN, allowed to bypass.
//!
//! On a miss for an object whose next use is at time `t`, only residents
//! whose next use is *farther* than `t` may make room for it: keeping any
//! other resident is at least as good as admitting the newcomer. So:
//!
//! - if the residents farther than `t` hold enough weight to make room, they
//!   are evicted farthest first until the object fits, and it is admitted;
//! - otherwise the object bypasses the cache and nothing is evicted. An
//!   object never requested again always bypasses.
//!
//! In count mode every object weighs 1 and this is exactly MIN with bypass:
//! the optimal hit ratio, the bound no policy can beat. In byte mode the
//! optimum is NP-hard to compute; the same rule, applied to weights, is a
//! strong offline reference but not a proven bound. Among several residents
//! that are never used again, the one with the highest id (the key seen
//! last for the first time) leaves first; any order is deterministic.
//!
//! The weight of residents farther than `t` comes from a Fenwick tree
//! indexed by next use (one slot per request index, plus one for "never"),
//! the farthest resident from a max-heap with lazy deletion (an entry is
//! live while it matches the resident's current next use). Both are
//! O(log n) per request.

use std::collections::BinaryHeap;

use super::{NEVER, NextUse};

/// MIN with bypass for one capacity.
#[derive(Debug)]
pub struct Opt<'a> {
    next_use: &'a NextUse,
    capacity: u64,
    used: u64,
    /// Per id: the weight it was admitted with, 0 when not resident.
    size: Vec<u32>,
    /// Per id: its next use while resident.
    next: Vec<u32>,
    /// `(next use, id)` of residents, farthest on top; stale entries skipped.
    farthest: BinaryHeap<(u32, u32)>,
    /// Resident weight by next use.
    weight_by_next: Fenwick,
}

impl<'a> Opt<'a> {
    /// An empty cache of `capacity` weight units over the annotated trace.
    pub fn new(next_use: &'a NextUse, capacity: u64) -> Self {
        let keys = next_use.keys();
        Self {
            next_use,
            capacity,
            used: 0,
            size: vec![0; keys],
            next: vec![NEVER; keys],
            farthest: BinaryHeap::new(),
            weight_by_next: Fenwick::new(next_use.len() + 1),
        }
    }

    /// Request number `index` of the trace, for an object of `size` units
    /// (at least 1). Returns true on a hit. Requests must come in trace order.
    pub fn access(&mut self, index: usize, size: u32) -> bool {
        let id = self.next_use.id(index) as usize;
        let next = self.next_use.next(index);
        let resident_size = self.size[id];
        if resident_size != 0 {
            self.weight_by_next
                .add(self.slot(self.next[id]), -i64::from(resident_size));
            self.track(id, next, resident_size);
            return true;
        }
        let size = size.max(1);
        let needed = (self.used + u64::from(size)).saturating_sub(self.capacity);
        if u64::from(size) > self.capacity || next == NEVER {
            return false;
        }
        if needed > 0 {
            let nearer_or_equal = self.weight_by_next.prefix(self.slot(next));
            let farther = self.used - nearer_or_equal;
            if farther < needed {
                return false;
            }
            while self.used + u64::from(size) > self.capacity {
                self.evict_farthest();
            }
        }
        self.used += u64::from(size);
        self.track(id, next, size);
        false
    }

    fn track(&mut self, id: usize, next: u32, size: u32) {
        self.size[id] = size;
        self.next[id] = next;
        self.weight_by_next.add(self.slot(next), i64::from(size));
        self.farthest.push((next, id as u32));
    }

    fn evict_farthest(&mut self) {
        while let Some((next, id)) = self.farthest.pop() {
            let id = id as usize;
            if self.size[id] == 0 || self.next[id] != next {
                continue; // stale: evicted, or its next use moved on a hit
            }
            let size = self.size[id];
            self.weight_by_next.add(self.slot(next), -i64::from(size));
            self.used -= u64::from(size);
            self.size[id] = 0;
            return;
        }
        unreachable!("OPT evicts only while residents farther than the newcomer hold weight");
    }

    /// The Fenwick slot of a next-use time; "never" takes the last one.
    fn slot(&self, next: u32) -> usize {
        if next == NEVER {
            self.next_use.len()
        } else {
            next as usize
        }
    }

    /// Weight units in use.
    pub fn used(&self) -> u64 {
        self.used
    }
}

/// A Fenwick (binary indexed) tree of weights: point add, prefix sum.
#[derive(Debug)]
struct Fenwick {
    tree: Vec<i64>,
}

impl Fenwick {
    fn new(len: usize) -> Self {
        Self { tree: vec![0; len + 1] }
    }

    fn add(&mut self, slot: usize, delta: i64) {
        let mut i = slot + 1;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// The sum of slots `0..=slot`.
    fn prefix(&self, slot: usize) -> u64 {
        let mut i = slot + 1;
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        u64::try_from(sum).expect("weights are never negative")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Request;

    fn hits(trace: &[(u64, u32)], capacity: u64) -> Vec<bool> {
        let requests: Vec<Request> = trace.iter().map(|&(key, size)| Request { key, size }).collect();
        let annotated = NextUse::new("t", &requests).unwrap();
        let mut opt = Opt::new(&annotated, capacity);
        let hits = requests
            .iter()
            .enumerate()
            .map(|(i, r)| opt.access(i, r.size))
            .collect();
        assert!(opt.used() <= capacity);
        hits
    }

    #[test]
    fn bypasses_an_object_needed_later_than_every_resident() {
        // Capacity 2: a b c a b. c is never used again: it bypasses, so both
        // a and b hit (Belady without bypass would lose one of them).
        let trace = [(1, 1), (2, 1), (3, 1), (1, 1), (2, 1)];
        assert_eq!(hits(&trace, 2), [false, false, false, true, true]);
    }

    #[test]
    fn evicts_the_farthest_when_the_newcomer_is_needed_sooner() {
        // Capacity 2: a b c c a b: c is needed at 3, a at 4, b at 5: b leaves.
        let trace = [(1, 1), (2, 1), (3, 1), (3, 1), (1, 1), (2, 1)];
        assert_eq!(hits(&trace, 2), [false, false, false, true, true, false]);
    }

    #[test]
    fn bytes_admit_only_when_farther_residents_make_enough_room() {
        // Capacity 4: a (2) next at 4, b (2) next at 3; c (3) next at 5 is
        // needed later than both: it bypasses. Its second request is its
        // last: it bypasses again.
        let trace = [(1, 2), (2, 2), (3, 3), (2, 2), (1, 2), (3, 3)];
        assert_eq!(hits(&trace, 4), [false, false, false, true, true, false]);
        // c (2) is needed at 3, before b (at 4) and a (at 5): both are
        // farther, and evicting a, the farthest, makes room.
        let trace = [(1, 2), (2, 2), (3, 2), (3, 2), (2, 2), (1, 2)];
        assert_eq!(hits(&trace, 4), [false, false, false, true, true, false]);
        // As before, but b is needed after c and a before it: b alone is
        // farther, and weighs enough.
        let trace = [(1, 2), (2, 2), (3, 2), (1, 2), (3, 2), (2, 2)];
        assert_eq!(hits(&trace, 4), [false, false, false, true, true, false]);
        // c (4) is needed before b but after a: b alone (2) is not enough.
        let trace = [(1, 2), (2, 2), (3, 4), (1, 2), (3, 4), (2, 2)];
        assert_eq!(hits(&trace, 4), [false, false, false, true, false, true]);
    }

    #[test]
    fn fenwick_prefix_sums() {
        let mut tree = Fenwick::new(10);
        tree.add(0, 5);
        tree.add(9, 7);
        tree.add(4, 2);
        assert_eq!(tree.prefix(0), 5);
        assert_eq!(tree.prefix(3), 5);
        assert_eq!(tree.prefix(4), 7);
        assert_eq!(tree.prefix(9), 14);
        tree.add(4, -2);
        assert_eq!(tree.prefix(8), 5);
    }
}
