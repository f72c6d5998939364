//! The RESP session: one client speaking the Redis protocol.
//!
//! A request is parsed from the connection's buffer into reusable argument
//! ranges (no allocation), its command looked up in [`COMMANDS`] (one table
//! with Redis's arity and key positions, also what `COMMAND` reports), its
//! arity checked, then its handler writes the reply straight into the
//! connection's output buffer in the client's protocol version.
//!
//! Errors use Redis's wording so clients map them: `-ERR unknown command`,
//! `-ERR wrong number of arguments for 'x' command`, `-ERR syntax error`,
//! `-ERR value is not an integer or out of range`, `-NOAUTH …`,
//! `-WRONGPASS …`, `-NOPROTO …`.
//!
//! # Layout
//!
//! - `strings.rs`: the string commands (GET, SET, INCR, APPEND, LCS, …).
//! - `keys.rs`: the generic keyspace (DEL, EXPIRE, TTL, RENAME, SCAN, …).
//! - `info.rs`: connection and server commands (HELLO, AUTH, INFO,
//!   CONFIG, CLIENT, COMMAND, …).
//! - `tracking.rs`: CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO.
//! - `pubsub.rs`: SUBSCRIBE, PSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH,
//!   PUBSUB.
//! - `lease.rs`: strata's lease commands (LGET, LSET, LINVALIDATE).
//!
//! Every command that changes a key reports it (`Ctx::modified`) after
//! the change, for client tracking; a tracking connection's reads are
//! recorded before they run, from the command table's key positions
//! ([`TRACKED_READS`]). A session also encodes the pushes queued for its
//! connection (invalidations, pub/sub messages) in its current protocol.

mod info;

mod keys;
mod lease;
mod pubsub;
mod strings;
mod tracking;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use bytes::Bytes;
use strata_proto::resp::{Args, Encoder, Limits, Protocol, Swallow, keys_replaced_by, parse_request, parse_strict_i64};
use strata_store::StoreError;

use crate::Shared;
use crate::conn::{Outcome, Session};
use crate::metrics::LocalStats;
use crate::push::{Inbox, Push};

/// What a handler tells the connection to do after its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// The state of one client connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) protocol: Protocol,
    pub(crate) authenticated: bool,
    /// Failed password checks so far (bounded by
    /// `strata_session::auth::MAX_AUTH_FAILURES`).
    pub(crate) auth_attempts: strata_session::auth::Attempts,
    pub(crate) name: Option<Vec<u8>>,
    pub(crate) lib_name: Option<Vec<u8>>,
    pub(crate) lib_ver: Option<Vec<u8>>,
    pub(crate) created: Instant,
    /// Client tracking's options, if it is on (a copy of what the shared
    /// registry holds, so reads check it without a lock).
    pub(crate) tracking: Option<crate::tracking::Options>,
    /// `CLIENT CACHING YES|NO` was given for the next command.
    pub(crate) caching: bool,
    /// Pub/sub channels and patterns subscribed to.
    pub(crate) channels: HashSet<Bytes>,
    pub(crate) patterns: HashSet<Bytes>,
}

impl Conn {
    /// Subscriptions of both kinds: RESP2 is in pub/sub mode while non-zero.
    pub(crate) fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// True if a read by this connection now is to be tracked.
    fn tracks_reads(&self) -> bool {
        match self.tracking {
            Some(options) if !options.bcast => (!options.optin || self.caching) && !(options.optout && self.caching),
            _ => false,
        }
    }
}

/// Everything a command handler sees.
pub(crate) struct Ctx<'a> {
    args: &'a Args,
    buf: &'a [u8],
    pub(crate) conn: &'a mut Conn,
    pub(crate) shared: &'a Shared,
    pub(crate) out: Encoder<'a>,
    /// The command's table entry.
    pub(crate) command: &'static Command,
    /// Where this command's reply starts in the output buffer, and the
    /// most it may take (see `Config::reply_buffer_limit`).
    reply_start: usize,
    reply_limit: usize,
}

impl<'a> Ctx<'a> {
    /// Argument `i` (0 is the command name).
    pub(crate) fn arg(&self, i: usize) -> &'a [u8] {
        self.args.get(self.buf, i)
    }

    /// Number of arguments, command name included.
    pub(crate) fn argc(&self) -> usize {
        self.args.len()
    }

    /// Arguments from `i` on.
    pub(crate) fn args_from(&self, i: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        (i..self.argc()).map(move |j| self.arg(j))
    }

    /// True if argument `i` equals `word`, ignoring ASCII case.
    pub(crate) fn arg_is(&self, i: usize, word: &str) -> bool {
        self.arg(i).eq_ignore_ascii_case(word.as_bytes())
    }

    /// Whether this command's reply has passed the reply limit: a handler
    /// building a reply from many values stops adding to it then (the
    /// session discards the reply and closes the connection).
    pub(crate) fn reply_over_limit(&self) -> bool {
        self.out.buffered() - self.reply_start > self.reply_limit
    }

    /// Reports that `key` changed (call after the change), for client
    /// tracking.
    #[inline]
    pub(crate) fn modified(&self, key: &[u8]) {
        self.shared.key_modified(key, self.conn.id);
    }

    /// Replies `-ERR syntax error`.
    pub(crate) fn syntax_error(&mut self) {
        self.out.error(b"ERR syntax error");
    }

    /// Replies with Redis's error for a store error. A value refused as
    /// too large also removes the old values of the keys the command would
    /// have replaced (`keys_replaced_by`, `Shared::remove_refused`).
    pub(crate) fn store_error(&mut self, error: &StoreError) {
        if matches!(error, StoreError::TooLarge { .. }) {
            let args: Vec<Option<&[u8]>> = (0..self.argc()).map(|i| Some(self.arg(i))).collect();
            for key in keys_replaced_by(&args) {
                self.shared.remove_refused(key, self.conn.id);
            }
        }
        let text: &[u8] = match error {
            StoreError::TooLarge { .. } => b"ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            StoreError::NotAnInteger => b"ERR value is not an integer or out of range",
            StoreError::Overflow => b"ERR increment or decrement would overflow",
            StoreError::NotFound => b"ERR no such key",
            StoreError::LeaseInvalid => b"LEASE token is no longer valid",
            StoreError::NotStored | StoreError::Exists => b"ERR not stored",
            StoreError::Unsupported(_) => b"ERR not supported",
        };
        self.out.error(text);
    }

    /// Parses argument `i` as a Redis integer, replying the Redis error if
    /// it is not one.
    pub(crate) fn int_arg(&mut self, i: usize) -> Option<i64> {
        match parse_strict_i64(self.arg(i)) {
            Some(n) => Some(n),
            None => {
                self.out.error(b"ERR value is not an integer or out of range");
                None
            }
        }
    }
}

/// A command: name, Redis arity and key positions (as `COMMAND` reports
/// them), flags, and its handler.
pub(crate) struct Command {
    pub(crate) name: &'static str,
    /// Positive: exact argument count; negative: at least that many.
    pub(crate) arity: i32,
    pub(crate) flags: &'static [&'static str],
    pub(crate) first_key: i32,
    pub(crate) last_key: i32,
    pub(crate) step: i32,
    handler: fn(&mut Ctx<'_>) -> Flow,
    /// May run before AUTH.
    no_auth: bool,
}

macro_rules! cmd {
    ($name:literal, $arity:expr, [$($flag:literal),*], $first:expr, $last:expr, $step:expr, $handler:path) => {
        Command { name: $name, arity: $arity, flags: &[$($flag),*], first_key: $first, last_key: $last, step: $step, handler: $handler, no_auth: false }
    };
    ($name:literal, $arity:expr, [$($flag:literal),*], $first:expr, $last:expr, $step:expr, $handler:path, no_auth) => {
        Command { name: $name, arity: $arity, flags: &[$($flag),*], first_key: $first, last_key: $last, step: $step, handler: $handler, no_auth: true }
    };
}

/// Every RESP command strata serves.
pub(crate) static COMMANDS: &[Command] = &[
    // strings
    cmd!("get", 2, ["readonly", "fast"], 1, 1, 1, strings::get),
    cmd!("set", -3, ["write", "denyoom"], 1, 1, 1, strings::set),
    cmd!("setnx", 3, ["write", "denyoom", "fast"], 1, 1, 1, strings::setnx),
    cmd!("setex", 4, ["write", "denyoom"], 1, 1, 1, strings::setex),
    cmd!("psetex", 4, ["write", "denyoom"], 1, 1, 1, strings::psetex),
    cmd!("getex", -2, ["write", "fast"], 1, 1, 1, strings::getex),
    cmd!("getdel", 2, ["write", "fast"], 1, 1, 1, strings::getdel),
    cmd!("getset", 3, ["write", "denyoom", "fast"], 1, 1, 1, strings::getset),
    cmd!("mget", -2, ["readonly", "fast"], 1, -1, 1, strings::mget),
    cmd!("mset", -3, ["write", "denyoom"], 1, -1, 2, strings::mset),
    cmd!("msetnx", -3, ["write", "denyoom"], 1, -1, 2, strings::msetnx),
    cmd!("incr", 2, ["write", "denyoom", "fast"], 1, 1, 1, strings::incr),
    cmd!("decr", 2, ["write", "denyoom", "fast"], 1, 1, 1, strings::decr),
    cmd!("incrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, strings::incrby),
    cmd!("decrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, strings::decrby),
    cmd!(
        "incrbyfloat",
        3,
        ["write", "denyoom", "fast"],
        1,
        1,
        1,
        strings::incrbyfloat
    ),
    cmd!("append", 3, ["write", "denyoom", "fast"], 1, 1, 1, strings::append),
    cmd!("strlen", 2, ["readonly", "fast"], 1, 1, 1, strings::strlen),
    cmd!("getrange", 4, ["readonly"], 1, 1, 1, strings::getrange),
    cmd!("substr", 4, ["readonly"], 1, 1, 1, strings::getrange),
    cmd!("setrange", 4, ["write", "denyoom"], 1, 1, 1, strings::setrange),
    cmd!("lcs", -3, ["readonly"], 1, 2, 1, strings::lcs),
    // keyspace
    cmd!("del", -2, ["write"], 1, -1, 1, keys::del),
    cmd!("unlink", -2, ["write", "fast"], 1, -1, 1, keys::del),
    cmd!("exists", -2, ["readonly", "fast"], 1, -1, 1, keys::exists),
    cmd!("touch", -2, ["readonly", "fast"], 1, -1, 1, keys::touch),
    cmd!("expire", -3, ["write", "fast"], 1, 1, 1, keys::expire),
    cmd!("pexpire", -3, ["write", "fast"], 1, 1, 1, keys::pexpire),
    cmd!("expireat", -3, ["write", "fast"], 1, 1, 1, keys::expireat),
    cmd!("pexpireat", -3, ["write", "fast"], 1, 1, 1, keys::pexpireat),
    cmd!("expiretime", 2, ["readonly", "fast"], 1, 1, 1, keys::expiretime),
    cmd!("pexpiretime", 2, ["readonly", "fast"], 1, 1, 1, keys::pexpiretime),
    cmd!("ttl", 2, ["readonly", "fast"], 1, 1, 1, keys::ttl),
    cmd!("pttl", 2, ["readonly", "fast"], 1, 1, 1, keys::pttl),
    cmd!("persist", 2, ["write", "fast"], 1, 1, 1, keys::persist),
    cmd!("type", 2, ["readonly", "fast"], 1, 1, 1, keys::type_),
    cmd!("rename", 3, ["write"], 1, 2, 1, keys::rename),
    cmd!("renamenx", 3, ["write", "fast"], 1, 2, 1, keys::renamenx),
    cmd!("copy", -3, ["write", "denyoom"], 1, 2, 1, keys::copy),
    cmd!("randomkey", 1, ["readonly"], 0, 0, 0, keys::randomkey),
    cmd!("object", -2, ["readonly"], 2, 2, 1, keys::object),
    cmd!("memory", -2, ["readonly"], 0, 0, 0, keys::memory),
    cmd!("scan", -2, ["readonly"], 0, 0, 0, keys::scan),
    cmd!("keys", 2, ["readonly"], 0, 0, 0, keys::keys),
    cmd!("dbsize", 1, ["readonly", "fast"], 0, 0, 0, keys::dbsize),
    cmd!("flushdb", -1, ["write"], 0, 0, 0, keys::flush),
    cmd!("flushall", -1, ["write"], 0, 0, 0, keys::flush),
    // connection and server
    cmd!("ping", -1, ["fast"], 0, 0, 0, info::ping),
    cmd!("echo", 2, ["fast"], 0, 0, 0, info::echo),
    cmd!("hello", -1, ["fast", "no-auth"], 0, 0, 0, info::hello, no_auth),
    cmd!("auth", -2, ["fast", "no-auth"], 0, 0, 0, info::auth, no_auth),
    cmd!("select", 2, ["fast"], 0, 0, 0, info::select),
    cmd!("quit", -1, ["fast", "no-auth"], 0, 0, 0, info::quit, no_auth),
    cmd!("reset", 1, ["fast", "no-auth"], 0, 0, 0, info::reset, no_auth),
    cmd!("info", -1, [], 0, 0, 0, info::info),
    cmd!("config", -2, ["admin"], 0, 0, 0, info::config),
    cmd!("client", -2, [], 0, 0, 0, info::client),
    cmd!("command", -1, [], 0, 0, 0, info::command),
    cmd!("time", 1, ["fast"], 0, 0, 0, info::time),
    // pub/sub
    cmd!(
        "subscribe",
        -2,
        ["pubsub", "noscript", "loading", "stale"],
        0,
        0,
        0,
        pubsub::subscribe
    ),
    cmd!(
        "unsubscribe",
        -1,
        ["pubsub", "noscript", "loading", "stale"],
        0,
        0,
        0,
        pubsub::unsubscribe
    ),
    cmd!(
        "psubscribe",
        -2,
        ["pubsub", "noscript", "loading", "stale"],
        0,
        0,
        0,
        pubsub::psubscribe
    ),
    cmd!(
        "punsubscribe",
        -1,
        ["pubsub", "noscript", "loading", "stale"],
        0,
        0,
        0,
        pubsub::punsubscribe
    ),
    cmd!(
        "publish",
        3,
        ["pubsub", "loading", "stale", "fast"],
        0,
        0,
        0,
        pubsub::publish
    ),
    cmd!("pubsub", -2, ["pubsub", "loading", "stale"], 0, 0, 0, pubsub::pubsub),
    // strata's leases
    cmd!("lget", -2, ["write", "fast"], 1, 1, 1, lease::lget),
    cmd!("lset", -4, ["write", "denyoom"], 1, 1, 1, lease::lset),
    cmd!("linvalidate", -2, ["write", "fast"], 1, 1, 1, lease::linvalidate),
];

/// Command names in [`COMMANDS`] order, for the metrics.
pub(crate) static COMMAND_NAMES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| COMMANDS.iter().map(|c| c.name).collect());

/// Per command in [`COMMANDS`] order: a read whose keys client tracking
/// remembers — Redis's rule (read-only commands with keys), plus GETEX and
/// LGET, which return values a near cache may keep.
pub(crate) static TRACKED_READS: LazyLock<Vec<bool>> = LazyLock::new(|| {
    COMMANDS
        .iter()
        .map(|c| c.first_key > 0 && (c.flags.contains(&"readonly") || matches!(c.name, "getex" | "lget")))
        .collect()
});

/// The commands a RESP2 connection in pub/sub mode may run.
fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
    )
}

/// Upper-cased name → index in [`COMMANDS`].
static BY_NAME: LazyLock<HashMap<Vec<u8>, usize>> = LazyLock::new(|| {
    COMMANDS
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.to_ascii_uppercase().into_bytes(), i))
        .collect()
});

/// Looks a command up by name, ignoring case.
pub(crate) fn lookup(name: &[u8]) -> Option<(usize, &'static Command)> {
    let mut scratch = [0u8; strata_proto::resp::MAX_COMMAND_NAME_LEN];
    let upper = strata_proto::resp::uppercase_command(name, &mut scratch)?;
    BY_NAME.get(upper).map(|&i| (i, &COMMANDS[i]))
}

/// One client connection speaking RESP.
pub(crate) struct RespSession {
    shared: Arc<Shared>,
    conn: Conn,
    args: Args,
    limits: Limits,
    /// The most one reply may take (`Config::reply_limit`).
    reply_limit: usize,
    /// A request with a value too long to buffer, being discarded: its
    /// arguments before that value, and the discarding.
    swallowing: Option<(Vec<Vec<u8>>, Swallow)>,
    /// The push queue, until the connection loop takes it.
    inbox: Option<Inbox>,
}

impl RespSession {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let (limits, authenticated, push_limit, reply_limit) = {
            let config = shared.config.read();
            let max_request = crate::max_request_bytes(&config);
            (
                Limits {
                    max_bulk_bytes: usize::try_from(config.proto_max_bulk_len.0).unwrap_or(usize::MAX),
                    max_request_bytes: max_request,
                    // A value the store would refuse anyway is not buffered.
                    max_buffered_bulk: usize::try_from(config.max_item_size.0)
                        .unwrap_or(usize::MAX)
                        .saturating_add(1024),
                    ..Limits::default()
                },
                config.requirepass.is_none(),
                config.push_limits(),
                config.reply_limit(),
            )
        };
        let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
        let inbox = Some(shared.clients.register(id, push_limit));
        Self {
            shared,
            conn: Conn {
                id,
                protocol: Protocol::Resp2,
                authenticated,
                auth_attempts: strata_session::auth::Attempts::default(),
                name: None,
                lib_name: None,
                lib_ver: None,
                created: Instant::now(),
                tracking: None,
                caching: false,
                channels: HashSet::new(),
                patterns: HashSet::new(),
            },
            args: Args::new(),
            limits,
            reply_limit,
            swallowing: None,
            inbox,
        }
    }

    /// Runs one parsed request.
    fn execute(&mut self, buf: &[u8], out: &mut Vec<u8>, stats: &mut LocalStats) -> Flow {
        let started = Instant::now();
        let name = self.args.get(buf, 0);
        if self.args.looks_like_http(buf) {
            // Cross-protocol scripting (a web page made to post to this
            // port): Redis logs it and hangs up without executing anything.
            tracing::warn!("closing a RESP connection that sent an HTTP request (possible cross-protocol attack)");
            self.shared.metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
            return Flow::Close;
        }
        let Some((index, command)) = lookup(name) else {
            unknown_command(out, self.conn.protocol, &self.args, buf);
            return Flow::Continue;
        };
        let reply_start = out.len();
        let mut encoder = Encoder::new(out, self.conn.protocol);
        let argc = self.args.len() as i32;
        if (command.arity > 0 && argc != command.arity) || argc < -command.arity {
            let text = format!("ERR wrong number of arguments for '{}' command", command.name);
            encoder.error(text.as_bytes());
            return Flow::Continue;
        }
        if !self.conn.authenticated && !command.no_auth {
            encoder.error(strata_session::auth::NOAUTH);
            return Flow::Continue;
        }
        if self.conn.protocol == Protocol::Resp2
            && self.conn.subscriptions() > 0
            && !allowed_while_subscribed(command.name)
        {
            let text = format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed \
                 in this context",
                command.name
            );
            encoder.error(text.as_bytes());
            return Flow::Continue;
        }
        let tracking = self.conn.tracking.is_some();
        if tracking && TRACKED_READS[index] && self.conn.tracks_reads() {
            // Before the read: a write after this finds the record.
            self.record_keys(command, buf);
        }
        let mut ctx = Ctx {
            args: &self.args,
            buf,
            conn: &mut self.conn,
            shared: &self.shared,
            out: encoder,
            command,
            reply_start,
            reply_limit: self.reply_limit,
        };
        let flow = (command.handler)(&mut ctx);
        if tracking && command.name != "client" {
            // CLIENT CACHING applies to the one command after it.
            self.conn.caching = false;
        }
        stats.record(index, started.elapsed().as_nanos() as u64);
        flow
    }

    /// Records the keys of a read for default-mode tracking.
    fn record_keys(&self, command: &Command, buf: &[u8]) {
        let argc = self.args.len() as i32;
        let last = if command.last_key < 0 {
            argc + command.last_key
        } else {
            command.last_key.min(argc - 1)
        };
        let mut i = command.first_key;
        while i <= last && i < argc {
            let key = self.args.get(buf, i as usize);
            self.shared
                .tracking
                .record_read(&self.shared.clients, self.conn.id, key);
            i += command.step.max(1);
        }
    }

    /// Starts an invalidation message if this connection can receive one:
    /// a RESP3 push, or on RESP2 in pub/sub mode a message on
    /// `__redis__:invalidate`. The keys (or a null) follow.
    fn invalidation_header(&self, out: &mut Encoder<'_>) -> bool {
        match self.conn.protocol {
            Protocol::Resp3 => {
                out.push(2).bulk(b"invalidate");
                true
            }
            Protocol::Resp2 if self.conn.subscriptions() > 0 => {
                out.push(3).bulk(b"message").bulk(crate::pubsub::INVALIDATE_CHANNEL);
                true
            }
            // RESP2 outside pub/sub mode has no way to receive pushes;
            // Redis drops them too.
            Protocol::Resp2 => false,
        }
    }
}

impl Drop for RespSession {
    fn drop(&mut self) {
        let (shared, id) = (&self.shared, self.conn.id);
        shared.clients.remove(id);
        shared.tracking.client_gone(&shared.clients, id);
        for channel in &self.conn.channels {
            shared.pubsub.unsubscribe(id, channel);
        }
        for pattern in &self.conn.patterns {
            shared.pubsub.punsubscribe(id, pattern);
        }
    }
}

fn unknown_command(out: &mut Vec<u8>, protocol: Protocol, args: &Args, buf: &[u8]) {
    // Redis: ERR unknown command 'foo', with args beginning with: 'a' 'b'
    let mut text = b"ERR unknown command '".to_vec();
    text.extend(printable(args.get(buf, 0), 128));
    text.extend_from_slice(b"', with args beginning with: ");
    for i in 1..args.len().min(16) {
        text.push(b'\'');
        text.extend(printable(args.get(buf, i), 128));
        text.extend_from_slice(b"' ");
    }
    Encoder::new(out, protocol).error(&text);
}

/// At most `max` bytes of `bytes`, with control characters shown as spaces
/// (an error line must stay one line).
fn printable(bytes: &[u8], max: usize) -> impl Iterator<Item = u8> + '_ {
    bytes
        .iter()
        .take(max)
        .map(|&b| if b.is_ascii_control() { b' ' } else { b })
}

impl Session for RespSession {
    fn take_inbox(&mut self) -> Option<Inbox> {
        self.inbox.take()
    }

    fn write_pushes(&mut self, pushes: &mut Vec<Push>, out: &mut Vec<u8>) {
        let mut encoder = Encoder::new(out, self.conn.protocol);
        let mut invalidated = 0u64;
        let mut i = 0;
        while i < pushes.len() {
            match &pushes[i] {
                Push::Invalidate(_) => {
                    // Consecutive keys travel in one message.
                    let run = pushes[i..]
                        .iter()
                        .take_while(|p| matches!(p, Push::Invalidate(_)))
                        .count();
                    if self.invalidation_header(&mut encoder) {
                        encoder.array(run);
                        for push in &pushes[i..i + run] {
                            if let Push::Invalidate(key) = push {
                                encoder.bulk(key);
                            }
                        }
                        invalidated += run as u64;
                    }
                    i += run;
                    continue;
                }
                Push::InvalidateAll => {
                    if self.invalidation_header(&mut encoder) {
                        encoder.null();
                        invalidated += 1;
                    }
                }
                Push::RedirectBroken(target) => {
                    if self.conn.protocol == Protocol::Resp3 {
                        encoder.push(2).bulk(b"tracking-redir-broken").integer(*target as i64);
                    }
                }
                Push::Message { channel, payload } => {
                    encoder.push(3).bulk(b"message").bulk(channel).bulk(payload);
                }
                Push::PatternMessage {
                    pattern,
                    channel,
                    payload,
                } => {
                    encoder
                        .push(4)
                        .bulk(b"pmessage")
                        .bulk(pattern)
                        .bulk(channel)
                        .bulk(payload);
                }
            }
            i += 1;
        }
        pushes.clear();
        if invalidated > 0 {
            self.shared
                .metrics
                .invalidations
                .fetch_add(invalidated, Ordering::Relaxed);
        }
    }

    fn process(&mut self, input: &[u8], out: &mut Vec<u8>, stats: &mut LocalStats) -> Outcome {
        self.shared.run_due_flush();
        let mut consumed = 0;
        loop {
            if let Some((_, swallow)) = &mut self.swallowing {
                match swallow.feed(&input[consumed..], &self.limits) {
                    Ok(used) => consumed += used,
                    Err(error) => return self.protocol_error(&error, input, out),
                }
                if !swallow.is_done() {
                    return Outcome { consumed, close: false };
                }
                if let Some((prefix, swallow)) = self.swallowing.take() {
                    self.refuse_oversized(prefix, swallow.into_kept(), out);
                }
                continue;
            }
            if out.len() >= strata_session::OUTPUT_CHUNK {
                // Let the loop write these replies before taking more.
                return Outcome { consumed, close: false };
            }
            let buf = &input[consumed..];
            match parse_request(buf, &self.limits, &mut self.args) {
                Ok(Some(used)) if let Some(oversized) = self.args.oversized() => {
                    // A value longer than any the store keeps: discard it
                    // as it arrives, then refuse the command.
                    let prefix = self.args.iter(buf).map(<[u8]>::to_vec).collect();
                    self.swallowing = Some((prefix, Swallow::new(oversized, SWALLOW_KEEP)));
                    consumed += used;
                }
                Ok(Some(used)) => {
                    let reply_start = out.len();
                    let flow = if self.args.is_empty() {
                        Flow::Continue
                    } else {
                        self.execute(buf, out, stats)
                    };
                    consumed += used;
                    let command = || String::from_utf8_lossy(self.args.get(buf, 0)).into_owned();
                    if self
                        .shared
                        .reply_over_limit(out, reply_start, self.reply_limit, command)
                    {
                        return Outcome { consumed, close: true };
                    }
                    if flow == Flow::Close {
                        return Outcome { consumed, close: true };
                    }
                }
                Ok(None) => return Outcome { consumed, close: false },
                Err(error) => return self.protocol_error(&error, input, out),
            }
        }
    }
}

/// Arguments after a refused value that are kept (for their keys): up to a
/// key's usual size.
const SWALLOW_KEEP: usize = 64 * 1024;

impl RespSession {
    /// Answers a protocol error, which closes the connection.
    fn protocol_error(&mut self, error: &strata_proto::resp::ParseError, input: &[u8], out: &mut Vec<u8>) -> Outcome {
        self.shared.metrics.protocol_errors.fetch_add(1, Ordering::Relaxed);
        let text = format!("ERR {error}");
        Encoder::new(out, self.conn.protocol).error(text.as_bytes());
        Outcome {
            consumed: input.len(),
            close: true,
        }
    }

    /// Refuses a command one of whose arguments was too long to store
    /// (and was discarded unread): an error reply, and — for a command
    /// that would have replaced a value — the keys' old values removed, as
    /// for any refused value (`Shared::remove_refused`). `prefix` holds the
    /// arguments before the long one, `after` those after it.
    fn refuse_oversized(&mut self, prefix: Vec<Vec<u8>>, after: Vec<Option<Vec<u8>>>, out: &mut Vec<u8>) {
        let mut encoder = Encoder::new(out, self.conn.protocol);
        let args: Vec<Option<&[u8]>> = prefix
            .iter()
            .map(|arg| Some(arg.as_slice()))
            .chain(std::iter::once(None))
            .chain(after.iter().map(Option::as_deref))
            .collect();
        let name = args.first().copied().flatten().unwrap_or_default();
        let command = lookup(name).map(|(_, command)| command);
        if !self.conn.authenticated && !command.is_some_and(|c| c.no_auth) {
            encoder.error(strata_session::auth::NOAUTH);
            return;
        }
        for key in keys_replaced_by(&args) {
            self.shared.remove_refused(key, self.conn.id);
        }
        let text = format!(
            "ERR string exceeds maximum allowed size (max-item-size {})",
            self.shared.store.max_item_bytes()
        );
        encoder.error(text.as_bytes());
    }
}

/// Parses a Redis float (as `strtold`, rejecting NaN and trailing junk).
pub(crate) fn parse_float(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let value: f64 = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => text.parse().ok()?,
    };
    (!value.is_nan()).then_some(value)
}

/// Formats a float as Redis's INCRBYFLOAT does: up to 17 significant
/// digits, no exponent, no trailing zeros.
pub(crate) fn format_float(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e17 {
        return format!("{}", value as i128);
    }
    let mut text = format!("{value:.17}");
    // Keep 17 significant digits at most.
    let significant_start = text.find(|c: char| c.is_ascii_digit() && c != '0').unwrap_or(0);
    let mut seen = 0;
    let mut cut = text.len();
    for (i, c) in text.char_indices().skip(significant_start) {
        if c.is_ascii_digit() {
            seen += 1;
            if seen > 17 {
                cut = i;
                break;
            }
        }
    }
    if cut < text.len() && text[..cut].contains('.') {
        text.truncate(cut);
    }
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.');
        text = trimmed.to_owned();
    }
    if text == "-0" {
        text = "0".into();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_table_is_consistent() {
        assert_eq!(BY_NAME.len(), COMMANDS.len(), "duplicate names");
        assert!(lookup(b"GeT").is_some_and(|(_, c)| c.name == "get"));
        assert!(lookup(b"nosuch").is_none());
        assert_eq!(COMMAND_NAMES[0], "get");
    }

    /// The engine keeps its own integer rule for INCR's stored values
    /// (`strata_store` sits below `strata_proto` and must not depend on
    /// it); this table holds the two to one rule.
    #[test]
    fn the_store_reads_integers_as_the_protocol_does() {
        use strata_store::{Capacity, SetOptions, Store};
        let store = Store::builder(Capacity::Bytes(1 << 20)).build();
        let table: &[&[u8]] = &[
            b"0",
            b"-0",
            b"1",
            b"-1",
            b"+5",
            b"007",
            b"00",
            b"10",
            b" 1",
            b"1 ",
            b"",
            b"-",
            b"--1",
            b"1.0",
            b"1e3",
            b"0x10",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b"123456789012345678901",
            b"\xff",
        ];
        for &input in table {
            store.set(b"n", input, SetOptions::default()).expect("set");
            let engine = store.incr_by(b"n", 0).ok();
            assert_eq!(engine, parse_strict_i64(input), "{:?}", String::from_utf8_lossy(input));
        }
        assert_eq!(parse_strict_i64(b"-42"), Some(-42));
    }

    #[test]
    fn numbers_parse_and_format_as_redis_does() {
        assert_eq!(parse_float(b"3.0e3"), Some(3000.0));
        assert_eq!(parse_float(b"nan"), None);
        assert_eq!(parse_float(b"1.5x"), None);
        assert_eq!(format_float(10.5), "10.5");
        assert_eq!(format_float(5.0e3), "5000");
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_float(-1.25), "-1.25");
    }
}
