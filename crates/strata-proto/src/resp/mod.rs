//! RESP2 and RESP3, the Redis protocol, as Redis 7 speaks it.
//!
//! Both directions, as pure codecs over byte slices:
//!
//! - **Server side.** [`parse_request`] reads one request (multibulk or
//!   inline) from a buffer into a reusable [`Args`], under [`Limits`], with
//!   Redis's own error texts ([`ParseError`]). [`Encoder`] writes replies in
//!   the connection's [`Protocol`] version.
//! - **Client side.** [`encode_command`] writes a command; [`parse_reply`]
//!   reads any RESP2 or RESP3 reply into an owned [`Reply`], under
//!   [`ReplyLimits`].
//!
//! A connection starts in RESP2; `HELLO 3` switches it to RESP3 (see
//! [`Protocol::from_hello`]). Requests look the same in both versions; only
//! replies differ.
//!
//! The server loop this is shaped for:
//!
//! ```
//! use strata_proto::resp::{parse_request, Args, Encoder, Limits, Protocol};
//!
//! let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
//! let (limits, mut args, mut out) = (Limits::default(), Args::new(), Vec::new());
//! let mut pos = 0;
//! while let Some(used) = parse_request(&input[pos..], &limits, &mut args).expect("valid") {
//!     let request = &input[pos..];
//!     let mut reply = Encoder::new(&mut out, Protocol::Resp2);
//!     if args.command_is(request, b"get") {
//!         reply.null();
//!     } else if args.command_is(request, b"ping") {
//!         reply.simple(b"PONG");
//!     }
//!     pos += used;
//! }
//! assert_eq!(out, b"$-1\r\n+PONG\r\n");
//! ```
//!
//! # Layout
//!
//! - [`request`]: server side parsing: [`Limits`], [`Args`],
//!   [`parse_request`], command-name helpers.
//! - `inline.rs`: splitting inline command lines with Redis's quoting rules.
//! - [`encode`]: [`Encoder`] for replies, [`encode_command`] for commands.
//! - [`reply`]: client side parsing: [`Reply`], [`ReplyLimits`],
//!   [`parse_reply`].
//! - `number.rs`: Redis's strict integers ([`parse_strict_i64`],
//!   shared by the server and the proxy), allocation-free integer and
//!   double formatting ([`write_double`]).
//! - [`command`]: typed options of SET, GETEX and the EXPIRE family
//!   ([`SetOptions`]), parsed once with Redis's error texts.
//! - [`error`]: [`ParseError`], with Redis's message texts.

pub mod command;
pub mod encode;
pub mod error;
mod inline;
mod number;
pub mod reply;
pub mod request;

pub use command::{CommandError, ExpireFlags, GetExOptions, SetOptions, keys_replaced_by};
pub use encode::{Encoder, encode_command};
pub use error::ParseError;
pub use number::{parse_strict_i64, write_double};
pub use reply::{Reply, ReplyLimits, parse_reply};
pub use request::{Args, Limits, MAX_COMMAND_NAME_LEN, Oversized, Swallow, parse_request, uppercase_command};

/// The protocol version of a connection, which decides how replies are
/// encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RESP2, every connection's version until `HELLO 3`.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The version `HELLO <protover>` asks for, if supported: 2 or 3.
    pub fn from_hello(protover: i64) -> Option<Self> {
        match protover {
            2 => Some(Self::Resp2),
            3 => Some(Self::Resp3),
            _ => None,
        }
    }

    /// The version's number, as `HELLO` reports it in `proto`.
    pub fn version(self) -> i64 {
        match self {
            Self::Resp2 => 2,
            Self::Resp3 => 3,
        }
    }
}
