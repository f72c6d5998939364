//! One stored item in one allocation, behind a thin pointer.
//!
//! # Layout
//!
//! ```text
//! [tag u8][cas u64][key_len varint][value_len varint][expire_at u64]?[flags u32]?[key][value]
//! ```
//!
//! Everything is packed at byte alignment and read with `from_le_bytes`, so
//! an item of a 16-byte key and a 32-byte value takes 59 bytes, which the
//! allocator rounds to its 64-byte class. `expire_at` (ms since the Unix
//! epoch) and `flags` (memcached's opaque client flags) are present only when
//! the item has them; most cache items have neither, so they cost nothing.
//! Lengths are LEB128 varints: one byte each below 128.
//!
//! Why one allocation and a thin pointer: the slot table then spends 8 bytes
//! per item on the pointer and the allocator one header-free chunk, instead
//! of a `Vec` (24 bytes) per key and per value.

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::NonNull;

const HAS_EXPIRY: u8 = 1;
const HAS_FLAGS: u8 = 2;

/// The fixed part: tag and CAS.
const FIXED: usize = 1 + 8;

/// The metadata of an item other than its key and value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) cas: u64,
    /// Milliseconds since the Unix epoch; `None` never expires.
    pub(crate) expire_at: Option<u64>,
    pub(crate) flags: u32,
}

/// An owned item: key, value and metadata in one heap block.
pub(crate) struct Record {
    ptr: NonNull<u8>,
}

// SAFETY: a Record owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for Record {}
// SAFETY: shared access only reads the allocation.
unsafe impl Sync for Record {}

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
    fn total(&self) -> usize {
        self.key + self.key_len + self.value_len
    }
}

/// The allocation size for an item with these lengths and metadata.
pub(crate) fn encoded_len(key_len: usize, value_len: usize, meta: &Meta) -> usize {
    FIXED
        + varint_len(key_len)
        + varint_len(value_len)
        + if meta.expire_at.is_some() { 8 } else { 0 }
        + if meta.flags != 0 { 4 } else { 0 }
        + key_len
        + value_len
}

impl Record {
    /// Builds a record; `fill` writes the value into its `value_len` bytes.
    pub(crate) fn build(key: &[u8], value_len: usize, meta: Meta, fill: impl FnOnce(&mut [u8])) -> Record {
        let total = encoded_len(key.len(), value_len, &meta);
        let layout = Layout::from_size_align(total, 1).expect("record size overflows isize");
        // SAFETY: `total` is at least FIXED + 2 > 0, so the layout is non-zero.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: `ptr` points to `total` freshly allocated bytes that nobody
        // else can see yet; u8 has no validity requirements once written, and
        // we write every byte below before reading any.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), total) };
        bytes.fill(0);
        let mut tag = 0;
        if meta.expire_at.is_some() {
            tag |= HAS_EXPIRY;
        }
        if meta.flags != 0 {
            tag |= HAS_FLAGS;
        }
        bytes[0] = tag;
        bytes[1..9].copy_from_slice(&meta.cas.to_le_bytes());
        let mut at = FIXED;
        at += put_varint(&mut bytes[at..], key.len());
        at += put_varint(&mut bytes[at..], value_len);
        if let Some(expire_at) = meta.expire_at {
            bytes[at..at + 8].copy_from_slice(&expire_at.to_le_bytes());
            at += 8;
        }
        if meta.flags != 0 {
            bytes[at..at + 4].copy_from_slice(&meta.flags.to_le_bytes());
            at += 4;
        }
        bytes[at..at + key.len()].copy_from_slice(key);
        at += key.len();
        fill(&mut bytes[at..at + value_len]);
        Record { ptr }
    }

    /// Builds a record holding a copy of `value`.
    pub(crate) fn new(key: &[u8], value: &[u8], meta: Meta) -> Record {
        Record::build(key, value.len(), meta, |out| out.copy_from_slice(value))
    }

    fn head(&self) -> &[u8] {
        // SAFETY: every record is at least FIXED + 2 bytes (tag, cas and two
        // one-byte-or-longer varints), all written by `build`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), FIXED + 2) }
    }

    /// Decodes the varint at `offset`: (value, bytes used).
    fn varint_at(&self, offset: usize) -> (usize, usize) {
        let mut n = 0usize;
        let mut shift = 0;
        let mut i = 0;
        loop {
            // SAFETY: `build` wrote a complete varint at `offset`; we stop at
            // its last byte (no continuation bit), so every byte read is
            // inside the allocation and initialised.
            let b = unsafe { self.ptr.as_ptr().add(offset + i).read() };
            n |= usize::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                return (n, i);
            }
            shift += 7;
        }
    }

    fn parts(&self) -> Parts {
        let head = self.head();
        let tag = head[0];
        let (key_len, value_len, used) = if head[FIXED] < 0x80 && head[FIXED + 1] < 0x80 {
            (usize::from(head[FIXED]), usize::from(head[FIXED + 1]), 2)
        } else {
            let (k, a) = self.varint_at(FIXED);
            let (v, b) = self.varint_at(FIXED + a);
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

    fn all(&self) -> (&[u8], Parts) {
        let parts = self.parts();
        // SAFETY: the allocation is exactly `parts.total()` bytes, all written.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), parts.total()) };
        (bytes, parts)
    }

    /// Total bytes of the allocation.
    pub(crate) fn encoded_len(&self) -> usize {
        self.parts().total()
    }

    /// The key.
    pub(crate) fn key(&self) -> &[u8] {
        let (bytes, p) = self.all();
        &bytes[p.key..p.key + p.key_len]
    }

    /// The value.
    pub(crate) fn value(&self) -> &[u8] {
        let (bytes, p) = self.all();
        &bytes[p.key + p.key_len..]
    }

    /// The value, writable in place (same length).
    pub(crate) fn value_mut(&mut self) -> &mut [u8] {
        let p = self.parts();
        // SAFETY: exclusive access through &mut self; the allocation is
        // exactly `p.total()` bytes.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), p.total()) };
        &mut bytes[p.key + p.key_len..]
    }

    /// The metadata.
    pub(crate) fn meta(&self) -> Meta {
        let (bytes, p) = self.all();
        let cas = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let mut at = p.opt;
        let expire_at = if p.tag & HAS_EXPIRY != 0 {
            let v = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
            at += 8;
            Some(v)
        } else {
            None
        };
        let flags = if p.tag & HAS_FLAGS != 0 {
            u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
        } else {
            0
        };
        Meta { cas, expire_at, flags }
    }

    /// The CAS version.
    pub(crate) fn cas(&self) -> u64 {
        let head = self.head();
        u64::from_le_bytes(head[1..9].try_into().expect("8 bytes"))
    }

    /// Expiry time, ms since the Unix epoch, if any.
    pub(crate) fn expire_at(&self) -> Option<u64> {
        if self.head()[0] & HAS_EXPIRY == 0 {
            return None;
        }
        self.meta().expire_at
    }

    /// True when the item has expired at `now_ms`.
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at().is_some_and(|at| at <= now_ms)
    }

    /// Sets the CAS version in place.
    pub(crate) fn set_cas(&mut self, cas: u64) {
        // SAFETY: exclusive access; bytes 1..9 always exist.
        let head = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), FIXED) };
        head[1..9].copy_from_slice(&cas.to_le_bytes());
    }

    /// Changes metadata; in place when the layout allows, otherwise by
    /// building a new record (when an expiry or flags appear or vanish).
    pub(crate) fn with_meta(self, meta: Meta) -> Record {
        let old = self.meta();
        if old.expire_at.is_some() == meta.expire_at.is_some() && (old.flags != 0) == (meta.flags != 0) {
            let p = self.parts();
            // SAFETY: exclusive ownership; the allocation is p.total() bytes.
            let bytes = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), p.total()) };
            bytes[1..9].copy_from_slice(&meta.cas.to_le_bytes());
            let mut at = p.opt;
            if let Some(expire_at) = meta.expire_at {
                bytes[at..at + 8].copy_from_slice(&expire_at.to_le_bytes());
                at += 8;
            }
            if meta.flags != 0 {
                bytes[at..at + 4].copy_from_slice(&meta.flags.to_le_bytes());
            }
            return self;
        }
        Record::new(self.key(), self.value(), meta)
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let total = self.encoded_len();
        let layout = Layout::from_size_align(total, 1).expect("layout was valid at allocation");
        // SAFETY: allocated in `build` with exactly this layout, freed once.
        unsafe { dealloc(self.ptr.as_ptr(), layout) };
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value_len", &self.value().len())
            .field("meta", &self.meta())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_item_is_59_bytes() {
        let r = Record::new(&[7u8; 16], &[9u8; 32], Meta::default());
        assert_eq!(r.encoded_len(), 59);
        assert_eq!(r.key(), &[7u8; 16]);
        assert_eq!(r.value(), &[9u8; 32]);
    }

    #[test]
    fn meta_changes_in_place_and_by_rebuild() {
        let r = Record::new(b"k", b"v", Meta::default());
        let r = r.with_meta(Meta {
            cas: 5,
            expire_at: Some(99),
            flags: 0,
        });
        assert_eq!(r.expire_at(), Some(99));
        assert!(r.is_expired(99) && !r.is_expired(98));
        let mut r = r.with_meta(Meta {
            cas: 6,
            expire_at: Some(100),
            flags: 0,
        });
        r.set_cas(7);
        assert_eq!(
            r.meta(),
            Meta {
                cas: 7,
                expire_at: Some(100),
                flags: 0
            }
        );
        let r = r.with_meta(Meta {
            cas: 8,
            expire_at: None,
            flags: 3,
        });
        assert_eq!(
            (r.key(), r.value(), r.expire_at(), r.meta().flags),
            (&b"k"[..], &b"v"[..], None, 3)
        );
    }

    proptest! {
        #[test]
        fn round_trips(key in proptest::collection::vec(any::<u8>(), 0..300),
                       value in proptest::collection::vec(any::<u8>(), 0..70_000),
                       cas in any::<u64>(), expire_at in proptest::option::of(any::<u64>()), flags in any::<u32>()) {
            let meta = Meta { cas, expire_at, flags };
            let mut r = Record::new(&key, &value, meta);
            prop_assert_eq!(r.key(), &key[..]);
            prop_assert_eq!(r.value(), &value[..]);
            prop_assert_eq!(r.meta(), meta);
            prop_assert_eq!(r.cas(), cas);
            prop_assert_eq!(r.expire_at(), expire_at);
            prop_assert_eq!(r.encoded_len(), encoded_len(key.len(), value.len(), &meta));
            if let Some(b) = r.value_mut().first_mut() { *b ^= 1; }
            prop_assert_eq!(r.key(), &key[..]);
        }
    }
}
