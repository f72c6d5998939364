//! Buffered reads: how a read tells the policy about an access without an
//! exclusive lock.
//!
//! A policy's state (lists, sketches) changes on every access, so applying a
//! hit needs exclusive access to the shard. Taking the shard's write lock on
//! every read would serialize readers of a hot shard and bounce the policy's
//! cache lines between cores. Instead, as Caffeine does, a read holds only
//! the shared lock and appends `(slot, hash)` to this per-shard buffer; the
//! next writer (or the reader that fills the buffer, if it can get the write
//! lock without waiting) applies the buffered accesses to the policy in one
//! batch.
//!
//! The buffer is *lossy*: when it is full and the write lock is busy, the
//! access is counted but not shown to the policy. Policies are statistical,
//! and dropping a few accesses under contention costs nothing measurable,
//! while waiting for the lock would cost throughput.
//!
//! Entries are written under the shard's read lock and drained under its
//! write lock, so a drain never sees a half-written entry; each reader claims
//! a distinct index with one atomic increment.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Entries per shard buffer.
pub(crate) const CAPACITY: usize = 64;

/// Marks a buffered miss (no slot).
const MISS: u64 = u64::MAX;

/// One shard's buffer of accesses not yet applied to the policy.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    next: AtomicUsize,
    slots: [AtomicU64; CAPACITY],
    hashes: [AtomicU64; CAPACITY],
    /// Accesses counted but not buffered because the buffer was full.
    dropped_hits: AtomicU64,
    dropped_misses: AtomicU64,
}

/// A buffered access, as the drain sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Hit { slot: u32, hash: u64 },
    Miss { hash: u64 },
}

impl Default for ReadBuffer {
    fn default() -> Self {
        Self {
            next: AtomicUsize::new(0),
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            hashes: std::array::from_fn(|_| AtomicU64::new(0)),
            dropped_hits: AtomicU64::new(0),
            dropped_misses: AtomicU64::new(0),
        }
    }
}

impl ReadBuffer {
    /// Records an access. Returns true when the buffer is full and should
    /// be drained. Call only while holding the shard's read lock.
    pub(crate) fn record(&self, access: Access) -> bool {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        if index >= CAPACITY {
            match access {
                Access::Hit { .. } => self.dropped_hits.fetch_add(1, Ordering::Relaxed),
                Access::Miss { .. } => self.dropped_misses.fetch_add(1, Ordering::Relaxed),
            };
            return true;
        }
        let (slot, hash) = match access {
            Access::Hit { slot, hash } => (u64::from(slot), hash),
            Access::Miss { hash } => (MISS, hash),
        };
        self.slots[index].store(slot, Ordering::Relaxed);
        self.hashes[index].store(hash, Ordering::Relaxed);
        index + 1 == CAPACITY
    }

    /// Hands every buffered access to `apply` and empties the buffer.
    /// Returns the accesses that were dropped meanwhile: (hits, misses).
    /// Call only while holding the shard's write lock.
    pub(crate) fn drain(&self, mut apply: impl FnMut(Access)) -> (u64, u64) {
        let filled = self.next.swap(0, Ordering::Relaxed).min(CAPACITY);
        for i in 0..filled {
            let slot = self.slots[i].load(Ordering::Relaxed);
            let hash = self.hashes[i].load(Ordering::Relaxed);
            apply(if slot == MISS {
                Access::Miss { hash }
            } else {
                Access::Hit {
                    slot: slot as u32,
                    hash,
                }
            });
        }
        (
            self.dropped_hits.swap(0, Ordering::Relaxed),
            self.dropped_misses.swap(0, Ordering::Relaxed),
        )
    }

    /// True if something is waiting to be drained.
    pub(crate) fn is_pending(&self) -> bool {
        self.next.load(Ordering::Relaxed) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_until_full_then_counts_drops() {
        let buffer = ReadBuffer::default();
        for i in 0..CAPACITY as u32 - 1 {
            assert!(!buffer.record(Access::Hit {
                slot: i,
                hash: u64::from(i)
            }));
        }
        assert!(
            buffer.record(Access::Miss { hash: 9 }),
            "the last free entry reports full"
        );
        assert!(buffer.record(Access::Hit { slot: 1, hash: 1 }));
        assert!(buffer.record(Access::Miss { hash: 2 }));
        let mut seen = Vec::new();
        let dropped = buffer.drain(|a| seen.push(a));
        assert_eq!(seen.len(), CAPACITY);
        assert_eq!(seen[0], Access::Hit { slot: 0, hash: 0 });
        assert_eq!(seen[CAPACITY - 1], Access::Miss { hash: 9 });
        assert_eq!(dropped, (1, 1));
        assert!(!buffer.is_pending());
    }
}
