//! The requests a memcached server receives, borrowed from the read buffer.
//!
//! Every slice in a [`Request`] points into the buffer given to
//! [`parse_request`](crate::memcache::parse_request); nothing is copied
//! except base64 keys of meta commands (the `b` flag), which must be decoded
//! and so own their bytes.

use std::borrow::Cow;

use super::line::Tokens;
use super::meta::MetaFlags;

/// memcached's key length limit (`KEY_MAX_LENGTH`).
pub const KEY_MAX_BYTES: usize = 250;

/// Exptimes up to this many seconds (30 days) are relative to now; larger
/// ones are absolute Unix times (`REALTIME_MAXDELTA`).
pub const MAX_RELATIVE_EXPTIME: i64 = 60 * 60 * 24 * 30;

/// Size limits the request parser enforces before buffering anything that
/// exceeds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes; memcached's is 250. For base64 keys (`b`) the
    /// limit applies to the encoded form, as in memcached.
    pub max_key_bytes: usize,
    /// Largest value a storage command may carry (memcached's `-I`, 1 MiB by
    /// default). Larger ones are refused as soon as the command line is
    /// complete, and their data is swallowed unbuffered.
    pub max_value_bytes: usize,
    /// Longest command line, including its `\r\n`. A buffer holding this many
    /// bytes without a newline closes the connection — unless the line is a
    /// retrieval (`get`, `gets`, `gat`, `gats`), which is then parsed as its
    /// keys arrive ([`GetStream`](crate::memcache::GetStream)) and may be
    /// of any length.
    ///
    /// There is no limit on the number of keys of a retrieval: memcached
    /// has none, and one would not bound memory, which the line limit (for
    /// a line parsed whole) and streaming (for a longer one) already do.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    /// memcached's key and value limits; 64 KiB lines.
    fn default() -> Self {
        Limits {
            max_key_bytes: KEY_MAX_BYTES,
            max_value_bytes: 1024 * 1024,
            max_line_bytes: 64 * 1024,
        }
    }
}

/// One request of the text or meta protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get`, `gets`, `gat` or `gats`.
    Get(Get<'a>),
    /// `set`, `add`, `replace`, `append`, `prepend` or `cas`, with its data.
    Store(Store<'a>),
    /// `delete <key> [0] [noreply]`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// Send no reply.
        noreply: bool,
    },
    /// `incr` or `decr <key> <delta> [noreply]`.
    Arithmetic {
        /// Increment or decrement.
        op: ArithmeticOp,
        /// The key.
        key: &'a [u8],
        /// The amount.
        delta: u64,
        /// Send no reply.
        noreply: bool,
    },
    /// `touch <key> <exptime> [noreply]`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// The new exptime, raw (see [`Expiration`]).
        exptime: i64,
        /// Send no reply.
        noreply: bool,
    },
    /// `flush_all [delay] [noreply]`.
    FlushAll {
        /// Seconds until the flush, or an absolute time (see [`Expiration`]);
        /// `None` flushes now.
        delay: Option<i64>,
        /// Send no reply.
        noreply: bool,
    },
    /// `version`.
    Version,
    /// `verbosity <level> [noreply]`.
    Verbosity {
        /// The level.
        level: u32,
        /// Send no reply.
        noreply: bool,
    },
    /// `stats [args]`.
    Stats {
        /// Everything after `stats`, trimmed (`settings`, `items`,
        /// `detail on`, …); `None` for plain `stats`.
        args: Option<&'a [u8]>,
    },
    /// `quit`: the server closes the connection.
    Quit,
    /// `mg <key> <flags>*`.
    MetaGet(Meta<'a>),
    /// `ms <key> <datalen> <flags>*` and its data.
    MetaSet(MetaSet<'a>),
    /// `md <key> <flags>*`.
    MetaDelete(Meta<'a>),
    /// `ma <key> <flags>*`.
    MetaArithmetic(MetaArithmetic<'a>),
    /// `mn`.
    MetaNoop,
    /// `me <key> [b]`.
    MetaDebug {
        /// The key, decoded if `binary`.
        key: Cow<'a, [u8]>,
        /// The key was sent base64-encoded (`b`); the reply's key must be too.
        binary: bool,
    },
}

/// A retrieval: `get`, `gets`, `gat` or `gats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Get<'a> {
    /// Return CAS uniques (`gets`, `gats`).
    pub cas: bool,
    /// Touch the items with this exptime (`gat`, `gats`).
    pub touch: Option<i64>,
    /// The keys, at least one, each valid.
    pub keys: Keys<'a>,
}

/// The name of a retrieval command: `get`, `gets`, `gat` or `gats`, by
/// whether it touches and whether it returns CAS uniques.
pub(crate) fn retrieval_name(touch: bool, cas: bool) -> &'static str {
    match (touch, cas) {
        (false, false) => "get",
        (false, true) => "gets",
        (true, false) => "gat",
        (true, true) => "gats",
    }
}

impl Get<'_> {
    /// The command's name: `get`, `gets`, `gat` or `gats`.
    pub fn command_name(&self) -> &'static str {
        retrieval_name(self.touch.is_some(), self.cas)
    }
}

/// The keys of a retrieval, as the space-separated part of the line they
/// came in. Iterating them allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct Keys<'a> {
    raw: &'a [u8],
    count: usize,
}

impl<'a> Keys<'a> {
    /// Keys of an already validated, space-separated list.
    pub(crate) fn new(raw: &'a [u8], count: usize) -> Self {
        Keys { raw, count }
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none (never, for a parsed request).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The keys, in request order.
    pub fn iter(&self) -> KeysIter<'a> {
        KeysIter {
            tokens: Tokens::new(self.raw),
        }
    }
}

impl PartialEq for Keys<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.iter().eq(other.iter())
    }
}

impl Eq for Keys<'_> {}

impl<'a> IntoIterator for Keys<'a> {
    type Item = &'a [u8];
    type IntoIter = KeysIter<'a>;

    fn into_iter(self) -> KeysIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Keys<'a> {
    type Item = &'a [u8];
    type IntoIter = KeysIter<'a>;

    fn into_iter(self) -> KeysIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Keys`].
#[derive(Clone, Debug)]
pub struct KeysIter<'a> {
    tokens: Tokens<'a>,
}

impl<'a> Iterator for KeysIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.tokens.next()
    }
}

/// A classic storage command with its data block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store<'a> {
    /// Which command.
    pub command: StoreCommand,
    /// The key.
    pub key: &'a [u8],
    /// The client's opaque flags, stored with the item.
    pub flags: u32,
    /// The exptime, raw (see [`Expiration`]).
    pub exptime: i64,
    /// The data block, without its `\r\n`.
    pub data: &'a [u8],
    /// Send no reply.
    pub noreply: bool,
}

/// Which classic storage command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreCommand {
    /// `set`: store unconditionally.
    Set,
    /// `add`: store only if absent.
    Add,
    /// `replace`: store only if present.
    Replace,
    /// `append`: add the data after the existing value (flags and exptime
    /// are ignored).
    Append,
    /// `prepend`: add the data before the existing value.
    Prepend,
    /// `cas`: store only if the item's CAS unique is still this one.
    Cas(u64),
}

impl StoreCommand {
    /// The command's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            StoreCommand::Set => "set",
            StoreCommand::Add => "add",
            StoreCommand::Replace => "replace",
            StoreCommand::Append => "append",
            StoreCommand::Prepend => "prepend",
            StoreCommand::Cas(_) => "cas",
        }
    }
}

/// Increment or decrement (`incr`/`decr`, `ma` mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithmeticOp {
    /// Add, wrapping at 2^64.
    Incr,
    /// Subtract, stopping at 0.
    Decr,
}

impl ArithmeticOp {
    /// The classic command's name.
    pub fn name(self) -> &'static str {
        match self {
            ArithmeticOp::Incr => "incr",
            ArithmeticOp::Decr => "decr",
        }
    }
}

/// A meta command's key and flags (`mg`, `md`, and the common part of `ms`
/// and `ma`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta<'a> {
    /// The key; decoded from base64 (and so owned) when the `b` flag is set.
    pub key: Cow<'a, [u8]>,
    /// The flags, in request order.
    pub flags: MetaFlags<'a>,
}

impl Meta<'_> {
    /// Whether the key came base64-encoded (`b`): a returned key (`k`) must
    /// be encoded again and followed by a `b` flag.
    pub fn binary_key(&self) -> bool {
        self.flags.has(b'b')
    }
}

/// `ms`: key, flags, mode and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaSet<'a> {
    /// Key and flags.
    pub meta: Meta<'a>,
    /// The mode from the `M` flag; `Set` without one.
    pub mode: SetMode,
    /// The data block, without its `\r\n`.
    pub data: &'a [u8],
}

/// `ma`: key, flags and mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaArithmetic<'a> {
    /// Key and flags.
    pub meta: Meta<'a>,
    /// The mode from the `M` flag; `Incr` without one.
    pub op: ArithmeticOp,
}

/// `ms` modes (the `M` flag's token).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SetMode {
    /// `MS`: store unconditionally (the default). With a `C` flag it becomes
    /// a compare-and-swap.
    #[default]
    Set,
    /// `ME`: store only if absent.
    Add,
    /// `MR`: store only if present.
    Replace,
    /// `MA`: append to the existing value.
    Append,
    /// `MP`: prepend to the existing value.
    Prepend,
}

impl SetMode {
    /// The mode from an `M` token's character.
    pub fn from_token(mode: u8) -> Option<Self> {
        match mode {
            b'S' => Some(SetMode::Set),
            b'E' => Some(SetMode::Add),
            b'R' => Some(SetMode::Replace),
            b'A' => Some(SetMode::Append),
            b'P' => Some(SetMode::Prepend),
            _ => None,
        }
    }

    /// The `M` token's character for this mode.
    pub fn token(self) -> u8 {
        match self {
            SetMode::Set => b'S',
            SetMode::Add => b'E',
            SetMode::Replace => b'R',
            SetMode::Append => b'A',
            SetMode::Prepend => b'P',
        }
    }
}

/// What a raw memcached exptime means, resolved against the current time.
///
/// memcached's rule (`realtime()` in `memcached.c`, "Expiration times" in
/// protocol.txt): 0 never expires; a negative value is already expired; up
/// to [`MAX_RELATIVE_EXPTIME`] (30 days) is seconds from now; anything
/// larger is an absolute Unix time, and one at or before now is already
/// expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expiration {
    /// Never expires.
    Never,
    /// Already expired: store nothing visible, or expire the item now.
    Expired,
    /// Expires at this Unix time, in seconds.
    AtUnixSecs(u64),
}

impl Expiration {
    /// Resolves `exptime` at `now_unix_secs`.
    pub fn from_exptime(exptime: i64, now_unix_secs: u64) -> Self {
        match u64::try_from(exptime) {
            Err(_) => Expiration::Expired,
            Ok(0) => Expiration::Never,
            Ok(relative) if exptime <= MAX_RELATIVE_EXPTIME => {
                Expiration::AtUnixSecs(now_unix_secs.saturating_add(relative))
            }
            Ok(absolute) if absolute <= now_unix_secs => Expiration::Expired,
            Ok(absolute) => Expiration::AtUnixSecs(absolute),
        }
    }
}

/// The exptime a client sends for a TTL of `ttl_secs` seconds so that
/// memcached's rule ([`Expiration::from_exptime`]) reads it back as that
/// TTL: relative up to [`MAX_RELATIVE_EXPTIME`], beyond it the absolute
/// Unix time `now + ttl` (a relative value that large would be read as a
/// date in 1970 — already expired). `ttl_secs` of 0 is raised to 1 (0
/// means "never expires"). Absolute times assume the client's and the
/// server's clocks agree, as memcached's own clients do. The clock is read
/// only for such a long TTL.
pub fn exptime_for_ttl(ttl_secs: u64, now_unix_secs: impl FnOnce() -> u64) -> i64 {
    let ttl = ttl_secs.max(1);
    let exptime = if ttl <= MAX_RELATIVE_EXPTIME as u64 {
        ttl
    } else {
        now_unix_secs().saturating_add(ttl)
    };
    i64::try_from(exptime).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_round_trips_through_memcacheds_exptime_rule() {
        let now = 1_700_000_000;
        for ttl in [
            1,
            60,
            MAX_RELATIVE_EXPTIME as u64,
            MAX_RELATIVE_EXPTIME as u64 + 1,
            400 * 86_400,
        ] {
            let exptime = exptime_for_ttl(ttl, || now);
            assert_eq!(
                Expiration::from_exptime(exptime, now),
                Expiration::AtUnixSecs(now + ttl),
                "{ttl}"
            );
        }
        assert_eq!(exptime_for_ttl(0, || unreachable!("no clock for a short TTL")), 1);
        assert_eq!(exptime_for_ttl(u64::MAX, || now), i64::MAX);
    }

    #[test]
    fn expiration_follows_memcached_realtime() {
        let now = 1_700_000_000;
        assert_eq!(Expiration::from_exptime(0, now), Expiration::Never);
        assert_eq!(Expiration::from_exptime(-1, now), Expiration::Expired);
        assert_eq!(Expiration::from_exptime(i64::MIN, now), Expiration::Expired);
        assert_eq!(Expiration::from_exptime(10, now), Expiration::AtUnixSecs(now + 10));
        assert_eq!(
            Expiration::from_exptime(MAX_RELATIVE_EXPTIME, now),
            Expiration::AtUnixSecs(now + MAX_RELATIVE_EXPTIME as u64)
        );
        // One second past 30 days is an absolute time: long past.
        assert_eq!(
            Expiration::from_exptime(MAX_RELATIVE_EXPTIME + 1, now),
            Expiration::Expired
        );
        assert_eq!(Expiration::from_exptime(now as i64, now), Expiration::Expired);
        assert_eq!(
            Expiration::from_exptime(now as i64 + 5, now),
            Expiration::AtUnixSecs(now + 5)
        );
    }

    #[test]
    fn keys_compare_by_content_not_spacing() {
        let a = Keys::new(b"a  b", 2);
        let b = Keys::new(b"a b", 2);
        assert_eq!(a, b);
        assert_ne!(a, Keys::new(b"a c", 2));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
    }

    #[test]
    fn get_command_names() {
        let keys = Keys::new(b"k", 1);
        let names: Vec<_> = [(false, None), (true, None), (false, Some(1)), (true, Some(1))]
            .into_iter()
            .map(|(cas, touch)| Get { cas, touch, keys }.command_name())
            .collect();
        assert_eq!(names, ["get", "gets", "gat", "gats"]);
    }

    #[test]
    fn set_mode_tokens_round_trip() {
        for mode in [
            SetMode::Set,
            SetMode::Add,
            SetMode::Replace,
            SetMode::Append,
            SetMode::Prepend,
        ] {
            assert_eq!(SetMode::from_token(mode.token()), Some(mode));
        }
        assert_eq!(SetMode::from_token(b's'), None);
    }
}
