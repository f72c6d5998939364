//! The live ring: a member list with an epoch, placed by one scheme, and
//! swapped atomically on every change.
//!
//! Readers call [`Ring::snapshot`] and route with what they got; a change
//! builds a whole new [`Snapshot`] (members, epoch + 1, placement) beside
//! the old one and publishes it with one atomic pointer swap (arc-swap).
//! Nobody ever sees a half-built ring, a lookup never takes a lock, and a
//! reader holding an old snapshot keeps a consistent (if stale) view until
//! it drops it — which is what warm-up needs: the previous epoch's owner of
//! a key is still answerable.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::bounded::BoundedLoad;
use crate::jump::Jump;
use crate::ketama::{Ketama, LabelStyle, PointMath};
use crate::member::{Member, validate};
use crate::rendezvous::Rendezvous;
use crate::{Placement, RingError};

/// Which placement a ring uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "scheme")]
pub enum Scheme {
    /// Ketama with libmemcached's labels (the default).
    #[default]
    Ketama,
    /// Ketama with spymemcached's labels.
    KetamaSpy,
    /// Ketama with libmemcached's labels but point counts computed in
    /// `f64` (160 per server at equal weight for any pool size): moves only
    /// the ideal share when large pools grow. Not libmemcached-compatible
    /// at every pool size.
    KetamaExact,
    /// Jump consistent hash (weights ignored).
    Jump,
    /// Weighted rendezvous hashing.
    Rendezvous,
    /// Ketama with bounded loads: no member above `⌈(1+ε)·m/n⌉` keys.
    BoundedKetama {
        /// The slack ε.
        epsilon: f64,
    },
}

impl Scheme {
    /// Every scheme, for reports (bounded loads at ε = 0.25).
    pub const ALL: [Scheme; 6] = [
        Scheme::Ketama,
        Scheme::KetamaSpy,
        Scheme::KetamaExact,
        Scheme::Jump,
        Scheme::Rendezvous,
        Scheme::BoundedKetama { epsilon: 0.25 },
    ];

    /// Builds the placement over `members`.
    pub fn build(self, members: &[Member]) -> Box<dyn Placement> {
        match self {
            Scheme::Ketama => Box::new(Ketama::new(members, LabelStyle::Libmemcached)),
            Scheme::KetamaSpy => Box::new(Ketama::new(members, LabelStyle::Spymemcached)),
            Scheme::KetamaExact => Box::new(Ketama::with_math(members, LabelStyle::Libmemcached, PointMath::Exact)),
            Scheme::Jump => Box::new(Jump::new(members.len())),
            Scheme::Rendezvous => Box::new(Rendezvous::new(members)),
            Scheme::BoundedKetama { epsilon } => Box::new(BoundedLoad::new(
                Ketama::new(members, LabelStyle::Libmemcached),
                epsilon,
            )),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheme::Ketama => f.write_str("ketama"),
            Scheme::KetamaSpy => f.write_str("ketama-spy"),
            Scheme::KetamaExact => f.write_str("ketama-exact"),
            Scheme::Jump => f.write_str("jump"),
            Scheme::Rendezvous => f.write_str("rendezvous"),
            Scheme::BoundedKetama { epsilon } => write!(f, "bounded-ketama(ε={epsilon})"),
        }
    }
}

impl std::str::FromStr for Scheme {
    type Err = RingError;

    /// `ketama`, `ketama-spy`, `ketama-exact`, `jump`, `rendezvous`,
    /// `bounded` or `bounded:EPSILON`.
    fn from_str(text: &str) -> Result<Self, RingError> {
        let bad = || RingError::BadScheme(text.to_owned());
        Ok(match text.trim() {
            "ketama" | "libmemcached" => Scheme::Ketama,
            "ketama-spy" | "spymemcached" => Scheme::KetamaSpy,
            "ketama-exact" => Scheme::KetamaExact,
            "jump" => Scheme::Jump,
            "rendezvous" | "hrw" => Scheme::Rendezvous,
            "bounded" | "bounded-ketama" => Scheme::BoundedKetama { epsilon: 0.25 },
            other => {
                let epsilon = other
                    .strip_prefix("bounded:")
                    .and_then(|e| e.parse::<f64>().ok())
                    .filter(|e| e.is_finite() && *e > 0.0)
                    .ok_or_else(bad)?;
                Scheme::BoundedKetama { epsilon }
            }
        })
    }
}

/// One epoch of the ring: its members and their placement.
pub struct Snapshot {
    epoch: u64,
    scheme: Scheme,
    members: Vec<Member>,
    placement: Box<dyn Placement>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("epoch", &self.epoch)
            .field("scheme", &self.scheme)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// A snapshot at `epoch`.
    pub fn new(epoch: u64, scheme: Scheme, members: Vec<Member>) -> Result<Self, RingError> {
        validate(&members)?;
        let placement = scheme.build(&members);
        Ok(Snapshot {
            epoch,
            scheme,
            members,
            placement,
        })
    }

    /// The version: every change of members makes a new, larger epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The members, in placement order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member owning `key`, with its index; `None` for an empty pool.
    pub fn owner(&self, key: &[u8]) -> Option<(usize, &Member)> {
        let index = self.placement.owner(key)?;
        Some((index, &self.members[index]))
    }

    /// Indices of the members in order of preference for `key` (owner
    /// first, then the failover order), at most `limit`, into `out`.
    pub fn preference(&self, key: &[u8], limit: usize, out: &mut Vec<usize>) {
        self.placement.preference(key, limit, out);
    }

    /// The index of the member with `address` (`host:port`).
    pub fn index_of(&self, address: &str) -> Option<usize> {
        self.members.iter().position(|m| m.address() == address)
    }

    /// The placement itself.
    pub fn placement(&self) -> &dyn Placement {
        self.placement.as_ref()
    }
}

/// A ring that changes: readers take snapshots, writers publish new epochs.
#[derive(Debug)]
pub struct Ring {
    current: ArcSwap<Snapshot>,
    /// Serialises writers so each change builds on the one before.
    writer: std::sync::Mutex<()>,
}

impl Ring {
    /// A ring at epoch 1 over `members`.
    pub fn new(scheme: Scheme, members: Vec<Member>) -> Result<Self, RingError> {
        Ok(Ring {
            current: ArcSwap::from_pointee(Snapshot::new(1, scheme, members)?),
            writer: std::sync::Mutex::new(()),
        })
    }

    /// The current epoch's snapshot. Lock-free.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.current.load().epoch
    }

    /// Publishes `members` as the next epoch, unless they equal the current
    /// members (then nothing changes). Returns the snapshot now current.
    pub fn replace(&self, members: Vec<Member>) -> Result<Arc<Snapshot>, RingError> {
        let scheme = self.current.load().scheme;
        self.replace_with(scheme, members)
    }

    /// Publishes `members` placed by `scheme` as the next epoch (the
    /// scheme may change too), unless both equal the current ones.
    pub fn replace_with(&self, scheme: Scheme, members: Vec<Member>) -> Result<Arc<Snapshot>, RingError> {
        let _writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.current.load_full();
        if current.members == members && current.scheme == scheme {
            return Ok(current);
        }
        let next = Arc::new(Snapshot::new(current.epoch + 1, scheme, members)?);
        self.current.store(Arc::clone(&next));
        Ok(next)
    }

    /// Adds `member` as the next epoch.
    pub fn add(&self, member: Member) -> Result<Arc<Snapshot>, RingError> {
        let mut members = self.snapshot().members.clone();
        members.push(member);
        self.replace(members)
    }

    /// Removes the member at `address` as the next epoch.
    pub fn remove(&self, address: &str) -> Result<Arc<Snapshot>, RingError> {
        let mut members = self.snapshot().members.clone();
        let before = members.len();
        members.retain(|m| m.address() != address);
        if members.len() == before {
            return Err(RingError::NoSuchMember(address.to_owned()));
        }
        self.replace(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u16) -> Vec<Member> {
        (0..n).map(|i| Member::new("127.0.0.1", 7000 + i)).collect()
    }

    #[test]
    fn every_change_is_a_new_epoch_and_old_snapshots_stay_whole() {
        let ring = Ring::new(Scheme::Ketama, members(3)).unwrap();
        let first = ring.snapshot();
        assert_eq!(first.epoch(), 1);
        let second = ring.add(Member::new("127.0.0.1", 7003)).unwrap();
        assert_eq!(second.epoch(), 2);
        assert_eq!(ring.epoch(), 2);
        assert_eq!(first.members().len(), 3, "the old epoch is unchanged");
        assert_eq!(second.members().len(), 4);
        let same = ring.replace(second.members().to_vec()).unwrap();
        assert_eq!(same.epoch(), 2, "no change, no new epoch");
        let third = ring.remove("127.0.0.1:7000").unwrap();
        assert_eq!(third.epoch(), 3);
        assert!(third.index_of("127.0.0.1:7000").is_none());
        assert!(matches!(ring.remove("nope:1"), Err(RingError::NoSuchMember(_))));
        assert!(matches!(
            ring.add(Member::new("127.0.0.1", 7001)),
            Err(RingError::Duplicate(_))
        ));
        assert_eq!(ring.epoch(), 3, "a refused change publishes nothing");
    }

    #[test]
    fn schemes_parse() {
        assert_eq!("ketama".parse::<Scheme>().unwrap(), Scheme::Ketama);
        assert_eq!(
            "bounded:0.1".parse::<Scheme>().unwrap(),
            Scheme::BoundedKetama { epsilon: 0.1 }
        );
        assert!("bounded:-1".parse::<Scheme>().is_err());
        assert!("modulo".parse::<Scheme>().is_err());
    }

    #[test]
    fn readers_on_other_threads_see_whole_epochs() {
        let ring = Arc::new(Ring::new(Scheme::Ketama, members(3)).unwrap());
        let reader = {
            let ring = Arc::clone(&ring);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    let snapshot = ring.snapshot();
                    // Members and placement always agree within a snapshot.
                    let (index, member) = snapshot.owner(b"key").unwrap();
                    assert_eq!(&snapshot.members()[index], member);
                    assert_eq!(snapshot.members().len() as u64, 2 + snapshot.epoch());
                }
            })
        };
        for port in 7003..7050 {
            ring.add(Member::new("127.0.0.1", port)).unwrap();
        }
        reader.join().unwrap();
    }
}
