//! Belady, always admitting: libCacheSim's `Belady`, request for request.
//!
//! What makes the counts equal libCacheSim's (`cache/eviction/Belady.c`
//! driven by `cache_get_base` in `cache/cache.c`):
//!
//! - every request is counted; there is no warm-up;
//! - a hit updates the resident's next use and nothing else (not its size);
//! - a miss always admits the object, even when it is needed later than
//!   every resident or never again (no bypass: that is [`super::Opt`]),
//!   unless it is larger than the whole cache, in which case nothing is
//!   evicted and it is not admitted;
//! - room is made *before* the object joins the candidates: the residents
//!   whose next use is farthest leave, one by one, until it fits.
//!
//! Ties are possible only among residents never requested again (two keys
//! cannot share a next request). Which of those leaves first cannot change
//! any hit or miss, in count or byte mode: such residents are never hit and
//! are evicted before any other, so they act exactly like free space, and
//! their total weight plus the free space is the same whatever the order.
//! Only the set of residents (and the number of evictions) depends on it.
//! [`Belady`] still keeps libCacheSim's exact heap, so that its state, not
//! just its counts, follows libCacheSim's request for request: a one-based
//! binary max-heap keyed by next access time (`dataStructure/pqueue.c`,
//! Volkan Yazıcı's pqueue) whose root is evicted:
//!
//! - children of `i` at `2i` and `2i + 1`;
//! - insert: append, then sift up while the parent's key is *strictly*
//!   smaller;
//! - pop: move the last element to the root, then sift down, choosing the
//!   right child only when the left one's key is strictly smaller, and moving
//!   only while the child's key is strictly larger;
//! - change of key (a hit): sift up if the key grew, else down.
//!
//! libCacheSim's next access time is the one-based index of the next request
//! (`INT64_MAX` for none, compared as doubles); ours is zero-based with
//! [`NEVER`] for none. The order, and so every comparison, is the same.

use super::{NEVER, NextUse};

/// libCacheSim-compatible Belady (always admits) for one capacity.
#[derive(Debug)]
pub struct Belady<'a> {
    next_use: &'a NextUse,
    capacity: u64,
    used: u64,
    /// Ids of residents in heap order; `heap[0]` is unused.
    heap: Vec<u32>,
    /// Per id: its position in `heap`, 0 when not resident.
    position: Vec<u32>,
    /// Per id: the next use it is keyed by while resident.
    next: Vec<u32>,
    /// Per id: the size it was admitted with.
    size: Vec<u32>,
}

impl<'a> Belady<'a> {
    /// An empty cache of `capacity` weight units over the annotated trace.
    pub fn new(next_use: &'a NextUse, capacity: u64) -> Self {
        let keys = next_use.keys();
        Self {
            next_use,
            capacity,
            used: 0,
            heap: vec![0],
            position: vec![0; keys],
            next: vec![NEVER; keys],
            size: vec![0; keys],
        }
    }

    /// Request number `index` of the trace, for an object of `size` units.
    /// Returns true on a hit. Requests must come in trace order.
    pub fn access(&mut self, index: usize, size: u32) -> bool {
        let id = self.next_use.id(index);
        let next = self.next_use.next(index);
        let position = self.position[id as usize];
        if position != 0 {
            let old = self.next[id as usize];
            self.next[id as usize] = next;
            if old < next {
                self.sift_up(position as usize);
            } else {
                self.sift_down(position as usize);
            }
            return true;
        }
        if u64::from(size) > self.capacity {
            return false;
        }
        while self.used + u64::from(size) > self.capacity {
            self.evict();
        }
        self.next[id as usize] = next;
        self.size[id as usize] = size;
        self.used += u64::from(size);
        self.heap.push(id);
        self.sift_up(self.heap.len() - 1);
        false
    }

    fn evict(&mut self) {
        let victim = self.heap[1];
        let last = self.heap.pop().expect("evict with a resident");
        if self.heap.len() > 1 {
            self.heap[1] = last;
            self.sift_down(1);
        }
        self.position[victim as usize] = 0;
        self.used -= u64::from(self.size[victim as usize]);
    }

    fn key(&self, heap_index: usize) -> u32 {
        self.next[self.heap[heap_index] as usize]
    }

    fn place(&mut self, heap_index: usize, id: u32) {
        self.heap[heap_index] = id;
        self.position[id as usize] = heap_index as u32;
    }

    fn sift_up(&mut self, mut index: usize) {
        let moving = self.heap[index];
        let key = self.next[moving as usize];
        while index > 1 && self.key(index / 2) < key {
            self.place(index, self.heap[index / 2]);
            index /= 2;
        }
        self.place(index, moving);
    }

    /// The child of `index` to compare with, or `None` for a leaf.
    fn larger_child(&self, index: usize) -> Option<usize> {
        let left = 2 * index;
        if left >= self.heap.len() {
            return None;
        }
        if left + 1 < self.heap.len() && self.key(left) < self.key(left + 1) {
            Some(left + 1)
        } else {
            Some(left)
        }
    }

    fn sift_down(&mut self, mut index: usize) {
        let moving = self.heap[index];
        let key = self.next[moving as usize];
        while let Some(child) = self.larger_child(index) {
            if key >= self.key(child) {
                break;
            }
            self.place(index, self.heap[child]);
            index = child;
        }
        self.place(index, moving);
    }

    /// Weight units in use.
    pub fn used(&self) -> u64 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Request;

    fn run(trace: &[(u64, u32)], capacity: u64) -> Vec<bool> {
        let requests: Vec<Request> = trace.iter().map(|&(key, size)| Request { key, size }).collect();
        let annotated = NextUse::new("t", &requests).unwrap();
        let mut belady = Belady::new(&annotated, capacity);
        let hits = requests
            .iter()
            .enumerate()
            .map(|(i, r)| belady.access(i, r.size))
            .collect();
        assert!(belady.used() <= capacity);
        hits
    }

    #[test]
    fn evicts_the_farthest_next_use_and_always_admits() {
        // Capacity 2: a b c a b. At c, a is next at 3 and b at 4: b leaves.
        let hits = run(&[(1, 1), (2, 1), (3, 1), (1, 1), (2, 1)], 2);
        assert_eq!(hits, [false, false, false, true, false]);
    }

    #[test]
    fn never_again_ties_break_like_libcachesim() {
        // Capacity 4; a (1 unit), b (2) and c (1) never come back. Inserted
        // with equal keys, the heap is [a, b, c]. Admitting d (2 units) pops
        // a; c moves to the root and stays there (equal keys never move), so
        // c is popped next and b survives. Evicting b first would also have
        // made room, but libCacheSim does not.
        let requests: Vec<Request> = [(1, 1), (2, 2), (3, 1), (4, 2)]
            .iter()
            .map(|&(key, size)| Request { key, size })
            .collect();
        let annotated = NextUse::new("t", &requests).unwrap();
        let mut belady = Belady::new(&annotated, 4);
        for (i, r) in requests.iter().enumerate() {
            assert!(!belady.access(i, r.size));
        }
        let resident = |i: usize| belady.position[annotated.id(i) as usize] != 0;
        assert_eq!((0..4).map(resident).collect::<Vec<_>>(), [false, true, false, true]);
    }

    #[test]
    fn objects_larger_than_the_cache_are_not_admitted() {
        let hits = run(&[(1, 5), (1, 5), (2, 1), (2, 1)], 4);
        assert_eq!(hits, [false, false, false, true]);
    }
}
