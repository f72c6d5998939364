//! # strata-ring
//!
//! Where a key lives: placement of keys on cache servers by consistent
//! hashing, and the versioned member list it is computed from. Pure
//! functions and immutable snapshots; no I/O (the cluster file is parsed
//! from text the caller read).
//!
//! ```
//! use strata_ring::{Member, Ring, Scheme};
//!
//! let members = vec![Member::new("10.0.0.1", 7311), Member::new("10.0.0.2", 7311)];
//! let ring = Ring::new(Scheme::Ketama, members)?;
//! let snapshot = ring.snapshot();
//! let (_, owner) = snapshot.owner(b"user:42").unwrap();
//! println!("user:42 lives on {owner} (epoch {})", snapshot.epoch());
//! ring.add(Member::new("10.0.0.3", 7311))?; // epoch 2; about 1/3 of keys move
//! # Ok::<(), strata_ring::RingError>(())
//! ```
//!
//! # Layout
//!
//! - [`Placement`]: the one trait every scheme implements: the owner of a
//!   key, and the member preference order behind it (for failover and
//!   bounded loads).
//! - [`ketama`]: libmemcached-compatible ketama (weighted, MD5, 160 points
//!   per server), with spymemcached's labels as an option;
//! - [`jump`]: jump consistent hash;
//! - [`rendezvous`]: weighted highest-random-weight hashing;
//! - [`bounded`]: consistent hashing with bounded loads over any of them;
//! - [`member`]: members (`host:port*weight`);
//! - [`ring`]: [`Scheme`], the epoch [`Snapshot`], and the [`Ring`] that
//!   swaps snapshots atomically;
//! - [`cluster`]: the cluster file (pools of members, the scheme) in TOML;
//! - [`analysis`]: shares, balance, and the keys a change would move.

pub mod analysis;
pub mod bounded;
pub mod cluster;
pub mod jump;
pub mod ketama;
pub mod member;
pub mod rendezvous;
pub mod ring;

pub use bounded::BoundedLoad;
pub use cluster::{ClusterConfig, ClusterError};
pub use jump::Jump;
pub use ketama::{Ketama, LabelStyle, PointMath};
pub use member::Member;
pub use rendezvous::Rendezvous;
pub use ring::{Ring, Scheme, Snapshot};

/// A member's position in its list, stored compactly on ketama's points.
pub(crate) type MemberIndex = u32;

/// Places keys on members `0..members()`.
///
/// Implementations are immutable once built (bounded loads aside, which
/// records its assignments behind a lock) and shared across threads.
pub trait Placement: Send + Sync + std::fmt::Debug {
    /// How many members keys are placed on.
    fn members(&self) -> usize;

    /// The member owning `key`; `None` when there are no members.
    fn owner(&self, key: &[u8]) -> Option<usize>;

    /// Appends to `out` up to `limit` distinct members in order of
    /// preference for `key`: the owner first, then where the key should go
    /// if the members before are unavailable.
    fn preference(&self, key: &[u8], limit: usize, out: &mut Vec<usize>);
}

/// Why a ring could not be built or changed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RingError {
    /// A member was written wrongly.
    #[error("bad member {text:?}: {why}")]
    BadMember {
        /// What was written.
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// The same address appears twice.
    #[error("member {0} is listed twice")]
    Duplicate(String),
    /// A change named a member that is not there.
    #[error("no member {0}")]
    NoSuchMember(String),
    /// An unknown scheme name.
    #[error("unknown placement scheme {0:?} (ketama, ketama-spy, ketama-exact, jump, rendezvous, bounded[:EPSILON])")]
    BadScheme(String),
}

/// The 64-bit key hash of the schemes that are not ketama: XXH3, which is
/// fixed by its specification, so every client, version and platform
/// agrees on it.
pub(crate) fn stable_hash(bytes: &[u8], seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, seed)
}
