//! The meta commands the client sends, and what their replies mean.

use strata_proto::memcache::client::{MetaArg, encode_md, encode_mg, encode_mn, encode_ms};
use strata_proto::memcache::{MetaCode, ReplyKind, Response};

use crate::ClientError;
use crate::server_pool::Batch;

/// memcached's key limit, in bytes on the wire.
pub const MAX_KEY_BYTES: usize = 250;

/// Whether `key` can be sent as it is: 1–250 bytes, no spaces or control
/// characters. Other keys go base64-encoded with the `b` flag.
fn is_plain(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.iter().all(|&b| b > b' ' && b != 0x7f)
}

/// Refuses keys no server could store: the empty key, and keys too long for
/// the wire — over [`MAX_KEY_BYTES`] if plain (no spaces or control
/// characters), over 187 bytes otherwise (they travel base64-encoded, and
/// 188 bytes encode to 252). Every call checks its keys with this, so a key
/// it refuses can never be cached: callers that take keys from elsewhere
/// (the invalidator's change log) use it to tell such keys from failures
/// worth retrying.
pub fn check_key(key: &[u8]) -> Result<(), ClientError> {
    // Other keys travel base64-encoded, 4 bytes for every 3.
    if is_plain(key) || (!key.is_empty() && key.len().div_ceil(3) * 4 <= MAX_KEY_BYTES) {
        Ok(())
    } else {
        Err(ClientError::InvalidKey { len: key.len() })
    }
}

/// A request's meta flags, on the stack: building a request allocates
/// nothing but the batch it is written into.
struct Flags<'a> {
    args: [MetaArg<'a>; 6],
    len: usize,
}

impl<'a> Flags<'a> {
    /// `fixed`, then `b` if `key` must travel base64-encoded.
    fn new(key: &[u8], fixed: &[MetaArg<'a>]) -> Self {
        let mut flags = Flags {
            args: [MetaArg::flag(b'v'); 6],
            len: 0,
        };
        for &arg in fixed {
            flags.push(arg);
        }
        if !is_plain(key) {
            flags.push(MetaArg::flag(b'b'));
        }
        flags
    }

    fn push(&mut self, arg: MetaArg<'a>) {
        self.args[self.len] = arg;
        self.len += 1;
    }

    fn as_slice(&self) -> &[MetaArg<'a>] {
        &self.args[..self.len]
    }
}

/// The value of a meta `T` flag for `ttl`: at least 1 s (0 would mean
/// "never expires"); past 30 days an absolute Unix time, because memcached
/// reads a larger number as one (`exptime_for_ttl`).
pub fn ttl_secs(ttl: std::time::Duration) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    strata_proto::memcache::exptime_for_ttl(ttl.as_secs(), now)
}

const GET_FLAGS: [MetaArg<'static>; 4] = [
    MetaArg::flag(b'v'),
    MetaArg::flag(b'f'),
    MetaArg::flag(b't'),
    MetaArg::flag(b'c'),
];

/// `mg <key> v f t c`: value, client flags, remaining TTL, CAS.
pub fn get(batch: &mut Batch, key: &[u8]) {
    let flags = Flags::new(key, &GET_FLAGS);
    batch.push(ReplyKind::Meta, |out| encode_mg(out, key, flags.as_slice()));
}

/// `mg <key> v f t c N<lease>`: a lease-get.
pub fn lease_get(batch: &mut Batch, key: &[u8], lease_secs: i64) {
    let mut flags = Flags::new(key, &GET_FLAGS);
    flags.push(MetaArg::int(b'N', lease_secs));
    batch.push(ReplyKind::Meta, |out| encode_mg(out, key, flags.as_slice()));
}

/// `mg <key> c`: only the CAS (a versioned set's first look).
pub fn get_cas(batch: &mut Batch, key: &[u8]) {
    let flags = Flags::new(key, &[MetaArg::flag(b'c')]);
    batch.push(ReplyKind::Meta, |out| encode_mg(out, key, flags.as_slice()));
}

/// How a set is conditioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetMode {
    /// Always.
    Set,
    /// Only if absent (`ME`): warm-up copies never overwrite newer data.
    Add,
    /// Only if the item still has this CAS (`C`): a lease fill.
    Cas(u64),
    /// Only if absent, and the new item gets this CAS (`ME E<cas>`): the
    /// first versioned set of a key.
    AddAs(u64),
    /// Only if the item still has CAS `cas`; the new item gets `new_cas`
    /// (`C<cas> E<new_cas>`): a versioned set or a versioned lease fill.
    CasAs {
        /// The CAS the item must still have.
        cas: u64,
        /// The CAS the new item gets.
        new_cas: u64,
    },
}

/// `ms <key> <len> [F<flags>] [T<ttl>] [ME|C<cas>] [E<new cas>]`.
pub fn set(
    batch: &mut Batch,
    key: &[u8],
    value: &[u8],
    client_flags: u32,
    ttl: Option<std::time::Duration>,
    mode: SetMode,
) {
    let mut flags = Flags::new(key, &[]);
    if client_flags != 0 {
        flags.push(MetaArg::uint(b'F', u64::from(client_flags)));
    }
    if let Some(ttl) = ttl {
        flags.push(MetaArg::int(b'T', ttl_secs(ttl)));
    }
    match mode {
        SetMode::Set => {}
        SetMode::Add => flags.push(MetaArg::token(b'M', b"E")),
        SetMode::Cas(cas) => flags.push(MetaArg::uint(b'C', cas)),
        SetMode::AddAs(new_cas) => {
            flags.push(MetaArg::token(b'M', b"E"));
            flags.push(MetaArg::uint(b'E', new_cas));
        }
        SetMode::CasAs { cas, new_cas } => {
            flags.push(MetaArg::uint(b'C', cas));
            flags.push(MetaArg::uint(b'E', new_cas));
        }
    }
    batch.push(ReplyKind::Meta, |out| encode_ms(out, key, value, flags.as_slice()));
}

/// `md <key>`.
pub fn delete(batch: &mut Batch, key: &[u8]) {
    let flags = Flags::new(key, &[]);
    batch.push(ReplyKind::Meta, |out| encode_md(out, key, flags.as_slice()));
}

/// `mg <key> T<ttl>`: touch. A zero `ttl` removes the expiry (`T0`).
pub fn touch(batch: &mut Batch, key: &[u8], ttl: std::time::Duration) {
    let secs = if ttl.is_zero() { 0 } else { ttl_secs(ttl) };
    let flags = Flags::new(key, &[MetaArg::int(b'T', secs)]);
    batch.push(ReplyKind::Meta, |out| encode_mg(out, key, flags.as_slice()));
}

/// `mn`: a no-op, the health probe.
pub fn noop(batch: &mut Batch) {
    batch.push(ReplyKind::Meta, encode_mn);
}

/// `flush_all`.
pub fn flush(batch: &mut Batch) {
    batch.push(ReplyKind::Ok, |out| out.extend_from_slice(b"flush_all\r\n"));
}

/// A value read by `mg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The data.
    pub value: Vec<u8>,
    /// The client flags stored with it (memcached's opaque 32 bits).
    pub flags: u32,
    /// Remaining TTL in seconds (-1: none).
    pub ttl_secs: i64,
    /// The CAS, when asked.
    pub cas: Option<u64>,
    /// `W`: this caller won the lease and should fill.
    pub won: bool,
    /// `Z`: another caller holds the lease.
    pub lease_taken: bool,
    /// `X`: the value is stale (invalidated, awaiting a refill).
    pub stale: bool,
}

impl From<Hit> for crate::Fetched {
    fn from(hit: Hit) -> Self {
        crate::Fetched {
            value: hit.value,
            flags: hit.flags,
            cas: hit.cas.unwrap_or(0),
        }
    }
}

fn server_error(response: &Response) -> Option<String> {
    match response {
        Response::Error(message) | Response::ClientError(message) | Response::ServerError(message) => {
            Some(String::from_utf8_lossy(message).into_owned())
        }
        _ => None,
    }
}

/// Reads an `mg` reply: `Ok(None)` is a miss.
pub fn read_get(response: Response) -> Result<Option<Hit>, ClientError> {
    if let Some(message) = server_error(&response) {
        return Err(ClientError::Server(message));
    }
    let Response::Meta(meta) = response else {
        return Err(ClientError::Server(format!("unexpected reply {response:?}")));
    };
    if meta.code == MetaCode::En && !meta.has(b'W') {
        return Ok(None);
    }
    let number = |flag| {
        meta.flag(flag)
            .and_then(|token| std::str::from_utf8(token).ok())
            .and_then(|token| token.parse::<i64>().ok())
    };
    Ok(Some(Hit {
        ttl_secs: number(b't').unwrap_or(-1),
        flags: number(b'f').unwrap_or(0) as u32,
        cas: number(b'c').map(|c| c as u64),
        won: meta.has(b'W'),
        lease_taken: meta.has(b'Z'),
        stale: meta.has(b'X'),
        value: meta.data.unwrap_or_default(),
    }))
}

/// Reads an `ms`, `md` or touch reply: `Ok(true)` for `HD` (stored,
/// deleted, touched), `Ok(false)` otherwise (`NS`, `EX`, `NF`, `EN`).
pub fn read_set(response: Response) -> Result<bool, ClientError> {
    if let Some(message) = server_error(&response) {
        return Err(ClientError::Server(message));
    }
    match response {
        Response::Meta(meta) => Ok(meta.code == MetaCode::Hd),
        other => Err(ClientError::Server(format!("unexpected reply {other:?}"))),
    }
}
