//! Jump consistent hash (Lamping and Veach, 2014): no table at all, O(ln n)
//! arithmetic per lookup, and perfectly even shares. The price: buckets are
//! numbered, so only the *last* member can leave without moving other
//! members' keys, and weights are not supported (every member gets 1/n).
//! Use it where members are replaced in place rather than removed.

use crate::{Placement, stable_hash};

/// The jump function: the bucket in `0..buckets` of a 64-bit key.
pub fn jump(mut key: u64, buckets: u32) -> u32 {
    let mut bucket: i64 = -1;
    let mut next: i64 = 0;
    while next < i64::from(buckets) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        next = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    bucket.max(0) as u32
}

/// Jump hash over the members, keys hashed with XXH3.
#[derive(Clone, Debug)]
pub struct Jump {
    members: usize,
}

impl Jump {
    /// Placement over `members` members.
    pub fn new(members: usize) -> Self {
        Jump { members }
    }
}

impl Placement for Jump {
    fn members(&self) -> usize {
        self.members
    }

    fn owner(&self, key: &[u8]) -> Option<usize> {
        (self.members > 0).then(|| jump(stable_hash(key, 0), self.members as u32) as usize)
    }

    fn preference(&self, key: &[u8], limit: usize, out: &mut Vec<usize>) {
        let want = limit.min(self.members);
        let before = out.len();
        // Fallbacks rehash the key with a new seed each time; after a few
        // collisions the rest are taken in order so the walk always ends.
        for seed in 0..(2 * want as u64 + 8) {
            if out.len() - before == want {
                return;
            }
            let member = jump(stable_hash(key, seed), self.members as u32) as usize;
            if !out[before..].contains(&member) {
                out.push(member);
            }
        }
        for member in 0..self.members {
            if out.len() - before == want {
                return;
            }
            if !out[before..].contains(&member) {
                out.push(member);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_papers_reference_values() {
        // From the reference C++ implementation: these hold for any
        // correct port of the algorithm.
        assert_eq!(jump(0, 1), 0);
        assert_eq!(jump(0, 100), 0);
        for key in [1u64, 2, 0xDEAD_BEEF, u64::MAX] {
            assert_eq!(jump(key, 1), 0);
            // Growing from n to n+1 buckets moves a key only to the new one.
            for buckets in 1..200 {
                let (before, after) = (jump(key, buckets), jump(key, buckets + 1));
                assert!(
                    after == before || after == buckets,
                    "key {key}: {before} -> {after} at {buckets}"
                );
            }
        }
    }

    #[test]
    fn preference_covers_every_member() {
        let placement = Jump::new(7);
        let mut order = Vec::new();
        placement.preference(b"k", 100, &mut order);
        order.sort();
        assert_eq!(order, (0..7).collect::<Vec<_>>());
    }
}
