//! # strata-store
//!
//! The storage engine of strata: a concurrent, sharded, memory-bounded
//! key-value table with TTLs, CAS versions and pluggable eviction, plus the
//! typed local cache that request nodes embed. No I/O and no async runtime
//! live here; time comes from an injected [`Clock`].
//!
//! # Layout
//!
//! - [`policy`]: the [`EvictionPolicy`] trait, one file per policy, and the
//!   value-free [`Replayer`] the simulator uses.

pub mod policy;

pub use policy::{
    Adaptation, ClimberConfig, EvictionPolicy, MarginalConfig, PolicyKind, Replayer, Slot, SlotInfo, WTinyLfuConfig,
};
