//! The generic keyspace commands, for a store whose only type is string.

use strata_store::{Change, Expiry, StoreError};

use strata_proto::resp::command::ExpireFlags;
use strata_proto::resp::parse_strict_i64;

use super::{Ctx, Flow};
use crate::glob;

/// DEL key [key …] / UNLINK
pub(super) fn del(ctx: &mut Ctx<'_>) -> Flow {
    let deleted = ctx
        .args_from(1)
        .filter(|key| {
            let deleted = ctx.shared.store.delete(key);
            if deleted {
                ctx.modified(key);
            }
            deleted
        })
        .count();
    ctx.out.integer(deleted as i64);
    Flow::Continue
}

fn visible(ctx: &Ctx<'_>, key: &[u8]) -> bool {
    ctx.shared.store.peek(key, |item| !item.is_placeholder()) == Some(true)
}

/// EXISTS key [key …] (a key named twice counts twice)
pub(super) fn exists(ctx: &mut Ctx<'_>) -> Flow {
    let count = ctx.args_from(1).filter(|key| visible(ctx, key)).count();
    ctx.out.integer(count as i64);
    Flow::Continue
}

/// TOUCH key [key …]: counts existing keys and marks them used.
pub(super) fn touch(ctx: &mut Ctx<'_>) -> Flow {
    let count = ctx
        .args_from(1)
        .filter(|key| ctx.shared.store.get(key, |item| !item.is_placeholder()) == Some(true))
        .count();
    ctx.out.integer(count as i64);
    Flow::Continue
}

/// The shared part of EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
fn expire_generic(ctx: &mut Ctx<'_>, unit_ms: u64, absolute: bool) -> Flow {
    let Some(when) = ctx.int_arg(2) else {
        return Flow::Continue;
    };
    let args: Vec<&[u8]> = ctx.args_from(3).collect();
    let flags = match ExpireFlags::parse(&args) {
        Ok(flags) => flags,
        Err(error) => {
            ctx.out.error(error.to_string().as_bytes());
            return Flow::Continue;
        }
    };
    let now = ctx.shared.store.clock().now_ms() as i64;
    let at = when
        .checked_mul(unit_ms as i64)
        .and_then(|ms| if absolute { Some(ms) } else { ms.checked_add(now) });
    let Some(at) = at else {
        let text = format!("ERR invalid expire time in '{}' command", ctx.command.name);
        ctx.out.error(text.as_bytes());
        return Flow::Continue;
    };
    let result = ctx.shared.store.compute(ctx.arg(1), |item| {
        let Some(item) = item.filter(|i| !i.is_placeholder()) else {
            return (Change::Keep, false);
        };
        if !flags.allows(item.expire_at_ms(), at) {
            return (Change::Keep, false);
        }
        if at <= now {
            (Change::Remove, true)
        } else {
            (Change::Expire(Expiry::AtMs(at as u64)), true)
        }
    });
    match result {
        Ok((changed, _)) => {
            if changed {
                ctx.modified(ctx.arg(1));
            }
            ctx.out.integer(i64::from(changed))
        }
        Err(error) => {
            ctx.store_error(&error);
            return Flow::Continue;
        }
    };
    Flow::Continue
}

/// EXPIRE key seconds [NX | XX | GT | LT]
pub(super) fn expire(ctx: &mut Ctx<'_>) -> Flow {
    expire_generic(ctx, 1000, false)
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
pub(super) fn pexpire(ctx: &mut Ctx<'_>) -> Flow {
    expire_generic(ctx, 1, false)
}

/// EXPIREAT key unix-seconds [NX | XX | GT | LT]
pub(super) fn expireat(ctx: &mut Ctx<'_>) -> Flow {
    expire_generic(ctx, 1000, true)
}

/// PEXPIREAT key unix-ms [NX | XX | GT | LT]
pub(super) fn pexpireat(ctx: &mut Ctx<'_>) -> Flow {
    expire_generic(ctx, 1, true)
}

/// The expiry of `key`: `Err(-2)` missing, `Err(-1)` no TTL, `Ok(ms)`.
fn expire_at(ctx: &Ctx<'_>, key: &[u8]) -> Result<u64, i64> {
    match ctx
        .shared
        .store
        .peek(key, |item| (!item.is_placeholder()).then(|| item.expire_at_ms()))
        .flatten()
    {
        None => Err(-2),
        Some(None) => Err(-1),
        Some(Some(at)) => Ok(at),
    }
}

/// EXPIRETIME key
pub(super) fn expiretime(ctx: &mut Ctx<'_>) -> Flow {
    let reply = expire_at(ctx, ctx.arg(1)).map_or_else(|code| code, |at| (at / 1000) as i64);
    ctx.out.integer(reply);
    Flow::Continue
}

/// PEXPIRETIME key
pub(super) fn pexpiretime(ctx: &mut Ctx<'_>) -> Flow {
    let reply = expire_at(ctx, ctx.arg(1)).map_or_else(|code| code, |at| at as i64);
    ctx.out.integer(reply);
    Flow::Continue
}

fn ttl_generic(ctx: &mut Ctx<'_>, millis: bool) -> Flow {
    let now = ctx.shared.store.clock().now_ms();
    let reply = match expire_at(ctx, ctx.arg(1)) {
        Err(code) => code,
        Ok(at) => {
            let left = at.saturating_sub(now) as i64;
            if millis { left } else { (left + 500) / 1000 }
        }
    };
    ctx.out.integer(reply);
    Flow::Continue
}

/// TTL key
pub(super) fn ttl(ctx: &mut Ctx<'_>) -> Flow {
    ttl_generic(ctx, false)
}

/// PTTL key
pub(super) fn pttl(ctx: &mut Ctx<'_>) -> Flow {
    ttl_generic(ctx, true)
}

/// PERSIST key
pub(super) fn persist(ctx: &mut Ctx<'_>) -> Flow {
    let result = ctx.shared.store.compute(ctx.arg(1), |item| match item {
        Some(item) if !item.is_placeholder() && item.expire_at_ms().is_some() => (Change::Expire(Expiry::Never), true),
        _ => (Change::Keep, false),
    });
    let changed = matches!(result, Ok((true, _)));
    if changed {
        ctx.modified(ctx.arg(1));
    }
    ctx.out.integer(i64::from(changed));
    Flow::Continue
}

/// TYPE key
pub(super) fn type_(ctx: &mut Ctx<'_>) -> Flow {
    let kind: &[u8] = if visible(ctx, ctx.arg(1)) { b"string" } else { b"none" };
    ctx.out.simple(kind);
    Flow::Continue
}

/// RENAME key newkey
pub(super) fn rename(ctx: &mut Ctx<'_>) -> Flow {
    match ctx.shared.store.rename(ctx.arg(1), ctx.arg(2), false) {
        Ok(_) => {
            ctx.modified(ctx.arg(1));
            ctx.modified(ctx.arg(2));
            ctx.out.ok();
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// RENAMENX key newkey
pub(super) fn renamenx(ctx: &mut Ctx<'_>) -> Flow {
    match ctx.shared.store.rename(ctx.arg(1), ctx.arg(2), true) {
        Ok(moved) => {
            if moved {
                ctx.modified(ctx.arg(1));
                ctx.modified(ctx.arg(2));
            }
            ctx.out.integer(i64::from(moved));
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// COPY source destination [DB 0] [REPLACE]
pub(super) fn copy(ctx: &mut Ctx<'_>) -> Flow {
    let mut replace = false;
    let mut i = 3;
    while i < ctx.argc() {
        if ctx.arg_is(i, "REPLACE") {
            replace = true;
        } else if ctx.arg_is(i, "DB") && i + 1 < ctx.argc() {
            if parse_strict_i64(ctx.arg(i + 1)) != Some(0) {
                ctx.out.error(b"ERR DB index is out of range");
                return Flow::Continue;
            }
            i += 1;
        } else {
            ctx.syntax_error();
            return Flow::Continue;
        }
        i += 1;
    }
    match ctx.shared.store.copy(ctx.arg(1), ctx.arg(2), replace) {
        Ok(copied) => {
            if copied {
                ctx.modified(ctx.arg(2));
            }
            ctx.out.integer(i64::from(copied))
        }
        Err(StoreError::NotFound) => ctx.out.integer(0),
        Err(error) => {
            ctx.store_error(&error);
            return Flow::Continue;
        }
    };
    Flow::Continue
}

/// RANDOMKEY
pub(super) fn randomkey(ctx: &mut Ctx<'_>) -> Flow {
    match ctx.shared.store.random_key() {
        Some(key) => ctx.out.bulk(&key),
        None => ctx.out.null(),
    };
    Flow::Continue
}

/// OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT key, OBJECT HELP
pub(super) fn object(ctx: &mut Ctx<'_>) -> Flow {
    let sub = ctx.arg(1).to_ascii_uppercase();
    if sub == b"HELP" {
        let lines: [&[u8]; 5] = [
            b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"ENCODING <key>: the internal representation (int, embstr or raw, as Redis names them).",
            b"FREQ <key>: the access frequency the eviction policy counts (W-TinyLFU or LFU policies).",
            b"IDLETIME <key>: seconds since the key was last used, estimated to 1/8 of a cache turnover.",
            b"REFCOUNT <key>: always 1.",
        ];
        ctx.out.array(lines.len());
        for line in lines {
            ctx.out.simple(line);
        }
        return Flow::Continue;
    }
    if ctx.argc() != 3 {
        let text = format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(ctx.arg(1))
        );
        ctx.out.error(text.as_bytes());
        return Flow::Continue;
    }
    let key = ctx.arg(2);
    let store = &ctx.shared.store;
    match sub.as_slice() {
        b"ENCODING" => {
            let encoding = store.peek(key, |item| {
                let value = item.value();
                let encoding: &[u8] = if value.len() <= 20 && parse_strict_i64(value).is_some() {
                    b"int"
                } else if value.len() <= 44 {
                    b"embstr"
                } else {
                    b"raw"
                };
                encoding
            });
            match encoding {
                Some(encoding) => ctx.out.bulk(encoding),
                None => ctx.out.null(),
            };
        }
        b"FREQ" => match store.frequency(key) {
            None => {
                ctx.out.null();
            }
            Some(None) => {
                ctx.out.error(
                    b"ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                      Please note that when switching between policies at runtime LRU and LFU data \
                      will take some time to adjust.",
                );
            }
            Some(Some(freq)) => {
                ctx.out.integer(i64::from(freq));
            }
        },
        b"IDLETIME" => {
            let now = store.clock().now_ms();
            match store.peek(key, |item| now.saturating_sub(item.last_access_ms()) / 1000) {
                Some(idle) => ctx.out.integer(idle as i64),
                None => ctx.out.null(),
            };
        }
        b"REFCOUNT" => {
            match store.peek(key, |_| ()) {
                Some(()) => ctx.out.integer(1),
                None => ctx.out.null(),
            };
        }
        _ => {
            let text = format!(
                "ERR unknown subcommand '{}'. Try OBJECT HELP.",
                String::from_utf8_lossy(ctx.arg(1))
            );
            ctx.out.error(text.as_bytes());
        }
    }
    Flow::Continue
}

/// MEMORY USAGE key [SAMPLES n], MEMORY STATS, MEMORY DOCTOR, MEMORY HELP
pub(super) fn memory(ctx: &mut Ctx<'_>) -> Flow {
    let sub = ctx.arg(1).to_ascii_uppercase();
    match sub.as_slice() {
        b"USAGE" if ctx.argc() == 3 || (ctx.argc() == 5 && ctx.arg_is(3, "SAMPLES")) => {
            match ctx.shared.store.memory_usage(ctx.arg(2)) {
                Some(bytes) => ctx.out.integer(bytes as i64),
                None => ctx.out.null(),
            };
        }
        b"STATS" => {
            let stats = ctx.shared.store.stats();
            let fields: [(&[u8], i64); 6] = [
                (b"peak.allocated", crate::resident_bytes() as i64),
                (b"total.allocated", (stats.record_bytes + stats.overhead_bytes) as i64),
                (b"dataset.bytes", stats.used as i64),
                (b"keys.count", stats.items as i64),
                (b"keys.bytes-per-key", (stats.used / stats.items.max(1)) as i64),
                (b"overhead.total", stats.overhead_bytes as i64),
            ];
            ctx.out.map(fields.len());
            for (name, value) in fields {
                ctx.out.bulk(name).integer(value);
            }
        }
        b"DOCTOR" => {
            ctx.out
                .verbatim(b"txt", b"Hi Sam, I can't find any memory issue in your instance.");
        }
        b"HELP" => {
            ctx.out.array(1);
            ctx.out.simple(b"MEMORY USAGE <key> | STATS | DOCTOR");
        }
        _ => ctx.syntax_error(),
    }
    Flow::Continue
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub(super) fn scan(ctx: &mut Ctx<'_>) -> Flow {
    let Some(cursor) = std::str::from_utf8(ctx.arg(1)).ok().and_then(|c| c.parse::<u64>().ok()) else {
        ctx.out.error(b"ERR invalid cursor");
        return Flow::Continue;
    };
    let (mut pattern, mut count, mut only_strings) = (None, 10usize, true);
    let mut i = 2;
    while i < ctx.argc() {
        if i + 1 >= ctx.argc() {
            ctx.syntax_error();
            return Flow::Continue;
        }
        if ctx.arg_is(i, "MATCH") {
            pattern = Some(ctx.arg(i + 1));
        } else if ctx.arg_is(i, "COUNT") {
            match parse_strict_i64(ctx.arg(i + 1)) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => {
                    ctx.syntax_error();
                    return Flow::Continue;
                }
                None => {
                    ctx.out.error(b"ERR value is not an integer or out of range");
                    return Flow::Continue;
                }
            }
        } else if ctx.arg_is(i, "TYPE") {
            only_strings = ctx.arg_is(i + 1, "string");
        } else {
            ctx.syntax_error();
            return Flow::Continue;
        }
        i += 2;
    }
    let mut keys = Vec::new();
    // COUNT may be huge: visit in slices of at most SCAN_SLICE items, each
    // under one shard lock, so a large COUNT never holds a lock for long.
    let (mut next, mut visited) = (cursor, 0);
    loop {
        let slice = (count - visited).min(SCAN_SLICE);
        let mut seen = 0;
        next = ctx.shared.store.scan(next, slice, |item| {
            seen += 1;
            let key = item.key();
            if only_strings && !item.is_placeholder() && pattern.is_none_or(|p| glob::matches(p, key, false)) {
                keys.push(key.to_vec());
            }
        });
        visited += seen;
        if next == 0 || visited >= count || seen == 0 {
            break;
        }
    }
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(keys.len());
    for key in &keys {
        ctx.out.bulk(key);
    }
    Flow::Continue
}

/// Items SCAN and KEYS visit under one shard lock at most.
const SCAN_SLICE: usize = 1024;

/// KEYS pattern
pub(super) fn keys(ctx: &mut Ctx<'_>) -> Flow {
    let pattern = ctx.arg(1);
    let mut keys = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = ctx.shared.store.scan(cursor, SCAN_SLICE, |item| {
            if !item.is_placeholder() && glob::matches(pattern, item.key(), false) {
                keys.push(item.key().to_vec());
            }
        });
        if cursor == 0 {
            break;
        }
    }
    ctx.out.array(keys.len());
    for key in &keys {
        ctx.out.bulk(key);
    }
    Flow::Continue
}

/// DBSIZE
pub(super) fn dbsize(ctx: &mut Ctx<'_>) -> Flow {
    ctx.out.integer(ctx.shared.store.len() as i64);
    Flow::Continue
}

/// FLUSHDB / FLUSHALL [ASYNC | SYNC]
pub(super) fn flush(ctx: &mut Ctx<'_>) -> Flow {
    if ctx.argc() > 2 || (ctx.argc() == 2 && !ctx.arg_is(1, "ASYNC") && !ctx.arg_is(1, "SYNC")) {
        ctx.syntax_error();
        return Flow::Continue;
    }
    // ASYNC returns at once and frees the memory on a thread of its own;
    // SYNC (and no argument, as Redis's default lazyfree-lazy-user-flush
    // no) frees it before replying.
    if ctx.argc() == 2 && ctx.arg_is(1, "ASYNC") {
        ctx.shared.store.flush_async();
    } else {
        ctx.shared.store.flush();
    }
    ctx.shared.flushed();
    ctx.out.ok();
    Flow::Continue
}
