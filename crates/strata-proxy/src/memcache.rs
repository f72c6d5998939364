//! The proxy's memcached front door (text and meta protocol).
//!
//! Every command about one key goes to that key's node, as mcrouter routes
//! them: a CAS unique is the node's own, so `gets` then `cas` works
//! because both go to the same node, and so do `incr`/`decr` and the
//! conditional stores, which the node applies atomically. Served:
//! - get and gets (any number of keys; runs of them in a pipeline become
//!   one multi-get), gat and gats (a get-and-touch per key);
//! - set, add, replace, append, prepend, cas, delete, touch, incr, decr,
//!   each through its cluster client call (so a write that fails over to
//!   the gutter gets its short TTL and is replayed as a delete when the
//!   owner returns);
//! - the meta commands mg, ms, md, ma and me, sent to the key's node as
//!   they came and answered with its reply as it came (flags, opaque and
//!   returned key included); `q` is applied here, since each request on a
//!   pooled node connection needs its reply. mn is answered here, in
//!   order;
//! - version, verbosity, stats (the proxy's own counters), quit;
//!
//! all with `noreply` where memcached allows it (then nothing is sent, not
//! even an error, as memcached does). flush_all, which would empty every
//! server, gets `SERVER_ERROR flush_all is not supported by strata proxy`
//! and the connection stays open. Oversized values are refused and
//! swallowed unbuffered, as the server does.
//! A get line longer than the line limit is streamed, as the server does
//! ([`GetStream`]): each read's complete keys are fetched and answered as
//! one batch, so the reply comes batch by batch and `END` when the line
//! ends; if the cluster fails mid-line, `SERVER_ERROR` ends the reply and
//! the rest of the line is dropped.
//!
//! With the proxy's `requirepass`, a connection authenticates as on
//! strata's server and memcached's ASCII auth (no SASL): its first
//! request must be a `set` whose data is `<user> <password>` (`STORED`;
//! a wrong one gets `CLIENT_ERROR authentication failure`, the tenth
//! closes the connection), and until then every request gets
//! `CLIENT_ERROR unauthenticated` and reaches no server. Requests are
//! answered in order, so a client may pipeline its auth `set` with what
//! follows.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_client::{ClientError, StoreOutcome};
use strata_proto::memcache::encode::{
    encode_client_error, encode_end, encode_number, encode_request_error, encode_server_error, encode_stat,
    encode_status, encode_value,
};
use strata_proto::memcache::{
    ArithmeticOp, Discard, Expiration, GetEnd, GetStream, Keys, Limits, MetaCode, MetaFlags, Parsed, Request, Response,
    Status, StoreCommand, encode_response, parse_request,
};

use super::{Outcome, ProxyShared};
use strata_session::auth::{self, Attempts};

/// One memcached connection's state.
pub(crate) struct Session {
    limits: Limits,
    swallowing: Option<Discard>,
    /// A get line too long to buffer, answered as its keys arrive.
    streaming: Option<GetStream>,
    /// Whether requests may run: from the start without a `requirepass`,
    /// else after the auth `set`.
    authenticated: bool,
    /// Failed auth attempts so far.
    auth_attempts: Attempts,
}

/// A parsed request borrowing the read buffer, or a reply decided while
/// parsing (a refused request).
enum Command<'a> {
    Request(Request<'a>),
    Reply(Vec<u8>),
    /// A value refused as too large: remove the key's old value in the
    /// cluster (as memcached and strata's server do), then send the
    /// refusal (unless `noreply`).
    Refused {
        key: Vec<u8>,
        reply: Option<Vec<u8>>,
    },
    /// Keys of a streamed get line that have arrived, and how its reply
    /// ends here, if it does.
    GetPart {
        keys: Keys<'a>,
        cas: bool,
        end: Option<GetEnd>,
    },
}

/// The keys of a plain `get`/`gets` or part of a streamed one (batched
/// across a pipeline), with whether CAS uniques are wanted and how the
/// reply ends after them; `None` for anything else.
fn get_keys<'c, 'a>(command: &'c Command<'a>) -> Option<(&'c Keys<'a>, bool, Option<GetEnd>)> {
    match command {
        Command::Request(Request::Get(get)) if get.touch.is_none() => Some((&get.keys, get.cas, Some(GetEnd::End))),
        Command::GetPart { keys, cas, end } => Some((keys, *cas, *end)),
        _ => None,
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// memcached's exptime as a TTL: `Ok(None)` never expires, `Err(())`
/// already expired.
fn ttl_of(exptime: i64) -> Result<Option<Duration>, ()> {
    let now = now_secs();
    match Expiration::from_exptime(exptime, now) {
        Expiration::Never => Ok(None),
        Expiration::Expired => Err(()),
        Expiration::AtUnixSecs(at) => Ok(Some(Duration::from_secs(at.saturating_sub(now).max(1)))),
    }
}

impl Session {
    /// `authenticated` from the start when the proxy has no password.
    pub(crate) fn new(max_value_bytes: usize, authenticated: bool) -> Self {
        Session {
            limits: Limits {
                max_value_bytes,
                ..Limits::default()
            },
            swallowing: None,
            streaming: None,
            authenticated,
            auth_attempts: Attempts::default(),
        }
    }

    /// Answers a request that arrived before authentication: the auth
    /// `set` is checked, anything else refused. True to close (attempts
    /// used up). Synchronous and answered at once, before any request
    /// after it is queued, so replies stay in order.
    fn authenticate(&mut self, request: &Request<'_>, out: &mut Vec<u8>, shared: &ProxyShared) -> bool {
        match request {
            Request::Store(store) if store.command == StoreCommand::Set => {
                if auth::check_memcache(shared.requirepass.as_ref(), store.data) {
                    self.authenticated = true;
                    out.extend_from_slice(auth::MEMCACHE_AUTH_OK);
                    return false;
                }
                out.extend_from_slice(auth::MEMCACHE_AUTH_FAILURE);
                shared.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
                if self.auth_attempts.failed() {
                    tracing::warn!(
                        "closing a proxy memcached connection after {} failed auth attempts",
                        auth::MAX_AUTH_FAILURES
                    );
                    return true;
                }
            }
            _ => out.extend_from_slice(auth::MEMCACHE_UNAUTHENTICATED),
        }
        false
    }

    pub(crate) async fn process(&mut self, input: &[u8], out: &mut Vec<u8>, shared: &ProxyShared) -> Outcome {
        let mut commands = Vec::new();
        let mut consumed = 0;
        let mut close_after = false;
        loop {
            if let Some(discard) = &mut self.swallowing {
                consumed += discard.take(input.len() - consumed);
                if !discard.is_done() {
                    break;
                }
                self.swallowing = None;
            }
            if let Some(stream) = &mut self.streaming {
                let chunk = stream.parse(&input[consumed..]);
                consumed += chunk.consumed;
                if !chunk.keys.is_empty() || chunk.end.is_some() {
                    commands.push(Command::GetPart {
                        keys: chunk.keys,
                        cas: stream.cas(),
                        end: chunk.end,
                    });
                }
                if !stream.is_done() {
                    break;
                }
                self.streaming = None;
            }
            match parse_request(&input[consumed..], &self.limits) {
                Err(fatal) => {
                    // HTTP gets no answer at all (`FatalError::reply_line`).
                    if let Some(line) = fatal.reply_line() {
                        commands.push(Command::Reply(line.into_bytes()));
                    }
                    consumed = input.len();
                    close_after = true;
                    break;
                }
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Request {
                    request,
                    consumed: used,
                }) if !self.authenticated => {
                    consumed += used;
                    if self.authenticate(&request, out, shared) {
                        consumed = input.len();
                        close_after = true;
                        break;
                    }
                }
                Ok(Parsed::Request {
                    request,
                    consumed: used,
                }) => {
                    commands.push(Command::Request(request));
                    consumed += used;
                }
                Ok(Parsed::Reject {
                    error,
                    noreply,
                    consumed: used,
                }) => {
                    if !noreply {
                        match refusal(error) {
                            // In order with the answers given before
                            // authentication, which are written at once.
                            Command::Reply(reply) if !self.authenticated => out.extend_from_slice(&reply),
                            command => commands.push(command),
                        }
                    }
                    consumed += used;
                }
                Ok(Parsed::Swallow {
                    consumed: used,
                    swallow,
                    ..
                }) if !self.authenticated => {
                    // Refused unread; no server hears of it.
                    out.extend_from_slice(auth::MEMCACHE_UNAUTHENTICATED);
                    consumed += used;
                    self.swallowing = Some(Discard::new(swallow));
                }
                Ok(Parsed::Swallow {
                    error,
                    noreply,
                    consumed: used,
                    swallow,
                    too_large,
                }) => {
                    match too_large.filter(|refused| refused.replaces) {
                        Some(refused) => commands.push(Command::Refused {
                            key: refused.key.into_owned(),
                            reply: (!noreply).then(|| {
                                let mut reply = Vec::new();
                                encode_request_error(&mut reply, error);
                                reply
                            }),
                        }),
                        None if !noreply => commands.push(refusal(error)),
                        None => {}
                    }
                    consumed += used;
                    self.swallowing = Some(Discard::new(swallow));
                }
                Ok(Parsed::LongGet {
                    mut stream,
                    consumed: used,
                }) => {
                    if !self.authenticated {
                        // Answered here (nothing is queued before
                        // authentication); the rest of the line is dropped.
                        out.extend_from_slice(auth::MEMCACHE_UNAUTHENTICATED);
                        stream.abandon();
                    } else if stream.touch().is_some() {
                        let mut reply = Vec::new();
                        let message = format!("{} is not supported by strata proxy", stream.command_name());
                        encode_server_error(&mut reply, message.as_bytes());
                        commands.push(Command::Reply(reply));
                        stream.abandon();
                    }
                    consumed += used;
                    self.streaming = Some(stream);
                }
            }
        }
        let mut close = close_after;
        let mut at = 0;
        while at < commands.len() {
            // Consecutive gets become one multi-get.
            let run = commands[at..].iter().take_while(|c| get_keys(c).is_some()).count();
            if run > 0 {
                let mut keys: Vec<&[u8]> = Vec::new();
                let mut counts = Vec::with_capacity(run);
                for (get, cas, end) in commands[at..at + run].iter().filter_map(get_keys) {
                    counts.push((get.len(), cas, end));
                    keys.extend(get.iter());
                }
                // A streamed get counts once, when its reply ends.
                let requests = counts.iter().filter(|(_, _, end)| end.is_some()).count();
                shared.stats.requests.fetch_add(requests as u64, Ordering::Relaxed);
                match shared.client.get_many_items(&keys).await {
                    Ok(items) => {
                        let mut items = items.into_iter();
                        let mut keys = keys.iter();
                        for (count, with_cas, end) in counts {
                            for _ in 0..count {
                                let (Some(key), Some(item)) = (keys.next(), items.next()) else {
                                    break;
                                };
                                if let Some(item) = item {
                                    encode_value(out, key, item.flags, &item.value, with_cas.then_some(item.cas));
                                }
                            }
                            match end {
                                Some(GetEnd::End) => encode_end(out),
                                Some(GetEnd::Refused(error)) => encode_request_error(out, error),
                                None => {}
                            }
                        }
                    }
                    Err(error) => {
                        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
                        for (_, _, end) in &counts {
                            encode_server_error(out, format!("cluster: {error}").as_bytes());
                            if end.is_none() {
                                // The streamed line still coming: its reply
                                // has ended here.
                                if let Some(stream) = &mut self.streaming {
                                    stream.abandon();
                                }
                            }
                        }
                    }
                }
                at += run;
                continue;
            }
            shared.stats.requests.fetch_add(1, Ordering::Relaxed);
            if execute(&commands[at], out, shared).await {
                close = true;
                break;
            }
            at += 1;
        }
        Outcome { consumed, close }
    }
}

/// The reply to a request refused while parsing.
fn refusal(error: strata_proto::memcache::RequestError) -> Command<'static> {
    let mut reply = Vec::new();
    encode_request_error(&mut reply, error);
    Command::Reply(reply)
}

/// The reply line of a store's outcome.
fn store_status(outcome: StoreOutcome) -> Status {
    match outcome {
        StoreOutcome::Stored => Status::Stored,
        StoreOutcome::NotStored => Status::NotStored,
        StoreOutcome::Exists => Status::Exists,
        StoreOutcome::NotFound => Status::NotFound,
    }
}

/// Whether `reply` is the nominal reply that a meta request's `q` flag
/// suppresses: `EN` for `mg`, `HD` for `ms` and `md`, success for `ma` —
/// as strata's server and memcached do. Errors are always sent.
fn quiet_hides(request: &Request<'_>, reply: &Response) -> bool {
    let (flags, hidden): (&MetaFlags<'_>, &[MetaCode]) = match request {
        Request::MetaGet(meta) => (&meta.flags, &[MetaCode::En]),
        Request::MetaSet(set) => (&set.meta.flags, &[MetaCode::Hd]),
        Request::MetaDelete(meta) => (&meta.flags, &[MetaCode::Hd]),
        Request::MetaArithmetic(arithmetic) => (&arithmetic.meta.flags, &[MetaCode::Hd, MetaCode::Va]),
        _ => return false,
    };
    flags.quiet() && matches!(reply, Response::Meta(meta) if hidden.contains(&meta.code))
}

/// Runs one command; true to close.
async fn execute(command: &Command<'_>, out: &mut Vec<u8>, shared: &ProxyShared) -> bool {
    let client = &shared.client;
    // A failed call: the node's refusal is the client's error, anything
    // else the cluster's. Nothing is sent for `noreply`, as memcached sends
    // nothing (a client that asked for no reply reads none).
    let failed = |out: &mut Vec<u8>, error: ClientError, noreply: bool| {
        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
        if noreply {
            return;
        }
        match error {
            ClientError::Refused(message) => encode_client_error(out, message.as_bytes()),
            error => encode_server_error(out, format!("cluster: {error}").as_bytes()),
        }
    };
    let unsupported = |out: &mut Vec<u8>, name: &str| {
        shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        encode_server_error(out, format!("{name} is not supported by strata proxy").as_bytes());
    };
    let request = match command {
        Command::Request(request) => request,
        Command::Reply(reply) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            out.extend_from_slice(reply);
            return false;
        }
        Command::Refused { key, reply } => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = client.delete(key).await {
                // The refusal still stands; the old value may outlive it
                // only while the cluster cannot be reached.
                tracing::debug!(%error, "could not remove the old value of a refused key");
            }
            if let Some(reply) = reply {
                out.extend_from_slice(reply);
            }
            return false;
        }
        // Answered with the gets around it (`get_keys`).
        Command::GetPart { .. } => return false,
    };
    match request {
        // gat and gats (plain gets are batched before they get here): one
        // get-and-touch per key, every answer collected before any is
        // written, so a failure is one SERVER_ERROR and not half a reply.
        Request::Get(get) => {
            let exptime = get.touch.unwrap_or(0);
            let mut found = Vec::with_capacity(get.keys.len());
            for key in get.keys.iter() {
                let item = match ttl_of(exptime) {
                    Ok(ttl) => client.get_and_touch(key, ttl.unwrap_or(Duration::ZERO)).await,
                    // Touched to expire at once: answered, then gone.
                    Err(()) => match client.get_item(key).await {
                        Ok(Some(item)) => client.delete(key).await.map(|_| Some(item)),
                        other => other,
                    },
                };
                match item {
                    Ok(item) => found.push((key, item)),
                    Err(error) => {
                        failed(out, error, false);
                        return false;
                    }
                }
            }
            for (key, item) in found {
                if let Some(item) = item {
                    encode_value(out, key, item.flags, &item.value, get.cas.then_some(item.cas));
                }
            }
            encode_end(out);
        }
        Request::Store(store) => {
            let (key, data, flags, noreply) = (store.key, store.data, store.flags, store.noreply);
            // memcached ignores append's and prepend's exptime.
            let appends = matches!(store.command, StoreCommand::Append | StoreCommand::Prepend);
            let expiry = if appends { Ok(None) } else { ttl_of(store.exptime) };
            let ttl = expiry.unwrap_or(None);
            let stored = |done: bool| {
                if done {
                    StoreOutcome::Stored
                } else {
                    StoreOutcome::NotStored
                }
            };
            let result = match store.command {
                // Stored already expired: memcached answers STORED and the
                // item is gone.
                StoreCommand::Set if expiry.is_err() => client.delete(key).await.map(|_| StoreOutcome::Stored),
                StoreCommand::Set => client
                    .set_item(key, data, flags, ttl)
                    .await
                    .map(|()| StoreOutcome::Stored),
                StoreCommand::Add => client.add_item(key, data, flags, ttl).await.map(stored),
                StoreCommand::Replace => client.replace_item(key, data, flags, ttl).await.map(stored),
                StoreCommand::Append => client.append(key, data).await.map(stored),
                StoreCommand::Prepend => client.prepend(key, data).await.map(stored),
                StoreCommand::Cas(unique) => client.cas_item(key, data, flags, ttl, unique).await,
            };
            // A conditional store with an exptime already past: stored (as
            // memcached answers), then gone.
            let result = match result {
                Ok(StoreOutcome::Stored) if expiry.is_err() && store.command != StoreCommand::Set => {
                    client.delete(key).await.map(|_| StoreOutcome::Stored)
                }
                other => other,
            };
            match result {
                Ok(outcome) if !noreply => encode_status(out, store_status(outcome)),
                Ok(_) => {}
                Err(error) => failed(out, error, noreply),
            }
        }
        Request::Delete { key, noreply } => match client.delete(key).await {
            Ok(found) if !noreply => out.extend_from_slice(if found { b"DELETED\r\n" } else { b"NOT_FOUND\r\n" }),
            Ok(_) => {}
            Err(error) => failed(out, error, *noreply),
        },
        Request::Touch { key, exptime, noreply } => {
            let result = match ttl_of(*exptime) {
                Err(()) => client.delete(key).await,
                Ok(None) => client.touch(key, Duration::ZERO).await,
                Ok(Some(ttl)) => client.touch(key, ttl).await,
            };
            match result {
                Ok(found) if !noreply => out.extend_from_slice(if found { b"TOUCHED\r\n" } else { b"NOT_FOUND\r\n" }),
                Ok(_) => {}
                Err(error) => failed(out, error, *noreply),
            }
        }
        Request::Arithmetic {
            op,
            key,
            delta,
            noreply,
        } => {
            let result = match op {
                ArithmeticOp::Incr => client.incr(key, *delta).await,
                ArithmeticOp::Decr => client.decr(key, *delta).await,
            };
            match result {
                Ok(_) if *noreply => {}
                Ok(Some(value)) => encode_number(out, value),
                Ok(None) => encode_status(out, Status::NotFound),
                Err(error) => failed(out, error, *noreply),
            }
        }
        Request::Version => {
            out.extend_from_slice(format!("VERSION strata-proxy {}\r\n", env!("CARGO_PKG_VERSION")).as_bytes());
        }
        Request::Verbosity { noreply, .. } => {
            if !noreply {
                out.extend_from_slice(b"OK\r\n");
            }
        }
        Request::Stats { .. } => {
            let stats = client.stats();
            let proxy = &shared.stats;
            encode_stat(out, b"version", env!("CARGO_PKG_VERSION").as_bytes());
            encode_stat(out, b"ring_epoch", client.epoch());
            encode_stat(out, b"nodes_down", client.down_nodes().len() as u64);
            encode_stat(out, b"total_connections", proxy.connections.load(Ordering::Relaxed));
            encode_stat(out, b"cmd_get", stats.gets);
            encode_stat(out, b"get_hits", stats.hits);
            encode_stat(out, b"get_misses", stats.gets - stats.hits);
            encode_stat(out, b"cmd_set", stats.sets);
            encode_stat(out, b"failovers", stats.failovers);
            encode_stat(out, b"warmup_hits", stats.warmup_hits);
            encode_end(out);
        }
        Request::Quit => return true,
        Request::FlushAll { .. } => unsupported(out, "flush_all"),
        // Answered here: requests are answered in order, so everything
        // before it has been.
        Request::MetaNoop => out.extend_from_slice(b"MN\r\n"),
        Request::MetaGet(_)
        | Request::MetaSet(_)
        | Request::MetaDelete(_)
        | Request::MetaArithmetic(_)
        | Request::MetaDebug { .. } => match client.meta(request).await {
            Ok(reply) if quiet_hides(request, &reply) => {}
            Ok(reply) => encode_response(out, &reply),
            Err(error) => failed(out, error, false),
        },
    }
    false
}
