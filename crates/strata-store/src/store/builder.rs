//! Building a [`Store`]: capacity, policy, shards, clock and hash seed.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crossbeam_utils::CachePadded;
use foldhash::fast::FixedState;
use parking_lot::RwLock;

use super::reads::ReadBuffer;
use super::shard::Shard;
use super::types::{Capacity, Weigher};
use super::{ShardCell, Store};
use crate::clock::{Clock, SystemClock};
use crate::policy::PolicyKind;

/// Builds a [`Store`].
#[derive(Clone, Debug)]
pub struct StoreBuilder {
    capacity: Capacity,
    max_item_bytes: u64,
    policy: PolicyKind,
    shards: Option<usize>,
    clock: Arc<dyn Clock>,
    hash_seed: Option<u64>,
    expiry_budget: usize,
}

impl StoreBuilder {
    pub(crate) fn new(capacity: Capacity) -> Self {
        Self {
            capacity,
            max_item_bytes: 1024 * 1024,
            policy: PolicyKind::DEFAULT,
            shards: None,
            clock: Arc::new(SystemClock),
            hash_seed: None,
            expiry_budget: 32,
        }
    }

    /// Largest item (key + value + header bytes) accepted; default 1 MiB.
    pub fn max_item_bytes(mut self, bytes: u64) -> Self {
        self.max_item_bytes = bytes;
        self
    }

    /// The eviction policy; default [`PolicyKind::DEFAULT`].
    pub fn policy(mut self, policy: PolicyKind) -> Self {
        self.policy = policy;
        self
    }

    /// Number of shards (rounded up to a power of two). By default: enough
    /// for the cores, but few enough that each shard holds at least four
    /// maximum-size items (bytes) or 256 items (entries).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.max(1));
        self
    }

    /// The clock expiry reads; default the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A fixed hash seed, for reproducible placement; default random (which
    /// keeps adversaries from choosing colliding keys).
    pub fn hash_seed(mut self, seed: u64) -> Self {
        self.hash_seed = Some(seed);
        self
    }

    /// Maximum expired items a write reclaims on the side (active expiry
    /// work per write); default 32. [`Store::run_pending_expiry`] does more.
    pub fn expiry_budget(mut self, entries: usize) -> Self {
        self.expiry_budget = entries;
        self
    }

    /// Builds the store.
    pub fn build(self) -> Store {
        let (total, weigher) = match self.capacity {
            Capacity::Bytes(bytes) => (bytes, Weigher::Bytes),
            Capacity::Entries(entries) => (entries, Weigher::Entries),
        };
        let shard_count = self
            .shards
            .unwrap_or_else(|| default_shards(self.capacity, self.max_item_bytes));
        let shard_count = shard_count.next_power_of_two().min(1 << 16);
        let shard_bits = shard_count.trailing_zeros();
        let seed = self.hash_seed.unwrap_or_else(random_seed);
        let hasher = FixedState::with_seed(seed);
        let now = self.clock.now_ms();
        let shards = (0..shard_count)
            .map(|i| {
                // Spread the remainder so the shard budgets sum to the total.
                let capacity = total / shard_count as u64 + u64::from((i as u64) < total % shard_count as u64);
                CachePadded::new(ShardCell {
                    filtered_hits: AtomicU64::new(0),
                    state: RwLock::new(Shard::new(
                        self.policy.build(capacity),
                        capacity,
                        hasher.clone(),
                        weigher,
                        i as u64,
                        shard_bits,
                        now,
                    )),
                    reads: ReadBuffer::default(),
                })
            })
            .collect();
        Store {
            shards,
            shard_mask: shard_count as u64 - 1,
            hasher,
            clock: self.clock,
            capacity: RwLock::new(self.capacity),
            max_item_bytes: self.max_item_bytes,
            policy: RwLock::new(self.policy),
            expiry_budget: self.expiry_budget,
        }
    }
}

fn default_shards(capacity: Capacity, max_item_bytes: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, usize::from);
    let max = (cores * 4).next_power_of_two();
    let by_size = match capacity {
        Capacity::Bytes(bytes) => bytes / max_item_bytes.max(1) / 4,
        Capacity::Entries(entries) => entries / 256,
    };
    let by_size = usize::try_from(by_size).unwrap_or(usize::MAX).max(1);
    // Round down to a power of two so no shard falls below the floor.
    let by_size = 1usize << (usize::BITS - 1 - by_size.leading_zeros());
    by_size.min(max)
}

fn random_seed() -> u64 {
    use std::collections::hash_map::RandomState;
    RandomState::new().hash_one(0x5eed_u64)
}
