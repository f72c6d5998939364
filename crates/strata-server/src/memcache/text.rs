//! memcached's classic text commands.

use std::sync::atomic::Ordering;

use strata_proto::memcache::encode::{
    encode_end, encode_number, encode_stat, encode_status, encode_value, encode_version,
};
use strata_proto::memcache::{ArithmeticOp, Get, Keys, Request, Status, Store, StoreCommand};
use strata_store::{Condition, Expiry, MetaGet, SetOptions, StoreError};

use super::{EXPIRED, McCounters, expiry};
use crate::Shared;
use crate::metrics::Protocol;
use crate::tracking::NO_CLIENT;

/// The version memcached clients see; strata's own follows it.
pub(crate) fn version_line() -> String {
    format!("1.6.21-strata-{}", crate::VERSION)
}

/// Runs a classic command.
pub(super) fn execute(shared: &Shared, request: &Request<'_>, out: &mut Vec<u8>) {
    match request {
        Request::Get(get) => retrieve(shared, get, out),
        Request::Store(store) => store_item(shared, store, out),
        Request::Delete { key, noreply } => {
            let deleted = shared.store.delete(key);
            // Told even when absent: see `meta::md`.
            shared.key_modified(key, NO_CLIENT);
            let counters = &shared.memcache;
            McCounters::bump(if deleted {
                &counters.delete_hits
            } else {
                &counters.delete_misses
            });
            if !noreply {
                encode_status(out, if deleted { Status::Deleted } else { Status::NotFound });
            }
        }
        Request::Arithmetic {
            op,
            key,
            delta,
            noreply,
        } => {
            let decrement = *op == ArithmeticOp::Decr;
            let counters = &shared.memcache;
            let (hits, misses) = if decrement {
                (&counters.decr_hits, &counters.decr_misses)
            } else {
                (&counters.incr_hits, &counters.incr_misses)
            };
            match shared.store.incr_unsigned(key, *delta, decrement) {
                Ok(value) => {
                    shared.key_modified(key, NO_CLIENT);
                    McCounters::bump(hits);
                    if !noreply {
                        encode_number(out, value);
                    }
                }
                Err(StoreError::NotFound) => {
                    McCounters::bump(misses);
                    if !noreply {
                        encode_status(out, Status::NotFound);
                    }
                }
                Err(StoreError::NotAnInteger) => {
                    out.extend_from_slice(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
                }
                Err(_) => out.extend_from_slice(b"SERVER_ERROR out of memory storing object\r\n"),
            }
        }
        Request::Touch { key, exptime, noreply } => {
            let expiry = expiry(shared, *exptime).unwrap_or(EXPIRED);
            let touched = shared.store.touch(key, expiry);
            if touched {
                shared.key_modified(key, NO_CLIENT);
            }
            let counters = &shared.memcache;
            McCounters::bump(if touched {
                &counters.touch_hits
            } else {
                &counters.touch_misses
            });
            if !noreply {
                encode_status(out, if touched { Status::Touched } else { Status::NotFound });
            }
        }
        Request::FlushAll { delay, noreply } => {
            McCounters::bump(&shared.memcache.flush_cmds);
            flush_all(shared, *delay);
            if !noreply {
                encode_status(out, Status::Ok);
            }
        }
        Request::Version => encode_version(out, version_line().as_bytes()),
        Request::Verbosity { noreply, .. } => {
            if !noreply {
                encode_status(out, Status::Ok);
            }
        }
        Request::Stats { args } => stats(shared, *args, out),
        _ => encode_status(out, Status::Error),
    }
}

/// get / gets / gat / gats: one VALUE per hit, then END.
fn retrieve(shared: &Shared, get: &Get<'_>, out: &mut Vec<u8>) {
    retrieve_keys(shared, get.keys, get.cas, get.touch, out);
    encode_end(out);
}

/// The VALUEs of a retrieval's `keys` (with CAS uniques if `cas`, touching
/// each hit with `touch`), without the END: all of a line's keys, or those
/// of a streamed line that have arrived so far.
pub(super) fn retrieve_keys(shared: &Shared, keys: Keys<'_>, cas: bool, touch: Option<i64>, out: &mut Vec<u8>) {
    if keys.is_empty() {
        return;
    }
    let touch = touch.map(|exptime| expiry(shared, exptime).unwrap_or(EXPIRED));
    let counters = &shared.memcache;
    for key in keys.iter() {
        let found = match touch {
            None => shared.store.get(key, |item| {
                encode_value(out, key, item.flags(), item.value(), cas.then(|| item.cas()));
            }),
            Some(expiry) => {
                let options = MetaGet {
                    touch: Some(expiry),
                    ..MetaGet::default()
                };
                shared.store.meta_get(key, &options, |hit| {
                    hit.map(|hit| {
                        let item = hit.item;
                        encode_value(out, key, item.flags(), item.value(), cas.then(|| item.cas()));
                    })
                })
            }
        };
        if touch.is_some() && found.is_some() {
            // gat/gats changed the TTL.
            shared.key_modified(key, NO_CLIENT);
        }
        match (found.is_some(), touch.is_some()) {
            (true, false) => McCounters::bump(&counters.get_hits),
            (false, false) => McCounters::bump(&counters.get_misses),
            (true, true) => McCounters::bump(&counters.touch_hits),
            (false, true) => McCounters::bump(&counters.touch_misses),
        }
    }
}

/// set / add / replace / append / prepend / cas.
fn store_item(shared: &Shared, store: &Store<'_>, out: &mut Vec<u8>) {
    let reply = |out: &mut Vec<u8>, status: Status| {
        if !store.noreply {
            encode_status(out, status);
        }
    };
    let result = match store.command {
        StoreCommand::Append | StoreCommand::Prepend => {
            let prepend = store.command == StoreCommand::Prepend;
            shared.store.append(store.key, store.data, prepend, false).map(|_| 0)
        }
        command => {
            let condition = match command {
                StoreCommand::Add => Condition::IfAbsent,
                StoreCommand::Replace => Condition::IfPresent,
                StoreCommand::Cas(cas) => Condition::IfVersion(cas),
                _ => Condition::Always,
            };
            let options = SetOptions {
                condition,
                expiry: expiry(shared, store.exptime).unwrap_or(EXPIRED),
                flags: store.flags,
                ..SetOptions::default()
            };
            shared.store.set(store.key, store.data, options)
        }
    };
    let counters = &shared.memcache;
    let is_cas = matches!(store.command, StoreCommand::Cas(_));
    match result {
        Ok(_) => {
            shared.key_modified(store.key, NO_CLIENT);
            if is_cas {
                McCounters::bump(&counters.cas_hits);
            }
            reply(out, Status::Stored);
        }
        Err(StoreError::NotStored) => reply(out, Status::NotStored),
        Err(StoreError::NotFound) if is_cas => {
            McCounters::bump(&counters.cas_misses);
            reply(out, Status::NotFound);
        }
        Err(StoreError::NotFound) => reply(out, Status::NotStored),
        Err(StoreError::Exists) => {
            McCounters::bump(&counters.cas_badval);
            reply(out, Status::Exists);
        }
        Err(StoreError::TooLarge { .. }) => {
            McCounters::bump(&counters.store_too_large);
            if store.command != StoreCommand::Add {
                shared.remove_refused(store.key, NO_CLIENT);
            }
            out.extend_from_slice(b"SERVER_ERROR object too large for cache\r\n");
        }
        Err(_) => out.extend_from_slice(b"SERVER_ERROR out of memory storing object\r\n"),
    }
}

/// flush_all [delay]: now, or every item stored before the deadline is
/// dropped when it comes (memcached's `oldest_live`). A delayed flush is a
/// deadline in the shared state, not a timer: the next request at or after
/// it (on either protocol) runs it first, so it follows the engine's clock
/// (tests move it), and no number of `flush_all <delay>` requests can pile
/// up timers. A later `flush_all` replaces an earlier deadline, as in
/// memcached.
fn flush_all(shared: &Shared, delay: Option<i64>) {
    let Some(delay) = delay.filter(|&d| d != 0) else {
        shared.store.flush();
        shared.flushed();
        shared.set_flush_deadline(None);
        return;
    };
    let now_ms = shared.store.clock().now_ms();
    let at_ms = match expiry(shared, delay) {
        Some(Expiry::AtMs(at)) => at,
        _ => now_ms,
    };
    if at_ms <= now_ms {
        shared.store.flush();
        shared.flushed();
        shared.set_flush_deadline(None);
    } else {
        shared.set_flush_deadline(Some(at_ms));
    }
}

fn stats(shared: &Shared, args: Option<&[u8]>, out: &mut Vec<u8>) {
    let config = shared.config.read().clone();
    match args {
        None => {
            let store = shared.store.stats();
            let metrics = &shared.metrics;
            let counters = &shared.memcache;
            let now = shared.store.clock().now_ms() / 1000;
            let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            let commands = metrics.command_times(Protocol::Memcache);
            let calls = |names: &[&str]| -> u64 {
                commands
                    .iter()
                    .filter(|(n, _, _)| names.contains(n))
                    .map(|(_, c, _)| c)
                    .sum()
            };
            let cpu = strata_session::process::cpu_times();
            let (user, system) = (cpu.user.as_secs_f64(), cpu.system.as_secs_f64());
            let fields: Vec<(&[u8], String)> = vec![
                (b"pid", std::process::id().to_string()),
                (b"uptime", metrics.uptime_secs().to_string()),
                (b"time", now.to_string()),
                (b"version", version_line()),
                (b"pointer_size", "64".into()),
                (b"rusage_user", format!("{user:.6}")),
                (b"rusage_system", format!("{system:.6}")),
                (b"max_connections", config.max_connections.to_string()),
                (b"curr_connections", load(&metrics.connections).to_string()),
                (b"total_connections", load(&metrics.connections_total).to_string()),
                (b"rejected_connections", load(&metrics.rejected_connections).to_string()),
                (b"cmd_get", calls(&["get", "gets", "mg"]).to_string()),
                (
                    b"cmd_set",
                    calls(&["set", "add", "replace", "append", "prepend", "cas", "ms"]).to_string(),
                ),
                (b"cmd_flush", load(&counters.flush_cmds).to_string()),
                (b"cmd_touch", calls(&["touch", "gat", "gats"]).to_string()),
                (b"cmd_meta", calls(&["mg", "ms", "md", "ma", "mn", "me"]).to_string()),
                (b"get_hits", load(&counters.get_hits).to_string()),
                (b"get_misses", load(&counters.get_misses).to_string()),
                (b"get_expired", store.expired_lazy.to_string()),
                (b"delete_misses", load(&counters.delete_misses).to_string()),
                (b"delete_hits", load(&counters.delete_hits).to_string()),
                (b"incr_misses", load(&counters.incr_misses).to_string()),
                (b"incr_hits", load(&counters.incr_hits).to_string()),
                (b"decr_misses", load(&counters.decr_misses).to_string()),
                (b"decr_hits", load(&counters.decr_hits).to_string()),
                (b"cas_misses", load(&counters.cas_misses).to_string()),
                (b"cas_hits", load(&counters.cas_hits).to_string()),
                (b"cas_badval", load(&counters.cas_badval).to_string()),
                (b"touch_hits", load(&counters.touch_hits).to_string()),
                (b"touch_misses", load(&counters.touch_misses).to_string()),
                (b"store_too_large", load(&counters.store_too_large).to_string()),
                (b"auth_cmds", load(&counters.auth_cmds).to_string()),
                (b"auth_errors", load(&counters.auth_errors).to_string()),
                (b"limit_maxbytes", store.capacity.to_string()),
                (b"threads", config.threads.unwrap_or_else(num_cpus).to_string()),
                (b"bytes", store.used.to_string()),
                (b"curr_items", store.items.to_string()),
                (b"total_items", store.sets.to_string()),
                (b"expired_unfetched", "0".into()),
                (b"evictions", store.evictions.to_string()),
                (b"reclaimed", store.expired_active.to_string()),
                (b"keyspace_hits", store.hits.to_string()),
                (b"keyspace_misses", store.misses.to_string()),
            ];
            for (name, value) in &fields {
                encode_stat(out, name, value.as_str());
            }
            encode_end(out);
        }
        Some(args) if args.eq_ignore_ascii_case(b"settings") => {
            encode_stat(out, b"maxbytes", config.maxmemory.0);
            encode_stat(out, b"maxconns", config.max_connections as u64);
            encode_stat(out, b"tcpport", u64::from(shared.memcache_addr.port()));
            encode_stat(out, b"item_size_max", config.max_item_size.0);
            encode_stat(out, b"evictions", "on");
            encode_stat(out, b"eviction_policy", shared.store.policy().name());
            encode_stat(out, b"lease_ms", config.lease_ms);
            encode_end(out);
        }
        Some(args) if args.eq_ignore_ascii_case(b"reset") => encode_status(out, Status::Reset),
        // Slab, item and size statistics describe memcached's allocator;
        // strata's has none of those classes to report.
        Some(_) => encode_end(out),
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
