//! The string commands, as Redis 7 documents them.
//!
//! Placeholders (items vivified for a lease winner, see `strata_store`'s
//! `meta.rs`) have no value yet, so reads treat them as missing.

use strata_store::{Change, Condition, Expiry, SetOptions, StoreError};

use strata_proto::resp::command::{self as resp_command, ExpiryMs, GetExOptions, SetOptions as SetCommand};
use strata_proto::resp::parse_strict_i64;

use super::{Ctx, Flow, format_float, parse_float};

/// The store's expiry for an expiry option parsed by `strata_proto`.
fn store_expiry(expiry: resp_command::Expiry) -> Expiry {
    match expiry.to_ms() {
        Some(ExpiryMs::After(ms)) => Expiry::AfterMs(ms),
        Some(ExpiryMs::At(ms)) => Expiry::AtMs(ms),
        // The parser refuses expiries whose milliseconds overflow.
        None => unreachable!("parsed expiries fit in ms"),
    }
}

/// The arguments from `from` on, as slices.
fn args_from<'a>(ctx: &Ctx<'a>, from: usize) -> Vec<&'a [u8]> {
    ctx.args_from(from).collect()
}

/// GET key
pub(super) fn get(ctx: &mut Ctx<'_>) -> Flow {
    let key = ctx.arg(1);
    let out = &mut ctx.out;
    let found = ctx.shared.store.get(key, |item| {
        if item.is_placeholder() {
            false
        } else {
            out.bulk(item.value());
            true
        }
    });
    if found != Some(true) {
        out.null();
    }
    Flow::Continue
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]
pub(super) fn set(ctx: &mut Ctx<'_>) -> Flow {
    let (key, value) = (ctx.arg(1), ctx.arg(2));
    let parsed = match SetCommand::parse(&args_from(ctx, 3)) {
        Ok(parsed) => parsed,
        Err(error) => {
            ctx.out.error(error.to_string().as_bytes());
            return Flow::Continue;
        }
    };
    let condition = match parsed.condition {
        None => Condition::Always,
        Some(resp_command::Condition::IfAbsent) => Condition::IfAbsent,
        Some(resp_command::Condition::IfPresent) => Condition::IfPresent,
    };
    let expiry = match parsed.expiry {
        Some(expiry) => store_expiry(expiry),
        None if parsed.keepttl => Expiry::Keep,
        None => Expiry::Never,
    };
    let get_old = parsed.get;
    if !get_old {
        let options = SetOptions {
            condition,
            expiry,
            ..SetOptions::default()
        };
        match ctx.shared.store.set(key, value, options) {
            Ok(_) => {
                ctx.modified(key);
                ctx.out.ok();
            }
            Err(StoreError::NotStored) => {
                ctx.out.null();
            }
            Err(error) => ctx.store_error(&error),
        }
        return Flow::Continue;
    }
    // SET … GET: read the old value and write in one step.
    let result = ctx.shared.store.compute(key, |item| {
        let old = item.filter(|i| !i.is_placeholder()).map(|i| i.value().to_vec());
        let write = match condition {
            Condition::IfAbsent => old.is_none(),
            Condition::IfPresent => old.is_some(),
            _ => true,
        };
        let change = if write {
            Change::Set {
                value: value.to_vec(),
                expiry,
                flags: Some(0),
            }
        } else {
            Change::Keep
        };
        (change, old)
    });
    if matches!(result, Ok((_, Some(_)))) {
        ctx.modified(key);
    }
    match result {
        Ok((Some(old), _)) => {
            ctx.out.bulk(&old);
        }
        Ok((None, _)) => {
            ctx.out.null();
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// SETNX key value
pub(super) fn setnx(ctx: &mut Ctx<'_>) -> Flow {
    let options = SetOptions {
        condition: Condition::IfAbsent,
        ..SetOptions::default()
    };
    match ctx.shared.store.set(ctx.arg(1), ctx.arg(2), options) {
        Ok(_) => {
            ctx.modified(ctx.arg(1));
            ctx.out.integer(1)
        }
        Err(StoreError::NotStored) => ctx.out.integer(0),
        Err(error) => {
            ctx.store_error(&error);
            return Flow::Continue;
        }
    };
    Flow::Continue
}

fn set_with_ttl(ctx: &mut Ctx<'_>, millis_per_unit: u64) -> Flow {
    let invalid = |ctx: &mut Ctx<'_>| {
        let text = format!("ERR invalid expire time in '{}' command", ctx.command.name);
        ctx.out.error(text.as_bytes());
    };
    let Some(ttl) = ctx.int_arg(2) else {
        return Flow::Continue;
    };
    let Some(ms) = (ttl > 0).then(|| (ttl as u64).checked_mul(millis_per_unit)).flatten() else {
        invalid(ctx);
        return Flow::Continue;
    };
    let options = SetOptions {
        expiry: Expiry::AfterMs(ms),
        ..SetOptions::default()
    };
    match ctx.shared.store.set(ctx.arg(1), ctx.arg(3), options) {
        Ok(_) => {
            ctx.modified(ctx.arg(1));
            ctx.out.ok();
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// SETEX key seconds value
pub(super) fn setex(ctx: &mut Ctx<'_>) -> Flow {
    set_with_ttl(ctx, 1000)
}

/// PSETEX key milliseconds value
pub(super) fn psetex(ctx: &mut Ctx<'_>) -> Flow {
    set_with_ttl(ctx, 1)
}

/// GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]
pub(super) fn getex(ctx: &mut Ctx<'_>) -> Flow {
    let option = match GetExOptions::parse(&args_from(ctx, 2)) {
        Ok(option) => option,
        Err(error) => {
            ctx.out.error(error.to_string().as_bytes());
            return Flow::Continue;
        }
    };
    let result = ctx.shared.store.compute(ctx.arg(1), |item| match item {
        Some(item) if !item.is_placeholder() => {
            let change = match option {
                // As Redis: PERSIST of a key without a TTL changes nothing.
                GetExOptions::Persist if item.expire_at_ms().is_some() => Change::Expire(Expiry::Never),
                GetExOptions::Expire(expiry) => Change::Expire(store_expiry(expiry)),
                _ => Change::Keep,
            };
            let changed = !matches!(change, Change::Keep);
            (change, Some((item.value().to_vec(), changed)))
        }
        _ => (Change::Keep, None),
    });
    if matches!(result, Ok((Some((_, true)), _))) {
        ctx.modified(ctx.arg(1));
    }
    match result {
        Ok((Some((value, _)), _)) => {
            ctx.out.bulk(&value);
        }
        Ok((None, _)) => {
            ctx.out.null();
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// GETDEL key
pub(super) fn getdel(ctx: &mut Ctx<'_>) -> Flow {
    let result = ctx.shared.store.compute(ctx.arg(1), |item| match item {
        Some(item) if !item.is_placeholder() => (Change::Remove, Some(item.value().to_vec())),
        _ => (Change::Keep, None),
    });
    match result {
        Ok((Some(value), _)) => {
            ctx.modified(ctx.arg(1));
            ctx.out.bulk(&value)
        }
        _ => ctx.out.null(),
    };
    Flow::Continue
}

/// GETSET key value (SET key value GET)
pub(super) fn getset(ctx: &mut Ctx<'_>) -> Flow {
    let value = ctx.arg(2);
    let result = ctx.shared.store.compute(ctx.arg(1), |item| {
        let old = item.filter(|i| !i.is_placeholder()).map(|i| i.value().to_vec());
        let change = Change::Set {
            value: value.to_vec(),
            expiry: Expiry::Never,
            flags: Some(0),
        };
        (change, old)
    });
    if result.is_ok() {
        ctx.modified(ctx.arg(1));
    }
    match result {
        Ok((Some(old), _)) => {
            ctx.out.bulk(&old);
        }
        Ok((None, _)) => {
            ctx.out.null();
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// MGET key [key …]
pub(super) fn mget(ctx: &mut Ctx<'_>) -> Flow {
    let count = ctx.argc() - 1;
    ctx.out.array(count);
    for i in 1..=count {
        let key = ctx.arg(i);
        let out = &mut ctx.out;
        let found = ctx.shared.store.get(key, |item| {
            if item.is_placeholder() {
                false
            } else {
                out.bulk(item.value());
                true
            }
        });
        if found != Some(true) {
            ctx.out.null();
        }
        if ctx.reply_over_limit() {
            // The session discards this reply and closes the connection.
            break;
        }
    }
    Flow::Continue
}

fn wrong_pairs(ctx: &mut Ctx<'_>) -> bool {
    if ctx.argc() % 2 == 0 {
        let text = format!("ERR wrong number of arguments for '{}' command", ctx.command.name);
        ctx.out.error(text.as_bytes());
        return true;
    }
    false
}

/// MSET key value [key value …] — each key is set atomically, the whole
/// command is not (keys live in different shards).
pub(super) fn mset(ctx: &mut Ctx<'_>) -> Flow {
    if wrong_pairs(ctx) {
        return Flow::Continue;
    }
    for i in (1..ctx.argc()).step_by(2) {
        if let Err(error) = ctx.shared.store.set(ctx.arg(i), ctx.arg(i + 1), SetOptions::default()) {
            ctx.store_error(&error);
            return Flow::Continue;
        }
        ctx.modified(ctx.arg(i));
    }
    ctx.out.ok();
    Flow::Continue
}

/// MSETNX key value [key value …] — all or nothing, atomically.
pub(super) fn msetnx(ctx: &mut Ctx<'_>) -> Flow {
    if wrong_pairs(ctx) {
        return Flow::Continue;
    }
    let pairs: Vec<(&[u8], &[u8])> = (1..ctx.argc())
        .step_by(2)
        .map(|i| (ctx.arg(i), ctx.arg(i + 1)))
        .collect();
    match ctx.shared.store.set_many_if_absent(&pairs) {
        Ok(true) => {
            for (key, _) in &pairs {
                ctx.modified(key);
            }
            ctx.out.integer(1)
        }
        Ok(false) => ctx.out.integer(0),
        Err(error) => {
            ctx.store_error(&error);
            return Flow::Continue;
        }
    };
    Flow::Continue
}

fn incr_by(ctx: &mut Ctx<'_>, delta: i64) -> Flow {
    match ctx.shared.store.incr_by(ctx.arg(1), delta) {
        Ok(value) => {
            ctx.modified(ctx.arg(1));
            ctx.out.integer(value);
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// INCR key
pub(super) fn incr(ctx: &mut Ctx<'_>) -> Flow {
    incr_by(ctx, 1)
}

/// DECR key
pub(super) fn decr(ctx: &mut Ctx<'_>) -> Flow {
    incr_by(ctx, -1)
}

/// INCRBY key increment
pub(super) fn incrby(ctx: &mut Ctx<'_>) -> Flow {
    match ctx.int_arg(2) {
        Some(delta) => incr_by(ctx, delta),
        None => Flow::Continue,
    }
}

/// DECRBY key decrement
pub(super) fn decrby(ctx: &mut Ctx<'_>) -> Flow {
    match ctx.int_arg(2) {
        Some(i64::MIN) => {
            ctx.out.error(b"ERR decrement would overflow");
            Flow::Continue
        }
        Some(delta) => incr_by(ctx, -delta),
        None => Flow::Continue,
    }
}

/// INCRBYFLOAT key increment
pub(super) fn incrbyfloat(ctx: &mut Ctx<'_>) -> Flow {
    let Some(increment) = parse_float(ctx.arg(2)) else {
        ctx.out.error(b"ERR value is not a valid float");
        return Flow::Continue;
    };
    let result = ctx.shared.store.compute(ctx.arg(1), |item| {
        let current = match item.filter(|i| !i.is_placeholder()) {
            None => 0.0,
            Some(item) => match parse_float(item.value()) {
                Some(value) => value,
                None => return (Change::Keep, Err(&b"ERR value is not a valid float"[..])),
            },
        };
        let next = current + increment;
        if !next.is_finite() {
            return (Change::Keep, Err(&b"ERR increment would produce NaN or Infinity"[..]));
        }
        let text = format_float(next).into_bytes();
        (
            Change::Set {
                value: text.clone(),
                expiry: Expiry::Keep,
                flags: None,
            },
            Ok(text),
        )
    });
    match result {
        Ok((Ok(text), _)) => {
            ctx.modified(ctx.arg(1));
            ctx.out.bulk(&text);
        }
        Ok((Err(message), _)) => {
            ctx.out.error(message);
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// APPEND key value
pub(super) fn append(ctx: &mut Ctx<'_>) -> Flow {
    match ctx.shared.store.append(ctx.arg(1), ctx.arg(2), false, true) {
        Ok(len) => {
            ctx.modified(ctx.arg(1));
            ctx.out.integer(len as i64);
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// STRLEN key
pub(super) fn strlen(ctx: &mut Ctx<'_>) -> Flow {
    let len = ctx
        .shared
        .store
        .peek(ctx.arg(1), |item| item.value().len())
        .unwrap_or(0);
    ctx.out.integer(len as i64);
    Flow::Continue
}

/// GETRANGE key start end (and SUBSTR)
pub(super) fn getrange(ctx: &mut Ctx<'_>) -> Flow {
    let (Some(start), Some(end)) = (parse_strict_i64(ctx.arg(2)), parse_strict_i64(ctx.arg(3))) else {
        ctx.out.error(b"ERR value is not an integer or out of range");
        return Flow::Continue;
    };
    let key = ctx.arg(1);
    let out = &mut ctx.out;
    let found = ctx.shared.store.get(key, |item| {
        let value = item.value();
        let len = value.len() as i64;
        let (mut start, mut end) = (start, end);
        if start < 0 && end < 0 && start > end {
            out.bulk(b"");
            return;
        }
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        if len == 0 || start > end {
            out.bulk(b"");
        } else {
            out.bulk(&value[start as usize..=end as usize]);
        }
    });
    if found.is_none() {
        ctx.out.bulk(b"");
    }
    Flow::Continue
}

/// SETRANGE key offset value
pub(super) fn setrange(ctx: &mut Ctx<'_>) -> Flow {
    let Some(offset) = ctx.int_arg(2) else {
        return Flow::Continue;
    };
    if offset < 0 {
        ctx.out.error(b"ERR offset is out of range");
        return Flow::Continue;
    }
    let offset = offset as u64;
    let patch = ctx.arg(3);
    let limit = ctx.shared.store.max_item_bytes();
    let size = offset.saturating_add(patch.len() as u64);
    if size > limit {
        // Refused as the store would refuse it: the old value goes too.
        let error = strata_store::StoreError::TooLarge { size, limit };
        ctx.store_error(&error);
        return Flow::Continue;
    }
    let offset = offset as usize;
    let result = ctx.shared.store.compute(ctx.arg(1), |item| {
        let old = item
            .filter(|i| !i.is_placeholder())
            .map(|i| i.value())
            .unwrap_or_default();
        if patch.is_empty() {
            // Redis: an empty value changes nothing, not even creating the key.
            return (Change::Keep, old.len());
        }
        let mut value = old.to_vec();
        if value.len() < offset + patch.len() {
            value.resize(offset + patch.len(), 0);
        }
        value[offset..offset + patch.len()].copy_from_slice(patch);
        let len = value.len();
        (
            Change::Set {
                value,
                expiry: Expiry::Keep,
                flags: None,
            },
            len,
        )
    });
    match result {
        Ok((len, cas)) => {
            if cas.is_some() {
                ctx.modified(ctx.arg(1));
            }
            ctx.out.integer(len as i64);
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// Largest DP table LCS builds (cells of 4 bytes): 128 MiB.
const LCS_MAX_CELLS: u64 = 32 * 1024 * 1024;

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN] — Redis's
/// algorithm (dynamic programming, ranges emitted from the end).
pub(super) fn lcs(ctx: &mut Ctx<'_>) -> Flow {
    let (mut get_len, mut get_idx, mut with_match_len, mut min_match_len) = (false, false, false, 0i64);
    let mut i = 3;
    while i < ctx.argc() {
        if ctx.arg_is(i, "IDX") {
            get_idx = true;
        } else if ctx.arg_is(i, "LEN") {
            get_len = true;
        } else if ctx.arg_is(i, "WITHMATCHLEN") {
            with_match_len = true;
        } else if ctx.arg_is(i, "MINMATCHLEN") && i + 1 < ctx.argc() {
            let Some(n) = ctx.int_arg(i + 1) else {
                return Flow::Continue;
            };
            min_match_len = n.max(0);
            i += 1;
        } else {
            ctx.syntax_error();
            return Flow::Continue;
        }
        i += 1;
    }
    if get_len && get_idx {
        ctx.out
            .error(b"ERR If you want both the length and indexes, please just use IDX.");
        return Flow::Continue;
    }
    let store = &ctx.shared.store;
    let value = |key: &[u8]| {
        store
            .peek(key, |item| (!item.is_placeholder()).then(|| item.value().to_vec()))
            .flatten()
            .unwrap_or_default()
    };
    let (a, b) = (value(ctx.arg(1)), value(ctx.arg(2)));
    if (a.len() as u64 + 1) * (b.len() as u64 + 1) > LCS_MAX_CELLS {
        ctx.out
            .error(b"ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
        return Flow::Continue;
    }
    let (alen, blen) = (a.len(), b.len());
    let width = blen + 1;
    let mut table = vec![0u32; (alen + 1) * width];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[alen * width + blen] as usize;
    if get_len {
        ctx.out.integer(total as i64);
        return Flow::Continue;
    }
    let mut result = vec![0u8; total];
    let mut ranges: Vec<[i64; 5]> = Vec::new();
    let (mut i, mut j, mut idx) = (alen, blen, total);
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        let match_len = (a_end as i64) - (a_start as i64) + 1;
        if emit {
            if min_match_len == 0 || match_len >= min_match_len {
                ranges.push([a_start as i64, a_end as i64, b_start as i64, b_end as i64, match_len]);
            }
            a_start = alen;
        }
    }
    if !get_idx {
        ctx.out.bulk(&result);
        return Flow::Continue;
    }
    ctx.out.map(2);
    ctx.out.bulk(b"matches");
    ctx.out.array(ranges.len());
    for [a0, a1, b0, b1, len] in ranges {
        ctx.out.array(2 + usize::from(with_match_len));
        ctx.out.array(2).integer(a0).integer(a1);
        ctx.out.array(2).integer(b0).integer(b1);
        if with_match_len {
            ctx.out.integer(len);
        }
    }
    ctx.out.bulk(b"len");
    ctx.out.integer(total as i64);
    Flow::Continue
}
