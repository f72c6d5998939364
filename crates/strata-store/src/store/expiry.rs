//! Active expiry: a hierarchical timer wheel of (slot, expire_at) entries.
//!
//! Lazy expiry (checking `expire_at` on every access) keeps expired items
//! invisible; this wheel reclaims the memory of expired items nobody touches
//! again. Each shard has one. It is the hashed hierarchical wheel of Varghese
//! & Lauck as tokio's timer implements it: 6 levels of 64 buckets, level `L`
//! bucket width 64^L ms, so 1 ms resolution and a 2^36 ms (2.2 year) horizon;
//! farther deadlines are parked at the horizon and re-filed when reached.
//!
//! Entries are never removed from the wheel when an item is deleted or its
//! TTL changes — that would need a back-pointer per item. Instead an entry is
//! checked when it fires: the shard removes the item in that slot only if it
//! still carries exactly this `expire_at` and it has passed. Stale entries are
//! dropped then. To keep them from piling up (an item whose TTL is pushed
//! forward on every access leaves one behind each time), the shard rebuilds
//! the wheel from its live items when entries outnumber TTL'd items by more
//! than 2× — amortized O(1) per insert.
//!
//! Work is bounded: [`TimerWheel::poll`] hands out at most `budget` due
//! entries per call, and cascading an entry between levels happens at most
//! six times in its life.

use crate::policy::Slot;

const LEVELS: usize = 6;
const BITS: u32 = 6;
const BUCKETS: usize = 1 << BITS;
/// The farthest deadline the wheel can hold, relative to its time.
const HORIZON_MS: u64 = 1 << (BITS as usize * LEVELS);

/// A scheduled expiry check: the item in `slot`, due at `expire_at` ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) slot: Slot,
    expire_lo: u32,
    expire_hi: u32,
}

impl Entry {
    pub(crate) fn new(slot: Slot, expire_at: u64) -> Self {
        Self {
            slot,
            expire_lo: expire_at as u32,
            expire_hi: (expire_at >> 32) as u32,
        }
    }

    /// Deadline, ms since the Unix epoch.
    pub(crate) fn expire_at(&self) -> u64 {
        u64::from(self.expire_hi) << 32 | u64::from(self.expire_lo)
    }
}

/// One shard's timer wheel.
#[derive(Debug)]
pub(crate) struct TimerWheel {
    buckets: Vec<Vec<Entry>>,
    occupied: [u64; LEVELS],
    /// The time up to which the wheel has been processed.
    elapsed: u64,
    len: usize,
}

fn level_for(elapsed: u64, when: u64) -> usize {
    // Ignore the bits inside one level-0 bucket; the highest bit that
    // differs decides the level.
    let masked = (elapsed ^ when) | (BUCKETS as u64 - 1);
    let masked = masked.min(HORIZON_MS - 1);
    let significant = 63 - masked.leading_zeros() as usize;
    significant / BITS as usize
}

fn slot_range(level: usize) -> u64 {
    1 << (BITS as usize * level)
}

impl TimerWheel {
    /// An empty wheel whose time starts at `now_ms`.
    pub(crate) fn new(now_ms: u64) -> Self {
        Self {
            buckets: vec![Vec::new(); LEVELS * BUCKETS],
            occupied: [0; LEVELS],
            elapsed: now_ms,
            len: 0,
        }
    }

    /// Entries held, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Schedules a check of `slot` at `expire_at`.
    pub(crate) fn insert(&mut self, slot: Slot, expire_at: u64) {
        self.file(Entry::new(slot, expire_at));
    }

    fn file(&mut self, entry: Entry) {
        let when = entry.expire_at().clamp(self.elapsed, self.elapsed + HORIZON_MS - 1);
        let level = level_for(self.elapsed, when);
        let bucket = ((when >> (BITS as usize * level)) as usize) & (BUCKETS - 1);
        self.buckets[level * BUCKETS + bucket].push(entry);
        self.occupied[level] |= 1 << bucket;
        self.len += 1;
    }

    /// The earliest bucket with entries: (level, bucket, its start time).
    fn next_bucket(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let range = slot_range(level);
            let level_range = range * BUCKETS as u64;
            let now_bucket = ((self.elapsed / range) % BUCKETS as u64) as u32;
            let bucket = (occupied.rotate_right(now_bucket).trailing_zeros() + now_bucket) as usize % BUCKETS;
            let level_start = self.elapsed & !(level_range - 1);
            let mut deadline = level_start + bucket as u64 * range;
            if deadline < self.elapsed {
                // Only at the top level: a deadline parked at the horizon
                // wrapped into a bucket "behind" the current one.
                deadline += level_range;
            }
            return Some((level, bucket, deadline));
        }
        None
    }

    /// The start of the earliest non-empty bucket, if any: nothing is due
    /// before it.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.next_bucket().map(|(_, _, deadline)| deadline)
    }

    /// Moves the wheel's time to `now_ms` and appends up to `budget` due
    /// entries to `due`. Entries not yet due are cascaded to finer levels.
    /// Returns the number of entries examined (due or cascaded).
    pub(crate) fn poll(&mut self, now_ms: u64, budget: usize, due: &mut Vec<Entry>) -> usize {
        let mut examined = 0;
        let start = due.len();
        while due.len() - start < budget {
            let Some((level, bucket, deadline)) = self.next_bucket() else {
                break;
            };
            if deadline > now_ms {
                break;
            }
            self.elapsed = self.elapsed.max(deadline);
            let index = level * BUCKETS + bucket;
            let entries = std::mem::take(&mut self.buckets[index]);
            self.occupied[level] &= !(1 << bucket);
            self.len -= entries.len();
            let mut rest = entries.into_iter();
            for entry in rest.by_ref() {
                examined += 1;
                if entry.expire_at() <= self.elapsed {
                    due.push(entry);
                    if due.len() - start >= budget {
                        break;
                    }
                } else {
                    self.file(entry);
                }
            }
            // Budget spent mid-bucket: re-file the rest; they land back in
            // buckets at or after the wheel's time.
            for entry in rest {
                self.file(entry);
            }
        }
        if self.next_deadline().is_none_or(|d| d > now_ms) {
            self.elapsed = self.elapsed.max(now_ms);
        }
        examined
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) {
        for bucket in &mut self.buckets {
            *bucket = Vec::new();
        }
        self.occupied = [0; LEVELS];
        self.len = 0;
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Vec<Entry>>()
            + self
                .buckets
                .iter()
                .map(|b| b.capacity() * std::mem::size_of::<Entry>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(wheel: &mut TimerWheel, now: u64) -> Vec<(Slot, u64)> {
        let mut due = Vec::new();
        wheel.poll(now, usize::MAX, &mut due);
        due.iter().map(|e| (e.slot, e.expire_at())).collect()
    }

    #[test]
    fn fires_at_the_deadline_not_before() {
        let mut wheel = TimerWheel::new(1_000);
        wheel.insert(1, 1_005);
        wheel.insert(2, 1_000 + 70_000);
        wheel.insert(3, 999); // already past
        assert_eq!(drain(&mut wheel, 1_000), vec![(3, 999)]);
        assert_eq!(drain(&mut wheel, 1_004), vec![]);
        assert_eq!(drain(&mut wheel, 1_005), vec![(1, 1_005)]);
        assert_eq!(drain(&mut wheel, 70_999), vec![]);
        assert_eq!(drain(&mut wheel, 71_000), vec![(2, 71_000)]);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn far_deadlines_are_parked_and_refiled() {
        let mut wheel = TimerWheel::new(0);
        let far = 10 * HORIZON_MS + 12_345;
        wheel.insert(7, far);
        for step in 1..=10 {
            assert_eq!(drain(&mut wheel, step * HORIZON_MS), vec![], "step {step}");
        }
        assert_eq!(drain(&mut wheel, far - 1), vec![]);
        assert_eq!(drain(&mut wheel, far), vec![(7, far)]);
    }

    #[test]
    fn budget_bounds_each_poll() {
        let mut wheel = TimerWheel::new(0);
        for slot in 0..100 {
            wheel.insert(slot, 10 + u64::from(slot % 3));
        }
        let mut due = Vec::new();
        wheel.poll(1_000, 30, &mut due);
        assert_eq!(due.len(), 30);
        wheel.poll(1_000, 30, &mut due);
        wheel.poll(1_000, 30, &mut due);
        wheel.poll(1_000, 30, &mut due);
        assert_eq!(due.len(), 100);
        let mut slots: Vec<_> = due.iter().map(|e| e.slot).collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..100).collect::<Vec<_>>());
    }

    proptest! {
        // Model: an entry is returned by the first poll whose time reaches
        // its deadline, exactly once, never earlier.
        #[test]
        fn matches_a_sorted_list(start in 0u64..1u64 << 40,
                                 deadlines in proptest::collection::vec(0u64..200_000_000, 1..200),
                                 steps in proptest::collection::vec(1u64..50_000_000, 1..40)) {
            let mut wheel = TimerWheel::new(start);
            for (slot, d) in deadlines.iter().enumerate() {
                wheel.insert(slot as Slot, start + d);
            }
            let mut now = start;
            let mut fired = vec![false; deadlines.len()];
            for step in steps {
                now += step;
                for (slot, at) in drain(&mut wheel, now) {
                    prop_assert!(at <= now, "fired early: {} > {}", at, now);
                    prop_assert!(!fired[slot as usize], "fired twice");
                    fired[slot as usize] = true;
                }
                for (slot, d) in deadlines.iter().enumerate() {
                    if start + d <= now {
                        prop_assert!(fired[slot], "slot {} due at {} not fired by {}", slot, start + d, now);
                    }
                }
            }
        }
    }
}
