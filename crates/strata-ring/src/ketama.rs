//! Ketama: consistent hashing on a ring of MD5 points, exactly as
//! libmemcached builds it (`MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`), so a
//! strata client and a C, PHP or Python client on libmemcached send every
//! key to the same server.
//!
//! The construction, from libmemcached's `update_continuum`:
//!
//! - each server gets `floor(pct · 160 / 4 · n + 1e-10) · 4` points, where
//!   `pct` is its weight over the total and `n` the number of servers, with
//!   the product computed in `f32` as the C code does (the float rounding
//!   decides some point counts, so it is reproduced, not "fixed": at 100
//!   equal servers libmemcached gives each 156 points, not 160);
//! - point group `i` (from 0) hashes the label `host-i` when the port is
//!   memcached's 11211 and `host:port-i` otherwise; the MD5 digest of a label
//!   yields 4 points, little-endian `u32`s of its four 4-byte quarters;
//! - a key's hash is the little-endian `u32` of the first quarter of its
//!   MD5 digest, and its server owns the first point `>=` that hash,
//!   wrapping to the ring's first point; equal points order by server.
//!
//! [`PointMath::Exact`] computes the point counts in `f64` instead (160 per
//! server at equal weight for every pool size), for pools that only strata
//! clients read: see its docs for why that matters when a pool grows.
//!
//! [`LabelStyle::Spymemcached`] labels points `/host:port-i`, as
//! spymemcached's `KetamaNodeLocator` does for an unresolved address, so
//! Java clients agree with us too.
//!
//! Lookups are a binary search over a sorted `Vec` of (point, server)
//! pairs: 160 points per server keeps it in cache for pools of a few
//! hundred servers.

use md5::{Digest, Md5};

use crate::member::{MEMCACHED_DEFAULT_PORT, Member};
use crate::{MemberIndex, Placement};

/// Points per server at equal weight (libmemcached's
/// `MEMCACHED_POINTS_PER_SERVER_KETAMA`).
pub const POINTS_PER_SERVER: u32 = 160;

/// Points taken from one MD5 digest.
const POINTS_PER_HASH: u32 = 4;

/// How point labels are spelled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelStyle {
    /// libmemcached: `host-i` on port 11211, else `host:port-i`.
    #[default]
    Libmemcached,
    /// spymemcached: `/host:port-i`.
    Spymemcached,
}

/// The ketama ring.
#[derive(Clone, Debug)]
pub struct Ketama {
    /// (point, server), sorted.
    points: Vec<(u32, MemberIndex)>,
    members: usize,
}

/// The key hash ketama uses: the little-endian `u32` of the first four
/// bytes of the key's MD5 digest.
pub fn key_hash(key: &[u8]) -> u32 {
    let digest = Md5::digest(key);
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Points a server of `weight` gets among `servers` servers of
/// `total_weight`, reproducing libmemcached's float arithmetic.
pub fn points_for(weight: u32, total_weight: u64, servers: usize) -> u32 {
    let pct = weight as f32 / total_weight as f32;
    let scaled = pct * POINTS_PER_SERVER as f32 / POINTS_PER_HASH as f32 * servers as f32;
    ((f64::from(scaled) + 0.000_000_000_1).floor() as u32) * POINTS_PER_HASH
}

/// The same formula in `f64`: exactly 160 points per server at equal
/// weight for any pool size, so growing a large pool moves only the new
/// server's share ([`PointMath::Exact`]).
pub fn points_for_exact(weight: u32, total_weight: u64, servers: usize) -> u32 {
    let pct = f64::from(weight) / total_weight as f64;
    let scaled = pct * f64::from(POINTS_PER_SERVER) / f64::from(POINTS_PER_HASH) * servers as f64;
    ((scaled + 0.000_000_1).floor() as u32) * POINTS_PER_HASH
}

/// How point counts are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PointMath {
    /// libmemcached's `f32` arithmetic: compatible with its clients, but at
    /// some pool sizes (100 equal servers: 156 points each, 101: 160) every
    /// server's point count changes with the pool size, and a change of
    /// membership moves keys between servers that stayed.
    #[default]
    Libmemcached,
    /// `f64` arithmetic: 160 points per server at equal weight for every
    /// pool size. For pools only strata clients read.
    Exact,
}

fn label(member: &Member, group: u32, style: LabelStyle) -> String {
    match style {
        LabelStyle::Libmemcached if member.port == MEMCACHED_DEFAULT_PORT => format!("{}-{group}", member.host),
        LabelStyle::Libmemcached => format!("{}:{}-{group}", member.host, member.port),
        LabelStyle::Spymemcached => format!("/{}:{}-{group}", member.host, member.port),
    }
}

impl Ketama {
    /// Builds the ring over `members` (in order: the index of a member is
    /// its position).
    pub fn new(members: &[Member], style: LabelStyle) -> Self {
        Self::with_math(members, style, PointMath::Libmemcached)
    }

    /// Builds the ring with point counts computed by `math`.
    pub fn with_math(members: &[Member], style: LabelStyle, math: PointMath) -> Self {
        let total_weight: u64 = members.iter().map(|m| u64::from(m.weight)).sum();
        let mut points = Vec::with_capacity(members.len() * POINTS_PER_SERVER as usize);
        for (index, member) in members.iter().enumerate() {
            let count = match math {
                PointMath::Libmemcached => points_for(member.weight, total_weight, members.len()),
                PointMath::Exact => points_for_exact(member.weight, total_weight, members.len()),
            };
            for group in 0..count / POINTS_PER_HASH {
                let digest = Md5::digest(label(member, group, style).as_bytes());
                for quarter in digest.chunks_exact(4) {
                    let point = u32::from_le_bytes([quarter[0], quarter[1], quarter[2], quarter[3]]);
                    points.push((point, index as MemberIndex));
                }
            }
        }
        points.sort_unstable();
        Ketama {
            points,
            members: members.len(),
        }
    }

    /// Number of points on the ring.
    pub fn points(&self) -> usize {
        self.points.len()
    }

    /// The position of the first point `>= hash`, wrapping to 0.
    fn position(&self, hash: u32) -> usize {
        let at = self.points.partition_point(|&(point, _)| point < hash);
        if at == self.points.len() { 0 } else { at }
    }

    /// The point (its value and server) that owns `hash`.
    pub fn owner_of_hash(&self, hash: u32) -> Option<(u32, usize)> {
        let &(point, member) = self.points.get(self.position(hash))?;
        Some((point, member as usize))
    }
}

impl Placement for Ketama {
    fn members(&self) -> usize {
        self.members
    }

    fn owner(&self, key: &[u8]) -> Option<usize> {
        self.owner_of_hash(key_hash(key)).map(|(_, member)| member)
    }

    fn preference(&self, key: &[u8], limit: usize, out: &mut Vec<usize>) {
        if self.points.is_empty() {
            return;
        }
        let start = self.position(key_hash(key));
        let want = limit.min(self.members);
        let before = out.len();
        // Walk clockwise; distinct servers in the order their points come.
        for step in 0..self.points.len() {
            if out.len() - before == want {
                break;
            }
            let member = self.points[(start + step) % self.points.len()].1 as usize;
            if !out[before..].contains(&member) {
                out.push(member);
            }
        }
        // A server whose weight is too small for even one group of points
        // (libmemcached gives it none, and so do we) owns no key, but it is
        // still a member to fail over to: last, in list order.
        for member in 0..self.members {
            if out.len() - before == want {
                break;
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
    fn equal_weights_give_160_points_each() {
        let members: Vec<_> = (0..10).map(|i| Member::new(format!("10.0.0.{i}"), 11211)).collect();
        let ring = Ketama::new(&members, LabelStyle::Libmemcached);
        assert_eq!(ring.points(), 1600);
    }

    #[test]
    fn labels_follow_the_port_rule() {
        let standard = Member::new("10.0.1.1", 11211);
        let other = Member::new("10.0.1.1", 7311);
        assert_eq!(label(&standard, 0, LabelStyle::Libmemcached), "10.0.1.1-0");
        assert_eq!(label(&other, 3, LabelStyle::Libmemcached), "10.0.1.1:7311-3");
        assert_eq!(label(&standard, 3, LabelStyle::Spymemcached), "/10.0.1.1:11211-3");
    }

    #[test]
    fn preference_lists_distinct_servers_owner_first() {
        let members: Vec<_> = (0..5).map(|i| Member::new("h", 7000 + i)).collect();
        let ring = Ketama::new(&members, LabelStyle::Libmemcached);
        for key in [&b"a"[..], b"b", b"user:42"] {
            let mut order = Vec::new();
            ring.preference(key, 10, &mut order);
            assert_eq!(order.len(), 5);
            assert_eq!(Some(order[0]), ring.owner(key));
            let mut sorted = order.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 5);
        }
    }

    #[test]
    fn an_empty_ring_places_nothing() {
        let ring = Ketama::new(&[], LabelStyle::Libmemcached);
        assert_eq!(ring.owner(b"k"), None);
        let mut order = Vec::new();
        ring.preference(b"k", 3, &mut order);
        assert!(order.is_empty());
    }
}
