//! # strata-session
//!
//! The session layer every strata port shares: the accept loop
//! ([`accept_loop`]) and the connection loop ([`serve`]), in the spirit of
//! pelikan's `session` crate and mini-redis's `Connection`. The server's
//! RESP and memcached ports and the proxy's two front doors all run on it;
//! a protocol only supplies a [`Session`]: its per-connection state and a
//! function from the bytes read so far to replies.
//!
//! # The accept loop
//!
//! Accepts until shutdown; refuses connections past the limit (a
//! semaphore shared by every port that counts together) with the
//! protocol's refusal message; backs off briefly when `accept` fails (out
//! of file descriptors: without the pause the loop would spin); on
//! shutdown stops accepting and waits for every connection to finish what
//! it has read.
//!
//! # The connection loop
//!
//! Read into one buffer; hand the [`Session`] everything read so far; it
//! parses and executes every *complete* request at the front, appending
//! replies to one output buffer, and says how many bytes it used
//! ([`Outcome`]); write that buffer once; repeat. So a pipeline of N
//! requests that arrives in one read costs one parse pass and one `write`.
//! Partial requests stay in the buffer until the rest arrives. Processing
//! may be asynchronous (the proxy awaits the cluster); a synchronous
//! session returns a ready future.
//!
//! The read buffer is bounded ([`Limits::max_buffer`]): the parsers refuse
//! any request whose declared size exceeds the protocol's limits as soon as
//! its header is in, so a buffer past the bound means a bug and the
//! connection is closed. Idle connections are closed after
//! [`Limits::idle_timeout`]. Oversized buffers are given back after use.
//!
//! The output buffer is bounded too: a session stops taking requests once
//! [`OUTPUT_CHUNK`] bytes of replies are buffered, the loop writes them and
//! hands the session the rest of what was read, without reading more. A
//! client that pipelines requests and never reads the replies therefore
//! holds at most one chunk plus one reply of the server's memory (its
//! requests wait in the socket and the bounded read buffer); what one
//! reply may grow to is the protocol's business (the server closes a
//! connection whose reply passes its reply limit).
//!
//! A session may have a push inbox ([`Inbox`]): messages sent to the
//! connection unasked (RESP3 invalidations, pub/sub). The loop waits on it
//! beside the socket and writes pushes only between batches — those queued
//! while a batch ran go out right after its replies, never inside one. A
//! writer that finds the queue full cancels the inbox's kill token, which
//! stops the loop even while it is stuck writing to a client that does not
//! read.
//!
//! Shutdown stops reading; requests already read have been executed and
//! their replies written, so nothing in flight is lost.
//!
//! # Authentication and TLS
//!
//! [`auth`] holds what every password check shares: the constant-time
//! comparison, Redis's and memcached's reply texts, and the bound on
//! failed attempts per connection ([`auth::Attempts`]). Each protocol
//! keeps its own rule for what may run before authentication.
//!
//! [`tls`]: a port is made TLS by putting a [`TlsAcceptor`] (certificate
//! and key PEM files, optionally a CA for client certificates) in its
//! [`Gate`]. The accept loop hands each connection over as an
//! [`Incoming`]; [`Incoming::open`], on the connection's own task, runs
//! the handshake within a deadline and yields the [`Stream`] — plain TCP or
//! TLS — that the connection loop serves. A failed handshake is logged at
//! debug and counted by the acceptor. [`tls::TlsListener`] does the same
//! for an axum router (the request node's HTTP API).
//!
//! # Beside the sessions
//!
//! The rest of the plumbing every strata process shares, written once:
//! [`admin`], the one way to serve Prometheus `/metrics` (and `/healthz`);
//! [`process`], `/proc` readings (CPU time and resident memory, of this
//! process or another); [`secret`], [`Secret`], the one type for every
//! password strata holds.
//!
//! # Layout
//!
//! - `listener.rs`: the accept loop and its [`Gate`].
//! - `connection.rs`: the connection loop.
//! - [`auth`]: password checks.
//! - [`tls`]: certificates, handshakes, [`Stream`], [`tls::TlsListener`];
//!   with the `testing` feature, throwaway certificates for tests
//!   (`tls::testing`).
//! - [`admin`], [`process`], [`secret`].

pub mod admin;
pub mod auth;
mod connection;
mod listener;
pub mod process;
pub mod secret;
pub mod tls;

pub use connection::{ClientMemory, Limits, OUTPUT_CHUNK, serve};
pub use listener::{Gate, accept_loop};
pub use secret::Secret;
pub use tls::{Incoming, Stream, TlsAcceptor, TlsConnector, TlsError, TlsFiles};

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// What a session did with the bytes it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes at the front of the input that were fully handled.
    pub consumed: usize,
    /// Close the connection once the replies so far are written.
    pub close: bool,
}

/// One protocol's per-connection state and request execution.
pub trait Session: Send {
    /// The connection's push queue; [`NoInbox`] for a protocol without
    /// pushes.
    type Inbox: Inbox;

    /// Parses and executes the complete requests at the front of `input`,
    /// appending their replies to `out`. A synchronous session returns
    /// `std::future::ready(outcome)`.
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> impl Future<Output = Outcome> + Send;

    /// Called after every batch (and once when the connection ends), e.g.
    /// to flush per-connection statistics.
    fn batch_done(&mut self) {}

    /// The connection's push queue, taken once by the loop; `None` for a
    /// protocol without pushes.
    fn take_inbox(&mut self) -> Option<Self::Inbox> {
        None
    }

    /// Appends `pushes` to `out` in the connection's current protocol,
    /// draining them.
    fn write_pushes(&mut self, pushes: &mut Vec<<Self::Inbox as Inbox>::Push>, _out: &mut Vec<u8>) {
        pushes.clear();
    }
}

/// A connection's queue of pushes: messages sent to the client unasked.
pub trait Inbox: Send {
    /// One push.
    type Push: Send;

    /// The next push; `None` once every sender is gone. Must be cancel
    /// safe (the loop waits on it beside the socket).
    fn recv(&mut self) -> impl Future<Output = Option<Self::Push>> + Send;

    /// A push already queued, if any.
    fn try_recv(&mut self) -> Option<Self::Push>;

    /// The token a writer cancels to cut this connection off.
    fn kill_token(&self) -> CancellationToken;
}

/// The inbox of a protocol without pushes (it cannot exist).
#[derive(Debug)]
pub enum NoInbox {}

impl Inbox for NoInbox {
    type Push = std::convert::Infallible;

    fn recv(&mut self) -> impl Future<Output = Option<Self::Push>> + Send {
        std::future::pending()
    }

    fn try_recv(&mut self) -> Option<Self::Push> {
        match *self {}
    }

    fn kill_token(&self) -> CancellationToken {
        match *self {}
    }
}
