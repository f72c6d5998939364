//! Operations built on [`Store::compute`] (counters, append) and the ones
//! that span two keys (rename, copy) or the whole store (random key).

use super::record::Meta;
use super::{Change, Expiry, RemovalCause, State, Store};
use crate::clock::Now;
use crate::error::StoreError;

impl Store {
    /// Moves the item at `from` to `to` (Redis `RENAME`, or `RENAMENX` with
    /// `only_if_absent`), keeping its value, flags and TTL. Returns false if
    /// `to` exists and `only_if_absent` is set; [`StoreError::NotFound`] if
    /// `from` is missing. Atomic: both shards are locked (in shard order, so
    /// two renames cannot deadlock).
    pub fn rename(&self, from: &[u8], to: &[u8], only_if_absent: bool) -> Result<bool, StoreError> {
        self.transfer(
            from,
            to,
            if only_if_absent {
                Transfer::MoveIfAbsent
            } else {
                Transfer::Move
            },
        )
    }

    /// Copies the item at `from` to `to` (Redis `COPY`): with `replace` an
    /// existing `to` is overwritten, otherwise the copy is refused (false).
    pub fn copy(&self, from: &[u8], to: &[u8], replace: bool) -> Result<bool, StoreError> {
        self.transfer(
            from,
            to,
            if replace {
                Transfer::Copy
            } else {
                Transfer::CopyIfAbsent
            },
        )
    }

    fn transfer(&self, from: &[u8], to: &[u8], how: Transfer) -> Result<bool, StoreError> {
        let (from_hash, to_hash) = (self.hash(from), self.hash(to));
        let now = Now::new(self.clock.as_ref());
        let (a, b) = (self.shard_index(from_hash), self.shard_index(to_hash));
        // Lock in index order; one lock when both keys share a shard.
        let (mut first, mut second) = if a <= b {
            let first = self.shards[a].write();
            let second = (a != b).then(|| self.shards[b].write());
            (first, second)
        } else {
            let second = self.shards[b].write();
            let first = self.shards[a].write();
            (first, Some(second))
        };
        let Some(slot) = first.find_live(from_hash, from, &now) else {
            return Err(StoreError::NotFound);
        };
        if from == to {
            return Ok(!matches!(how, Transfer::MoveIfAbsent | Transfer::CopyIfAbsent));
        }
        let record = first.items.record(slot);
        let (value, old) = (record.value().to_vec(), record.meta());
        let target = second.as_deref_mut().unwrap_or(&mut first);
        let existing = target.find_live(to_hash, to, &now);
        if existing.is_some() && matches!(how, Transfer::MoveIfAbsent | Transfer::CopyIfAbsent) {
            return Ok(false);
        }
        let meta = Meta {
            cas: target.next_cas(),
            ..old
        };
        self.check_size(target, to.len(), value.len(), &meta)?;
        let copy = |out: &mut [u8]| out.copy_from_slice(&value);
        match existing {
            Some(slot) => target.rewrite(slot, to_hash, to, value.len(), &meta, State::default(), copy),
            None => {
                target.insert(to_hash, to, value.len(), &meta, State::default(), &now, copy);
            }
        }
        if matches!(how, Transfer::Move | Transfer::MoveIfAbsent) {
            // The insert may have evicted the source; remove it only if it
            // is still there.
            if let Some(slot) = first.find_live(from_hash, from, &now) {
                first.remove(slot, from_hash, RemovalCause::Deleted);
            }
        }
        Ok(true)
    }

    /// Sets every `(key, value)` pair if none of the keys exists, atomically
    /// (Redis `MSETNX`): all involved shards are locked, in shard order.
    /// Returns false, changing nothing, if any key exists.
    pub fn set_many_if_absent(&self, pairs: &[(&[u8], &[u8])]) -> Result<bool, StoreError> {
        let now = Now::new(self.clock.as_ref());
        let hashes: Vec<u64> = pairs.iter().map(|(key, _)| self.hash(key)).collect();
        let mut indexes: Vec<usize> = hashes.iter().map(|&h| self.shard_index(h)).collect();
        indexes.sort_unstable();
        indexes.dedup();
        let mut guards: Vec<_> = indexes.iter().map(|&i| (i, self.shards[i].write())).collect();
        let shard_of =
            |guards: &[(usize, _)], index: usize| guards.iter().position(|(i, _)| *i == index).expect("locked above");
        for (&(key, value), &hash) in pairs.iter().zip(&hashes) {
            let at = shard_of(&guards, self.shard_index(hash));
            let shard = &mut guards[at].1;
            if shard.find_live(hash, key, &now).is_some() {
                return Ok(false);
            }
            let meta = Meta::default();
            self.check_size(shard, key.len(), value.len(), &meta)?;
        }
        for (&(key, value), &hash) in pairs.iter().zip(&hashes) {
            let at = shard_of(&guards, self.shard_index(hash));
            let shard = &mut guards[at].1;
            let meta = Meta {
                cas: shard.next_cas(),
                ..Meta::default()
            };
            let copy = |out: &mut [u8]| out.copy_from_slice(value);
            // A key repeated in the pairs: the last value wins, as in Redis.
            match shard.find_live(hash, key, &now) {
                Some(slot) => shard.rewrite(slot, hash, key, value.len(), &meta, State::default(), copy),
                None => {
                    shard.insert(hash, key, value.len(), &meta, State::default(), &now, copy);
                }
            }
        }
        Ok(true)
    }

    /// A uniformly chosen live key (Redis `RANDOMKEY`), if any: a random
    /// shard weighted by its size, then a random occupied slot in it.
    pub fn random_key(&self) -> Option<Vec<u8>> {
        let now = Now::new(self.clock.as_ref());
        let mut seed = self.hash(&now.get().to_le_bytes());
        for _ in 0..64 {
            seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
            let shard = &self.shards[(seed >> 48) as usize % self.shards.len()];
            let shard = shard.state.read();
            let slots = shard.slot_count();
            if slots == 0 {
                continue;
            }
            // Probe a few positions from a random start.
            let start = (seed as usize) % slots;
            for i in 0..slots.min(16) {
                if let Some(slot) = shard.slot_at((start + i) % slots) {
                    let record = shard.items.record(slot);
                    if !record.is_expired(now.get()) && !record.state().has(State::PLACEHOLDER) {
                        return Some(record.key().to_vec());
                    }
                }
            }
        }
        // Sparse or empty: fall back to the first live key of a scan.
        let mut found = None;
        let mut cursor = 0;
        loop {
            cursor = self.scan(cursor, 16, |item| {
                if found.is_none() && !item.is_placeholder() {
                    found = Some(item.key().to_vec());
                }
            });
            if found.is_some() || cursor == 0 {
                return found;
            }
        }
    }

    /// Adds `delta` to the signed 64-bit decimal integer stored at `key`
    /// (Redis `INCRBY`): a missing key counts as 0; a value that is not a
    /// canonical integer is [`StoreError::NotAnInteger`]; overflow is
    /// [`StoreError::Overflow`]. The expiry is kept.
    pub fn incr_by(&self, key: &[u8], delta: i64) -> Result<i64, StoreError> {
        let (result, _) = self.compute(key, |item| {
            let current = match item {
                None => 0,
                Some(item) => match parse_i64(item.value()) {
                    Some(n) => n,
                    None => return (Change::Keep, Err(StoreError::NotAnInteger)),
                },
            };
            match current.checked_add(delta) {
                Some(next) => (
                    Change::Set {
                        value: next.to_string().into_bytes(),
                        expiry: Expiry::Keep,
                        flags: None,
                    },
                    Ok(next),
                ),
                None => (Change::Keep, Err(StoreError::Overflow)),
            }
        })?;
        result
    }

    /// memcached `incr`/`decr`: the value must be an unsigned 64-bit decimal
    /// integer; increments wrap at 2^64, decrements stop at 0; a missing key
    /// is [`StoreError::NotFound`].
    pub fn incr_unsigned(&self, key: &[u8], delta: u64, decrement: bool) -> Result<u64, StoreError> {
        let (result, _) = self.compute(key, |item| {
            let Some(item) = item else {
                return (Change::Keep, Err(StoreError::NotFound));
            };
            let Some(current) = parse_u64(item.value()) else {
                return (Change::Keep, Err(StoreError::NotAnInteger));
            };
            let next = if decrement {
                current.saturating_sub(delta)
            } else {
                current.wrapping_add(delta)
            };
            (
                Change::Set {
                    value: next.to_string().into_bytes(),
                    expiry: Expiry::Keep,
                    flags: None,
                },
                Ok(next),
            )
        })?;
        result
    }

    /// Appends (or prepends) `data` to the value of `key`. A missing key is
    /// created when `create` is set (Redis `APPEND`), else it is
    /// [`StoreError::NotFound`] (memcached). Returns the new length.
    pub fn append(&self, key: &[u8], data: &[u8], prepend: bool, create: bool) -> Result<usize, StoreError> {
        let (result, _) = self.compute(key, |item| {
            let value = match item {
                None if !create => return (Change::Keep, Err(StoreError::NotFound)),
                None => data.to_vec(),
                Some(item) => {
                    let old = item.value();
                    let mut value = Vec::with_capacity(old.len() + data.len());
                    if prepend {
                        value.extend_from_slice(data);
                        value.extend_from_slice(old);
                    } else {
                        value.extend_from_slice(old);
                        value.extend_from_slice(data);
                    }
                    value
                }
            };
            let len = value.len();
            (
                Change::Set {
                    value,
                    expiry: Expiry::Keep,
                    flags: None,
                },
                Ok(len),
            )
        })?;
        result
    }
}

/// How [`Store::transfer`] moves an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transfer {
    Move,
    MoveIfAbsent,
    Copy,
    CopyIfAbsent,
}

/// Parses a canonical signed decimal integer as Redis does (no spaces, no
/// `+`, no leading zeros, no `-0`): the engine's own rule for INCR's stored
/// values. It is the same rule as `strata_proto::resp::parse_strict_i64`,
/// which the server and proxy use for arguments; this crate sits below
/// `strata_proto` and does not depend on it, so strata-server's test
/// `the_store_reads_integers_as_the_protocol_does` holds the two together.
pub(crate) fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    if text == "-0" {
        return None;
    }
    text.parse().ok()
}

/// Parses an unsigned decimal integer as memcached does, tolerating the
/// trailing spaces memcached's own `decr` leaves behind.
fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?.trim_end_matches(' ');
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
