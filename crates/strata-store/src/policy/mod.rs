//! Eviction policies behind one trait.
//!
//! # Model
//!
//! A policy orders *slots*: small dense integers that its caller (a store
//! shard or the trace [`Replayer`]) hands out, one per resident item. A policy
//! never sees keys or values, only a slot, the key's 64-bit hash and the item's
//! weight (bytes, or 1 per entry). That is what lets the simulator and the
//! store run exactly the same code: the simulator feeds hashes and sizes from
//! a trace, the store feeds them from its records.
//!
//! The caller owns the capacity check. It calls [`EvictionPolicy::evict`]
//! while the incoming item does not fit, then [`EvictionPolicy::on_insert`].
//! `evict` unlinks the victim from the policy's own structures and returns
//! its slot; the caller then drops the item. Removals for any other reason
//! (delete, expiry, overwrite by a smaller value) go through
//! [`EvictionPolicy::on_remove`].
//!
//! Where a policy needs the hash or weight of a slot it did not just receive
//! (to remember an evicted key in a ghost list, or to move an item between
//! segments), it asks the caller through [`SlotInfo`] rather than keeping a
//! copy: the store can recompute both from the record, so no bytes are spent
//! on them per item.
//!
//! # Layout
//!
//! One file per policy; [`list`] holds the intrusive lists most of them share,
//! `ghost` the remembered hashes of evicted keys (ARC, S3-FIFO, LFU),
//! [`sketch`] the frequency sketch of the TinyLFU family, `climber`,
//! `ghost_filter` and `tail` the window sizing of the adaptive W-TinyLFU,
//! [`replay`] the
//! value-free driver used by the simulator and by the conformance tests.

pub(crate) mod list;

mod arc;
mod climber;
mod clock;
mod fifo;
mod ghost;
mod ghost_filter;
mod lfu;
mod lru;
pub mod replay;
mod s3fifo;
mod sieve;
pub(crate) mod sketch;
mod tail;
mod wtinylfu;

#[cfg(test)]
mod conformance;

use std::fmt;
use std::str::FromStr;

pub use climber::{Adaptation, ClimberConfig, MarginalConfig};
pub use replay::Replayer;
pub use wtinylfu::WTinyLfuConfig;

/// A policy's handle for one resident item; dense, chosen by the caller.
pub type Slot = u32;

/// What a policy may ask its caller about a resident slot.
pub trait SlotInfo {
    /// The 64-bit hash of the key stored in `slot`.
    fn hash(&self, slot: Slot) -> u64;
    /// The weight the item in `slot` was inserted (or last updated) with.
    fn weight(&self, slot: Slot) -> u32;
}

/// An eviction policy: decides which resident item leaves next.
///
/// All operations are O(1) amortized. Implementations must tolerate any
/// sequence of calls the contract allows; the shared conformance tests in
/// `conformance.rs` drive every policy with random sequences against a
/// reference model.
pub trait EvictionPolicy: Send + Sync + fmt::Debug {
    /// Which policy this is.
    fn kind(&self) -> PolicyKind;

    /// The capacity (in weight units) the caller enforces; policies with
    /// segments size them from it.
    fn set_capacity(&mut self, capacity: u64);

    /// A lookup for `hash` found nothing. Frequency-based policies count it.
    fn on_miss(&mut self, hash: u64);

    /// A lookup found the resident item in `slot`.
    fn on_hit(&mut self, slot: Slot, hash: u64, info: &dyn SlotInfo);

    /// A new item now lives in `slot`. The caller has already made room.
    fn on_insert(&mut self, slot: Slot, hash: u64, weight: u32, info: &dyn SlotInfo);

    /// The item in `slot` was overwritten in place with a new weight; this
    /// counts as an access.
    fn on_update(&mut self, slot: Slot, hash: u64, old_weight: u32, new_weight: u32, info: &dyn SlotInfo);

    /// The item in `slot` left for a reason other than [`Self::evict`].
    fn on_remove(&mut self, slot: Slot, hash: u64, weight: u32);

    /// Chooses a victim, unlinks it and returns its slot; `None` when empty.
    fn evict(&mut self, info: &dyn SlotInfo) -> Option<Slot>;

    /// Forgets every item (ghost and frequency history too).
    fn clear(&mut self);

    /// How often the item in `slot` (key hash `hash`) has been used, for
    /// policies that count (Redis `OBJECT FREQ`); `None` for the others.
    fn frequency(&self, _slot: Slot, _hash: u64) -> Option<u32> {
        None
    }

    /// Policy-specific counters and settings, for `stats` and reports.
    fn stats(&self) -> PolicyStats {
        PolicyStats::default()
    }

    /// Heap bytes of metadata held, for measuring per-item overhead.
    fn heap_bytes(&self) -> usize;
}

/// Counters and settings a policy reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyStats {
    /// `(name, value)` pairs, e.g. `("window_weight", 1200)`.
    pub values: Vec<(&'static str, u64)>,
}

impl PolicyStats {
    /// Adds the values of `other` name by name (for summing shards).
    pub fn merge(&mut self, other: &PolicyStats) {
        for &(name, value) in &other.values {
            match self.values.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => *v += value,
                None => self.values.push((name, value)),
            }
        }
    }

    /// The value named `name`, if the policy reports it.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }
}

/// The eviction policies strata ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// Least recently used.
    Lru,
    /// First in, first out (no promotion on hit).
    Fifo,
    /// CLOCK (second chance): FIFO with one reference bit.
    Clock,
    /// Least frequently used, with periodic halving of counts (aging).
    Lfu,
    /// Adaptive Replacement Cache (Megiddo & Modha, FAST'03).
    Arc,
    /// SIEVE (Zhang et al., NSDI'24).
    Sieve,
    /// S3-FIFO (Yang et al., SOSP'23).
    S3Fifo,
    /// Window TinyLFU with a fixed 1% window (Einziger et al., 2017).
    WTinyLfu,
    /// W-TinyLFU whose window adapts to the workload, sized from the
    /// marginal hits of window and main space (see `climber.rs`); strata's
    /// default.
    Adaptive,
}

impl PolicyKind {
    /// Every policy, in report order.
    pub const ALL: [PolicyKind; 9] = [
        PolicyKind::Lru,
        PolicyKind::Fifo,
        PolicyKind::Clock,
        PolicyKind::Lfu,
        PolicyKind::Arc,
        PolicyKind::Sieve,
        PolicyKind::S3Fifo,
        PolicyKind::WTinyLfu,
        PolicyKind::Adaptive,
    ];

    /// The policy chosen by measurement on the reference traces; see
    /// BENCHMARKS.md for the table behind the choice.
    pub const DEFAULT: PolicyKind = PolicyKind::Adaptive;

    /// The short name used in flags, configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Lru => "lru",
            PolicyKind::Fifo => "fifo",
            PolicyKind::Clock => "clock",
            PolicyKind::Lfu => "lfu",
            PolicyKind::Arc => "arc",
            PolicyKind::Sieve => "sieve",
            PolicyKind::S3Fifo => "s3fifo",
            PolicyKind::WTinyLfu => "wtinylfu",
            PolicyKind::Adaptive => "adaptive",
        }
    }

    /// Builds an empty policy of this kind for `capacity` weight units.
    pub fn build(self, capacity: u64) -> Box<dyn EvictionPolicy> {
        let mut policy: Box<dyn EvictionPolicy> = match self {
            PolicyKind::Lru => Box::new(lru::Lru::default()),
            PolicyKind::Fifo => Box::new(fifo::Fifo::default()),
            PolicyKind::Clock => Box::new(clock::Clock::default()),
            PolicyKind::Lfu => Box::new(lfu::Lfu::default()),
            PolicyKind::Arc => Box::new(arc::Arc::default()),
            PolicyKind::Sieve => Box::new(sieve::Sieve::default()),
            PolicyKind::S3Fifo => Box::new(s3fifo::S3Fifo::default()),
            PolicyKind::WTinyLfu => Box::new(wtinylfu::WTinyLfu::fixed()),
            PolicyKind::Adaptive => Box::new(wtinylfu::WTinyLfu::adaptive()),
        };
        policy.set_capacity(capacity);
        policy
    }
}

impl Default for PolicyKind {
    fn default() -> Self {
        PolicyKind::DEFAULT
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that strata does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown eviction policy {0:?} (known: lru, fifo, clock, lfu, arc, sieve, s3fifo, wtinylfu, adaptive, default)"
)]
pub struct UnknownPolicy(pub String);

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let lower = lower.replace(['-', '_'], "");
        match lower.as_str() {
            "default" => Ok(PolicyKind::DEFAULT),
            "lru" | "allkeyslru" => Ok(PolicyKind::Lru),
            "fifo" => Ok(PolicyKind::Fifo),
            "clock" => Ok(PolicyKind::Clock),
            "lfu" | "allkeyslfu" => Ok(PolicyKind::Lfu),
            "arc" => Ok(PolicyKind::Arc),
            "sieve" => Ok(PolicyKind::Sieve),
            "s3fifo" => Ok(PolicyKind::S3Fifo),
            "wtinylfu" | "tinylfu" => Ok(PolicyKind::WTinyLfu),
            "adaptive" | "hillclimber" => Ok(PolicyKind::Adaptive),
            _ => Err(UnknownPolicy(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in PolicyKind::ALL {
            assert_eq!(kind.name().parse::<PolicyKind>(), Ok(kind));
            assert_eq!(kind.build(10).kind(), kind);
        }
        assert_eq!("default".parse::<PolicyKind>(), Ok(PolicyKind::DEFAULT));
        assert!("mru".parse::<PolicyKind>().is_err());
    }

    /// Heap bytes per resident item after long streams of distinct keys,
    /// read once or twice in a row, which fill the ghost lists and
    /// histories too: a regression guard for the per-item overhead that
    /// each policy's module documents.
    #[test]
    fn metadata_per_resident_stays_small() {
        let capacity = 50_000u64;
        // 9 bytes per slot (links + one byte) with up to 1.5x growth slack,
        // plus, where the policy keeps them, up to one ghost per resident.
        let budgets = [
            (PolicyKind::Clock, 13.5),
            (PolicyKind::Sieve, 13.5),
            (PolicyKind::Arc, 13.5 + 50.0),
            (PolicyKind::S3Fifo, 13.5 + 50.0),
            (PolicyKind::Lfu, 13.5 + 50.0),
        ];
        for (kind, budget) in budgets {
            for reads in [1, 2] {
                let mut replay = Replayer::new(kind, capacity);
                for key in 0..4 * capacity {
                    for _ in 0..reads {
                        replay.access(key.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1);
                    }
                }
                let per_resident = replay.policy().heap_bytes() as f64 / replay.len() as f64;
                assert!(
                    per_resident <= budget,
                    "{kind}: {per_resident:.1} heap bytes per resident, budget {budget}"
                );
            }
        }
    }
}
