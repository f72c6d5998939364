//! The meta commands the client sends, and what their replies mean.

use strata_proto::memcache::client::{MetaArg, encode_ma, encode_md, encode_me, encode_mg, encode_mn, encode_ms};
use strata_proto::memcache::{Expiration, MetaCode, MetaFlags, ReplyKind, Request, Response};

use crate::server_pool::Batch;
use crate::{ClientError, StoreOutcome};

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
    strata_proto::memcache::exptime_for_ttl(ttl.as_secs(), || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    })
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
    /// Only if present (`MR`): memcached's `replace`.
    Replace,
    /// After the existing value, keeping its flags and TTL (`MA`):
    /// memcached's `append`.
    Append,
    /// Before the existing value (`MP`): memcached's `prepend`.
    Prepend,
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
    // Appending keeps the item's flags and TTL: memcached ignores both.
    let appends = matches!(mode, SetMode::Append | SetMode::Prepend);
    if client_flags != 0 && !appends {
        flags.push(MetaArg::uint(b'F', u64::from(client_flags)));
    }
    if let Some(ttl) = ttl.filter(|_| !appends) {
        flags.push(MetaArg::int(b'T', ttl_secs(ttl)));
    }
    match mode {
        SetMode::Set => {}
        SetMode::Replace => flags.push(MetaArg::token(b'M', b"R")),
        SetMode::Append => flags.push(MetaArg::token(b'M', b"A")),
        SetMode::Prepend => flags.push(MetaArg::token(b'M', b"P")),
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

/// The `T` token of a touch: a zero `ttl` removes the expiry (`T0`).
fn touch_secs(ttl: std::time::Duration) -> i64 {
    if ttl.is_zero() { 0 } else { ttl_secs(ttl) }
}

/// `mg <key> T<ttl>`: touch. A zero `ttl` removes the expiry (`T0`).
pub fn touch(batch: &mut Batch, key: &[u8], ttl: std::time::Duration) {
    let flags = Flags::new(key, &[MetaArg::int(b'T', touch_secs(ttl))]);
    batch.push(ReplyKind::Meta, |out| encode_mg(out, key, flags.as_slice()));
}

/// `mg <key> v f t c T<ttl>`: get and touch (memcached's `gat`), the TTL
/// reported being the new one. A zero `ttl` removes the expiry.
pub fn get_and_touch(batch: &mut Batch, key: &[u8], ttl: std::time::Duration) {
    let mut flags = Flags::new(key, &GET_FLAGS);
    flags.push(MetaArg::int(b'T', touch_secs(ttl)));
    batch.push(ReplyKind::Meta, |out| encode_mg(out, key, flags.as_slice()));
}

/// `ma <key> v D<delta> [MD]`: memcached's `incr`/`decr`, answering the
/// new value. Never creates the key (no `N`).
pub fn arithmetic(batch: &mut Batch, key: &[u8], decrement: bool, delta: u64) {
    let mut flags = Flags::new(key, &[MetaArg::flag(b'v'), MetaArg::uint(b'D', delta)]);
    if decrement {
        flags.push(MetaArg::token(b'M', b"D"));
    }
    batch.push(ReplyKind::Meta, |out| encode_ma(out, key, flags.as_slice()));
}

/// What [`forward`] sends for a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forwarded {
    /// `mg` or `me`: reads (an `mg` may touch or create a lease
    /// placeholder, which changes no value).
    Read,
    /// `ms`, `md` or `ma`: changes the key's value.
    Write,
}

/// The key and kind of a meta request [`forward`] can send, or `None`
/// for any other request.
pub fn forwardable<'r>(request: &'r Request<'_>) -> Option<(&'r [u8], Forwarded)> {
    match request {
        Request::MetaGet(meta) => Some((&meta.key, Forwarded::Read)),
        Request::MetaDebug { key, .. } => Some((key, Forwarded::Read)),
        Request::MetaSet(set) => Some((&set.meta.key, Forwarded::Write)),
        Request::MetaDelete(meta) => Some((&meta.key, Forwarded::Write)),
        Request::MetaArithmetic(arithmetic) => Some((&arithmetic.meta.key, Forwarded::Write)),
        _ => None,
    }
}

/// Appends `request` (a meta request about one key, see [`forwardable`])
/// to `batch` as it came, with two changes. Its `q` flag is dropped: the
/// connection needs one reply per request, so the caller applies quiet
/// mode to the reply. And with `cap` (a write to a stand-in), every
/// exptime (`T`, `N`) is cut to at most `cap`, and an `ms` without `T` gets
/// `T<cap>`, as every other write to a stand-in is.
pub fn forward(batch: &mut Batch, request: &Request<'_>, cap: Option<std::time::Duration>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let capped = |exptime: &[u8]| -> Option<i64> {
        let cap = cap?;
        let exptime = std::str::from_utf8(exptime).ok()?.parse::<i64>().ok()?;
        let longer = match Expiration::from_exptime(exptime, now) {
            Expiration::Never => true,
            Expiration::Expired => false,
            Expiration::AtUnixSecs(at) => at.saturating_sub(now) > cap.as_secs(),
        };
        longer.then(|| ttl_secs(cap))
    };
    let args = |flags: &MetaFlags<'_>, add_ttl: bool| -> Vec<(u8, Vec<u8>)> {
        let mut args: Vec<(u8, Vec<u8>)> = Vec::with_capacity(flags.len() + 1);
        for flag in flags.iter().filter(|flag| flag.flag != b'q') {
            let token = match flag.flag {
                b'T' | b'N' => {
                    capped(flag.token).map_or_else(|| flag.token.to_vec(), |secs| secs.to_string().into_bytes())
                }
                _ => flag.token.to_vec(),
            };
            args.push((flag.flag, token));
        }
        if let Some(cap) = cap.filter(|_| add_ttl && !flags.has(b'T')) {
            args.push((b'T', ttl_secs(cap).to_string().into_bytes()));
        }
        args
    };
    fn as_meta_args(args: &[(u8, Vec<u8>)]) -> Vec<MetaArg<'_>> {
        args.iter().map(|(flag, token)| MetaArg::token(*flag, token)).collect()
    }
    match request {
        Request::MetaGet(meta) => {
            let args = args(&meta.flags, false);
            batch.push(ReplyKind::Meta, |out| encode_mg(out, &meta.key, &as_meta_args(&args)));
        }
        Request::MetaSet(set) => {
            let args = args(&set.meta.flags, true);
            batch.push(ReplyKind::Meta, |out| {
                encode_ms(out, &set.meta.key, set.data, &as_meta_args(&args))
            });
        }
        Request::MetaDelete(meta) => {
            let args = args(&meta.flags, false);
            batch.push(ReplyKind::Meta, |out| encode_md(out, &meta.key, &as_meta_args(&args)));
        }
        Request::MetaArithmetic(arithmetic) => {
            let args = args(&arithmetic.meta.flags, false);
            batch.push(ReplyKind::Meta, |out| {
                encode_ma(out, &arithmetic.meta.key, &as_meta_args(&args))
            });
        }
        Request::MetaDebug { key, binary } => batch.push(ReplyKind::Meta, |out| encode_me(out, key, *binary)),
        _ => {}
    }
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
            ttl: u64::try_from(hit.ttl_secs).ok().map(std::time::Duration::from_secs),
        }
    }
}

/// The error a reply carries, if it is one: `CLIENT_ERROR` is the
/// request's fault ([`ClientError::Refused`]), the others the node's.
fn reply_error(response: &Response) -> Option<ClientError> {
    let text = |message: &[u8]| String::from_utf8_lossy(message).into_owned();
    match response {
        Response::ClientError(message) => Some(ClientError::Refused(text(message))),
        Response::Error(message) | Response::ServerError(message) => Some(ClientError::Server(text(message))),
        _ => None,
    }
}

/// Reads an `mg` reply: `Ok(None)` is a miss.
pub fn read_get(response: Response) -> Result<Option<Hit>, ClientError> {
    if let Some(error) = reply_error(&response) {
        return Err(error);
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
    Ok(read_store(response)? == StoreOutcome::Stored)
}

/// Reads an `ms` (or `md`, touch) reply as memcached's storage outcome.
pub fn read_store(response: Response) -> Result<StoreOutcome, ClientError> {
    if let Some(error) = reply_error(&response) {
        return Err(error);
    }
    match response {
        Response::Meta(meta) => Ok(match meta.code {
            MetaCode::Hd | MetaCode::Va => StoreOutcome::Stored,
            MetaCode::Ex => StoreOutcome::Exists,
            MetaCode::Nf | MetaCode::En => StoreOutcome::NotFound,
            MetaCode::Ns | MetaCode::Mn => StoreOutcome::NotStored,
        }),
        other => Err(ClientError::Server(format!("unexpected reply {other:?}"))),
    }
}

/// Reads an [`arithmetic`] reply: the new value, or `None` if the key is
/// missing.
pub fn read_arithmetic(response: Response) -> Result<Option<u64>, ClientError> {
    if let Some(error) = reply_error(&response) {
        return Err(error);
    }
    match response {
        Response::Meta(meta) if meta.code == MetaCode::Nf => Ok(None),
        Response::Meta(meta) => {
            let data = meta.data.unwrap_or_default();
            std::str::from_utf8(&data)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| ClientError::Server(format!("ma answered {:?}", String::from_utf8_lossy(&data))))
        }
        other => Err(ClientError::Server(format!("unexpected reply {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use strata_proto::memcache::{Limits, MetaResponse, Parsed, ReturnedFlag, parse_request};

    use super::*;

    fn sent(build: impl FnOnce(&mut Batch)) -> String {
        let mut batch = Batch::default();
        build(&mut batch);
        assert_eq!(batch.kinds, [ReplyKind::Meta]);
        String::from_utf8(batch.bytes).expect("ascii")
    }

    /// `line` forwarded, with the stand-in cap `cap`.
    fn forwarded(line: &[u8], cap: Option<Duration>) -> String {
        let Ok(Parsed::Request { request, .. }) = parse_request(line, &Limits::default()) else {
            panic!("{line:?} parses");
        };
        assert!(forwardable(&request).is_some());
        sent(|batch| forward(batch, &request, cap))
    }

    #[test]
    fn conditional_stores_say_their_mode_and_appends_keep_flags_and_ttl() {
        let ttl = Some(Duration::from_secs(30));
        assert_eq!(
            sent(|b| set(b, b"k", b"v", 3, ttl, SetMode::Replace)),
            "ms k 1 F3 T30 MR\r\nv\r\n"
        );
        assert_eq!(
            sent(|b| set(b, b"k", b"v", 3, ttl, SetMode::Cas(9))),
            "ms k 1 F3 T30 C9\r\nv\r\n"
        );
        assert_eq!(
            sent(|b| set(b, b"k", b"v", 3, ttl, SetMode::Append)),
            "ms k 1 MA\r\nv\r\n"
        );
        assert_eq!(
            sent(|b| set(b, b"k", b"v", 0, None, SetMode::Prepend)),
            "ms k 1 MP\r\nv\r\n"
        );
    }

    #[test]
    fn arithmetic_and_get_and_touch_requests() {
        assert_eq!(sent(|b| arithmetic(b, b"n", false, 5)), "ma n v D5\r\n");
        assert_eq!(sent(|b| arithmetic(b, b"n", true, 1)), "ma n v D1 MD\r\n");
        assert_eq!(
            sent(|b| get_and_touch(b, b"k", Duration::from_secs(9))),
            "mg k v f t c T9\r\n"
        );
        assert_eq!(sent(|b| get_and_touch(b, b"k", Duration::ZERO)), "mg k v f t c T0\r\n");
        // A key that is not plain travels base64-encoded.
        assert_eq!(sent(|b| arithmetic(b, b"a b", false, 1)), "ma YSBi v D1 b\r\n");
    }

    #[test]
    fn forwarded_requests_go_as_they_came_without_q() {
        assert_eq!(forwarded(b"mg k v t q Oabc k\r\n", None), "mg k v t Oabc k\r\n");
        assert_eq!(forwarded(b"ms k 2 T0 MA q\r\nhi\r\n", None), "ms k 2 T0 MA\r\nhi\r\n");
        assert_eq!(forwarded(b"md k q I T30\r\n", None), "md k I T30\r\n");
        assert_eq!(forwarded(b"ma k N0 J5 D2 v\r\n", None), "ma k N0 J5 D2 v\r\n");
        assert_eq!(forwarded(b"mg YSBi b v\r\n", None), "mg YSBi b v\r\n");
        assert_eq!(forwarded(b"me k\r\n", None), "me k\r\n");
    }

    #[test]
    fn forwarded_writes_to_a_stand_in_get_the_gutter_ttl() {
        let cap = Some(Duration::from_secs(60));
        // Never expires, or longer than the cap: cut to the cap.
        assert_eq!(forwarded(b"ms k 1 T0\r\nv\r\n", cap), "ms k 1 T60\r\nv\r\n");
        assert_eq!(forwarded(b"ms k 1 T3600 q\r\nv\r\n", cap), "ms k 1 T60\r\nv\r\n");
        assert_eq!(forwarded(b"ms k 1\r\nv\r\n", cap), "ms k 1 T60\r\nv\r\n");
        assert_eq!(forwarded(b"ma k N0 v\r\n", cap), "ma k N60 v\r\n");
        // Shorter, or already expired: left alone.
        assert_eq!(forwarded(b"ms k 1 T5\r\nv\r\n", cap), "ms k 1 T5\r\nv\r\n");
        assert_eq!(forwarded(b"mg k v T-1\r\n", cap), "mg k v T-1\r\n");
    }

    #[test]
    fn replies_read_as_outcomes() {
        let meta = |code, data: Option<&[u8]>| {
            Response::Meta(MetaResponse {
                code,
                flags: vec![ReturnedFlag {
                    flag: b'c',
                    token: b"7".to_vec(),
                }],
                data: data.map(<[u8]>::to_vec),
            })
        };
        assert_eq!(read_store(meta(MetaCode::Hd, None)).unwrap(), StoreOutcome::Stored);
        assert_eq!(read_store(meta(MetaCode::Ex, None)).unwrap(), StoreOutcome::Exists);
        assert_eq!(read_store(meta(MetaCode::Nf, None)).unwrap(), StoreOutcome::NotFound);
        assert_eq!(read_store(meta(MetaCode::Ns, None)).unwrap(), StoreOutcome::NotStored);
        assert_eq!(read_arithmetic(meta(MetaCode::Va, Some(b"42"))).unwrap(), Some(42));
        assert_eq!(read_arithmetic(meta(MetaCode::Nf, None)).unwrap(), None);
        let refused = read_arithmetic(Response::ClientError(
            b"cannot increment or decrement non-numeric value".to_vec(),
        ));
        assert!(matches!(refused, Err(ClientError::Refused(message)) if message.contains("non-numeric")));
        assert!(matches!(
            read_store(Response::ServerError(b"out of memory".to_vec())),
            Err(ClientError::Server(_))
        ));
        let hit = read_get(meta(MetaCode::Va, Some(b"v"))).unwrap().expect("a hit");
        assert_eq!(crate::Fetched::from(hit).ttl, None, "no t returned: never expires");
    }
}
