//! Intrusive doubly-linked lists over slot numbers.
//!
//! Every list-based policy keeps its order in one [`Links`] arena: two `u32`
//! per slot (8 bytes), shared by all the lists of that policy, because a slot
//! is on at most one list at a time. A [`List`] is just a head, a tail, a
//! length and a total weight. Slots are dense small integers handed out by the
//! caller, so the arena is a `Vec` indexed by slot and grows on demand.
//!
//! Head is the most recently inserted end; tail is the eviction end.

use super::Slot;

/// "No slot": the end of a list.
pub(crate) const NIL: Slot = Slot::MAX;

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: Slot,
    next: Slot,
}

/// The per-slot link storage shared by a policy's lists.
#[derive(Debug, Default)]
pub(crate) struct Links {
    links: Vec<Link>,
}

/// One list: ends, length and total weight of its members.
#[derive(Clone, Copy, Debug)]
pub(crate) struct List {
    head: Slot,
    tail: Slot,
    len: usize,
    weight: u64,
}

impl Default for List {
    fn default() -> Self {
        Self {
            head: NIL,
            tail: NIL,
            len: 0,
            weight: 0,
        }
    }
}

impl List {
    /// Number of members.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when the list has no members.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sum of the weights given when members were added.
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    /// The most recently pushed member.
    pub(crate) fn head(&self) -> Option<Slot> {
        (self.head != NIL).then_some(self.head)
    }

    /// The eviction end.
    pub(crate) fn tail(&self) -> Option<Slot> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Adjusts the recorded weight when a member's weight changes in place.
    pub(crate) fn reweigh(&mut self, old: u32, new: u32) {
        self.weight = self.weight - u64::from(old) + u64::from(new);
    }
}

impl Links {
    fn ensure(&mut self, slot: Slot) {
        let needed = slot as usize + 1;
        if self.links.len() < needed {
            grow(&mut self.links, needed, Link { prev: NIL, next: NIL });
        }
    }

    /// Inserts `slot` at the head of `list`.
    pub(crate) fn push_head(&mut self, list: &mut List, slot: Slot, weight: u32) {
        self.ensure(slot);
        self.links[slot as usize] = Link {
            prev: NIL,
            next: list.head,
        };
        if list.head != NIL {
            self.links[list.head as usize].prev = slot;
        } else {
            list.tail = slot;
        }
        list.head = slot;
        list.len += 1;
        list.weight += u64::from(weight);
    }

    /// Inserts `slot` at the tail of `list`.
    pub(crate) fn push_tail(&mut self, list: &mut List, slot: Slot, weight: u32) {
        self.ensure(slot);
        self.links[slot as usize] = Link {
            prev: list.tail,
            next: NIL,
        };
        if list.tail != NIL {
            self.links[list.tail as usize].next = slot;
        } else {
            list.head = slot;
        }
        list.tail = slot;
        list.len += 1;
        list.weight += u64::from(weight);
    }

    /// Unlinks `slot`, which must be a member of `list`.
    pub(crate) fn unlink(&mut self, list: &mut List, slot: Slot, weight: u32) {
        let Link { prev, next } = self.links[slot as usize];
        if prev != NIL {
            self.links[prev as usize].next = next;
        } else {
            debug_assert_eq!(list.head, slot, "slot is not on this list");
            list.head = next;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        } else {
            debug_assert_eq!(list.tail, slot, "slot is not on this list");
            list.tail = prev;
        }
        list.len -= 1;
        list.weight -= u64::from(weight);
    }

    /// Moves a member of `list` to its head.
    pub(crate) fn move_to_head(&mut self, list: &mut List, slot: Slot) {
        if list.head == slot {
            return;
        }
        // Weight is unchanged, so unlink and push with weight 0 bookkeeping.
        self.unlink(list, slot, 0);
        self.push_head(list, slot, 0);
    }

    /// The neighbour towards the head (more recent), if any.
    pub(crate) fn prev(&self, slot: Slot) -> Option<Slot> {
        let prev = self.links[slot as usize].prev;
        (prev != NIL).then_some(prev)
    }

    /// The neighbour towards the tail (older), if any.
    pub(crate) fn next(&self, slot: Slot) -> Option<Slot> {
        let next = self.links[slot as usize].next;
        (next != NIL).then_some(next)
    }

    /// Forgets every link (lists must be reset by their owners).
    pub(crate) fn clear(&mut self) {
        self.links.clear();
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.links.capacity() * std::mem::size_of::<Link>()
    }
}

/// Grows a per-slot vector to exactly `needed` entries. `Vec` amortizes the
/// growth by doubling its capacity, but only the initialised length is ever
/// touched, so the unused capacity costs address space, not resident memory
/// (initialising it ahead, as growing the length by half did, made it cost
/// real memory).
fn grow<T: Clone>(values: &mut Vec<T>, needed: usize, fill: T) {
    values.resize(needed, fill);
}

/// Per-slot values of a small `Copy` type, grown on demand, for policies
/// that keep a tag, counter or bit beside the links.
#[derive(Debug, Default)]
pub(crate) struct SlotVec<T> {
    values: Vec<T>,
}

impl<T: Copy + Default> SlotVec<T> {
    /// The value for `slot` (default if never set).
    pub(crate) fn get(&self, slot: Slot) -> T {
        self.values.get(slot as usize).copied().unwrap_or_default()
    }

    /// Mutable access, growing the storage if needed.
    pub(crate) fn get_mut(&mut self, slot: Slot) -> &mut T {
        let index = slot as usize;
        if index >= self.values.len() {
            grow(&mut self.values, index + 1, T::default());
        }
        &mut self.values[index]
    }

    /// Sets the value for `slot`.
    pub(crate) fn set(&mut self, slot: Slot, value: T) {
        *self.get_mut(slot) = value;
    }

    /// Forgets all values.
    pub(crate) fn clear(&mut self) {
        self.values.clear();
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(links: &Links, list: &List) -> Vec<Slot> {
        let mut out = Vec::new();
        let mut at = list.tail();
        while let Some(slot) = at {
            out.push(slot);
            at = links.prev(slot);
        }
        out.reverse();
        out
    }

    #[test]
    fn push_unlink_move() {
        let mut links = Links::default();
        let mut list = List::default();
        for slot in 0..5 {
            links.push_head(&mut list, slot, 2);
        }
        assert_eq!(collect(&links, &list), vec![4, 3, 2, 1, 0]);
        assert_eq!(list.weight(), 10);
        links.unlink(&mut list, 2, 2);
        links.move_to_head(&mut list, 0);
        assert_eq!(collect(&links, &list), vec![0, 4, 3, 1]);
        links.push_tail(&mut list, 9, 1);
        assert_eq!(collect(&links, &list), vec![0, 4, 3, 1, 9]);
        assert_eq!((list.len(), list.weight()), (5, 9));
        for slot in [0, 4, 3, 1, 9] {
            let weight = if slot == 9 { 1 } else { 2 };
            links.unlink(&mut list, slot, weight);
        }
        assert!(list.is_empty());
        assert_eq!((list.head(), list.tail(), list.weight()), (None, None, 0));
    }

    #[test]
    fn walks_both_ways_and_reweighs() {
        let mut links = Links::default();
        let mut list = List::default();
        for slot in [3, 7, 1] {
            links.push_head(&mut list, slot, 5);
        }
        // Head to tail through `next` is the reverse of tail to head.
        let mut forward = Vec::new();
        let mut at = list.head();
        while let Some(slot) = at {
            forward.push(slot);
            at = links.next(slot);
        }
        assert_eq!(forward, vec![1, 7, 3]);
        assert_eq!(forward, collect(&links, &list));
        assert_eq!((links.next(3), links.prev(1)), (None, None));
        list.reweigh(5, 9);
        assert_eq!(list.weight(), 19);
    }

    #[test]
    fn slot_vec_grows_and_defaults() {
        let mut values = SlotVec::<u8>::default();
        assert_eq!(values.get(10), 0);
        values.set(10, 3);
        *values.get_mut(2) += 1;
        assert_eq!((values.get(10), values.get(2), values.get(1)), (3, 1, 0));
        assert!(values.heap_bytes() >= 11);
        values.clear();
        assert_eq!(values.get(10), 0);
    }
}
