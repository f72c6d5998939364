//! The byte layout of one stored item inside an arena chunk.
//!
//! ```text
//! [tag u8][state u8][slot u32][cas u64][key_len varint][value_len varint][expire_at u64]?[flags u32]?[key][value]
//! ```
//!
//! Everything is packed at byte alignment and read with `from_le_bytes`, so
//! an item of a 16-byte key and a 32-byte value takes 64 bytes (one 64-byte
//! chunk). `state` holds the lease and staleness bits of memcached's meta
//! protocol ([`State`]). `slot` is the item's handle in the shard's policy and slot table;
//! keeping it in the record lets the index point straight at the record and
//! still find the slot on a hit. `expire_at` (ms since the Unix epoch) and
//! `flags` (memcached's client flags) are present only when the item has
//! them; most cache items have neither. Lengths are LEB128 varints: one byte
//! each below 128.
//!
//! A chunk may be longer than its record (size classes); the header says
//! where the record ends.

const HAS_EXPIRY: u8 = 1;
const HAS_FLAGS: u8 = 2;
/// The tag's upper six bits hold the item's promotion epoch (see
/// `Shard::epoch`): the epoch in which the policy last saw an access to it.
const EPOCH_SHIFT: u32 = 2;
/// Promotion epochs count modulo this.
pub(crate) const EPOCHS: u8 = 64;

/// Tag, state, slot and CAS.
const FIXED: usize = 1 + 1 + 4 + 8;
const SLOT: std::ops::Range<usize> = 2..6;
const CAS: std::ops::Range<usize> = 6..14;

/// Per-item bits of memcached's meta protocol and of strata's leases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct State(pub(crate) u8);

impl State {
    /// Marked stale (`md … I`): served with `X`, refreshed by one winner.
    pub(crate) const STALE: u8 = 1;
    /// A client has been told it won the right to refill (`W` was sent).
    pub(crate) const WIN_SENT: u8 = 2;
    /// The item has been read since it was written (`h`).
    pub(crate) const FETCHED: u8 = 4;
    /// An empty stand-in created on a miss for the one caller who will fill
    /// it (`mg … N`, `LGET`); the value does not exist yet.
    pub(crate) const PLACEHOLDER: u8 = 8;

    pub(crate) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// The metadata of an item other than its key and value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) cas: u64,
    /// Milliseconds since the Unix epoch; `None` never expires.
    pub(crate) expire_at: Option<u64>,
    pub(crate) flags: u32,
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut [u8], mut n: usize) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8 & 0x7f) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

fn get_varint(bytes: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (n, i + 1);
        }
    }
    unreachable!("records are written by put_varint")
}

/// The store's own fields of a record: its slot, promotion epoch and state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) slot: u32,
    pub(crate) epoch: u8,
    pub(crate) state: State,
}

/// The bytes a record with these lengths and metadata needs.
pub(crate) fn encoded_len(key_len: usize, value_len: usize, meta: &Meta) -> usize {
    FIXED
        + varint_len(key_len)
        + varint_len(value_len)
        + if meta.expire_at.is_some() { 8 } else { 0 }
        + if meta.flags != 0 { 4 } else { 0 }
        + key_len
        + value_len
}

/// Writes a record into `out` (at least `encoded_len` bytes); `fill` writes
/// the value into its `value_len` bytes.
pub(crate) fn write(
    out: &mut [u8],
    header: Header,
    key: &[u8],
    value_len: usize,
    meta: &Meta,
    fill: impl FnOnce(&mut [u8]),
) {
    let Header { slot, epoch, state } = header;
    let mut tag = (epoch % EPOCHS) << EPOCH_SHIFT;
    if meta.expire_at.is_some() {
        tag |= HAS_EXPIRY;
    }
    if meta.flags != 0 {
        tag |= HAS_FLAGS;
    }
    out[0] = tag;
    out[1] = state.0;
    out[SLOT].copy_from_slice(&slot.to_le_bytes());
    out[CAS].copy_from_slice(&meta.cas.to_le_bytes());
    let mut at = FIXED;
    at += put_varint(&mut out[at..], key.len());
    at += put_varint(&mut out[at..], value_len);
    if let Some(expire_at) = meta.expire_at {
        out[at..at + 8].copy_from_slice(&expire_at.to_le_bytes());
        at += 8;
    }
    if meta.flags != 0 {
        out[at..at + 4].copy_from_slice(&meta.flags.to_le_bytes());
        at += 4;
    }
    out[at..at + key.len()].copy_from_slice(key);
    at += key.len();
    fill(&mut out[at..at + value_len]);
}

/// Where the parts of a record sit.
#[derive(Clone, Copy, Debug)]
struct Parts {
    tag: u8,
    key_len: usize,
    value_len: usize,
    /// Offset of the optional fields.
    opt: usize,
    /// Offset of the key.
    key: usize,
}

impl Parts {
    fn of(bytes: &[u8]) -> Parts {
        let tag = bytes[0];
        let (key_len, value_len, used) = if bytes[FIXED] < 0x80 && bytes[FIXED + 1] < 0x80 {
            (usize::from(bytes[FIXED]), usize::from(bytes[FIXED + 1]), 2)
        } else {
            let (k, a) = get_varint(&bytes[FIXED..]);
            let (v, b) = get_varint(&bytes[FIXED + a..]);
            (k, v, a + b)
        };
        let opt = FIXED + used;
        let mut key = opt;
        if tag & HAS_EXPIRY != 0 {
            key += 8;
        }
        if tag & HAS_FLAGS != 0 {
            key += 4;
        }
        Parts {
            tag,
            key_len,
            value_len,
            opt,
            key,
        }
    }

    fn end(&self) -> usize {
        self.key + self.key_len + self.value_len
    }
}

/// A record, read-only, over its chunk; the header is parsed once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordRef<'a> {
    bytes: &'a [u8],
    parts: Parts,
}

impl<'a> RecordRef<'a> {
    /// Views the record at the start of `chunk`.
    pub(crate) fn new(chunk: &'a [u8]) -> Self {
        Self {
            bytes: chunk,
            parts: Parts::of(chunk),
        }
    }

    /// Bytes the record occupies (not the chunk).
    pub(crate) fn encoded_len(&self) -> usize {
        self.parts.end()
    }

    /// The key.
    pub(crate) fn key(&self) -> &'a [u8] {
        let p = &self.parts;
        &self.bytes[p.key..p.key + p.key_len]
    }

    /// The value.
    pub(crate) fn value(&self) -> &'a [u8] {
        let p = &self.parts;
        &self.bytes[p.key + p.key_len..p.end()]
    }

    /// Key and value.
    pub(crate) fn key_value(&self) -> (&'a [u8], &'a [u8]) {
        (self.key(), self.value())
    }

    /// The epoch in which the policy last saw an access to the item.
    pub(crate) fn promoted_epoch(&self) -> u8 {
        self.bytes[0] >> EPOCH_SHIFT
    }

    /// The meta-protocol state bits.
    pub(crate) fn state(&self) -> State {
        State(self.bytes[1])
    }

    /// The slot number in the shard.
    pub(crate) fn slot(&self) -> u32 {
        u32::from_le_bytes(self.bytes[SLOT].try_into().expect("4 bytes"))
    }

    /// The CAS version.
    pub(crate) fn cas(&self) -> u64 {
        u64::from_le_bytes(self.bytes[CAS].try_into().expect("8 bytes"))
    }

    /// Expiry time, ms since the Unix epoch, if any.
    pub(crate) fn expire_at(&self) -> Option<u64> {
        let p = &self.parts;
        if p.tag & HAS_EXPIRY == 0 {
            return None;
        }
        Some(u64::from_le_bytes(
            self.bytes[p.opt..p.opt + 8].try_into().expect("8 bytes"),
        ))
    }

    /// True when the item has expired at `now_ms`.
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at().is_some_and(|at| at <= now_ms)
    }

    /// The metadata.
    pub(crate) fn meta(&self) -> Meta {
        let p = &self.parts;
        let mut at = p.opt;
        let expire_at = if p.tag & HAS_EXPIRY != 0 {
            let v = u64::from_le_bytes(self.bytes[at..at + 8].try_into().expect("8 bytes"));
            at += 8;
            Some(v)
        } else {
            None
        };
        let flags = if p.tag & HAS_FLAGS != 0 {
            u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("4 bytes"))
        } else {
            0
        };
        Meta {
            cas: self.cas(),
            expire_at,
            flags,
        }
    }
}

/// True if the record at the start of `chunk` has key `key`.
pub(crate) fn key_is(chunk: &[u8], key: &[u8]) -> bool {
    // Compare the length first: it sits in the header, the key after it.
    let p = Parts::of(chunk);
    p.key_len == key.len() && &chunk[p.key..p.key + p.key_len] == key
}

/// Records that the policy saw an access to the record in `chunk` in
/// `epoch`.
pub(crate) fn set_promoted_epoch(chunk: &mut [u8], epoch: u8) {
    chunk[0] = (chunk[0] & ((1 << EPOCH_SHIFT) - 1)) | ((epoch % EPOCHS) << EPOCH_SHIFT);
}

/// Sets the meta-protocol state bits of the record in `chunk`.
pub(crate) fn set_state(chunk: &mut [u8], state: State) {
    chunk[1] = state.0;
}

/// Sets the CAS of the record in `chunk`.
pub(crate) fn set_cas(chunk: &mut [u8], cas: u64) {
    chunk[CAS].copy_from_slice(&cas.to_le_bytes());
}

/// Rewrites the metadata of the record in `chunk` in place if its layout
/// allows (expiry and flags present or absent alike); false otherwise.
pub(crate) fn set_meta_in_place(chunk: &mut [u8], meta: &Meta) -> bool {
    let p = Parts::of(chunk);
    let has_expiry = p.tag & HAS_EXPIRY != 0;
    let has_flags = p.tag & HAS_FLAGS != 0;
    if has_expiry != meta.expire_at.is_some() || has_flags != (meta.flags != 0) {
        return false;
    }
    set_cas(chunk, meta.cas);
    let mut at = p.opt;
    if let Some(expire_at) = meta.expire_at {
        chunk[at..at + 8].copy_from_slice(&expire_at.to_le_bytes());
        at += 8;
    }
    if meta.flags != 0 {
        chunk[at..at + 4].copy_from_slice(&meta.flags.to_le_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(slot: u32, key: &[u8], value: &[u8], meta: Meta) -> Vec<u8> {
        let mut out = vec![0xAA; encoded_len(key.len(), value.len(), &meta) + 5];
        write(
            &mut out,
            Header {
                slot,
                epoch: 5,
                state: State(State::FETCHED),
            },
            key,
            value.len(),
            &meta,
            |v| v.copy_from_slice(value),
        );
        out
    }

    #[test]
    fn small_item_is_64_bytes() {
        assert_eq!(encoded_len(16, 32, &Meta::default()), 64);
        let bytes = build(9, &[7u8; 16], &[9u8; 32], Meta::default());
        let r = RecordRef::new(&bytes);
        assert_eq!(
            (r.key(), r.value(), r.slot(), r.encoded_len()),
            (&[7u8; 16][..], &[9u8; 32][..], 9, 64)
        );
        assert_eq!((r.promoted_epoch(), r.state()), (5, State(State::FETCHED)));
        let mut bytes = bytes;
        set_promoted_epoch(&mut bytes, 63);
        set_state(&mut bytes, State(State::STALE));
        let r = RecordRef::new(&bytes);
        assert_eq!(
            (r.promoted_epoch(), r.state(), r.key()),
            (63, State(State::STALE), &[7u8; 16][..])
        );
    }

    #[test]
    fn meta_changes_in_place_only_when_layout_matches() {
        let with_ttl = Meta {
            cas: 5,
            expire_at: Some(99),
            flags: 0,
        };
        let mut bytes = build(1, b"k", b"v", with_ttl);
        assert!(RecordRef::new(&bytes).is_expired(99) && !RecordRef::new(&bytes).is_expired(98));
        let moved = Meta {
            cas: 6,
            expire_at: Some(100),
            flags: 0,
        };
        assert!(set_meta_in_place(&mut bytes, &moved));
        assert_eq!(RecordRef::new(&bytes).meta(), moved);
        assert!(!set_meta_in_place(&mut bytes, &Meta::default()));
        set_cas(&mut bytes, 77);
        assert_eq!(RecordRef::new(&bytes).cas(), 77);
    }

    proptest! {
        #[test]
        fn round_trips(slot in any::<u32>(), key in proptest::collection::vec(any::<u8>(), 0..300),
                       value in proptest::collection::vec(any::<u8>(), 0..70_000),
                       cas in any::<u64>(), expire_at in proptest::option::of(any::<u64>()), flags in any::<u32>()) {
            let meta = Meta { cas, expire_at, flags };
            let bytes = build(slot, &key, &value, meta);
            let r = RecordRef::new(&bytes);
            prop_assert_eq!(r.key(), &key[..]);
            prop_assert_eq!(r.value(), &value[..]);
            prop_assert_eq!(r.key_value(), (&key[..], &value[..]));
            prop_assert_eq!(r.meta(), meta);
            prop_assert_eq!(r.slot(), slot);
            prop_assert_eq!(r.expire_at(), expire_at);
            prop_assert_eq!(r.encoded_len(), encoded_len(key.len(), value.len(), &meta));
        }
    }
}
