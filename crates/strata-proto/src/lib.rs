//! # strata-proto
//!
//! The wire protocols strata speaks, as pure codecs: bytes in, requests out
//! (server side); replies in, values out (client side); and encoders for
//! both directions. No sockets, no store: the server joins these to the
//! engine, the client to the network.
//!
//! Every parser takes limits and refuses oversized input *before* buffering
//! it: a bulk length, an argument count, a line or a value larger than the
//! limit is an error as soon as its header is complete. An incomplete
//! request is not an error: the parser says so and the caller reads more.
//!
//! # Layout
//!
//! - [`resp`]: RESP2 and RESP3 (Redis), including inline commands.
//! - [`memcache`]: memcached's text protocol and its meta commands.

pub mod memcache;
pub mod resp;
