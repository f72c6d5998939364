//! How typed keys and values become the engine's bytes.
//!
//! The engine stores bytes; the local cache is typed. Keys only need to be
//! viewed as bytes (no allocation: integers are encoded on the stack, strings
//! and byte buffers are borrowed). Values are encoded on insert and decoded on
//! every hit, which for the common value types (integers, strings, byte
//! buffers) is one copy — the same cost as cloning a `String` out of moka.

use std::borrow::Cow;

/// A key type of the local cache: anything that can be viewed as bytes.
/// Two keys are the same key exactly when their bytes are equal.
pub trait CacheKey {
    /// Calls `f` with the key's bytes.
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;
}

/// A value type of the local cache: encodes to bytes and back.
pub trait CacheValue: Sized {
    /// Calls `f` with the value's encoding.
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;

    /// Rebuilds a value from its encoding; `None` if the bytes are not a
    /// valid encoding (the cache then treats the entry as absent).
    fn decode(bytes: &[u8]) -> Option<Self>;
}

macro_rules! integer_codecs {
    ($($t:ty),*) => {$(
        impl CacheKey for $t {
            fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                f(&self.to_le_bytes())
            }
        }

        impl CacheValue for $t {
            fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                f(&self.to_le_bytes())
            }

            fn decode(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_le_bytes(bytes.try_into().ok()?))
            }
        }
    )*};
}

integer_codecs!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, usize, isize);

impl CacheKey for str {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.as_bytes())
    }
}

impl CacheKey for String {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.as_bytes())
    }
}

impl CacheKey for [u8] {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
}

impl CacheKey for Vec<u8> {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
}

impl<const N: usize> CacheKey for [u8; N] {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
}

impl<T: CacheKey + ?Sized> CacheKey for &T {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        (**self).with_bytes(f)
    }
}

impl CacheKey for Cow<'_, str> {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.as_bytes())
    }
}

impl CacheValue for String {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.as_bytes())
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl CacheValue for Vec<u8> {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

impl CacheValue for Box<[u8]> {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(bytes.into())
    }
}

impl CacheValue for bool {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&[u8::from(*self)])
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<V: CacheValue + PartialEq + std::fmt::Debug>(v: V) {
        let bytes = CacheValue::with_bytes(&v, <[u8]>::to_vec);
        assert_eq!(V::decode(&bytes), Some(v));
    }

    #[test]
    fn values_round_trip() {
        round_trip(42u64);
        round_trip(-7i32);
        round_trip(String::from("héllo"));
        round_trip(vec![0u8, 255]);
        round_trip(true);
        assert_eq!(u64::decode(&[1, 2]), None);
        assert_eq!(String::decode(&[0xff]), None);
    }

    #[test]
    fn keys_view_bytes() {
        assert_eq!(CacheKey::with_bytes(&7u16, <[u8]>::to_vec), vec![7, 0]);
        assert_eq!("ab".with_bytes(<[u8]>::to_vec), b"ab".to_vec());
        assert_eq!(
            CacheKey::with_bytes(&String::from("ab"), <[u8]>::to_vec),
            b"ab".to_vec()
        );
    }
}
