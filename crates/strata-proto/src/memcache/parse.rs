//! The server-side request parser: `&[u8]` in, [`Parsed`] out.
//!
//! The parser is stateless. The caller keeps a read buffer, calls
//! [`parse_request`] on it, acts on the outcome, drops the bytes the outcome
//! says were used, and calls again; [`Parsed::Incomplete`] means read more.
//! A request borrows from the buffer, so nothing is copied on the hot path
//! (`get <key>`, `mg <key> v`, `set`, `ms`); only base64 meta keys are
//! decoded into an owned buffer.
//!
//! Every outcome mirrors what memcached does with the same bytes; the
//! variants of [`Parsed`] say which of its behaviours applies. The one
//! request that may outgrow the line limit, a retrieval of many keys, is
//! handed to a [`GetStream`] (see `stream.rs`), the one piece of state the
//! caller keeps between reads besides a [`Discard`].

use std::borrow::Cow;

use super::error::{FatalError, RequestError};
use super::line::{LineScan, Tokens, ends_with_noreply, is_valid_key, last_token, parse_i64, parse_u32, parse_u64};
use super::meta::{MetaCommand, parse_meta};
use super::request::{ArithmeticOp, Get, Keys, Limits, Request, Store, StoreCommand};
use super::stream::{self, GetStream};

/// The first byte of a binary-protocol request.
const BINARY_REQUEST_MAGIC: u8 = 0x80;

/// Largest data block memcached accepts on a storage line (`INT_MAX - 2`);
/// a larger `<bytes>` is a malformed line, not a too-large value.
pub const MAX_DATA_LEN: usize = i32::MAX as usize - 2;

/// The outcome of parsing the start of a read buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// The buffer holds no complete request yet: read more and call again.
    /// Nothing may be dropped. A storage command stays incomplete until its
    /// whole data block and `\r\n` have arrived; the limits bound how much
    /// that can be.
    Incomplete,
    /// A complete request; drop `consumed` bytes (its line and, for storage
    /// commands, its data block and `\r\n`) once done with it.
    Request {
        /// The request, borrowing from the buffer.
        request: Request<'a>,
        /// Bytes of the buffer it used.
        consumed: usize,
    },
    /// A request refused with one reply line; memcached keeps the connection
    /// open for these. Send `error.reply_line()` unless `noreply`, drop
    /// `consumed` bytes, and go on with the next request.
    Reject {
        /// What to answer: [`RequestError::reply_line`].
        error: RequestError,
        /// The line ended in `noreply` (classic commands only): memcached
        /// sends nothing, even for errors. Meta errors are always sent.
        noreply: bool,
        /// Bytes to drop: the line, and for a storage command whose data
        /// block was not followed by `\r\n` (`CLIENT_ERROR bad data chunk`)
        /// the data block as well.
        consumed: usize,
    },
    /// A storage command (`set` … `cas`, `ms`) refused once its data length
    /// was known: most often `SERVER_ERROR object too large for cache` for a
    /// value over [`Limits::max_value_bytes`], but also a bad key, flag or
    /// token after a valid `<bytes>`. Send the reply unless `noreply`, drop
    /// `consumed` bytes (the command line), then discard the next `swallow`
    /// bytes — the data block and its `\r\n`, some of which may already be
    /// buffered — as they arrive, without buffering them: memcached's
    /// `conn_swallow` state. [`Discard`] does the counting.
    ///
    /// This is returned as soon as the command line is complete, before any
    /// data is buffered.
    Swallow {
        /// What to answer: [`RequestError::reply_line`].
        error: RequestError,
        /// The line ended in `noreply` (classic commands only): memcached
        /// sends nothing.
        noreply: bool,
        /// Bytes to drop now: the command line.
        consumed: usize,
        /// Bytes to discard after those: the data block plus 2.
        swallow: usize,
        /// For a value refused as too large: its key, whose old value the
        /// server must remove (memcached unlinks it, so that no client reads
        /// the value the failed write meant to replace).
        too_large: Option<TooLarge<'a>>,
    },
    /// A retrieval (`get`, `gets`, `gat`, `gats`) whose line is longer than
    /// [`Limits::max_line_bytes`]: too long to buffer whole, so its keys are
    /// answered as they arrive. Drop `consumed` bytes (the command and, for
    /// `gat`/`gats`, its exptime), keep `stream`, and give it what is
    /// buffered next instead of calling [`parse_request`] until
    /// [`GetStream::is_done`].
    ///
    /// This is returned as soon as the buffer holds `max_line_bytes` bytes
    /// without a newline, and only then: a shorter retrieval line is parsed
    /// whole, as a [`Parsed::Request`].
    LongGet {
        /// The rest of the line, as it arrives.
        stream: GetStream,
        /// Bytes of the buffer the command used.
        consumed: usize,
    },
}

/// The key of a storage request refused because its value is too large.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLarge<'a> {
    /// The key (decoded, for a meta set with a base64 key).
    pub key: Cow<'a, [u8]>,
    /// Whether the write would have changed an existing value — every mode
    /// but add (`add`, `ms … ME`), which stores only if the key is absent
    /// and so leaves an existing value alone.
    pub replaces: bool,
}

/// Counts down the bytes of a [`Parsed::Swallow`] as they arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Discard {
    remaining: usize,
}

impl Discard {
    /// Discard `swallow` bytes.
    pub fn new(swallow: usize) -> Self {
        Discard { remaining: swallow }
    }

    /// Given `available` buffered bytes (after the command line was
    /// dropped), how many to drop now. Call again with each read until
    /// [`is_done`](Self::is_done); then parse requests again.
    pub fn take(&mut self, available: usize) -> usize {
        let dropped = self.remaining.min(available);
        self.remaining -= dropped;
        dropped
    }

    /// Bytes still to discard.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Whether everything has been discarded.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }
}

/// Parses the request at the start of `buf`.
///
/// Returns `Err` for input after which the connection must be closed
/// ([`FatalError`]): a line longer than [`Limits::max_line_bytes`] as soon as
/// the buffer proves it (unless it is a retrieval: [`Parsed::LongGet`]), the
/// binary protocol, or HTTP.
pub fn parse_request<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, FatalError> {
    let Some(&first) = buf.first() else {
        return Ok(Parsed::Incomplete);
    };
    if first == BINARY_REQUEST_MAGIC {
        return Err(FatalError::BinaryProtocol);
    }
    let (line, line_len) = match super::line::scan_line(buf, limits.max_line_bytes) {
        LineScan::Complete { line, consumed } => (line, consumed),
        LineScan::Incomplete => return Ok(Parsed::Incomplete),
        LineScan::TooLong => {
            return match stream::start(buf, limits) {
                Some((stream, consumed)) => Ok(Parsed::LongGet { stream, consumed }),
                None => Err(FatalError::LineTooLong {
                    limit: limits.max_line_bytes,
                }),
            };
        }
    };
    let context = Context {
        buf,
        line,
        line_len,
        limits: *limits,
    };
    let mut tokens = Tokens::new(line);
    let Some(command) = tokens.next() else {
        return Ok(context.reject(RequestError::UnknownCommand, false));
    };
    let parsed = match command {
        b"get" => parse_get(&context, tokens, false, false),
        b"gets" => parse_get(&context, tokens, true, false),
        b"gat" => parse_get(&context, tokens, false, true),
        b"gats" => parse_get(&context, tokens, true, true),
        b"set" => parse_store(&context, tokens, StoreKind::Set),
        b"add" => parse_store(&context, tokens, StoreKind::Add),
        b"replace" => parse_store(&context, tokens, StoreKind::Replace),
        b"append" => parse_store(&context, tokens, StoreKind::Append),
        b"prepend" => parse_store(&context, tokens, StoreKind::Prepend),
        b"cas" => parse_store(&context, tokens, StoreKind::Cas),
        b"delete" => parse_delete(&context, tokens),
        b"incr" => parse_arithmetic(&context, tokens, ArithmeticOp::Incr),
        b"decr" => parse_arithmetic(&context, tokens, ArithmeticOp::Decr),
        b"touch" => parse_touch(&context, tokens),
        b"flush_all" => parse_flush_all(&context, tokens),
        b"verbosity" => parse_verbosity(&context, tokens),
        b"stats" => {
            let args = tokens.remainder();
            context.request(Request::Stats {
                args: (!args.is_empty()).then_some(args),
            })
        }
        // memcached ignores anything after these.
        b"version" => context.request(Request::Version),
        b"quit" => context.request(Request::Quit),
        name => match MetaCommand::from_name(name) {
            Some(meta) => parse_meta(&context, meta, tokens),
            None => {
                if last_token(tokens.remainder()).is_some_and(|token| token.starts_with(b"HTTP/")) {
                    return Err(FatalError::Http);
                }
                context.reject(RequestError::UnknownCommand, false)
            }
        },
    };
    Ok(parsed)
}

/// A complete command line and what it needs to build an outcome.
pub(crate) struct Context<'a> {
    /// The whole read buffer, for data blocks after the line.
    pub(crate) buf: &'a [u8],
    /// The line, without its terminator.
    pub(crate) line: &'a [u8],
    /// The line's length with its terminator.
    pub(crate) line_len: usize,
    /// The limits in force.
    pub(crate) limits: Limits,
}

impl<'a> Context<'a> {
    /// A request that is just the line.
    pub(crate) fn request(&self, request: Request<'a>) -> Parsed<'a> {
        Parsed::Request {
            request,
            consumed: self.line_len,
        }
    }

    /// A request with a data block of `data_len` bytes after the line.
    pub(crate) fn request_with_data(&self, request: Request<'a>, data_len: usize) -> Parsed<'a> {
        Parsed::Request {
            request,
            consumed: self.line_len + data_len + 2,
        }
    }

    /// The line refused.
    pub(crate) fn reject(&self, error: RequestError, noreply: bool) -> Parsed<'a> {
        Parsed::Reject {
            error,
            noreply,
            consumed: self.line_len,
        }
    }

    /// The line refused, and the `data_len` bytes of data plus `\r\n` after
    /// it to be swallowed.
    pub(crate) fn swallow(&self, error: RequestError, noreply: bool, data_len: usize) -> Parsed<'a> {
        Parsed::Swallow {
            error,
            noreply,
            consumed: self.line_len,
            swallow: data_len + 2,
            too_large: None,
        }
    }

    /// `data_len` bytes of data for `refused.key` are over the value limit:
    /// refuse them as too large, naming the key (see [`TooLarge`]).
    pub(crate) fn too_large(&self, refused: TooLarge<'a>, noreply: bool, data_len: usize) -> Parsed<'a> {
        Parsed::Swallow {
            error: RequestError::TooLarge,
            noreply,
            consumed: self.line_len,
            swallow: data_len + 2,
            too_large: Some(refused),
        }
    }

    /// The data block after the line, or the outcome to return instead:
    /// a swallow if it is over the limit, [`Parsed::Incomplete`] until it and
    /// its `\r\n` have arrived, a reject if the `\r\n` is missing.
    pub(crate) fn data(&self, data_len: usize, noreply: bool) -> Result<&'a [u8], Parsed<'a>> {
        if data_len > self.limits.max_value_bytes {
            return Err(self.swallow(RequestError::TooLarge, noreply, data_len));
        }
        let end = self.line_len + data_len;
        let Some(block) = self.buf.get(self.line_len..end + 2) else {
            return Err(Parsed::Incomplete);
        };
        let (data, terminator) = block.split_at(data_len);
        if terminator != b"\r\n" {
            // memcached reads exactly <bytes> + 2 and then checks them.
            return Err(Parsed::Reject {
                error: RequestError::BadDataChunk,
                noreply,
                consumed: end + 2,
            });
        }
        Ok(data)
    }
}

/// A storage line's `<bytes>`: digits, at most [`MAX_DATA_LEN`].
pub(crate) fn parse_data_len(token: &[u8]) -> Option<usize> {
    parse_u64(token)
        .and_then(|len| usize::try_from(len).ok())
        .filter(|&len| len <= MAX_DATA_LEN)
}

/// `get <key>+`, `gets <key>+`, `gat <exptime> <key>+`, `gats <exptime> <key>+`.
///
/// memcached checks each key as it goes and, on a key over 250 bytes, throws
/// away the values it had found and answers only the error; checking every
/// key first gives the same reply. Any number of keys is accepted, as in
/// memcached: the line limit bounds them.
fn parse_get<'a>(context: &Context<'a>, mut args: Tokens<'a>, cas: bool, touch: bool) -> Parsed<'a> {
    let touch = if touch {
        match args.next().map(parse_i64) {
            None => return context.reject(RequestError::BadFormat, false),
            Some(None) => return context.reject(RequestError::InvalidExptime, false),
            Some(exptime) => exptime,
        }
    } else {
        None
    };
    let raw = args.remainder();
    let mut count = 0;
    for key in Tokens::new(raw) {
        if !is_valid_key(key, context.limits.max_key_bytes) {
            return context.reject(RequestError::BadFormat, false);
        }
        count += 1;
    }
    if count == 0 {
        return context.reject(RequestError::BadFormat, false);
    }
    context.request(Request::Get(Get {
        cas,
        touch,
        keys: Keys::new(raw, count),
    }))
}

/// Which storage command, before its CAS unique is parsed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

/// `<command> <key> <flags> <exptime> <bytes> [<cas unique>] [noreply]` and
/// its data block.
///
/// Until `<bytes>` is known a bad line is only the line; after that every
/// refusal swallows the data block, as memcached 1.6's parser does, so that
/// the value is never read as commands.
fn parse_store<'a>(context: &Context<'a>, args: Tokens<'a>, kind: StoreKind) -> Parsed<'a> {
    let noreply = ends_with_noreply(context.line);
    let ([key, flags, exptime, bytes, cas_unique], count) = collect::<5>(args);
    if count < 4 {
        return context.reject(RequestError::BadFormat, noreply);
    }
    let Some(data_len) = parse_data_len(bytes) else {
        return context.reject(RequestError::BadFormat, noreply);
    };
    let fixed = if kind == StoreKind::Cas { 5 } else { 4 };
    if count != fixed + usize::from(noreply) || !is_valid_key(key, context.limits.max_key_bytes) {
        return context.swallow(RequestError::BadFormat, noreply, data_len);
    }
    let (Some(flags), Some(exptime)) = (parse_u32(flags), parse_i64(exptime)) else {
        return context.swallow(RequestError::BadFormat, noreply, data_len);
    };
    let command = match kind {
        StoreKind::Set => StoreCommand::Set,
        StoreKind::Add => StoreCommand::Add,
        StoreKind::Replace => StoreCommand::Replace,
        StoreKind::Append => StoreCommand::Append,
        StoreKind::Prepend => StoreCommand::Prepend,
        StoreKind::Cas => match parse_u64(cas_unique) {
            Some(unique) => StoreCommand::Cas(unique),
            None => return context.swallow(RequestError::BadFormat, noreply, data_len),
        },
    };
    if data_len > context.limits.max_value_bytes {
        let refused = TooLarge {
            key: Cow::Borrowed(key),
            replaces: kind != StoreKind::Add,
        };
        return context.too_large(refused, noreply, data_len);
    }
    match context.data(data_len, noreply) {
        Ok(data) => {
            let store = Store {
                command,
                key,
                flags,
                exptime,
                data,
                noreply,
            };
            context.request_with_data(Request::Store(store), data_len)
        }
        Err(outcome) => outcome,
    }
}

/// Up to `N` tokens, and how many there were in all.
fn collect<'a, const N: usize>(args: Tokens<'a>) -> ([&'a [u8]; N], usize) {
    let mut fields: [&[u8]; N] = [&[]; N];
    let mut count = 0;
    for token in args {
        if let Some(slot) = fields.get_mut(count) {
            *slot = token;
        }
        count += 1;
    }
    (fields, count)
}

/// `delete <key> [0] [noreply]`: the legacy `0` ("hold time") that old PHP
/// clients send is accepted, anything else is memcached 1.6's usage error.
fn parse_delete<'a>(context: &Context<'a>, args: Tokens<'a>) -> Parsed<'a> {
    let noreply = ends_with_noreply(context.line);
    let ([key, first, _], count) = collect::<3>(args);
    let valid = match count {
        0 => return context.reject(RequestError::BadFormat, noreply),
        1 => true,
        2 => first == b"0" || noreply,
        3 => first == b"0" && noreply,
        _ => false,
    };
    if !valid {
        return context.reject(RequestError::DeleteUsage, noreply);
    }
    if !is_valid_key(key, context.limits.max_key_bytes) {
        return context.reject(RequestError::BadFormat, noreply);
    }
    context.request(Request::Delete { key, noreply })
}

/// `incr|decr <key> <delta> [noreply]`.
fn parse_arithmetic<'a>(context: &Context<'a>, args: Tokens<'a>, op: ArithmeticOp) -> Parsed<'a> {
    let noreply = ends_with_noreply(context.line);
    let ([key, delta], count) = collect::<2>(args);
    if count != 2 + usize::from(noreply) || !is_valid_key(key, context.limits.max_key_bytes) {
        return context.reject(RequestError::BadFormat, noreply);
    }
    let Some(delta) = parse_u64(delta) else {
        return context.reject(RequestError::InvalidDelta, noreply);
    };
    context.request(Request::Arithmetic {
        op,
        key,
        delta,
        noreply,
    })
}

/// `touch <key> <exptime> [noreply]`.
fn parse_touch<'a>(context: &Context<'a>, args: Tokens<'a>) -> Parsed<'a> {
    let noreply = ends_with_noreply(context.line);
    let ([key, exptime], count) = collect::<2>(args);
    if count != 2 + usize::from(noreply) || !is_valid_key(key, context.limits.max_key_bytes) {
        return context.reject(RequestError::BadFormat, noreply);
    }
    let Some(exptime) = parse_i64(exptime) else {
        return context.reject(RequestError::InvalidExptime, noreply);
    };
    context.request(Request::Touch { key, exptime, noreply })
}

/// `flush_all [delay] [noreply]`.
fn parse_flush_all<'a>(context: &Context<'a>, args: Tokens<'a>) -> Parsed<'a> {
    let noreply = ends_with_noreply(context.line);
    let ([delay, _], count) = collect::<2>(args);
    let delay = match count - usize::from(noreply) {
        0 => None,
        1 => match parse_i64(delay) {
            Some(delay) => Some(delay),
            None => return context.reject(RequestError::InvalidExptime, noreply),
        },
        _ => return context.reject(RequestError::BadFormat, noreply),
    };
    context.request(Request::FlushAll { delay, noreply })
}

/// `verbosity <level> [noreply]`.
fn parse_verbosity<'a>(context: &Context<'a>, args: Tokens<'a>) -> Parsed<'a> {
    let noreply = ends_with_noreply(context.line);
    let ([level], count) = collect::<1>(args);
    if count != 1 + usize::from(noreply) {
        return context.reject(RequestError::BadFormat, noreply);
    }
    match parse_u32(level) {
        Some(level) => context.request(Request::Verbosity { level, noreply }),
        None => context.reject(RequestError::BadFormat, noreply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<Parsed<'_>, FatalError> {
        static LIMITS: Limits = Limits {
            max_key_bytes: 250,
            max_value_bytes: 100,
            max_line_bytes: 512,
        };
        parse_request(buf, &LIMITS)
    }

    fn rejected(buf: &[u8]) -> (RequestError, bool, usize) {
        match parse(buf) {
            Ok(Parsed::Reject {
                error,
                noreply,
                consumed,
            }) => (error, noreply, consumed),
            other => panic!(
                "expected a reject for {:?}, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    #[test]
    fn get_borrows_its_keys() {
        let buf = b"get a bb  ccc\r\nnext";
        let Ok(Parsed::Request {
            request: Request::Get(get),
            consumed,
        }) = parse(buf)
        else {
            panic!("not a get")
        };
        assert_eq!(consumed, 15);
        assert!(!get.cas && get.touch.is_none());
        assert_eq!(get.keys.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"bb", b"ccc"]);
        assert_eq!(get.keys.len(), 3);
    }

    #[test]
    fn any_number_of_keys_within_the_line() {
        let line = format!("get {}\r\n", vec!["k"; 200].join(" "));
        let Ok(Parsed::Request {
            request: Request::Get(get),
            consumed,
        }) = parse(line.as_bytes())
        else {
            panic!("not a get")
        };
        assert_eq!((get.keys.len(), consumed), (200, line.len()));
    }

    #[test]
    fn a_retrieval_past_the_line_limit_is_streamed() {
        let line = format!("gats 30 {}\r\n", vec!["key"; 300].join(" "));
        let buf = line.as_bytes();
        // Below the limit it waits like any line; at it, the command alone
        // is parsed and the keys are left to the stream.
        assert_eq!(parse(&buf[..511]), Ok(Parsed::Incomplete));
        let Ok(Parsed::LongGet { mut stream, consumed }) = parse(&buf[..512]) else {
            panic!("not streamed")
        };
        assert_eq!(
            parse(buf),
            Ok(Parsed::LongGet {
                stream: stream.clone(),
                consumed
            })
        );
        assert_eq!(consumed, 7);
        assert_eq!(
            (stream.cas(), stream.touch(), stream.command_name()),
            (true, Some(30), "gats")
        );
        let chunk = stream.parse(&buf[consumed..]);
        assert_eq!(chunk.keys.len(), 300);
        assert_eq!(chunk.consumed, buf.len() - consumed);
        assert_eq!(chunk.end, Some(crate::memcache::GetEnd::End));
        // Any other long line is still fatal.
        let set = format!("set {}", "k".repeat(600));
        assert_eq!(parse(set.as_bytes()), Err(FatalError::LineTooLong { limit: 512 }));
    }

    #[test]
    fn gat_takes_exptime_first() {
        let Ok(Parsed::Request {
            request: Request::Get(get),
            ..
        }) = parse(b"gats -1 k\n")
        else {
            panic!()
        };
        assert!(get.cas);
        assert_eq!(get.touch, Some(-1));
        assert_eq!(rejected(b"gat x k\r\n").0, RequestError::InvalidExptime);
        assert_eq!(rejected(b"gat 10\r\n").0, RequestError::BadFormat);
        assert_eq!(rejected(b"gat\r\n").0, RequestError::BadFormat);
    }

    #[test]
    fn get_errors() {
        assert_eq!(rejected(b"get\r\n"), (RequestError::BadFormat, false, 5));
        let long = [b"get ".as_slice(), &[b'k'; 251], b"\r\n"].concat();
        assert_eq!(rejected(&long).0, RequestError::BadFormat);
        assert_eq!(rejected(b"get a\x01b\r\n").0, RequestError::BadFormat);
    }

    #[test]
    fn set_waits_for_its_data() {
        assert_eq!(parse(b"set k 1 2 5\r\nhel"), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"set k 1 2 5\r\nhello\r"), Ok(Parsed::Incomplete));
        let Ok(Parsed::Request {
            request: Request::Store(store),
            consumed,
        }) = parse(b"set k 1 2 5\r\nhello\r\nget")
        else {
            panic!()
        };
        assert_eq!(consumed, 20);
        assert_eq!(
            store,
            Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: 1,
                exptime: 2,
                data: b"hello",
                noreply: false
            }
        );
    }

    #[test]
    fn set_bad_data_chunk_drops_the_block() {
        assert_eq!(
            rejected(b"set k 0 0 2\r\nabcd"),
            (RequestError::BadDataChunk, false, 17)
        );
        assert_eq!(
            rejected(b"set k 0 0 2 noreply\r\nab\n\n"),
            (RequestError::BadDataChunk, true, 25)
        );
    }

    #[test]
    fn too_large_swallows_before_data() {
        assert_eq!(
            parse(b"set k 0 0 101\r\n"),
            Ok(Parsed::Swallow {
                error: RequestError::TooLarge,
                noreply: false,
                consumed: 15,
                swallow: 103,
                too_large: Some(TooLarge {
                    key: Cow::Borrowed(b"k"),
                    replaces: true
                })
            })
        );
        assert_eq!(
            parse(b"ms k 101 T0\r\n"),
            Ok(Parsed::Swallow {
                error: RequestError::TooLarge,
                noreply: false,
                consumed: 13,
                swallow: 103,
                too_large: Some(TooLarge {
                    key: Cow::Borrowed(b"k"),
                    replaces: true
                })
            })
        );
    }

    #[test]
    fn store_line_errors() {
        assert_eq!(rejected(b"set k 0 0\r\n").0, RequestError::BadFormat);
        assert_eq!(rejected(b"set k 0 0 x\r\n").0, RequestError::BadFormat);
        assert_eq!(rejected(b"set k 0 0 -1\r\n").0, RequestError::BadFormat);
        assert_eq!(rejected(b"set k 0 0 2147483646\r\n").0, RequestError::BadFormat);
        for line in [
            &b"set k x 0 1\r\n"[..],
            b"set k 0 x 1\r\n",
            b"set k 0 0 1 x\r\n",
            b"cas k 0 0 1\r\n",
        ] {
            assert!(
                matches!(
                    parse(line),
                    Ok(Parsed::Swallow {
                        error: RequestError::BadFormat,
                        swallow: 3,
                        ..
                    })
                ),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(matches!(parse(b"set k 0 0 1 noreply\r\n"), Ok(Parsed::Incomplete)));
        assert!(matches!(
            parse(b"cas k 0 0 1 noreply\r\n"),
            Ok(Parsed::Swallow {
                error: RequestError::BadFormat,
                noreply: true,
                ..
            })
        ));
    }

    #[test]
    fn delete_accepts_the_legacy_zero() {
        for (line, noreply) in [
            (&b"delete k\r\n"[..], false),
            (b"delete k 0\r\n", false),
            (b"delete k noreply\r\n", true),
            (b"delete k 0 noreply\r\n", true),
        ] {
            assert_eq!(
                parse(line),
                Ok(Parsed::Request {
                    request: Request::Delete { key: b"k", noreply },
                    consumed: line.len()
                })
            );
        }
        assert_eq!(rejected(b"delete k 1\r\n").0, RequestError::DeleteUsage);
        assert_eq!(rejected(b"delete k 0 0\r\n").0, RequestError::DeleteUsage);
        assert_eq!(rejected(b"delete\r\n").0, RequestError::BadFormat);
    }

    #[test]
    fn arithmetic_touch_flush_verbosity() {
        let Ok(Parsed::Request { request, .. }) = parse(b"decr k 18446744073709551615 noreply\r\n") else {
            panic!()
        };
        assert_eq!(
            request,
            Request::Arithmetic {
                op: ArithmeticOp::Decr,
                key: b"k",
                delta: u64::MAX,
                noreply: true
            }
        );
        assert_eq!(rejected(b"incr k -1\r\n").0, RequestError::InvalidDelta);
        assert_eq!(rejected(b"incr k 1 2\r\n").0, RequestError::BadFormat);
        assert_eq!(rejected(b"touch k z\r\n").0, RequestError::InvalidExptime);
        assert_eq!(rejected(b"flush_all x\r\n").0, RequestError::InvalidExptime);
        assert_eq!(rejected(b"flush_all 1 2\r\n").0, RequestError::BadFormat);
        let Ok(Parsed::Request { request, .. }) = parse(b"flush_all noreply\r\n") else {
            panic!()
        };
        assert_eq!(
            request,
            Request::FlushAll {
                delay: None,
                noreply: true
            }
        );
        let Ok(Parsed::Request { request, .. }) = parse(b"flush_all 10\r\n") else {
            panic!()
        };
        assert_eq!(
            request,
            Request::FlushAll {
                delay: Some(10),
                noreply: false
            }
        );
        assert_eq!(rejected(b"verbosity\r\n").0, RequestError::BadFormat);
        assert_eq!(
            rejected(b"verbosity x noreply\r\n"),
            (RequestError::BadFormat, true, 21)
        );
    }

    #[test]
    fn unknown_empty_and_fatal_lines() {
        assert_eq!(rejected(b"\r\n"), (RequestError::UnknownCommand, false, 2));
        assert_eq!(rejected(b"   \n"), (RequestError::UnknownCommand, false, 4));
        assert_eq!(rejected(b"bogus a b\r\n").0, RequestError::UnknownCommand);
        assert_eq!(rejected(b"GET\r\n").0, RequestError::UnknownCommand);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(FatalError::Http));
        assert_eq!(parse(b"\x80\x00"), Err(FatalError::BinaryProtocol));
        assert_eq!(parse(&[b'a'; 511]), Ok(Parsed::Incomplete));
        assert_eq!(parse(&[b'a'; 512]), Err(FatalError::LineTooLong { limit: 512 }));
        assert_eq!(parse(b""), Ok(Parsed::Incomplete));
    }

    #[test]
    fn stats_version_quit() {
        let Ok(Parsed::Request { request, .. }) = parse(b"stats\r\n") else {
            panic!()
        };
        assert_eq!(request, Request::Stats { args: None });
        let Ok(Parsed::Request { request, .. }) = parse(b"stats  detail on \r\n") else {
            panic!()
        };
        assert_eq!(
            request,
            Request::Stats {
                args: Some(b"detail on")
            }
        );
        let Ok(Parsed::Request { request, .. }) = parse(b"version extra\r\n") else {
            panic!()
        };
        assert_eq!(request, Request::Version);
        let Ok(Parsed::Request { request, .. }) = parse(b"quit\n") else {
            panic!()
        };
        assert_eq!(request, Request::Quit);
    }

    #[test]
    fn discard_counts_down() {
        let mut discard = Discard::new(10);
        assert_eq!(discard.take(4), 4);
        assert_eq!(discard.remaining(), 6);
        assert_eq!(discard.take(100), 6);
        assert!(discard.is_done());
        assert_eq!(discard.take(5), 0);
    }
}
