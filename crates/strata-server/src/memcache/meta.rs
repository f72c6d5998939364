//! memcached's meta commands: mg, ms, md, ma, me (mn is one line in
//! `mod.rs`).
//!
//! Returned flags follow the request's order, then `Z`, `X`, `W`, as
//! memcached writes them. The lease flags (`N`, `R`, `I`, and the returned
//! `W`/`X`/`Z`) run on the engine's meta-protocol state
//! (`strata_store`'s `meta.rs`), shared with the RESP lease commands.
//!
//! Differences from memcached, by design or not yet: `ma` ignores `E` (the
//! new value gets a fresh version); `me` reports `cls=0` (strata's slab
//! classes are not memcached's).

use strata_proto::memcache::{Meta, MetaArithmetic, MetaCode, MetaReply, MetaSet, SetMode};
use strata_store::{Change, Condition, Expiry, MetaDelete, MetaGet, SetOptions, StoreError};

use super::{EXPIRED, McCounters, expiry};
use crate::Shared;
use crate::tracking::NO_CLIENT;

fn ttl_secs(now_ms: u64, expire_at_ms: Option<u64>) -> i64 {
    match expire_at_ms {
        None => -1,
        Some(at) => (at.saturating_sub(now_ms) / 1000) as i64,
    }
}

/// Echoes `O` and `k` (the flags every meta reply returns when asked).
fn echo_common(reply: &mut MetaReply<'_>, meta: &Meta<'_>) {
    for flag in meta.flags.iter() {
        match flag.flag {
            b'O' => {
                reply.token(b'O', flag.token);
            }
            b'k' => {
                reply.key(&meta.key, meta.binary_key());
            }
            _ => {}
        }
    }
}

fn status(out: &mut Vec<u8>, code: MetaCode, meta: &Meta<'_>) {
    let mut reply = MetaReply::status(out, code);
    echo_common(&mut reply, meta);
    reply.finish();
}

/// mg <key> <flags>*
pub(super) fn mg(shared: &Shared, meta: &Meta<'_>, out: &mut Vec<u8>) {
    let flags = &meta.flags;
    let to_expiry = |ttl: i64| expiry(shared, ttl).unwrap_or(EXPIRED);
    let options = MetaGet {
        vivify: flags.vivify_ttl().map(to_expiry),
        recache_below_ms: flags
            .recache_ttl()
            .map(|secs| (secs.max(0) as u64).saturating_mul(1000)),
        touch: flags.ttl().map(to_expiry),
        new_cas: flags.new_cas(),
        no_bump: flags.no_bump(),
        stale_win_ttl_ms: None,
    };
    let now = shared.store.clock().now_ms();
    let counters = &shared.memcache;
    let touch = options.touch.is_some();
    let changed = shared.store.meta_get(&meta.key, &options, |hit| {
        let Some(hit) = hit else {
            McCounters::bump(&counters.get_misses);
            if !flags.quiet() {
                status(out, MetaCode::En, meta);
            }
            return false;
        };
        // Side effects a reader can see: a vivified placeholder, a new TTL.
        let changed = hit.created || touch;
        McCounters::bump(&counters.get_hits);
        let item = hit.item;
        let value = item.value();
        let send_value = flags.return_value() && flags.compare_cas() != Some(item.cas());
        let mut reply = if send_value {
            MetaReply::value(out, value.len())
        } else {
            MetaReply::status(out, MetaCode::Hd)
        };
        for flag in flags.iter() {
            match flag.flag {
                b's' => {
                    reply.uint(b's', value.len() as u64);
                }
                b't' => {
                    reply.int(b't', ttl_secs(now, item.expire_at_ms()));
                }
                b'c' => {
                    reply.uint(b'c', item.cas());
                }
                b'f' => {
                    reply.uint(b'f', u64::from(item.flags()));
                }
                b'l' => {
                    reply.uint(b'l', now.saturating_sub(hit.last_access_ms) / 1000);
                }
                b'h' => {
                    reply.uint(b'h', u64::from(hit.fetched_before));
                }
                b'O' => {
                    reply.token(b'O', flag.token);
                }
                b'k' => {
                    reply.key(&meta.key, meta.binary_key());
                }
                _ => {}
            }
        }
        if hit.win_sent_before {
            reply.flag(b'Z');
        }
        if hit.stale {
            reply.flag(b'X');
        }
        if hit.won {
            reply.flag(b'W');
        }
        if send_value {
            reply.finish_with_data(value);
        } else {
            reply.finish();
        }
        changed
    });
    if changed {
        shared.key_modified(&meta.key, NO_CLIENT);
    }
}

/// ms <key> <datalen> <flags>*
pub(super) fn ms(shared: &Shared, set: &MetaSet<'_>, out: &mut Vec<u8>) {
    let meta = &set.meta;
    let flags = &meta.flags;
    let key: &[u8] = &meta.key;
    let result = match set.mode {
        SetMode::Append | SetMode::Prepend => append(shared, set),
        mode => {
            let condition = match (mode, flags.compare_cas()) {
                (SetMode::Add, _) => Condition::IfAbsent,
                (_, Some(cas)) => Condition::IfVersion(cas),
                (SetMode::Replace, None) => Condition::IfPresent,
                _ => Condition::Always,
            };
            let options = SetOptions {
                condition,
                expiry: flags
                    .ttl()
                    .map_or(Expiry::Never, |ttl| expiry(shared, ttl).unwrap_or(EXPIRED)),
                flags: flags.client_flags().unwrap_or(0),
                cas: flags.new_cas(),
                stale_if_older: flags.invalidate(),
            };
            shared.store.set(key, set.data, options)
        }
    };
    if result.is_ok() {
        shared.key_modified(key, NO_CLIENT);
    }
    let code = match result {
        Ok(_) if flags.quiet() => return,
        Ok(_) => MetaCode::Hd,
        Err(StoreError::NotStored) => MetaCode::Ns,
        Err(StoreError::Exists) => MetaCode::Ex,
        Err(StoreError::NotFound) => MetaCode::Nf,
        Err(StoreError::TooLarge { .. }) => {
            McCounters::bump(&shared.memcache.store_too_large);
            if set.mode != SetMode::Add {
                shared.remove_refused(key, NO_CLIENT);
            }
            out.extend_from_slice(b"SERVER_ERROR object too large for cache\r\n");
            return;
        }
        Err(_) => {
            out.extend_from_slice(b"SERVER_ERROR out of memory storing object\r\n");
            return;
        }
    };
    let mut reply = MetaReply::status(out, code);
    for flag in flags.iter() {
        match flag.flag {
            b'O' => {
                reply.token(b'O', flag.token);
            }
            b'k' => {
                reply.key(key, meta.binary_key());
            }
            b'c' => {
                reply.uint(b'c', *result.as_ref().unwrap_or(&0));
            }
            b's' if result.is_ok() => {
                let size = shared.store.peek(key, |item| item.value().len()).unwrap_or(0);
                reply.uint(b's', size as u64);
            }
            _ => {}
        }
    }
    reply.finish();
}

/// `ms` in append or prepend mode: respects `C`, and with `N` creates the
/// item on a miss.
fn append(shared: &Shared, set: &MetaSet<'_>) -> Result<u64, StoreError> {
    let flags = &set.meta.flags;
    let prepend = set.mode == SetMode::Prepend;
    let vivify = flags.vivify_ttl().map(|ttl| expiry(shared, ttl).unwrap_or(EXPIRED));
    let (result, cas) = shared.store.compute(&set.meta.key, |item| match item {
        None => match vivify {
            Some(expiry) => (
                Change::Set {
                    value: set.data.to_vec(),
                    expiry,
                    flags: Some(flags.client_flags().unwrap_or(0)),
                },
                Ok(()),
            ),
            None => (
                Change::Keep,
                Err(if flags.compare_cas().is_some() {
                    StoreError::NotFound
                } else {
                    StoreError::NotStored
                }),
            ),
        },
        Some(item) if flags.compare_cas().is_some_and(|cas| cas != item.cas()) => {
            (Change::Keep, Err(StoreError::Exists))
        }
        Some(item) => {
            let old = item.value();
            let mut value = Vec::with_capacity(old.len() + set.data.len());
            if prepend {
                value.extend_from_slice(set.data);
                value.extend_from_slice(old);
            } else {
                value.extend_from_slice(old);
                value.extend_from_slice(set.data);
            }
            (
                Change::Set {
                    value,
                    expiry: Expiry::Keep,
                    flags: None,
                },
                Ok(()),
            )
        }
    })?;
    result.map(|()| cas.unwrap_or(0))
}

/// md <key> <flags>*
pub(super) fn md(shared: &Shared, meta: &Meta<'_>, out: &mut Vec<u8>) {
    let flags = &meta.flags;
    let invalidate = flags.invalidate();
    let options = MetaDelete {
        cas: flags.compare_cas(),
        stale: invalidate,
        expiry: flags
            .ttl()
            .filter(|_| invalidate)
            .map(|ttl| expiry(shared, ttl).unwrap_or(EXPIRED)),
        new_cas: flags.new_cas(),
        drop_value: flags.remove_value(),
    };
    let counters = &shared.memcache;
    let code = match shared.store.meta_delete(&meta.key, &options) {
        Ok(_) => {
            shared.key_modified(&meta.key, NO_CLIENT);
            McCounters::bump(&counters.delete_hits);
            if flags.quiet() {
                return;
            }
            MetaCode::Hd
        }
        Err(StoreError::NotFound) => {
            // Trackers are told even so: a delete is a writer saying the
            // key changed, and a near cache may hold a copy this server no
            // longer has (evicted since, or read from a stand-in while this
            // server was down). Unlike Redis, which tells only of actual
            // modifications; the extra message costs a tracker nothing.
            shared.key_modified(&meta.key, NO_CLIENT);
            McCounters::bump(&counters.delete_misses);
            MetaCode::Nf
        }
        Err(_) => MetaCode::Ex,
    };
    status(out, code, meta);
}

/// ma <key> <flags>*
pub(super) fn ma(shared: &Shared, ma: &MetaArithmetic<'_>, out: &mut Vec<u8>) {
    let meta = &ma.meta;
    let flags = &meta.flags;
    let decrement = ma.op == strata_proto::memcache::ArithmeticOp::Decr;
    let delta = flags.delta().unwrap_or(1);
    let to_expiry = |ttl: i64| expiry(shared, ttl).unwrap_or(EXPIRED);
    let vivify = flags.vivify_ttl().map(to_expiry);
    let touch = flags.ttl().map(to_expiry);
    let initial = flags.initial().unwrap_or(0);
    let now = shared.store.clock().now_ms();
    let result = shared.store.compute(&meta.key, |item| match item {
        None => match vivify {
            Some(expiry) => (
                Change::Set {
                    value: initial.to_string().into_bytes(),
                    expiry,
                    flags: Some(0),
                },
                Ok((initial, expiry_ms(now, expiry))),
            ),
            None => (Change::Keep, Err(StoreError::NotFound)),
        },
        Some(item) if flags.compare_cas().is_some_and(|cas| cas != item.cas()) => {
            (Change::Keep, Err(StoreError::Exists))
        }
        Some(item) => {
            let text = std::str::from_utf8(item.value()).unwrap_or("").trim_end_matches(' ');
            let Ok(current) = text.parse::<u64>() else {
                return (Change::Keep, Err(StoreError::NotAnInteger));
            };
            let next = if decrement {
                current.saturating_sub(delta)
            } else {
                current.wrapping_add(delta)
            };
            let expire = touch.map_or(item.expire_at_ms(), |expiry| expiry_ms(now, expiry));
            (
                Change::Set {
                    value: next.to_string().into_bytes(),
                    expiry: touch.unwrap_or(Expiry::Keep),
                    flags: None,
                },
                Ok((next, expire)),
            )
        }
    });
    let counters = &shared.memcache;
    let (hits, misses) = if decrement {
        (&counters.decr_hits, &counters.decr_misses)
    } else {
        (&counters.incr_hits, &counters.incr_misses)
    };
    let (value, expire, cas) = match result {
        Ok((Ok((value, expire)), cas)) => {
            shared.key_modified(&meta.key, NO_CLIENT);
            McCounters::bump(hits);
            (value, expire, cas.unwrap_or(0))
        }
        Ok((Err(StoreError::NotFound), _)) => {
            McCounters::bump(misses);
            status(out, MetaCode::Nf, meta);
            return;
        }
        Ok((Err(StoreError::Exists), _)) => {
            status(out, MetaCode::Ex, meta);
            return;
        }
        Ok((Err(StoreError::NotAnInteger), _)) => {
            out.extend_from_slice(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
            return;
        }
        Ok((Err(_), _)) | Err(_) => {
            status(out, MetaCode::Ns, meta);
            return;
        }
    };
    if flags.quiet() {
        return;
    }
    let text = value.to_string();
    let mut reply = if flags.return_value() {
        MetaReply::value(out, text.len())
    } else {
        MetaReply::status(out, MetaCode::Hd)
    };
    for flag in flags.iter() {
        match flag.flag {
            b'O' => {
                reply.token(b'O', flag.token);
            }
            b'k' => {
                reply.key(&meta.key, meta.binary_key());
            }
            b'c' => {
                reply.uint(b'c', cas);
            }
            b't' => {
                reply.int(b't', ttl_secs(now, expire));
            }
            _ => {}
        }
    }
    if flags.return_value() {
        reply.finish_with_data(text.as_bytes());
    } else {
        reply.finish();
    }
}

fn expiry_ms(now_ms: u64, expiry: Expiry) -> Option<u64> {
    match expiry {
        Expiry::Never | Expiry::Keep => None,
        Expiry::AtMs(at) => Some(at),
        Expiry::AfterMs(ms) => Some(now_ms.saturating_add(ms)),
    }
}

/// me <key> [b]: memcached's debug line for an item.
pub(super) fn me(shared: &Shared, key: &[u8], binary: bool, out: &mut Vec<u8>) {
    use strata_proto::memcache::Field;
    use strata_proto::memcache::encode::encode_meta_debug;
    let now = shared.store.clock().now_ms();
    let found = shared.store.peek(key, |item| {
        let exp = ttl_secs(now, item.expire_at_ms());
        let la = now.saturating_sub(item.last_access_ms()) / 1000;
        let fetch: &[u8] = if item.fetched() { b"yes" } else { b"no" };
        let fields: [(&[u8], Field<'_>); 6] = [
            (b"exp", Field::Int(exp)),
            (b"la", Field::Uint(la)),
            (b"cas", Field::Uint(item.cas())),
            (b"fetch", Field::Bytes(fetch)),
            (b"cls", Field::Uint(0)),
            (b"size", Field::Uint((item.key().len() + item.value().len()) as u64)),
        ];
        encode_meta_debug(out, key, binary, &fields);
    });
    if found.is_none() {
        out.extend_from_slice(b"EN\r\n");
    }
}
