//! memcached's text protocol and its meta commands, as a pure codec.
//!
//! The authority is memcached 1.6's `doc/protocol.txt`; where it is silent,
//! memcached's own parser (`proto_text.c`, `proto_parser.c`, `mcmc.c`) is:
//! reply strings, which errors keep the connection and which close it, when
//! a refused value is swallowed. The few places where strata differs are
//! listed below.
//!
//! # Server side
//!
//! [`parse_request`] turns the start of a read buffer into a [`Parsed`]:
//! incomplete, a [`Request`] borrowing from the buffer, a refusal with its
//! reply line, a refusal whose value must be swallowed unbuffered, or the
//! start of a retrieval line too long to buffer, whose keys a [`GetStream`]
//! then hands out as they arrive. Fatal input (an endless line that is not
//! a retrieval, the binary protocol, HTTP) is an `Err`. The reply encoders
//! in [`encode`] append replies to a `Vec<u8>` without allocating.
//!
//! ```
//! use strata_proto::memcache::{Limits, Parsed, Request, parse_request};
//!
//! let limits = Limits::default();
//! let buf = b"set greeting 0 60 5\r\nhello\r\nget greeting\r\n";
//! let Ok(Parsed::Request { request: Request::Store(store), consumed }) = parse_request(buf, &limits) else {
//!     panic!("expected a set");
//! };
//! assert_eq!((store.key, store.data, consumed), (&b"greeting"[..], &b"hello"[..], 28));
//! let Ok(Parsed::Request { request: Request::Get(get), .. }) = parse_request(&buf[consumed..], &limits) else {
//!     panic!("expected a get");
//! };
//! assert_eq!(get.keys.iter().next(), Some(&b"greeting"[..]));
//! ```
//!
//! # Client side
//!
//! The encoders in [`client`] write requests; a [`ResponseDecoder`] reads
//! the reply to each, incrementally and within [`ResponseLimits`].
//!
//! # Where strata differs from memcached
//!
//! memcached 1.6 changed its parser in 1.6.40 (`proto_parser.c`); where the
//! two disagree strata takes the stricter reading, and where memcached is
//! looser than protocol.txt, protocol.txt wins:
//!
//! - Keys with control characters (below `0x21`, and `0x7f`) are refused
//!   with `CLIENT_ERROR bad command line format`; protocol.txt forbids
//!   them, memcached splits on spaces only and stores them.
//! - Too few *or too many* arguments are `CLIENT_ERROR bad command line
//!   format` (1.6.40+ says so for too few and ignores extras; earlier 1.6
//!   answered `ERROR`). `version`, `quit` and `mn` ignore extras, as memcached.
//! - `delete <key> 0 [noreply]` is accepted, as up to 1.6.39 (1.6.40+
//!   dropped the check and ignores any extra token).
//! - One line limit ([`Limits::max_line_bytes`], 64 KiB by default) for
//!   every command but the retrievals; memcached closes at 2048 bytes
//!   without a newline except for `get`/`gets`. Retrieval lines (`get`,
//!   `gets`, and also `gat`, `gats`, which memcached limits) may be of any
//!   length and any number of keys, as memcached's `get`/`gets`; but where
//!   memcached buffers the whole line, strata answers the keys of a line
//!   past the limit as they arrive ([`GetStream`]), so a connection's
//!   memory stays bounded. A bad key in such a streamed line ends the reply
//!   with `CLIENT_ERROR bad command line format` after the values of the
//!   keys before it (which were already sent); in a line within the limit
//!   it is the whole reply, as in memcached. A streamed `gat`/`gats` whose
//!   exptime is not a number is closed as an over-long line.
//! - The value limit applies to the data length; memcached's `-I` limit
//!   counts the whole item (key, header and data).
//! - Exptimes are `i64`; memcached refuses values outside `i32`.
//! - Base64 keys (`b`) must be canonical padded base64; memcached's decoder
//!   skips stray characters. An opaque (`O`) may be 32 bytes as documented
//!   (memcached's check counts the `O`, allowing 31). `M` takes exactly one
//!   character, as up to 1.6.39. A key that is too long on `ma` is `bad
//!   command line format`, as up to 1.6.39 (1.6.40+ folds it into `invalid
//!   or duplicate flag`).
//! - A request starting with the binary protocol's magic byte closes the
//!   connection; strata does not speak the binary protocol.
//!
//! # Layout
//!
//! - `line.rs`: lines, tokens, strict numbers, number formatting.
//! - [`request`]: [`Request`] and its parts, [`Limits`], [`Expiration`].
//! - `parse.rs`: [`parse_request`], [`Parsed`], [`Discard`]; the classic
//!   commands.
//! - `stream.rs`: [`GetStream`], retrieval lines longer than the line limit.
//! - `meta.rs`: the meta commands and [`MetaFlags`].
//! - [`encode`]: server-side reply encoders (the client side parses
//!   replies in `response.rs`), [`MetaReply`].
//! - [`client`]: client-side request encoders.
//! - [`response`]: client-side [`Response`] types, [`ResponseDecoder`],
//!   [`encode_response`].
//! - `error.rs`: [`RequestError`], [`FatalError`], [`ResponseError`].

pub mod client;
pub mod encode;
mod error;
mod line;
mod meta;
mod parse;
pub mod request;
pub mod response;
mod stream;

pub use client::{MetaArg, encode_request};
pub use encode::{Field, MetaCode, MetaReply, Status};
pub use error::{FatalError, RequestError, ResponseError};
pub use meta::{MAX_META_FLAGS, MAX_OPAQUE_BYTES, MetaFlag, MetaFlags, MetaFlagsIter};
pub use parse::{Discard, MAX_DATA_LEN, Parsed, TooLarge, parse_request};
pub use request::{
    ArithmeticOp, Expiration, Get, KEY_MAX_BYTES, Keys, KeysIter, Limits, MAX_RELATIVE_EXPTIME, Meta, MetaArithmetic,
    MetaSet, Request, SetMode, Store, StoreCommand, exptime_for_ttl,
};
pub use response::{
    MetaDebug, MetaResponse, Progress, ReplyKind, Response, ResponseDecoder, ResponseLimits, ReturnedFlag, Stat, Value,
    encode_response, parse_response,
};
pub use stream::{GetChunk, GetEnd, GetStream};
