//! # strata-store
//!
//! The storage engine of strata: a concurrent, sharded, memory-bounded
//! key-value table with TTLs, CAS versions and pluggable eviction, plus the
//! typed local cache that request nodes embed. No I/O and no async runtime
//! live here; time comes from an injected [`Clock`].
//!
//! # Layout
//!
//! - [`store`]: the engine — [`Store`], its shards, records and timer wheel.
//! - [`policy`]: the [`EvictionPolicy`] trait, one file per policy, and the
//!   value-free [`Replayer`] the simulator uses.
//! - [`local`]: [`LocalCache`], the typed request-node cache with
//!   single-flight loading.
//! - [`clock`]: the [`Clock`] trait, the system clock and a manual clock for
//!   tests.
//! - [`error`]: the [`StoreError`] type.

pub mod clock;
pub mod error;
pub mod local;
pub mod policy;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use local::{CacheStats, LocalCache, LocalCacheBuilder};
pub use policy::{
    Adaptation, ClimberConfig, EvictionPolicy, MarginalConfig, PolicyKind, Replayer, Slot, SlotInfo, WTinyLfuConfig,
};
pub use store::{
    Capacity, Change, Condition, Expiry, Item, LeaseGrant, MetaDelete, MetaGet, MetaHit, SetOptions, Store,
    StoreBuilder, StoreStats,
};
