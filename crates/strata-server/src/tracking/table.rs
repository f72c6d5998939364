//! The default-mode tracking table: which clients read which keys.
//!
//! Redis's `TrackingTable`: key → the ids of the clients that read it since
//! it last changed. A write takes the key's entry out whole (every reader is
//! told once, then forgotten until it reads the key again). The table is
//! bounded in keys (`tracking-table-max-keys`); a read that would add a key
//! to a full table first evicts the oldest key of its shard, and the caller
//! sends that key's readers an invalidation, as Redis does, so no client is
//! left caching a key nobody remembers it has.
//!
//! Sharded by key hash, each shard under its own mutex, so reads of
//! tracking clients and writes on other connections touching different keys
//! rarely meet on a lock. A std-style `Mutex` (parking_lot): nothing is
//! awaited while one is held.
//!
//! Eviction order is insertion order within a shard (a FIFO of keys with a
//! sequence number each; an entry taken out by a write leaves a dead slot in
//! the FIFO that eviction skips, and the FIFO is compacted when it is mostly
//! dead). Redis evicts random keys; oldest-first is as cheap and keeps the
//! keys a client read most recently.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Shards of the table: enough that a few busy cores rarely collide.
const SHARDS: usize = 32;

/// A key and the clients to tell about it.
pub(crate) type Readers = (Arc<[u8]>, Vec<u64>);

/// The bounded key → reader-ids table.
#[derive(Debug)]
pub(crate) struct KeyTable {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// Keys in all shards.
    keys: AtomicUsize,
    /// (key, client) pairs in all shards: Redis's `tracking_total_items`.
    items: AtomicUsize,
    max_keys: AtomicUsize,
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<Arc<[u8]>, Entry>,
    /// Keys in insertion order, with the sequence number they were
    /// inserted under; a slot whose number no longer matches its entry's is
    /// dead.
    order: VecDeque<(Arc<[u8]>, u64)>,
    next_seq: u64,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    readers: Vec<u64>,
}

impl Shard {
    /// Takes out the oldest live key.
    fn pop_oldest(&mut self) -> Option<Readers> {
        while let Some((key, seq)) = self.order.pop_front() {
            if self.entries.get(&key).is_some_and(|entry| entry.seq == seq) {
                let entry = self.entries.remove(&key).expect("just found");
                return Some((key, entry.readers));
            }
        }
        None
    }

    fn compact_if_mostly_dead(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(key, seq)| entries.get(key).is_some_and(|entry| entry.seq == *seq));
        }
    }
}

impl KeyTable {
    /// An empty table holding at most `max_keys` keys (at least 1).
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            keys: AtomicUsize::new(0),
            items: AtomicUsize::new(0),
            max_keys: AtomicUsize::new(max_keys.max(1)),
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let hash = self.hasher.hash_one(key);
        &self.shards[(hash as usize) % self.shards.len()]
    }

    /// Changes the bound; a smaller one takes effect as keys are added.
    pub(crate) fn set_max_keys(&self, max_keys: usize) {
        self.max_keys.store(max_keys.max(1), Ordering::Relaxed);
    }

    /// The bound.
    pub(crate) fn max_keys(&self) -> usize {
        self.max_keys.load(Ordering::Relaxed)
    }

    /// Keys held.
    pub(crate) fn len(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// (key, client) pairs held.
    pub(crate) fn items(&self) -> usize {
        self.items.load(Ordering::Relaxed)
    }

    /// Remembers that `client` read `key`. Returns the keys evicted to make
    /// room (with their readers, who must be told), usually none.
    pub(crate) fn record(&self, key: &[u8], client: u64) -> Vec<Readers> {
        let mut evicted = Vec::new();
        let mut shard = self.shard(key).lock();
        if let Some(entry) = shard.entries.get_mut(key) {
            if !entry.readers.contains(&client) {
                entry.readers.push(client);
                self.items.fetch_add(1, Ordering::Relaxed);
            }
            return evicted;
        }
        // A new key: make room first. Keys live in every shard, so when
        // this one has nothing to give, take from the others — without
        // waiting on their locks while holding this one (two inserts
        // evicting from each other's shards must not deadlock); if all are
        // busy the table runs one key over until the next insert.
        let mut over = self.len().saturating_sub(self.max_keys() - 1);
        while over > 0 {
            match shard.pop_oldest() {
                Some(readers) => {
                    self.forget(&readers);
                    evicted.push(readers);
                    over -= 1;
                }
                None => break,
            }
        }
        if over > 0 {
            for other in self.shards.iter() {
                let Some(mut other) = other.try_lock() else {
                    continue;
                };
                while over > 0 {
                    let Some(readers) = other.pop_oldest() else {
                        break;
                    };
                    self.forget(&readers);
                    evicted.push(readers);
                    over -= 1;
                }
                if over == 0 {
                    break;
                }
            }
        }
        let key: Arc<[u8]> = Arc::from(key);
        let seq = shard.next_seq;
        shard.next_seq += 1;
        shard.order.push_back((Arc::clone(&key), seq));
        shard.entries.insert(
            key,
            Entry {
                seq,
                readers: vec![client],
            },
        );
        shard.compact_if_mostly_dead();
        self.keys.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(1, Ordering::Relaxed);
        evicted
    }

    fn forget(&self, (_, readers): &Readers) {
        self.keys.fetch_sub(1, Ordering::Relaxed);
        self.items.fetch_sub(readers.len(), Ordering::Relaxed);
    }

    /// Takes `key`'s readers out: it changed, they are told once, and are
    /// forgotten until they read it again.
    pub(crate) fn take(&self, key: &[u8]) -> Option<Vec<u64>> {
        let mut shard = self.shard(key).lock();
        let entry = shard.entries.remove(key)?;
        shard.compact_if_mostly_dead();
        drop(shard);
        self.keys.fetch_sub(1, Ordering::Relaxed);
        self.items.fetch_sub(entry.readers.len(), Ordering::Relaxed);
        Some(entry.readers)
    }

    /// Forgets everything (after a flush, which tells every tracking client
    /// to drop everything, or when the last default-mode client leaves).
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let (keys, items) = (
                shard.entries.len(),
                shard.entries.values().map(|e| e.readers.len()).sum(),
            );
            *shard = Shard::default();
            drop(shard);
            self.keys.fetch_sub(keys, Ordering::Relaxed);
            self.items.fetch_sub(items, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
        ids.sort_unstable();
        ids
    }

    #[test]
    fn a_write_takes_every_reader_once() {
        let table = KeyTable::new(100);
        assert!(table.record(b"k", 1).is_empty());
        assert!(table.record(b"k", 2).is_empty());
        assert!(table.record(b"k", 1).is_empty(), "a second read adds nothing");
        table.record(b"other", 3);
        assert_eq!((table.len(), table.items()), (2, 3));
        assert_eq!(table.take(b"k").map(sorted), Some(vec![1, 2]));
        assert_eq!(table.take(b"k"), None, "forgotten until read again");
        assert_eq!((table.len(), table.items()), (1, 1));
        table.record(b"k", 2);
        assert_eq!(table.take(b"k"), Some(vec![2]));
    }

    #[test]
    fn a_full_table_evicts_the_oldest_key_with_its_readers() {
        let table = KeyTable::new(3);
        for key in [&b"a"[..], b"b", b"c"] {
            assert!(table.record(key, 7).is_empty());
        }
        table.record(b"a", 8);
        let evicted = table.record(b"d", 9);
        assert_eq!(evicted.len(), 1);
        assert_eq!(table.len(), 3, "the bound holds");
        // Which key went depends on the shards; its readers came with it.
        let (key, readers) = &evicted[0];
        let expected: Vec<u64> = if &**key == b"a" { vec![7, 8] } else { vec![7] };
        assert_eq!(sorted(readers.clone()), expected);
        assert_eq!(table.take(key), None);
        assert_eq!(table.items(), 4 - readers.len() + 1);
    }

    #[test]
    fn eviction_within_a_shard_is_oldest_first_and_skips_taken_keys() {
        let mut shard = Shard::default();
        for (seq, key) in [&b"x"[..], b"y", b"z"].into_iter().enumerate() {
            let key: Arc<[u8]> = Arc::from(key);
            shard.order.push_back((Arc::clone(&key), seq as u64));
            shard.entries.insert(
                key,
                Entry {
                    seq: seq as u64,
                    readers: vec![seq as u64],
                },
            );
        }
        shard.entries.remove(&b"x"[..]);
        let (key, readers) = shard.pop_oldest().unwrap();
        assert_eq!((&*key, readers), (&b"y"[..], vec![1]));
    }

    #[test]
    fn shrinking_the_bound_evicts_down_on_the_next_insert() {
        let table = KeyTable::new(50);
        for i in 0..50u32 {
            table.record(&i.to_be_bytes(), 1);
        }
        table.set_max_keys(10);
        let evicted = table.record(b"new", 1);
        assert_eq!(evicted.len(), 41);
        assert_eq!(table.len(), 10);
        table.clear();
        assert_eq!((table.len(), table.items()), (0, 0));
    }

    #[test]
    fn dead_slots_are_compacted() {
        let table = KeyTable::new(1_000_000);
        for round in 0..100u32 {
            for i in 0..100u32 {
                let key = [round.to_be_bytes(), i.to_be_bytes()].concat();
                table.record(&key, 1);
                table.take(&key);
            }
        }
        let slots: usize = table.shards.iter().map(|s| s.lock().order.len()).sum();
        assert!(slots <= SHARDS * 64, "{slots} dead slots kept");
        assert_eq!(table.len(), 0);
    }
}
