//! Consistent hashing with bounded loads (Mirrokni, Thorup and
//! Zadimoghaddam, SODA 2018): no member holds more than
//! `⌈(1+ε)·m/n⌉` of the `m` keys placed so far; a key whose first choice is
//! full goes to the next member of its preference order (clockwise on the
//! ring) with room. The bound caps the hottest member's share at `1+ε`
//! times the mean while keeping consistent hashing's small movement on
//! membership change (the paper shows O(1/ε²) expected moves per update).
//!
//! Unlike the stateless schemes, the owner of a key depends on which keys
//! came before it, so this placement keeps the assignment. That suits one
//! router placing for many clients (a proxy, or a coordinator assigning
//! shards), not independent clients that must agree without talking.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::Placement;

/// Bounded-load placement over any inner placement's preference order.
#[derive(Debug)]
pub struct BoundedLoad<P> {
    inner: P,
    epsilon: f64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    loads: Vec<u64>,
    assigned: HashMap<Box<[u8]>, usize>,
}

impl<P: Placement> BoundedLoad<P> {
    /// Bounds `inner` with slack `epsilon` (> 0; 0.25 is common).
    pub fn new(inner: P, epsilon: f64) -> Self {
        let members = inner.members();
        BoundedLoad {
            inner,
            epsilon: if epsilon.is_finite() && epsilon > 0.0 {
                epsilon
            } else {
                0.25
            },
            state: Mutex::new(State {
                loads: vec![0; members],
                assigned: HashMap::new(),
            }),
        }
    }

    /// The slack ε.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The capacity of each member with `keys` keys placed:
    /// `⌈(1+ε)·keys/n⌉`.
    pub fn capacity(&self, keys: u64) -> u64 {
        let members = self.inner.members().max(1) as f64;
        // Less a hair, so 1.1 · 100000 / 10 is 11000 and not 11001 by
        // floating-point rounding.
        ((1.0 + self.epsilon) * keys as f64 / members - 1e-9).ceil().max(1.0) as u64
    }

    /// Forgets `key`'s assignment, freeing its slot.
    pub fn release(&self, key: &[u8]) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.assigned.remove(key) {
            Some(member) => {
                state.loads[member] -= 1;
                true
            }
            None => false,
        }
    }

    /// Keys placed on each member.
    pub fn loads(&self) -> Vec<u64> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .loads
            .clone()
    }
}

impl<P: Placement> Placement for BoundedLoad<P> {
    fn members(&self) -> usize {
        self.inner.members()
    }

    /// The key's member, assigning it on first sight.
    fn owner(&self, key: &[u8]) -> Option<usize> {
        let members = self.inner.members();
        if members == 0 {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&member) = state.assigned.get(key) {
            return Some(member);
        }
        let capacity = self.capacity(state.assigned.len() as u64 + 1);
        let mut order = Vec::with_capacity(members);
        self.inner.preference(key, members, &mut order);
        // The capacities sum to at least the keys placed, so some member
        // always has room; fall back to the first choice regardless.
        let member = order
            .iter()
            .copied()
            .find(|&m| state.loads[m] < capacity)
            .unwrap_or(order[0]);
        state.loads[member] += 1;
        state.assigned.insert(key.into(), member);
        Some(member)
    }

    fn preference(&self, key: &[u8], limit: usize, out: &mut Vec<usize>) {
        let Some(owner) = self.owner(key) else {
            return;
        };
        let before = out.len();
        out.push(owner);
        let mut rest = Vec::new();
        self.inner.preference(key, self.inner.members(), &mut rest);
        out.extend(rest.into_iter().filter(|&m| m != owner).take(limit.saturating_sub(1)));
        out.truncate(before + limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ketama::{Ketama, LabelStyle};
    use crate::member::Member;

    #[test]
    fn no_member_exceeds_the_cap() {
        let members: Vec<_> = (0..10).map(|i| Member::new("h", 7000 + i)).collect();
        let bounded = BoundedLoad::new(Ketama::new(&members, LabelStyle::Libmemcached), 0.1);
        let keys = 100_000u64;
        for i in 0..keys {
            bounded.owner(format!("key:{i}").as_bytes());
        }
        let loads = bounded.loads();
        assert_eq!(loads.iter().sum::<u64>(), keys);
        let cap = bounded.capacity(keys);
        assert_eq!(cap, 11_000);
        assert!(loads.iter().all(|&load| load <= cap), "{loads:?}");
        assert!(bounded.release(b"key:0"));
        assert!(!bounded.release(b"key:0"));
        assert_eq!(bounded.loads().iter().sum::<u64>(), keys - 1);
    }
}
