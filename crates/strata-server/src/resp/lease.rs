//! strata's lease commands over RESP: the memcache paper's leases on the
//! same mechanism as memcached's meta protocol (`strata_store`'s
//! `meta.rs`).
//!
//! ```text
//! LGET key [PX lease-ms]
//!   *2 "hit"   <value>          a fresh value
//!   *2 "lease" <token>          a miss; you fill it: LSET key <token> <value>
//!   *1 "wait"                   a miss another client is filling; retry soon
//!   *3 "stale" <value> <token>  a stale value; you refresh it with LSET
//!   *2 "stale" <value>          a stale value another client is refreshing
//! LSET key token value [EX s | PX ms]
//!   +OK, or nil if the token is no longer valid (the key was written,
//!   deleted or invalidated since: a late fill never lands)
//! LINVALIDATE key [PX ms]
//!   :1 marked stale (the next LGET refreshes it; PX bounds how long the
//!   stale value lives), :0 no such key
//! ```
//!
//! One token per key per lease period (`lease-ms`, 10 s by default): a
//! winner that never fills only delays the next winner that long.

use std::time::Duration;

use strata_store::{Expiry, LeaseGrant, MetaDelete, StoreError};

use strata_proto::resp::parse_strict_i64;

use super::{Ctx, Flow};

/// Parses an optional `PX ms` / `EX s` pair at `i`; `Err` after replying.
fn duration_option(ctx: &mut Ctx<'_>, i: usize, allow_ex: bool) -> Result<Option<u64>, ()> {
    if i >= ctx.argc() {
        return Ok(None);
    }
    let unit_ms = if ctx.arg_is(i, "PX") {
        1
    } else if allow_ex && ctx.arg_is(i, "EX") {
        1000
    } else {
        ctx.syntax_error();
        return Err(());
    };
    if i + 2 != ctx.argc() {
        ctx.syntax_error();
        return Err(());
    }
    match parse_strict_i64(ctx.arg(i + 1)).filter(|&n| n > 0) {
        Some(n) => Ok(Some((n as u64).saturating_mul(unit_ms))),
        None => {
            let text = format!("ERR invalid expire time in '{}' command", ctx.command.name);
            ctx.out.error(text.as_bytes());
            Err(())
        }
    }
}

/// LGET key [PX lease-ms]
pub(super) fn lget(ctx: &mut Ctx<'_>) -> Flow {
    let Ok(lease_ms) = duration_option(ctx, 2, false) else {
        return Flow::Continue;
    };
    let lease = lease_ms.map_or_else(|| ctx.shared.lease(), Duration::from_millis);
    let grant = ctx.shared.store.lease_get(ctx.arg(1), lease);
    // A lease on a miss creates a placeholder, and a refresh handed out on
    // a stale value may shorten its life: both are changes.
    if matches!(grant, LeaseGrant::Won { .. } | LeaseGrant::Stale { token: Some(_), .. }) {
        ctx.modified(ctx.arg(1));
    }
    match grant {
        LeaseGrant::Hit(value) => {
            ctx.out.array(2).bulk(b"hit").bulk(&value);
        }
        LeaseGrant::Won { token } => {
            ctx.out.array(2).bulk(b"lease").integer(token as i64);
        }
        LeaseGrant::Wait => {
            ctx.out.array(1).bulk(b"wait");
        }
        LeaseGrant::Stale {
            value,
            token: Some(token),
        } => {
            ctx.out.array(3).bulk(b"stale").bulk(&value).integer(token as i64);
        }
        LeaseGrant::Stale { value, token: None } => {
            ctx.out.array(2).bulk(b"stale").bulk(&value);
        }
    }
    Flow::Continue
}

/// LSET key token value [EX s | PX ms]
pub(super) fn lset(ctx: &mut Ctx<'_>) -> Flow {
    let Some(token) = ctx.int_arg(2) else {
        return Flow::Continue;
    };
    let Ok(ttl_ms) = duration_option(ctx, 4, true) else {
        return Flow::Continue;
    };
    let expiry = ttl_ms.map_or(Expiry::Never, Expiry::AfterMs);
    match ctx.shared.store.lease_set(ctx.arg(1), token as u64, ctx.arg(3), expiry) {
        Ok(_) => {
            ctx.modified(ctx.arg(1));
            ctx.out.ok();
        }
        Err(StoreError::LeaseInvalid) => {
            ctx.out.null();
        }
        Err(error) => ctx.store_error(&error),
    }
    Flow::Continue
}

/// LINVALIDATE key [PX ms]
pub(super) fn linvalidate(ctx: &mut Ctx<'_>) -> Flow {
    let Ok(ttl_ms) = duration_option(ctx, 2, false) else {
        return Flow::Continue;
    };
    let options = MetaDelete {
        stale: true,
        expiry: ttl_ms.map(Expiry::AfterMs),
        ..MetaDelete::default()
    };
    match ctx.shared.store.meta_delete(ctx.arg(1), &options) {
        Ok(_) => {
            ctx.modified(ctx.arg(1));
            ctx.out.integer(1)
        }
        Err(_) => ctx.out.integer(0),
    };
    Flow::Continue
}
