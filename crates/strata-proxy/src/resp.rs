//! The proxy's RESP front door: RESP2, and RESP3 after `HELLO 3`.
//!
//! Why RESP3: the proxy is `strata up`'s front door, and clients open their
//! connections the way they open them to Redis — redis-py 8, for one, sends
//! `HELLO 3` first by default, and a proxy that answers `NOPROTO` fails
//! every command of such a client. So each connection has a protocol, RESP2
//! until a `HELLO 3`, and every reply is written by `strata_proto`'s
//! [`Encoder`] in it: nulls as `_`, HELLO's map as a map, INFO and CLIENT
//! INFO as verbatim strings, as Redis 7 does.
//!
//! Served:
//! - connection: PING, ECHO, QUIT, RESET, SELECT 0, HELLO [2|3 [AUTH user
//!   pass] [SETNAME name]], AUTH (with the proxy's `requirepass`, as Redis
//!   with one: every other command gets `-NOAUTH Authentication required.`
//!   until `AUTH [default] <password>` or `HELLO … AUTH default
//!   <password>`, a wrong one gets `-WRONGPASS …`, and the tenth wrong one
//!   closes the connection — `strata_session::auth`, shared with the
//!   server; without a password, like Redis's default user without one,
//!   `default` with any password is accepted),
//!   CLIENT ID/SETNAME/GETNAME/SETINFO/INFO/LIST/NO-EVICT/NO-TOUCH/HELP,
//!   COMMAND (empty, enough for redis-cli), INFO (the proxy's and the
//!   client's counters), TIME;
//! - strings, routed by key: GET, MGET, SET (EX, PX, EXAT, PXAT, NX),
//!   SETEX, PSETEX, SETNX, MSET, STRLEN;
//! - keys: DEL, UNLINK, EXISTS, TOUCH, TYPE (`string` or `none`), TTL,
//!   PTTL, EXPIRETIME, PEXPIRETIME, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT
//!   (with NX/XX/GT/LT), PERSIST.
//!
//! TTLs travel as memcached's (the cluster client speaks the meta
//! protocol): whole seconds. PTTL is the TTL in seconds times 1000, and a
//! PEXPIRE of 1500 ms lasts 1 s (never less than 1 s). EXPIRE with
//! NX/XX/GT/LT, and PERSIST, read the TTL and then set it: two requests, not
//! one atomic step as in Redis.
//!
//! Refused with `ERR '<NAME>' is not supported by strata proxy: <why>`
//! (the connection stays open): what needs every server (DBSIZE, KEYS,
//! SCAN, RANDOMKEY, FLUSHDB, FLUSHALL), what may span servers (RENAME,
//! COPY, MSETNX), transactions and scripts, pub/sub, one server's
//! administration (CONFIG, OBJECT, …), and the string commands the cluster
//! client has no request for (INCR, APPEND, GETSET, …). Anything else gets
//! Redis's `unknown command` error, as strata's server answers it.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_proto::resp::command::{CommandError, Condition, ExpireFlags, Expiry, ExpiryMs, SetOptions};
use strata_proto::resp::{
    Args, Encoder, Limits, MAX_COMMAND_NAME_LEN, Protocol, Swallow, keys_replaced_by, parse_request, parse_strict_i64,
    uppercase_command,
};

use super::{Outcome, ProxyShared};
use strata_client::ClientError;
use strata_session::Secret;
use strata_session::auth::{self, Attempts};

/// The Redis version the proxy reports (HELLO, INFO): that of the command
/// set strata's servers implement (`strata_server::REDIS_COMPAT_VERSION`),
/// which clients may read before using a command.
const REDIS_COMPAT_VERSION: &str = "7.2.0";

/// One RESP connection's state.
pub(crate) struct Session {
    args: Args,
    /// CLIENT ID and HELLO's `id`.
    id: u64,
    /// What replies are encoded in: RESP2 until a `HELLO 3`.
    protocol: Protocol,
    name: Option<Vec<u8>>,
    lib_name: Option<Vec<u8>>,
    lib_ver: Option<Vec<u8>>,
    /// A request with a value too long to store, being discarded as it
    /// arrives: its arguments before that value, and the discarding.
    swallowing: Option<(Vec<Vec<u8>>, Swallow)>,
    /// Whether commands may run: from the start without a `requirepass`,
    /// else after a successful AUTH or HELLO … AUTH.
    authenticated: bool,
    /// Failed password checks so far.
    auth_attempts: Attempts,
}

/// One request read from a pipeline, in order.
enum Pending<'a> {
    /// A command's arguments, borrowed from the read buffer where they can be.
    Command(Vec<Cow<'a, [u8]>>),
    /// A request refused because an argument was too long to store: its
    /// arguments, `None` for each one discarded unread.
    TooLarge(Vec<Option<Vec<u8>>>),
}

impl<'a> Pending<'a> {
    /// A command's arguments; `None` for a refused request.
    fn command(&self) -> Option<&[Cow<'a, [u8]>]> {
        match self {
            Pending::Command(args) => Some(args),
            Pending::TooLarge(_) => None,
        }
    }
}

fn upper(arg: &[u8]) -> Vec<u8> {
    arg.to_ascii_uppercase()
}

fn wrong_args(out: &mut Encoder<'_>, name: &[u8]) {
    let text = format!(
        "ERR wrong number of arguments for '{}' command",
        String::from_utf8_lossy(name).to_lowercase()
    );
    out.error(text.as_bytes());
}

fn cluster_error(out: &mut Encoder<'_>, shared: &ProxyShared, error: &ClientError) {
    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
    match error {
        ClientError::InvalidKey { .. } | ClientError::Refused(_) => out.error(format!("ERR {error}").as_bytes()),
        _ => out.error(format!("ERR cluster: {error}").as_bytes()),
    };
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Client names are printable and without spaces, as Redis requires.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// Checks `user`/`password`. With a `requirepass`, as Redis and strata's
/// server check it; without one, like Redis's default user without a
/// password (`nopass`), `default` is accepted with any password and no
/// other user exists. `Err` is the reply.
fn check_auth(requirepass: Option<&Secret>, user: &[u8], password: &[u8]) -> Result<(), &'static [u8]> {
    match requirepass {
        None if user.eq_ignore_ascii_case(b"default") => Ok(()),
        None => Err(auth::WRONGPASS),
        Some(_) => auth::check_resp(requirepass, user, password),
    }
}

/// Why a command strata's servers know is not served by the proxy, or
/// `None` for a command that is neither served nor known (Redis's `unknown
/// command`).
fn unsupported(name: &[u8]) -> Option<&'static str> {
    const EVERY_SERVER: &str = "it needs every server of the cluster (ask the servers themselves)";
    const SPANS_SERVERS: &str = "its keys may live on different servers";
    const ONE_SERVER: &str = "transactions, scripts and subscriptions need one server (connect to a server)";
    const ADMIN: &str = "it is one server's (send it to that server)";
    const NO_REQUEST: &str = "the cluster client has no request for it";
    Some(match name {
        b"DBSIZE" | b"KEYS" | b"SCAN" | b"RANDOMKEY" | b"FLUSHDB" | b"FLUSHALL" | b"SWAPDB" | b"WAIT" | b"WAITAOF" => {
            EVERY_SERVER
        }
        b"RENAME" | b"RENAMENX" | b"COPY" | b"MOVE" | b"MSETNX" => SPANS_SERVERS,
        b"MULTI" | b"EXEC" | b"DISCARD" | b"WATCH" | b"UNWATCH" | b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO"
        | b"SCRIPT" | b"FCALL" | b"FCALL_RO" | b"FUNCTION" | b"SUBSCRIBE" | b"UNSUBSCRIBE" | b"PSUBSCRIBE"
        | b"PUNSUBSCRIBE" | b"SSUBSCRIBE" | b"SUNSUBSCRIBE" | b"PUBLISH" | b"SPUBLISH" | b"PUBSUB" | b"MONITOR" => {
            ONE_SERVER
        }
        b"CONFIG" | b"OBJECT" | b"MEMORY" | b"DEBUG" | b"SAVE" | b"BGSAVE" | b"BGREWRITEAOF" | b"LASTSAVE"
        | b"SHUTDOWN" | b"SLOWLOG" | b"LATENCY" | b"ACL" | b"REPLICAOF" | b"SLAVEOF" | b"ROLE" | b"CLUSTER"
        | b"READONLY" | b"READWRITE" | b"LGET" | b"LSET" | b"LINVALIDATE" => ADMIN,
        b"GETEX" | b"GETDEL" | b"GETSET" | b"INCR" | b"DECR" | b"INCRBY" | b"DECRBY" | b"INCRBYFLOAT" | b"APPEND"
        | b"GETRANGE" | b"SUBSTR" | b"SETRANGE" | b"LCS" | b"DUMP" | b"RESTORE" | b"SORT" | b"SORT_RO" => NO_REQUEST,
        _ => return None,
    })
}

/// What TTL, PTTL, EXPIRETIME and PEXPIRETIME answer for a key that is
/// missing (`None`), has no TTL (`Some(None)`), or expires after `ttl`, at
/// `now_ms`.
fn ttl_reply(command: &[u8], found: Option<Option<Duration>>, now_ms: u64) -> i64 {
    let ttl = match found {
        None => return -2,
        Some(None) => return -1,
        Some(Some(ttl)) => ttl,
    };
    let left_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let at_ms = (now_ms as i64).saturating_add(left_ms);
    match command {
        b"TTL" => left_ms / 1000,
        b"PTTL" => left_ms,
        b"EXPIRETIME" => at_ms / 1000,
        _ => at_ms,
    }
}

/// Which runs of a pipeline become one multi-key call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunKind {
    /// `GET key`, answered by one multi-get.
    Get,
    /// `SET key value` without options, stored by one multi-set.
    Set,
}

/// The kind of the run at the front of `commands`, and its length (0 when
/// the first command is not batchable).
fn batchable_run(commands: &[Pending<'_>]) -> (RunKind, usize) {
    let kind_of = |pending: &Pending<'_>| match pending.command()? {
        c if c.len() == 2 && c[0].eq_ignore_ascii_case(b"GET") => Some(RunKind::Get),
        c if c.len() == 3 && c[0].eq_ignore_ascii_case(b"SET") => Some(RunKind::Set),
        _ => None,
    };
    let Some(kind) = commands.first().and_then(kind_of) else {
        return (RunKind::Get, 0);
    };
    (kind, commands.iter().take_while(|c| kind_of(c) == Some(kind)).count())
}

/// Answers a run of GETs or of plain SETs with one multi-key call, which
/// the client splits by node and sends concurrently.
async fn run_batch(
    kind: RunKind,
    commands: &[Pending<'_>],
    out: &mut Vec<u8>,
    shared: &ProxyShared,
    protocol: Protocol,
) {
    let mut encoder = Encoder::new(out, protocol);
    // `batchable_run` made every one of them a command.
    let commands: Vec<&[Cow<'_, [u8]>]> = commands.iter().filter_map(Pending::command).collect();
    let result = match kind {
        RunKind::Get => {
            let keys: Vec<&[u8]> = commands.iter().map(|c| &*c[1]).collect();
            shared.client.get_many(&keys).await.map(|values| {
                for value in values {
                    match value {
                        Some(value) => encoder.bulk(&value),
                        None => encoder.null(),
                    };
                }
            })
        }
        RunKind::Set => {
            let items: Vec<(&[u8], &[u8])> = commands.iter().map(|c| (&*c[1], &*c[2])).collect();
            shared.client.set_many(&items, None).await.map(|()| {
                for _ in &commands {
                    encoder.ok();
                }
            })
        }
    };
    if let Err(error) = result {
        for _ in &commands {
            cluster_error(&mut encoder, shared, &error);
        }
    }
}

/// What a SET asks for.
struct SetArgs {
    ttl: Option<Duration>,
    only_if_absent: bool,
    expired: bool,
}

/// Reads SET's options with `strata_proto`'s parser (Redis's rules and
/// error texts), then keeps what the proxy can do: an expiry and NX.
fn parse_set_options(args: &[&[u8]]) -> Result<SetArgs, String> {
    let options = SetOptions::parse(args).map_err(|error| error.to_string())?;
    if options.get || options.keepttl || options.condition == Some(Condition::IfPresent) {
        return Err("ERR this SET option is not supported by strata proxy".into());
    }
    let mut parsed = SetArgs {
        ttl: None,
        only_if_absent: options.condition == Some(Condition::IfAbsent),
        expired: false,
    };
    if let Some(expiry) = options.expiry {
        let now = unix_ms();
        let deadline = expiry
            .deadline_ms(now)
            .ok_or_else(|| CommandError::InvalidExpireTime("set").to_string())?;
        match deadline.checked_sub(now) {
            Some(left) if left > 0 => parsed.ttl = Some(Duration::from_millis(left)),
            _ => parsed.expired = true,
        }
    }
    Ok(parsed)
}

/// A relative TTL argument (`SETEX`, `EXPIRE`, …) in `unit`s, checked as
/// Redis checks it: a strict integer whose milliseconds fit an `i64`.
/// `Ok(None)` for a zero or negative amount.
fn ttl_arg(arg: &[u8], seconds: bool) -> Result<Option<Duration>, CommandError> {
    let amount = parse_strict_i64(arg).ok_or(CommandError::NotAnInteger)?;
    if amount <= 0 {
        return Ok(None);
    }
    let expiry = if seconds {
        Expiry::Ex(amount as u64)
    } else {
        Expiry::Px(amount as u64)
    };
    match expiry.to_ms() {
        Some(ExpiryMs::After(ms)) => Ok(Some(Duration::from_millis(ms))),
        _ => Err(CommandError::InvalidExpireTime("")),
    }
}

impl Session {
    /// A new connection's session, RESP2 until a `HELLO 3`.
    /// `authenticated` from the start when the proxy has no password.
    pub(crate) fn new(id: u64, authenticated: bool) -> Self {
        Session {
            args: Args::default(),
            id,
            protocol: Protocol::Resp2,
            name: None,
            lib_name: None,
            lib_ver: None,
            swallowing: None,
            authenticated,
            auth_attempts: Attempts::default(),
        }
    }

    /// Counts a failed password check; true to close the connection (its
    /// attempts are used up).
    fn auth_failed(&mut self, shared: &ProxyShared) -> bool {
        if shared.requirepass.is_none() {
            // Nothing to guess.
            return false;
        }
        shared.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
        if self.auth_attempts.failed() {
            tracing::warn!(
                client = self.id,
                "closing a proxy connection after {} failed AUTH attempts",
                auth::MAX_AUTH_FAILURES
            );
            return true;
        }
        false
    }

    pub(crate) async fn process(&mut self, input: &[u8], out: &mut Vec<u8>, shared: &ProxyShared) -> Outcome {
        // Values up to Redis's proto-max-bulk-len are read; one past the
        // item limit is discarded unbuffered and refused, as the server
        // does (`Swallow`).
        let limits = Limits {
            max_request_bytes: shared.max_value_bytes + 64 * 1024,
            max_buffered_bulk: shared.max_value_bytes + 1024,
            ..Limits::default()
        };
        // Arguments borrow the read buffer; only those unescaped from a
        // quoted inline request are copied.
        let mut commands: Vec<Pending<'_>> = Vec::new();
        let mut consumed = 0;
        let mut fatal = None;
        let mut hang_up = false;
        loop {
            if let Some((_, swallow)) = &mut self.swallowing {
                match swallow.feed(&input[consumed..], &limits) {
                    Ok(used) => consumed += used,
                    Err(error) => {
                        fatal = Some(error);
                        consumed = input.len();
                        break;
                    }
                }
                if !swallow.is_done() {
                    break;
                }
                // Answered in order with the commands before it: the
                // refusal travels as a command of its own.
                if let Some((prefix, swallow)) = self.swallowing.take() {
                    let args = prefix.into_iter().map(Some).chain([None]).chain(swallow.into_kept());
                    commands.push(Pending::TooLarge(args.collect()));
                }
                continue;
            }
            let buf = &input[consumed..];
            match parse_request(buf, &limits, &mut self.args) {
                Ok(Some(used)) if let Some(oversized) = self.args.oversized() => {
                    let prefix = self.args.iter(buf).map(<[u8]>::to_vec).collect();
                    self.swallowing = Some((prefix, Swallow::new(oversized, 64 * 1024)));
                    consumed += used;
                }
                Ok(Some(_)) if self.args.looks_like_http(buf) => {
                    // Cross-protocol scripting: hang up without a word.
                    shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                    hang_up = true;
                    consumed = input.len();
                    break;
                }
                Ok(Some(used)) => {
                    if !self.args.is_empty() {
                        let args = &self.args;
                        commands.push(Pending::Command(
                            (0..args.len())
                                .map(|i| match args.get_in_buffer(buf, i) {
                                    Some(arg) => Cow::Borrowed(arg),
                                    None => Cow::Owned(args.get(buf, i).to_vec()),
                                })
                                .collect(),
                        ));
                    }
                    consumed += used;
                }
                Ok(None) => break,
                Err(error) => {
                    fatal = Some(error);
                    consumed = input.len();
                    break;
                }
            }
        }
        let mut close = false;
        let mut at = 0;
        while at < commands.len() {
            // Before authentication every command goes alone through
            // `execute`, which refuses it (or authenticates).
            let (kind, run) = if self.authenticated {
                batchable_run(&commands[at..])
            } else {
                (RunKind::Get, 0)
            };
            if run > 1 {
                run_batch(kind, &commands[at..at + run], out, shared, self.protocol).await;
                shared.stats.requests.fetch_add(run as u64, Ordering::Relaxed);
                at += run;
                continue;
            }
            shared.stats.requests.fetch_add(1, Ordering::Relaxed);
            match &commands[at] {
                Pending::Command(command) => {
                    let args: Vec<&[u8]> = command.iter().map(|arg| &**arg).collect();
                    if self.execute(&args, out, shared).await {
                        close = true;
                        break;
                    }
                }
                Pending::TooLarge(_) if !self.authenticated => {
                    Encoder::new(out, self.protocol).error(auth::NOAUTH);
                }
                Pending::TooLarge(args) => self.refuse_too_large(args, out, shared).await,
            }
            at += 1;
        }
        if let Some(error) = fatal {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            Encoder::new(out, self.protocol).error(format!("ERR {error}").as_bytes());
            close = true;
        }
        Outcome {
            consumed,
            close: close || hang_up,
        }
    }

    /// Refuses a request one of whose arguments was too long to store, as
    /// the server does: the keys the write would have replaced lose their
    /// old values (`keys_replaced_by`), then the error.
    async fn refuse_too_large(&self, args: &[Option<Vec<u8>>], out: &mut Vec<u8>, shared: &ProxyShared) {
        shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        let request: Vec<Option<&[u8]>> = args.iter().map(Option::as_deref).collect();
        let keys = keys_replaced_by(&request);
        if !keys.is_empty()
            && let Err(error) = shared.client.delete_many(&keys).await
        {
            // The refusal stands; an old value outlives it only while the
            // cluster cannot be reached.
            tracing::debug!(%error, "could not remove the old values of a refused write");
        }
        let text = format!(
            "ERR string exceeds maximum allowed size (max-item-size {})",
            shared.max_value_bytes
        );
        Encoder::new(out, self.protocol).error(text.as_bytes());
    }

    /// Runs one command; true to close the connection.
    async fn execute(&mut self, args: &[&[u8]], out: &mut Vec<u8>, shared: &ProxyShared) -> bool {
        let client = &shared.client;
        let mut scratch = [0u8; MAX_COMMAND_NAME_LEN];
        // A name longer than any command's is simply unknown.
        let name: &[u8] = uppercase_command(args[0], &mut scratch).unwrap_or(b"");
        let mut encoder = Encoder::new(out, self.protocol);
        let argc = args.len();
        if !self.authenticated && !matches!(name, b"AUTH" | b"HELLO" | b"QUIT" | b"RESET") {
            encoder.error(auth::NOAUTH);
            return false;
        }
        match name {
            b"PING" => match argc {
                1 => encoder.simple(b"PONG"),
                2 => encoder.bulk(args[1]),
                _ => {
                    wrong_args(&mut encoder, name);
                    return false;
                }
            },
            b"ECHO" if argc == 2 => encoder.bulk(args[1]),
            b"QUIT" => {
                encoder.ok();
                return true;
            }
            b"RESET" if argc == 1 => {
                // As Redis: back to a fresh connection, which must
                // authenticate again.
                self.authenticated = shared.requirepass.is_none();
                self.protocol = Protocol::Resp2;
                self.name = None;
                encoder.set_protocol(Protocol::Resp2);
                encoder.simple(b"RESET")
            }
            b"SELECT" if argc == 2 => match parse_strict_i64(args[1]) {
                Some(0) => encoder.ok(),
                Some(_) => encoder.error(b"ERR DB index is out of range"),
                None => encoder.error(CommandError::NotAnInteger.to_string().as_bytes()),
            },
            b"HELLO" => return self.hello(args, out, shared),
            b"AUTH" => {
                let requirepass = shared.requirepass.as_ref();
                let checked = match argc {
                    2 if requirepass.is_none() => Err(auth::NO_PASSWORD_SET),
                    2 => check_auth(requirepass, b"default", args[1]),
                    3 => check_auth(requirepass, args[1], args[2]),
                    _ => {
                        encoder.error(CommandError::Syntax.to_string().as_bytes());
                        return false;
                    }
                };
                match checked {
                    Ok(()) => {
                        self.authenticated = true;
                        encoder.ok()
                    }
                    Err(message) => {
                        encoder.error(message);
                        return self.auth_failed(shared);
                    }
                }
            }
            b"COMMAND" => {
                // Enough for redis-cli, which asks for COMMAND DOCS (a map
                // in RESP3) and copes with an empty answer.
                if argc >= 2 && args[1].eq_ignore_ascii_case(b"DOCS") {
                    encoder.map(0)
                } else {
                    encoder.array(0)
                }
            }
            b"CLIENT" if argc >= 2 => {
                self.client(args, &mut encoder, shared);
                return false;
            }
            b"TIME" if argc == 1 => {
                let micros = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros());
                encoder.array(2);
                encoder.bulk((micros / 1_000_000).to_string().as_bytes());
                encoder.bulk((micros % 1_000_000).to_string().as_bytes())
            }
            b"INFO" => {
                let stats = client.stats();
                let proxy = &shared.stats;
                let text = format!(
                    "# Server\r\nredis_version:{REDIS_COMPAT_VERSION}\r\nredis_mode:standalone\r\n\r\n# Proxy\r\nstrata_version:{}\r\nring_epoch:{}\r\nnodes_down:{}\r\nconnections_received:{}\r\nrequests:{}\r\nrefused:{}\r\nfailed:{}\r\n\r\n# Cluster\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nfailovers:{}\r\nwarmup_hits:{}\r\n",
                    env!("CARGO_PKG_VERSION"),
                    client.epoch(),
                    client.down_nodes().len(),
                    proxy.connections.load(Ordering::Relaxed),
                    proxy.requests.load(Ordering::Relaxed),
                    proxy.refused.load(Ordering::Relaxed),
                    proxy.failed.load(Ordering::Relaxed),
                    stats.hits,
                    stats.gets - stats.hits,
                    stats.failovers,
                    stats.warmup_hits,
                );
                encoder.verbatim(b"txt", text.as_bytes())
            }
            b"GET" if argc == 2 => match client.get(args[1]).await {
                Ok(Some(value)) => encoder.bulk(&value),
                Ok(None) => encoder.null(),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"STRLEN" if argc == 2 => match client.get(args[1]).await {
                Ok(value) => encoder.integer(value.map_or(0, |value| value.len() as i64)),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"MGET" if argc >= 2 => match client.get_many(&args[1..]).await {
                Ok(values) => {
                    encoder.array(values.len());
                    for value in values {
                        match value {
                            Some(value) => encoder.bulk(&value),
                            None => encoder.null(),
                        };
                    }
                    return false;
                }
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"SET" if argc >= 3 => {
                let options = match parse_set_options(&args[3..]) {
                    Ok(options) => options,
                    Err(message) => {
                        encoder.error(message.as_bytes());
                        return false;
                    }
                };
                set(&mut encoder, shared, args[1], args[2], options).await;
                return false;
            }
            b"SETEX" | b"PSETEX" if argc == 4 => {
                let command = if name == b"SETEX" { "setex" } else { "psetex" };
                let ttl = match ttl_arg(args[2], name == b"SETEX") {
                    Ok(Some(ttl)) => ttl,
                    Ok(None) | Err(CommandError::InvalidExpireTime(_)) => {
                        encoder.error(CommandError::InvalidExpireTime(command).to_string().as_bytes());
                        return false;
                    }
                    Err(error) => {
                        encoder.error(error.to_string().as_bytes());
                        return false;
                    }
                };
                let options = SetArgs {
                    ttl: Some(ttl),
                    only_if_absent: false,
                    expired: false,
                };
                set(&mut encoder, shared, args[1], args[3], options).await;
                return false;
            }
            b"SETNX" if argc == 3 => match client.add(args[1], args[2], None).await {
                Ok(stored) => encoder.integer(i64::from(stored)),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"MSET" if argc >= 3 && argc % 2 == 1 => {
                let items: Vec<(&[u8], &[u8])> = args[1..].chunks_exact(2).map(|pair| (pair[0], pair[1])).collect();
                match client.set_many(&items, None).await {
                    Ok(()) => encoder.ok(),
                    Err(error) => {
                        cluster_error(&mut encoder, shared, &error);
                        return false;
                    }
                }
            }
            b"DEL" | b"UNLINK" if argc >= 2 => match client.delete_many(&args[1..]).await {
                Ok(count) => encoder.integer(count as i64),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            // A read marks a key used, which is all TOUCH does.
            b"EXISTS" | b"TOUCH" if argc >= 2 => match client.get_many(&args[1..]).await {
                Ok(values) => encoder.integer(values.iter().filter(|v| v.is_some()).count() as i64),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"TYPE" if argc == 2 => match client.get_item(args[1]).await {
                Ok(found) => encoder.simple(if found.is_some() { b"string" } else { b"none" }),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"TTL" | b"PTTL" | b"EXPIRETIME" | b"PEXPIRETIME" if argc == 2 => match client.get_item(args[1]).await {
                Ok(found) => encoder.integer(ttl_reply(name, found.map(|item| item.ttl), unix_ms())),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"PERSIST" if argc == 2 => {
                let result = match client.get_item(args[1]).await {
                    Ok(Some(item)) if item.ttl.is_some() => client.touch(args[1], Duration::ZERO).await,
                    Ok(_) => Ok(false),
                    Err(error) => Err(error),
                };
                match result {
                    Ok(persisted) => encoder.integer(i64::from(persisted)),
                    Err(error) => {
                        cluster_error(&mut encoder, shared, &error);
                        return false;
                    }
                }
            }
            b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT" if argc >= 3 => {
                expire(&mut encoder, shared, name, args).await;
                return false;
            }
            b"ECHO" | b"SELECT" | b"CLIENT" | b"GET" | b"MGET" | b"SET" | b"SETEX" | b"PSETEX" | b"SETNX" | b"MSET"
            | b"DEL" | b"UNLINK" | b"EXISTS" | b"TOUCH" | b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT"
            | b"TTL" | b"PTTL" | b"EXPIRETIME" | b"PEXPIRETIME" | b"PERSIST" | b"TYPE" | b"STRLEN" | b"RESET"
            | b"TIME" => {
                wrong_args(&mut encoder, name);
                return false;
            }
            _ => {
                shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(why) = unsupported(name) {
                    let text = format!(
                        "ERR '{}' is not supported by strata proxy: {why}",
                        String::from_utf8_lossy(name)
                    );
                    encoder.error(text.as_bytes());
                    return false;
                }
                let mut text = b"ERR unknown command '".to_vec();
                text.extend(
                    args[0]
                        .iter()
                        .take(128)
                        .map(|&b| if b.is_ascii_control() { b' ' } else { b }),
                );
                text.extend_from_slice(b"', with args beginning with: ");
                for arg in args.iter().skip(1).take(15) {
                    text.push(b'\'');
                    text.extend(
                        arg.iter()
                            .take(128)
                            .map(|&b| if b.is_ascii_control() { b' ' } else { b }),
                    );
                    text.extend_from_slice(b"' ");
                }
                encoder.error(&text)
            }
        };
        false
    }

    /// HELLO [protover [AUTH username password] [SETNAME clientname]]: as
    /// Redis 7, the reply (a map) in the protocol just chosen.
    /// HELLO; true to close (failed password checks used up).
    fn hello(&mut self, args: &[&[u8]], out: &mut Vec<u8>, shared: &ProxyShared) -> bool {
        let mut encoder = Encoder::new(out, self.protocol);
        let mut protocol = self.protocol;
        let mut i = 1;
        if args.len() >= 2 {
            match parse_strict_i64(args[1]) {
                Some(2) => protocol = Protocol::Resp2,
                Some(3) => protocol = Protocol::Resp3,
                Some(_) => {
                    encoder.error(b"NOPROTO unsupported protocol version");
                    return false;
                }
                None => {
                    encoder.error(b"ERR Protocol version is not an integer or out of range");
                    return false;
                }
            }
            i = 2;
        }
        let mut name = None;
        let mut authenticated = self.authenticated;
        while i < args.len() {
            if args[i].eq_ignore_ascii_case(b"AUTH") && i + 2 < args.len() {
                if let Err(message) = check_auth(shared.requirepass.as_ref(), args[i + 1], args[i + 2]) {
                    encoder.error(message);
                    return self.auth_failed(shared);
                }
                authenticated = true;
                i += 3;
            } else if args[i].eq_ignore_ascii_case(b"SETNAME") && i + 1 < args.len() {
                if !valid_client_name(args[i + 1]) {
                    encoder.error(b"ERR Client names cannot contain spaces, newlines or special characters.");
                    return false;
                }
                name = Some(args[i + 1].to_vec());
                i += 2;
            } else {
                let text = format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(args[i])
                );
                encoder.error(text.as_bytes());
                return false;
            }
        }
        if !authenticated {
            encoder.error(auth::HELLO_NOAUTH);
            return false;
        }
        self.authenticated = true;
        if name.is_some() {
            self.name = name;
        }
        self.protocol = protocol;
        encoder.set_protocol(protocol);
        encoder.map(9);
        encoder.bulk(b"server").bulk(b"redis");
        encoder.bulk(b"version").bulk(REDIS_COMPAT_VERSION.as_bytes());
        encoder
            .bulk(b"proto")
            .integer(if protocol == Protocol::Resp3 { 3 } else { 2 });
        encoder.bulk(b"id").integer(self.id as i64);
        encoder.bulk(b"mode").bulk(b"standalone");
        encoder.bulk(b"role").bulk(b"master");
        encoder.bulk(b"modules").array(0);
        encoder
            .bulk(b"strata_version")
            .bulk(env!("CARGO_PKG_VERSION").as_bytes());
        encoder.bulk(b"strata_role").bulk(b"proxy");
        false
    }

    /// CLIENT ID | SETNAME | GETNAME | SETINFO | INFO | LIST | NO-EVICT |
    /// NO-TOUCH | HELP: the connection's own state (the proxy does not
    /// track, so TRACKING and the rest are refused).
    fn client(&mut self, args: &[&[u8]], encoder: &mut Encoder<'_>, shared: &ProxyShared) {
        match (upper(args[1]).as_slice(), args.len()) {
            (b"ID", 2) => {
                encoder.integer(self.id as i64);
            }
            (b"SETNAME", 3) => {
                if valid_client_name(args[2]) {
                    self.name = (!args[2].is_empty()).then(|| args[2].to_vec());
                    encoder.ok();
                } else {
                    encoder.error(b"ERR Client names cannot contain spaces, newlines or special characters.");
                }
            }
            (b"GETNAME", 2) => {
                match &self.name {
                    Some(name) => encoder.bulk(name),
                    None => encoder.null(),
                };
            }
            (b"SETINFO", 4) => {
                let value = Some(args[3].to_vec());
                if args[2].eq_ignore_ascii_case(b"LIB-NAME") {
                    self.lib_name = value;
                    encoder.ok();
                } else if args[2].eq_ignore_ascii_case(b"LIB-VER") {
                    self.lib_ver = value;
                    encoder.ok();
                } else {
                    let text = format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(args[2]));
                    encoder.error(text.as_bytes());
                }
            }
            (b"INFO", 2) | (b"LIST", _) => {
                let text = |field: &Option<Vec<u8>>| {
                    String::from_utf8_lossy(field.as_deref().unwrap_or_default()).into_owned()
                };
                let line = format!(
                    "id={} name={} db=0 resp={} lib-name={} lib-ver={}\n",
                    self.id,
                    text(&self.name),
                    if self.protocol == Protocol::Resp3 { 3 } else { 2 },
                    text(&self.lib_name),
                    text(&self.lib_ver),
                );
                encoder.verbatim(b"txt", line.as_bytes());
            }
            (b"NO-EVICT", 3) | (b"NO-TOUCH", 3) => {
                encoder.ok();
            }
            (b"HELP", _) => {
                encoder.array(1);
                encoder
                    .simple(b"CLIENT ID | SETNAME <name> | GETNAME | SETINFO <LIB-NAME|LIB-VER> <value> | INFO | LIST");
            }
            _ => {
                shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                let text = format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                    String::from_utf8_lossy(args[1])
                );
                encoder.error(text.as_bytes());
            }
        }
    }
}

/// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT key time [NX | XX | GT | LT]:
/// Redis's arguments and errors; a time at or before now deletes the key.
/// With a flag the key's TTL is read first, then set: two requests.
async fn expire(encoder: &mut Encoder<'_>, shared: &ProxyShared, name: &[u8], args: &[&[u8]]) {
    let client = &shared.client;
    let (unit_ms, absolute, command): (i64, bool, &'static str) = match name {
        b"EXPIRE" => (1000, false, "expire"),
        b"PEXPIRE" => (1, false, "pexpire"),
        b"EXPIREAT" => (1000, true, "expireat"),
        _ => (1, true, "pexpireat"),
    };
    let Some(when) = parse_strict_i64(args[2]) else {
        encoder.error(CommandError::NotAnInteger.to_string().as_bytes());
        return;
    };
    let flags = match ExpireFlags::parse(&args[3..]) {
        Ok(flags) => flags,
        Err(error) => {
            encoder.error(error.to_string().as_bytes());
            return;
        }
    };
    let now = unix_ms() as i64;
    let at = when
        .checked_mul(unit_ms)
        .and_then(|ms| if absolute { Some(ms) } else { ms.checked_add(now) });
    let Some(at) = at else {
        encoder.error(CommandError::InvalidExpireTime(command).to_string().as_bytes());
        return;
    };
    let key = args[1];
    if flags != ExpireFlags::default() {
        match client.get_item(key).await {
            Ok(None) => {
                encoder.integer(0);
                return;
            }
            Ok(Some(item)) => {
                let current = item.ttl.map(|ttl| (now as u64).saturating_add(ttl.as_millis() as u64));
                if !flags.allows(current, at) {
                    encoder.integer(0);
                    return;
                }
            }
            Err(error) => {
                cluster_error(encoder, shared, &error);
                return;
            }
        }
    }
    let result = if at <= now {
        client.delete(key).await
    } else {
        client.touch(key, Duration::from_millis((at - now) as u64)).await
    };
    match result {
        Ok(found) => {
            encoder.integer(i64::from(found));
        }
        Err(error) => cluster_error(encoder, shared, &error),
    }
}

async fn set(encoder: &mut Encoder<'_>, shared: &ProxyShared, key: &[u8], value: &[u8], options: SetArgs) {
    let client = &shared.client;
    if options.expired {
        // Redis stores and expires at once: the key is gone.
        match client.delete(key).await {
            Ok(_) => {
                encoder.ok();
            }
            Err(error) => cluster_error(encoder, shared, &error),
        }
        return;
    }
    let result = if options.only_if_absent {
        client.add(key, value, options.ttl).await
    } else {
        client.set(key, value, options.ttl).await.map(|()| true)
    };
    match result {
        Ok(true) => {
            encoder.ok();
        }
        Ok(false) => {
            encoder.null();
        }
        Err(error) => cluster_error(encoder, shared, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(args: &str) -> Result<SetArgs, String> {
        let args: Vec<&[u8]> = args.split_whitespace().map(str::as_bytes).collect();
        parse_set_options(&args)
    }

    #[test]
    fn set_options_follow_redis() {
        // Was a multiplication overflow (panic in debug, wrap in release).
        assert_eq!(
            set("EXAT 9223372036854775807").err().as_deref(),
            Some("ERR invalid expire time in 'set' command")
        );
        assert_eq!(set("EX 1 EX 2").err().as_deref(), Some("ERR syntax error"));
        assert_eq!(
            set("EX +5").err().as_deref(),
            Some("ERR value is not an integer or out of range")
        );
        assert_eq!(
            set("EX 007").err().as_deref(),
            Some("ERR value is not an integer or out of range")
        );
        assert_eq!(set("NX XX").err().as_deref(), Some("ERR syntax error"));
        assert!(set("XX").is_err_and(|e| e.contains("not supported")));
        let parsed = set("NX EX 10").expect("valid");
        assert!(parsed.only_if_absent && !parsed.expired);
        assert!(parsed.ttl.is_some_and(|ttl| ttl <= Duration::from_secs(10)));
        assert!(set("PXAT 1").expect("valid").expired);
    }

    #[test]
    fn ttl_arguments_are_checked() {
        assert_eq!(ttl_arg(b"5", true), Ok(Some(Duration::from_secs(5))));
        assert_eq!(ttl_arg(b"0", true), Ok(None));
        assert_eq!(ttl_arg(b"+5", true), Err(CommandError::NotAnInteger));
        assert_eq!(
            ttl_arg(b"9223372036854775807", true),
            Err(CommandError::InvalidExpireTime(""))
        );
        assert_eq!(
            ttl_arg(b"9223372036854775807", false),
            Ok(Some(Duration::from_millis(i64::MAX as u64)))
        );
    }

    #[test]
    fn ttl_replies_follow_redis() {
        let now = 1_700_000_000_000;
        let ttl = Some(Some(Duration::from_secs(90)));
        assert_eq!(ttl_reply(b"TTL", None, now), -2);
        assert_eq!(ttl_reply(b"PTTL", Some(None), now), -1);
        assert_eq!(ttl_reply(b"EXPIRETIME", Some(None), now), -1);
        assert_eq!(ttl_reply(b"TTL", ttl, now), 90);
        assert_eq!(ttl_reply(b"PTTL", ttl, now), 90_000);
        assert_eq!(ttl_reply(b"EXPIRETIME", ttl, now), 1_700_000_090);
        assert_eq!(ttl_reply(b"PEXPIRETIME", ttl, now), 1_700_000_090_000);
    }

    #[test]
    fn cluster_wide_commands_say_why_they_are_refused() {
        assert!(unsupported(b"DBSIZE").is_some_and(|why| why.contains("every server")));
        assert!(unsupported(b"RENAME").is_some_and(|why| why.contains("different servers")));
        assert!(unsupported(b"INCR").is_some());
        // Not a command strata knows: Redis's `unknown command`.
        assert_eq!(unsupported(b"HSET"), None);
    }
}
