//! Rendezvous (highest random weight) hashing, Thaler and Ravishankar:
//! every member scores the key and the highest score owns it. Removing a
//! member moves exactly its keys, adding one takes exactly its share, and
//! the preference order is simply the scores sorted — the natural failover
//! order. O(n) per lookup, so it suits pools of tens, not thousands.
//!
//! Weights use the logarithmic method (Schindelhauer and Schomaker): score
//! `w / -ln(u)` with `u` the key-member hash mapped into (0, 1), which gives
//! each member a share of keys proportional to its weight.

use crate::member::Member;
use crate::{Placement, stable_hash};

/// Rendezvous hashing over weighted members.
#[derive(Clone, Debug)]
pub struct Rendezvous {
    /// Per member: its seed (a hash of its address) and weight.
    members: Vec<(u64, f64)>,
}

impl Rendezvous {
    /// Placement over `members`.
    pub fn new(members: &[Member]) -> Self {
        Rendezvous {
            members: members
                .iter()
                .map(|m| (stable_hash(m.address().as_bytes(), 0), f64::from(m.weight)))
                .collect(),
        }
    }

    fn score(&self, key: &[u8], member: usize) -> f64 {
        let (seed, weight) = self.members[member];
        let hash = stable_hash(key, seed);
        // Map to (0, 1): never 0 (ln 0) nor 1 (division by ln 1 = 0).
        let unit = ((hash >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        weight / -unit.ln()
    }
}

impl Placement for Rendezvous {
    fn members(&self) -> usize {
        self.members.len()
    }

    fn owner(&self, key: &[u8]) -> Option<usize> {
        (0..self.members.len()).max_by(|&a, &b| self.score(key, a).total_cmp(&self.score(key, b)))
    }

    fn preference(&self, key: &[u8], limit: usize, out: &mut Vec<usize>) {
        let mut scored: Vec<(f64, usize)> = (0..self.members.len()).map(|m| (self.score(key, m), m)).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        out.extend(scored.into_iter().take(limit).map(|(_, member)| member));
    }
}
