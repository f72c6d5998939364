//! Client-side request encoders: what strata's client, proxy and load
//! generator send to a memcached-protocol server.
//!
//! [`encode_request`] writes any [`Request`] in canonical form (single
//! spaces, `\r\n`), so a parsed request can be forwarded as it came;
//! the `encode_*` helpers build the common requests from plain values. The
//! encoders do not validate: keys must be valid memcached keys (no spaces or
//! control characters, at most 250 bytes) unless sent base64-encoded with a
//! `b` flag, and a meta flag with a token must be one memcached accepts.

use super::encode::{Field, push_base64};
use super::line::{push_i64, push_u64, push_usize};
use super::meta::MetaFlagsIter;
use super::request::{ArithmeticOp, Request, StoreCommand};

const CRLF: &[u8] = b"\r\n";

/// One meta flag to send: a letter and an optional token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MetaArg<'a> {
    /// The flag letter.
    pub flag: u8,
    /// Its token, if it takes one.
    pub value: Option<Field<'a>>,
}

impl<'a> MetaArg<'a> {
    /// A flag without a token: `v`, `q`, `k`, `b`, …
    pub const fn flag(flag: u8) -> Self {
        MetaArg { flag, value: None }
    }

    /// A flag with an unsigned number: `C123`, `F30`, `D5`.
    pub const fn uint(flag: u8, value: u64) -> Self {
        MetaArg {
            flag,
            value: Some(Field::Uint(value)),
        }
    }

    /// A flag with a signed number: `T-1`, `N30`.
    pub const fn int(flag: u8, value: i64) -> Self {
        MetaArg {
            flag,
            value: Some(Field::Int(value)),
        }
    }

    /// A flag with a token: `Oopaque`, `MS`.
    pub const fn token(flag: u8, token: &'a [u8]) -> Self {
        MetaArg {
            flag,
            value: Some(Field::Bytes(token)),
        }
    }
}

/// Writes `request` in canonical form. Base64 keys (meta `b`) are encoded
/// again; everything else is copied.
pub fn encode_request(out: &mut Vec<u8>, request: &Request<'_>) {
    match request {
        Request::Get(get) => {
            out.extend_from_slice(get.command_name().as_bytes());
            if let Some(exptime) = get.touch {
                out.push(b' ');
                push_i64(out, exptime);
            }
            for key in get.keys.iter() {
                out.push(b' ');
                out.extend_from_slice(key);
            }
            out.extend_from_slice(CRLF);
        }
        Request::Store(store) => {
            encode_store(
                out,
                store.command,
                store.key,
                store.flags,
                store.exptime,
                store.data,
                store.noreply,
            );
        }
        Request::Delete { key, noreply } => encode_delete(out, key, *noreply),
        Request::Arithmetic {
            op,
            key,
            delta,
            noreply,
        } => encode_arithmetic(out, *op, key, *delta, *noreply),
        Request::Touch { key, exptime, noreply } => encode_touch(out, key, *exptime, *noreply),
        Request::FlushAll { delay, noreply } => {
            out.extend_from_slice(b"flush_all");
            if let Some(delay) = delay {
                out.push(b' ');
                push_i64(out, *delay);
            }
            finish(out, *noreply);
        }
        Request::Version => out.extend_from_slice(b"version\r\n"),
        Request::Verbosity { level, noreply } => {
            out.extend_from_slice(b"verbosity ");
            push_u64(out, u64::from(*level));
            finish(out, *noreply);
        }
        Request::Stats { args } => {
            out.extend_from_slice(b"stats");
            if let Some(args) = args {
                out.push(b' ');
                out.extend_from_slice(args);
            }
            out.extend_from_slice(CRLF);
        }
        Request::Quit => out.extend_from_slice(b"quit\r\n"),
        Request::MetaGet(meta) => {
            meta_line(out, b"mg", &meta.key, meta.binary_key(), None, meta.flags.iter());
        }
        Request::MetaSet(set) => {
            let meta = &set.meta;
            meta_line(
                out,
                b"ms",
                &meta.key,
                meta.binary_key(),
                Some(set.data.len()),
                meta.flags.iter(),
            );
            out.extend_from_slice(set.data);
            out.extend_from_slice(CRLF);
        }
        Request::MetaDelete(meta) => {
            meta_line(out, b"md", &meta.key, meta.binary_key(), None, meta.flags.iter());
        }
        Request::MetaArithmetic(arithmetic) => {
            let meta = &arithmetic.meta;
            meta_line(out, b"ma", &meta.key, meta.binary_key(), None, meta.flags.iter());
        }
        Request::MetaNoop => encode_mn(out),
        Request::MetaDebug { key, binary } => encode_me(out, key, *binary),
    }
}

/// ` noreply` if asked, then `\r\n`.
fn finish(out: &mut Vec<u8>, noreply: bool) {
    if noreply {
        out.extend_from_slice(b" noreply");
    }
    out.extend_from_slice(CRLF);
}

/// `<command> [<exptime>] <key>+\r\n`.
fn encode_retrieval<K: AsRef<[u8]>>(out: &mut Vec<u8>, command: &[u8], exptime: Option<i64>, keys: &[K]) {
    out.extend_from_slice(command);
    if let Some(exptime) = exptime {
        out.push(b' ');
        push_i64(out, exptime);
    }
    for key in keys {
        out.push(b' ');
        out.extend_from_slice(key.as_ref());
    }
    out.extend_from_slice(CRLF);
}

/// `get <key>+\r\n`.
pub fn encode_get<K: AsRef<[u8]>>(out: &mut Vec<u8>, keys: &[K]) {
    encode_retrieval(out, b"get", None, keys);
}

/// `gets <key>+\r\n`: values with their CAS uniques.
pub fn encode_gets<K: AsRef<[u8]>>(out: &mut Vec<u8>, keys: &[K]) {
    encode_retrieval(out, b"gets", None, keys);
}

/// `gat <exptime> <key>+\r\n`: get and touch.
pub fn encode_gat<K: AsRef<[u8]>>(out: &mut Vec<u8>, exptime: i64, keys: &[K]) {
    encode_retrieval(out, b"gat", Some(exptime), keys);
}

/// `gats <exptime> <key>+\r\n`: get and touch, with CAS uniques.
pub fn encode_gats<K: AsRef<[u8]>>(out: &mut Vec<u8>, exptime: i64, keys: &[K]) {
    encode_retrieval(out, b"gats", Some(exptime), keys);
}

/// `<command> <key> <flags> <exptime> <bytes> [<cas>] [noreply]\r\n<data>\r\n`.
pub fn encode_store(
    out: &mut Vec<u8>,
    command: StoreCommand,
    key: &[u8],
    flags: u32,
    exptime: i64,
    data: &[u8],
    noreply: bool,
) {
    out.extend_from_slice(command.name().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b' ');
    push_u64(out, u64::from(flags));
    out.push(b' ');
    push_i64(out, exptime);
    out.push(b' ');
    push_usize(out, data.len());
    if let StoreCommand::Cas(unique) = command {
        out.push(b' ');
        push_u64(out, unique);
    }
    finish(out, noreply);
    out.extend_from_slice(data);
    out.extend_from_slice(CRLF);
}

/// `set <key> <flags> <exptime> <bytes>\r\n<data>\r\n`.
pub fn encode_set(out: &mut Vec<u8>, key: &[u8], flags: u32, exptime: i64, data: &[u8]) {
    encode_store(out, StoreCommand::Set, key, flags, exptime, data, false);
}

/// `delete <key> [noreply]\r\n`.
pub fn encode_delete(out: &mut Vec<u8>, key: &[u8], noreply: bool) {
    out.extend_from_slice(b"delete ");
    out.extend_from_slice(key);
    finish(out, noreply);
}

/// `incr|decr <key> <delta> [noreply]\r\n`.
pub fn encode_arithmetic(out: &mut Vec<u8>, op: ArithmeticOp, key: &[u8], delta: u64, noreply: bool) {
    out.extend_from_slice(op.name().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b' ');
    push_u64(out, delta);
    finish(out, noreply);
}

/// `touch <key> <exptime> [noreply]\r\n`.
pub fn encode_touch(out: &mut Vec<u8>, key: &[u8], exptime: i64, noreply: bool) {
    out.extend_from_slice(b"touch ");
    out.extend_from_slice(key);
    out.push(b' ');
    push_i64(out, exptime);
    finish(out, noreply);
}

/// The flags of a meta line, from either side's representation.
trait FlagSource {
    fn write_flags(self, out: &mut Vec<u8>);
}

impl FlagSource for MetaFlagsIter<'_> {
    fn write_flags(self, out: &mut Vec<u8>) {
        for flag in self {
            out.push(b' ');
            out.push(flag.flag);
            out.extend_from_slice(flag.token);
        }
    }
}

impl FlagSource for &[MetaArg<'_>] {
    fn write_flags(self, out: &mut Vec<u8>) {
        for arg in self {
            out.push(b' ');
            out.push(arg.flag);
            match arg.value {
                None => {}
                Some(Field::Uint(value)) => push_u64(out, value),
                Some(Field::Int(value)) => push_i64(out, value),
                Some(Field::Bytes(token)) => out.extend_from_slice(token),
            }
        }
    }
}

/// `<cm> <key> [<datalen>] <flags>*\r\n`, the key base64-encoded if
/// `binary`.
fn meta_line(
    out: &mut Vec<u8>,
    command: &[u8],
    key: &[u8],
    binary: bool,
    data_len: Option<usize>,
    flags: impl FlagSource,
) {
    out.extend_from_slice(command);
    out.push(b' ');
    if binary {
        push_base64(out, key);
    } else {
        out.extend_from_slice(key);
    }
    if let Some(len) = data_len {
        out.push(b' ');
        push_usize(out, len);
    }
    flags.write_flags(out);
    out.extend_from_slice(CRLF);
}

/// Whether `flags` ask for a base64 key.
fn has_binary_flag(flags: &[MetaArg<'_>]) -> bool {
    flags.iter().any(|arg| arg.flag == b'b')
}

/// `mg <key> <flags>*\r\n`. With a `b` flag, `key` is the binary key and is
/// sent base64-encoded.
pub fn encode_mg(out: &mut Vec<u8>, key: &[u8], flags: &[MetaArg<'_>]) {
    meta_line(out, b"mg", key, has_binary_flag(flags), None, flags);
}

/// `ms <key> <datalen> <flags>*\r\n<data>\r\n`.
pub fn encode_ms(out: &mut Vec<u8>, key: &[u8], data: &[u8], flags: &[MetaArg<'_>]) {
    meta_line(out, b"ms", key, has_binary_flag(flags), Some(data.len()), flags);
    out.extend_from_slice(data);
    out.extend_from_slice(CRLF);
}

/// `md <key> <flags>*\r\n`.
pub fn encode_md(out: &mut Vec<u8>, key: &[u8], flags: &[MetaArg<'_>]) {
    meta_line(out, b"md", key, has_binary_flag(flags), None, flags);
}

/// `ma <key> <flags>*\r\n`.
pub fn encode_ma(out: &mut Vec<u8>, key: &[u8], flags: &[MetaArg<'_>]) {
    meta_line(out, b"ma", key, has_binary_flag(flags), None, flags);
}

/// `mn\r\n`: a barrier after quiet (`q`) meta commands.
pub fn encode_mn(out: &mut Vec<u8>) {
    out.extend_from_slice(b"mn\r\n");
}

/// `me <key> [b]\r\n`.
pub fn encode_me(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    let flags: &[MetaArg<'_>] = if binary { &[MetaArg::flag(b'b')] } else { &[] };
    meta_line(out, b"me", key, binary, None, flags);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn classic_requests() {
        assert_eq!(written(|out| encode_get(out, &["a", "b"])), "get a b\r\n");
        assert_eq!(written(|out| encode_gats(out, -1, &[b"k"])), "gats -1 k\r\n");
        assert_eq!(written(|out| encode_set(out, b"k", 1, 0, b"v")), "set k 1 0 1\r\nv\r\n");
        assert_eq!(
            written(|out| encode_store(out, StoreCommand::Cas(7), b"k", 0, 5, b"", true)),
            "cas k 0 5 0 7 noreply\r\n\r\n"
        );
        assert_eq!(written(|out| encode_delete(out, b"k", false)), "delete k\r\n");
        assert_eq!(
            written(|out| encode_arithmetic(out, ArithmeticOp::Decr, b"k", 3, true)),
            "decr k 3 noreply\r\n"
        );
        assert_eq!(written(|out| encode_touch(out, b"k", 10, false)), "touch k 10\r\n");
    }

    #[test]
    fn meta_requests() {
        let flags = [
            MetaArg::flag(b'v'),
            MetaArg::int(b'T', -1),
            MetaArg::token(b'O', b"op"),
            MetaArg::uint(b'C', 9),
        ];
        assert_eq!(written(|out| encode_mg(out, b"k", &flags)), "mg k v T-1 Oop C9\r\n");
        assert_eq!(
            written(|out| encode_ms(out, b"k", b"hi", &[MetaArg::token(b'M', b"E")])),
            "ms k 2 ME\r\nhi\r\n"
        );
        assert_eq!(
            written(|out| encode_md(out, b"\x00\x01", &[MetaArg::flag(b'b')])),
            "md AAE= b\r\n"
        );
        assert_eq!(written(|out| encode_ma(out, b"k", &[])), "ma k\r\n");
        assert_eq!(written(encode_mn), "mn\r\n");
        assert_eq!(written(|out| encode_me(out, b"foo", true)), "me Zm9v b\r\n");
    }
}
