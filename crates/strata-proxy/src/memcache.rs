//! The proxy's memcached front door (text protocol).
//!
//! Served: get and gets (any number of keys; gets returns each node's CAS
//! unique), set, add, delete, touch, version, verbosity, stats (the proxy's
//! own counters), quit, all with `noreply` where memcached allows it.
//! Commands that need one node's local state or a cluster-wide operation —
//! cas, incr/decr, append/prepend, replace, gat/gats, flush_all, the meta
//! commands — get `SERVER_ERROR … not supported by strata proxy` and the
//! connection stays open. Oversized
//! values are refused and swallowed unbuffered, as the server does. A get
//! line longer than the line limit is streamed, as the server does
//! ([`GetStream`]): each read's complete keys are fetched and answered as
//! one batch, so the reply comes batch by batch and `END` when the line
//! ends; if the cluster fails mid-line, `SERVER_ERROR` ends the reply and
//! the rest of the line is dropped.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_proto::memcache::encode::{
    encode_end, encode_request_error, encode_server_error, encode_stat, encode_value,
};
use strata_proto::memcache::{
    Discard, Expiration, GetEnd, GetStream, Keys, Limits, Parsed, Request, StoreCommand, parse_request,
};

use super::{Outcome, ProxyShared};

/// One memcached connection's state.
pub(crate) struct Session {
    limits: Limits,
    swallowing: Option<Discard>,
    /// A get line too long to buffer, answered as its keys arrive.
    streaming: Option<GetStream>,
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
    pub(crate) fn new(max_value_bytes: usize) -> Self {
        Session {
            limits: Limits {
                max_value_bytes,
                ..Limits::default()
            },
            swallowing: None,
            streaming: None,
        }
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
                    commands.push(Command::Reply(format!("CLIENT_ERROR {fatal}\r\n").into_bytes()));
                    consumed = input.len();
                    close_after = true;
                    break;
                }
                Ok(Parsed::Incomplete) => break,
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
                        commands.push(refusal(error));
                    }
                    consumed += used;
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
                    if stream.touch().is_some() {
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

/// Runs one command; true to close.
async fn execute(command: &Command<'_>, out: &mut Vec<u8>, shared: &ProxyShared) -> bool {
    let client = &shared.client;
    let failed = |out: &mut Vec<u8>, error: strata_client::ClientError| {
        shared.stats.failed.fetch_add(1, Ordering::Relaxed);
        encode_server_error(out, format!("cluster: {error}").as_bytes());
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
        Request::Get(get) => unsupported(out, get.command_name()),
        Request::Store(store) if matches!(store.command, StoreCommand::Set | StoreCommand::Add) => {
            let (key, data, flags) = (store.key, store.data, store.flags);
            let result = match ttl_of(store.exptime) {
                // Stored already expired: memcached answers STORED and the
                // item is gone.
                Err(()) => client.delete(key).await.map(|_| true),
                Ok(ttl) if store.command == StoreCommand::Add => client.add_item(key, data, flags, ttl).await,
                Ok(ttl) => client.set_item(key, data, flags, ttl).await.map(|()| true),
            };
            match result {
                Ok(stored) if !store.noreply => {
                    out.extend_from_slice(if stored { b"STORED\r\n" } else { b"NOT_STORED\r\n" })
                }
                Ok(_) => {}
                Err(error) => failed(out, error),
            }
        }
        Request::Store(store) => unsupported(out, store.command.name()),
        Request::Delete { key, noreply } => match client.delete(key).await {
            Ok(found) if !noreply => out.extend_from_slice(if found { b"DELETED\r\n" } else { b"NOT_FOUND\r\n" }),
            Ok(_) => {}
            Err(error) => failed(out, error),
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
                Err(error) => failed(out, error),
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
        Request::Arithmetic { op, .. } => unsupported(out, op.name()),
        Request::FlushAll { .. } => unsupported(out, "flush_all"),
        Request::MetaGet(_)
        | Request::MetaSet(_)
        | Request::MetaDelete(_)
        | Request::MetaArithmetic(_)
        | Request::MetaNoop
        | Request::MetaDebug { .. } => unsupported(out, "meta commands"),
    }
    false
}
