//! What an operator wants to know before touching a live cluster: how keys
//! spread over members, and which fraction would move, and where, if the
//! membership changed.
//!
//! Both are measured by placing a sample of synthetic keys (`key:0`,
//! `key:1`, …) rather than computed from point arcs, so they hold for every
//! scheme alike, bounded loads included.

use std::collections::BTreeMap;

use crate::ring::Snapshot;

/// The `i`th sample key.
pub fn sample_key(i: u64) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}

/// Keys owned by each member of `snapshot` among `keys` sample keys.
pub fn shares(snapshot: &Snapshot, keys: u64) -> Vec<u64> {
    let mut counts = vec![0; snapshot.members().len()];
    for i in 0..keys {
        if let Some((index, _)) = snapshot.owner(&sample_key(i)) {
            counts[index] += 1;
        }
    }
    counts
}

/// Largest share over the mean share: 1.0 is perfect balance.
pub fn imbalance(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if counts.is_empty() || total == 0 {
        return 1.0;
    }
    let mean = total as f64 / counts.len() as f64;
    *counts.iter().max().unwrap_or(&0) as f64 / mean
}

/// How a change of membership moves keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Movement {
    /// Sample keys placed.
    pub keys: u64,
    /// Keys whose owner changed.
    pub moved: u64,
    /// Moved keys by (old owner, new owner) address.
    pub flows: BTreeMap<(String, String), u64>,
}

impl Movement {
    /// The moved fraction.
    pub fn fraction(&self) -> f64 {
        if self.keys == 0 {
            0.0
        } else {
            self.moved as f64 / self.keys as f64
        }
    }
}

/// Places `keys` sample keys in `before` and in `after` and compares the
/// owners by address (indices shift when a member leaves).
pub fn movement(before: &Snapshot, after: &Snapshot, keys: u64) -> Movement {
    let mut result = Movement {
        keys,
        ..Movement::default()
    };
    for i in 0..keys {
        let key = sample_key(i);
        let old = before.owner(&key).map(|(_, m)| m.address());
        let new = after.owner(&key).map(|(_, m)| m.address());
        if old != new {
            result.moved += 1;
            let flow = (
                old.unwrap_or_else(|| "(none)".into()),
                new.unwrap_or_else(|| "(none)".into()),
            );
            *result.flows.entry(flow).or_insert(0) += 1;
        }
    }
    result
}
