//! Ghost entries: the remembered hashes of recently evicted keys.
//!
//! ARC (lists B1 and B2) and S3-FIFO (queue G) remember keys they evicted,
//! without their values, so that a quick return of such a key can change how
//! it is admitted. A ghost is only a 64-bit key hash and the weight the item
//! had, so it costs a fixed handful of bytes whatever the item's size:
//!
//! - a 16-byte [`Entry`] in a slab (`Vec`), indexed by a dense ghost id and
//!   reused through a free list, so the slab never grows beyond the largest
//!   number of ghosts held at once. Besides hash and weight it has room for a
//!   16-bit value the owner may use (LFU keeps the evicted key's count there);
//!   the field lives in what would otherwise be padding;
//! - 8 bytes of [`Links`] per ghost id, so ghosts sit on up to two intrusive
//!   lists (oldest at the tail) exactly like resident slots do;
//! - a `u32` ghost id in a [`HashTable`] keyed by the key hash. The table
//!   stores only the id and compares hashes through the slab, which is why it
//!   is a `HashTable` and not a `HashMap<u64, u32>` (that would store every
//!   hash twice).
//!
//! 24 bytes per ghost plus the table's 5 bytes per bucket (at a load factor
//! between 7/16 and 7/8): 30 to 36 bytes when the vectors are full, about
//! 46 measured after growth (`metadata_per_resident_stays_small` in
//! `policy/mod.rs` guards it). The slab grows by half, not double, for the
//! same reason.
//! Owners bound their ghost lists (by entry count or by weight, as their
//! algorithm says) with [`Ghosts::pop_oldest`].

use hashbrown::HashTable;

use super::list::{Links, List};

/// One remembered key.
#[derive(Clone, Copy, Debug)]
struct Entry {
    hash: u64,
    weight: u32,
    value: u16,
    list: u8,
}

/// What a ghost remembers besides its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ghost {
    /// The list it is on (0 or 1).
    pub(crate) list: usize,
    /// The weight the evicted item had.
    pub(crate) weight: u32,
    /// The owner's value given to [`Ghosts::push`].
    pub(crate) value: u16,
}

impl Entry {
    fn ghost(self) -> Ghost {
        Ghost {
            list: usize::from(self.list),
            weight: self.weight,
            value: self.value,
        }
    }
}

/// Up to two FIFO-ordered lists of ghost entries with O(1) lookup by hash.
#[derive(Debug, Default)]
pub(crate) struct Ghosts {
    entries: Vec<Entry>,
    links: Links,
    lists: [List; 2],
    table: HashTable<u32>,
    free: Vec<u32>,
}

/// Key hashes reach us already mixed (the store and the trace reader hash
/// keys with foldhash), but tests and callers may hand in structured values
/// such as `k * constant`; one more cheap mix keeps the table's buckets
/// (low bits) and control bytes (high bits) independent of that.
fn spread(hash: u64) -> u64 {
    let mixed = (hash ^ (hash >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed ^ (mixed >> 29)
}

impl Ghosts {
    /// Number of ghosts on `list` (0 or 1).
    pub(crate) fn len(&self, list: usize) -> usize {
        self.lists[list].len()
    }

    /// Total weight of the ghosts on `list`.
    pub(crate) fn weight(&self, list: usize) -> u64 {
        self.lists[list].weight()
    }

    /// The ghost for `hash`, if there is one.
    pub(crate) fn get(&self, hash: u64) -> Option<Ghost> {
        let entries = &self.entries;
        self.table
            .find(spread(hash), |&id| entries[id as usize].hash == hash)
            .map(|&id| entries[id as usize].ghost())
    }

    /// Forgets the ghost for `hash` and returns it.
    pub(crate) fn remove(&mut self, hash: u64) -> Option<Ghost> {
        let entries = &self.entries;
        let found = self
            .table
            .find_entry(spread(hash), |&id| entries[id as usize].hash == hash)
            .ok()?;
        let (id, _) = found.remove();
        let entry = self.entries[id as usize];
        self.links
            .unlink(&mut self.lists[usize::from(entry.list)], id, entry.weight);
        self.free.push(id);
        Some(entry.ghost())
    }

    /// Remembers `hash` as the newest ghost on `list`, with the item's
    /// `weight` and an owner's `value`, replacing any ghost already held for
    /// the same hash.
    pub(crate) fn push(&mut self, list: usize, hash: u64, weight: u32, value: u16) {
        debug_assert!(list < 2, "ghost list {list} does not exist");
        self.remove(hash);
        let entry = Entry {
            hash,
            weight,
            value,
            // `list` is 0 or 1.
            list: list as u8,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = entry;
                id
            }
            None => {
                if self.entries.len() == self.entries.capacity() {
                    // Grow by half, not double: ghosts are most of the
                    // per-item memory of the policies that keep them.
                    self.entries.reserve_exact((self.entries.len() / 2).max(16));
                }
                self.entries.push(entry);
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 ghosts")
            }
        };
        self.links.push_head(&mut self.lists[list], id, weight);
        let entries = &self.entries;
        self.table
            .insert_unique(spread(hash), id, |&id| spread(entries[id as usize].hash));
    }

    /// Forgets the oldest ghost on `list`; returns its hash and the ghost.
    pub(crate) fn pop_oldest(&mut self, list: usize) -> Option<(u64, Ghost)> {
        let id = self.lists[list].tail()?;
        let hash = self.entries[id as usize].hash;
        self.remove(hash).map(|ghost| (hash, ghost))
    }

    /// Forgets oldest ghosts on `list` until it weighs at most `limit`.
    pub(crate) fn trim(&mut self, list: usize, limit: u64) {
        while self.lists[list].weight() > limit {
            self.pop_oldest(list);
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.links.heap_bytes()
            + self.table.allocation_size()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ghost(list: usize, weight: u32, value: u16) -> Ghost {
        Ghost { list, weight, value }
    }

    #[test]
    fn push_find_pop_in_fifo_order() {
        let mut ghosts = Ghosts::default();
        for key in 0..10u64 {
            ghosts.push(usize::from(key % 2 == 1), key * 1000, key as u32 + 1, key as u16);
        }
        assert_eq!((ghosts.len(0), ghosts.len(1)), (5, 5));
        assert_eq!(ghosts.weight(0), 1 + 3 + 5 + 7 + 9);
        assert_eq!(ghosts.get(3000), Some(ghost(1, 4, 3)));
        assert_eq!(ghosts.get(3001), None);
        assert_eq!(ghosts.pop_oldest(0), Some((0, ghost(0, 1, 0))));
        assert_eq!(ghosts.pop_oldest(1), Some((1000, ghost(1, 2, 1))));
        assert_eq!(ghosts.remove(4000), Some(ghost(0, 5, 4)));
        assert_eq!(ghosts.remove(4000), None);
        assert_eq!(ghosts.pop_oldest(0), Some((2000, ghost(0, 3, 2))));
        // Left on list 0: 6000 (7) and 8000 (9). Trim to 9: the oldest goes.
        ghosts.trim(0, 9);
        assert_eq!((ghosts.len(0), ghosts.get(6000), ghosts.weight(0)), (1, None, 9));
    }

    #[test]
    fn pushing_a_known_hash_moves_it() {
        let mut ghosts = Ghosts::default();
        ghosts.push(0, 42, 1, 0);
        ghosts.push(0, 43, 1, 0);
        ghosts.push(1, 42, 5, 7);
        assert_eq!((ghosts.len(0), ghosts.len(1)), (1, 1));
        assert_eq!(ghosts.get(42), Some(ghost(1, 5, 7)));
        // Ids are reused: churn does not grow the slab.
        for round in 0..1000u64 {
            ghosts.push(0, 100 + round, 1, 0);
            ghosts.pop_oldest(0);
        }
        assert!(ghosts.entries.len() <= 4);
        assert!(ghosts.heap_bytes() > 0);
        assert_eq!(
            (ghosts.len(0), ghosts.len(1), ghosts.get(42).map(|g| g.value)),
            (1, 1, Some(7))
        );
    }
}
