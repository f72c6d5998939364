//! The memcached session: one client speaking memcached's text protocol
//! and its meta commands, as memcached 1.6 does.
//!
//! The codec (`strata_proto::memcache`) parses a request from the read
//! buffer without copying; this module executes it against the engine and
//! writes memcached's replies. Requests the codec refuses are answered with
//! memcached's own error lines; an oversized value is refused as soon as its
//! command line arrives and its data is then *swallowed* as it comes,
//! never buffered (memcached's `conn_swallow`).
//!
//! Retrieval lines (`get`, `gets`, `gat`, `gats`) may be of any length, as
//! memcached lets multigets be: one that outgrows the line limit is
//! streamed ([`GetStream`]) — each read's complete keys are answered at
//! once and their bytes dropped, so the read buffer holds at most one
//! partial key however long the line, and `END` goes out when the newline
//! arrives. Before authentication such a line is answered `CLIENT_ERROR
//! unauthenticated`, like a short one, and the rest of it is dropped as it
//! comes.
//!
//! Authentication follows memcached's ASCII auth: with `requirepass` set, a
//! connection must first send `set <any-key> 0 0 <len>` whose data is
//! `<user> <password>` (any user name; the password must match); until then
//! every command gets `CLIENT_ERROR unauthenticated`.
//!
//! A memcached connection never tracks keys, but every write it makes
//! (including an `mg` that vivifies or touches, and `flush_all`) reports
//! what it changed (`Shared::key_modified`), so RESP clients tracking those
//! keys are told.
//!
//! # Layout
//!
//! - `text.rs`: get/gets/gat/gats, storage commands, delete, incr/decr,
//!   touch, flush_all, stats, version, verbosity.
//! - `meta.rs`: mg, ms, md, ma, mn, me.

mod meta;
mod text;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use strata_proto::memcache::encode::{encode_end, encode_request_error};
use strata_proto::memcache::{Discard, Expiration, GetEnd, GetStream, Limits, Parsed, Request, parse_request};
use strata_store::Expiry;

use crate::Shared;
use crate::conn::{Outcome, Session};
use crate::metrics::LocalStats;

/// Command names for the metrics, indexed by [`command_index`].
pub(crate) static COMMAND_NAMES: &[&str] = &[
    "get",
    "gets",
    "gat",
    "gats",
    "set",
    "add",
    "replace",
    "append",
    "prepend",
    "cas",
    "delete",
    "incr",
    "decr",
    "touch",
    "flush_all",
    "version",
    "verbosity",
    "stats",
    "quit",
    "mg",
    "ms",
    "md",
    "ma",
    "mn",
    "me",
];

fn command_index(request: &Request<'_>) -> usize {
    name_index(match request {
        Request::Get(get) => get.command_name(),
        Request::Store(store) => store.command.name(),
        Request::Delete { .. } => "delete",
        Request::Arithmetic { op, .. } => op.name(),
        Request::Touch { .. } => "touch",
        Request::FlushAll { .. } => "flush_all",
        Request::Version => "version",
        Request::Verbosity { .. } => "verbosity",
        Request::Stats { .. } => "stats",
        Request::Quit => "quit",
        Request::MetaGet(_) => "mg",
        Request::MetaSet(_) => "ms",
        Request::MetaDelete(_) => "md",
        Request::MetaArithmetic(_) => "ma",
        Request::MetaNoop => "mn",
        Request::MetaDebug { .. } => "me",
    })
}

fn name_index(name: &str) -> usize {
    COMMAND_NAMES.iter().position(|&n| n == name).unwrap_or(0)
}

/// memcached's per-command counters that `stats` reports, shared by all
/// memcached connections.
#[derive(Debug, Default)]
pub(crate) struct McCounters {
    pub(crate) get_hits: AtomicU64,
    pub(crate) get_misses: AtomicU64,
    pub(crate) delete_hits: AtomicU64,
    pub(crate) delete_misses: AtomicU64,
    pub(crate) incr_hits: AtomicU64,
    pub(crate) incr_misses: AtomicU64,
    pub(crate) decr_hits: AtomicU64,
    pub(crate) decr_misses: AtomicU64,
    pub(crate) cas_hits: AtomicU64,
    pub(crate) cas_misses: AtomicU64,
    pub(crate) cas_badval: AtomicU64,
    pub(crate) touch_hits: AtomicU64,
    pub(crate) touch_misses: AtomicU64,
    pub(crate) auth_cmds: AtomicU64,
    pub(crate) auth_errors: AtomicU64,
    pub(crate) store_too_large: AtomicU64,
    pub(crate) flush_cmds: AtomicU64,
}

impl McCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One client connection speaking memcached.
pub(crate) struct McSession {
    shared: Arc<Shared>,
    limits: Limits,
    authenticated: bool,
    /// Failed auth attempts so far.
    auth_attempts: strata_session::auth::Attempts,
    /// The most one reply may take (`Config::reply_limit`).
    reply_limit: usize,
    /// Bytes of a refused value still to discard as they arrive.
    swallowing: Option<Discard>,
    /// A retrieval line too long to buffer, being answered as it arrives.
    streaming: Option<Streaming>,
}

/// A streamed retrieval and the time spent answering it so far (recorded
/// as one command when its line ends).
struct Streaming {
    stream: GetStream,
    nanos: u64,
}

impl McSession {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let (max_value, authenticated, reply_limit) = {
            let config = shared.config.read();
            (
                config.max_item_size.0,
                config.requirepass.is_none(),
                config.reply_limit(),
            )
        };
        Self {
            limits: Limits {
                max_value_bytes: usize::try_from(max_value).unwrap_or(usize::MAX),
                ..Limits::default()
            },
            shared,
            authenticated,
            auth_attempts: strata_session::auth::Attempts::default(),
            reply_limit,
            swallowing: None,
            streaming: None,
        }
    }

    /// A session whose lines stream past `max_line_bytes` (the fuzz target
    /// for streamed multigets makes nearly every `get` line stream).
    #[cfg(feature = "testing")]
    pub(crate) fn with_line_limit(shared: Arc<Shared>, max_line_bytes: usize) -> Self {
        let mut session = Self::new(shared);
        session.limits.max_line_bytes = max_line_bytes;
        session
    }

    /// Checks memcached's ASCII auth request; true to close the
    /// connection (too many failed attempts).
    fn authenticate(&mut self, request: &Request<'_>, out: &mut Vec<u8>) -> bool {
        let counters = &self.shared.memcache;
        match request {
            Request::Store(store) if store.command == strata_proto::memcache::StoreCommand::Set => {
                McCounters::bump(&counters.auth_cmds);
                if strata_session::auth::check_memcache(self.shared.requirepass().as_ref(), store.data) {
                    self.authenticated = true;
                    out.extend_from_slice(strata_session::auth::MEMCACHE_AUTH_OK);
                } else {
                    McCounters::bump(&counters.auth_errors);
                    self.shared.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
                    out.extend_from_slice(strata_session::auth::MEMCACHE_AUTH_FAILURE);
                    if self.auth_attempts.failed() {
                        tracing::warn!(
                            "closing a memcached connection after {} failed auth attempts",
                            self.auth_attempts.failures()
                        );
                        return true;
                    }
                }
            }
            _ => out.extend_from_slice(strata_session::auth::MEMCACHE_UNAUTHENTICATED),
        }
        false
    }
}

/// Resolves a memcached exptime into the store's terms: `None` for
/// "already expired".
pub(crate) fn expiry(shared: &Shared, exptime: i64) -> Option<Expiry> {
    let now_secs = shared.store.clock().now_ms() / 1000;
    match Expiration::from_exptime(exptime, now_secs) {
        Expiration::Never => Some(Expiry::Never),
        Expiration::Expired => None,
        Expiration::AtUnixSecs(secs) => Some(Expiry::AtMs(secs.saturating_mul(1000))),
    }
}

/// An expiry already in the past: the store treats the item as gone at
/// once (and reclaims it), as memcached does with a negative exptime.
pub(crate) const EXPIRED: Expiry = Expiry::AtMs(1);

impl Session for McSession {
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>, stats: &mut LocalStats) -> Outcome {
        self.shared.run_due_flush();
        let mut consumed = 0;
        loop {
            if let Some(discard) = &mut self.swallowing {
                consumed += discard.take(input.len() - consumed);
                if !discard.is_done() {
                    return Outcome { consumed, close: false };
                }
                self.swallowing = None;
            }
            if let Some(streaming) = &mut self.streaming {
                // A few keys at a time, until a chunk of replies is due for
                // writing: one long line must not build one huge reply.
                loop {
                    let used = stream_keys(&self.shared, streaming, &input[consumed..], out);
                    consumed += used;
                    if streaming.stream.is_done() || used == 0 || out.len() >= strata_session::OUTPUT_CHUNK {
                        break;
                    }
                }
                if !streaming.stream.is_done() {
                    return Outcome { consumed, close: false };
                }
                stats.record(name_index(streaming.stream.command_name()), streaming.nanos);
                self.streaming = None;
                continue;
            }
            if out.len() >= strata_session::OUTPUT_CHUNK {
                // Let the loop write these replies before taking more.
                return Outcome { consumed, close: false };
            }
            let parsed = match parse_request(&input[consumed..], &self.limits) {
                Ok(parsed) => parsed,
                Err(fatal) => {
                    self.shared.metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    // HTTP gets no answer at all (see `FatalError::reply_line`).
                    if let Some(line) = fatal.reply_line() {
                        out.extend_from_slice(line.as_bytes());
                    }
                    return Outcome {
                        consumed: input.len(),
                        close: true,
                    };
                }
            };
            match parsed {
                Parsed::Incomplete => return Outcome { consumed, close: false },
                Parsed::Request {
                    request,
                    consumed: used,
                } => {
                    let started = Instant::now();
                    let reply_start = out.len();
                    let close = if self.authenticated {
                        self.execute(&request, out)
                    } else {
                        self.authenticate(&request, out)
                    };
                    stats.record(command_index(&request), started.elapsed().as_nanos() as u64);
                    consumed += used;
                    let command = || COMMAND_NAMES[command_index(&request)].to_owned();
                    if self
                        .shared
                        .reply_over_limit(out, reply_start, self.reply_limit, command)
                    {
                        return Outcome { consumed, close: true };
                    }
                    if close {
                        return Outcome { consumed, close: true };
                    }
                }
                Parsed::Reject {
                    error,
                    noreply,
                    consumed: used,
                } => {
                    self.shared.metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    if !noreply {
                        encode_request_error(out, error);
                    }
                    consumed += used;
                }
                Parsed::Swallow {
                    error,
                    noreply,
                    consumed: used,
                    swallow,
                    too_large,
                } => {
                    if error == strata_proto::memcache::RequestError::TooLarge {
                        McCounters::bump(&self.shared.memcache.store_too_large);
                        if let Some(refused) = too_large.filter(|refused| refused.replaces && self.authenticated) {
                            self.shared.remove_refused(&refused.key, crate::tracking::NO_CLIENT);
                        }
                    } else {
                        self.shared.metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    if !noreply {
                        encode_request_error(out, error);
                    }
                    consumed += used;
                    self.swallowing = Some(Discard::new(swallow));
                }
                Parsed::LongGet {
                    mut stream,
                    consumed: used,
                } => {
                    if !self.authenticated {
                        out.extend_from_slice(strata_session::auth::MEMCACHE_UNAUTHENTICATED);
                        stream.abandon();
                    }
                    consumed += used;
                    self.streaming = Some(Streaming { stream, nanos: 0 });
                }
            }
        }
    }
}

/// Answers the keys of a streamed retrieval that have arrived in
/// `input`, and its `END` (or error) once the line ends; the bytes used.
///
/// One key per call: the slice handed to the parser ends just after the
/// first space (no key is cut), so the caller, checking its output between
/// calls, builds at most one item's reply past its output chunk, however
/// long the line and however large the items. The scan stops there too, so
/// a line costs time linear in its length.
fn stream_keys(shared: &Shared, streaming: &mut Streaming, input: &[u8], out: &mut Vec<u8>) -> usize {
    let started = Instant::now();
    let step_end = input
        .iter()
        .enumerate()
        .skip_while(|&(_, &b)| b == b' ')
        .find(|&(_, &b)| b == b' ' || b == b'\n')
        .map_or(input.len(), |(at, _)| at + 1);
    let chunk = streaming.stream.parse(&input[..step_end]);
    let stream = &streaming.stream;
    text::retrieve_keys(shared, chunk.keys, stream.cas(), stream.touch(), out);
    match chunk.end {
        None => {}
        Some(GetEnd::End) => encode_end(out),
        Some(GetEnd::Refused(error)) => {
            shared.metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
            encode_request_error(out, error);
        }
    }
    streaming.nanos = streaming
        .nanos
        .saturating_add(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
    chunk.consumed
}

impl McSession {
    /// Runs one request; true to close the connection.
    fn execute(&mut self, request: &Request<'_>, out: &mut Vec<u8>) -> bool {
        let shared = &*self.shared;
        match request {
            Request::Quit => return true,
            Request::MetaGet(meta) => meta::mg(shared, meta, out),
            Request::MetaSet(set) => meta::ms(shared, set, out),
            Request::MetaDelete(meta) => meta::md(shared, meta, out),
            Request::MetaArithmetic(ma) => meta::ma(shared, ma, out),
            Request::MetaNoop => out.extend_from_slice(b"MN\r\n"),
            Request::MetaDebug { key, binary } => meta::me(shared, key, *binary, out),
            other => text::execute(shared, other, out),
        }
        false
    }
}
