//! The client-tracking subcommands of CLIENT, with Redis 7's checks and
//! error messages: TRACKING, CACHING, GETREDIR, TRACKINGINFO. What tracking
//! does is `crate::tracking`'s business.

use bytes::Bytes;

use super::{Ctx, Flow};
use crate::tracking::Options;

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p …] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]
pub(super) fn tracking(ctx: &mut Ctx<'_>) -> Flow {
    let mut options = Options::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut i = 3;
    while i < ctx.argc() {
        let more = i + 1 < ctx.argc();
        if ctx.arg_is(i, "REDIRECT") && more {
            i += 1;
            if options.redirect != 0 {
                ctx.out
                    .error(b"ERR A client can only redirect to a single other client");
                return Flow::Continue;
            }
            let Some(id) = ctx.int_arg(i) else {
                return Flow::Continue;
            };
            // Redis checks the target exists now, though it may leave later.
            if id <= 0 || !ctx.shared.clients.exists(id as u64) {
                ctx.out.error(b"ERR The client ID you want redirect to does not exist");
                return Flow::Continue;
            }
            options.redirect = id as u64;
        } else if ctx.arg_is(i, "BCAST") {
            options.bcast = true;
        } else if ctx.arg_is(i, "OPTIN") {
            options.optin = true;
        } else if ctx.arg_is(i, "OPTOUT") {
            options.optout = true;
        } else if ctx.arg_is(i, "NOLOOP") {
            options.noloop = true;
        } else if ctx.arg_is(i, "PREFIX") && more {
            i += 1;
            prefixes.push(Bytes::copy_from_slice(ctx.arg(i)));
        } else {
            ctx.syntax_error();
            return Flow::Continue;
        }
        i += 1;
    }
    let id = ctx.conn.id;
    if ctx.arg_is(2, "OFF") {
        ctx.shared.tracking.disable(id);
        ctx.conn.tracking = None;
        ctx.conn.caching = false;
        ctx.out.ok();
        return Flow::Continue;
    }
    if !ctx.arg_is(2, "ON") {
        ctx.syntax_error();
        return Flow::Continue;
    }
    if let Err(message) = check_on(ctx, &options, &prefixes) {
        ctx.out.error(message.as_bytes());
        return Flow::Continue;
    }
    ctx.shared.tracking.enable(id, options, prefixes);
    ctx.conn.tracking = Some(options);
    ctx.out.ok();
    Flow::Continue
}

/// Redis's checks before turning tracking on, in its order.
fn check_on(ctx: &Ctx<'_>, options: &Options, prefixes: &[Bytes]) -> Result<(), String> {
    if !options.bcast && !prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    let current = ctx.conn.tracking;
    if current.is_some_and(|current| current.bcast != options.bcast) {
        return Err(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, \
                    and then re-enabling it with a different mode."
                .into(),
        );
    }
    if options.bcast && (options.optin || options.optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if options.optin && options.optout {
        return Err("ERR You can't use both OPTIN and OPTOUT".into());
    }
    if current.is_some_and(|current| (options.optin && current.optout) || (options.optout && current.optin)) {
        return Err(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, \
             and then re-enabling it with a different mode."
                .into(),
        );
    }
    if options.bcast {
        let existing = ctx
            .shared
            .tracking
            .info(ctx.conn.id)
            .map(|info| info.prefixes)
            .unwrap_or_default();
        let overlaps = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
        for (i, prefix) in prefixes.iter().enumerate() {
            if let Some(collision) = existing.iter().find(|old| overlaps(old, prefix)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must \
                     not overlap.",
                    String::from_utf8_lossy(prefix),
                    String::from_utf8_lossy(collision)
                ));
            }
            if let Some(other) = prefixes[i + 1..].iter().find(|other| overlaps(other, prefix)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client \
                     must not overlap.",
                    String::from_utf8_lossy(prefix),
                    String::from_utf8_lossy(other)
                ));
            }
        }
    }
    Ok(())
}

/// CLIENT CACHING YES|NO
pub(super) fn caching(ctx: &mut Ctx<'_>) -> Flow {
    let Some(options) = ctx.conn.tracking else {
        ctx.out.error(
            b"ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT \
              mode enabled",
        );
        return Flow::Continue;
    };
    if ctx.arg_is(2, "YES") {
        if !options.optin {
            ctx.out
                .error(b"ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
            return Flow::Continue;
        }
    } else if ctx.arg_is(2, "NO") {
        if !options.optout {
            ctx.out
                .error(b"ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
            return Flow::Continue;
        }
    } else {
        ctx.syntax_error();
        return Flow::Continue;
    }
    ctx.conn.caching = true;
    ctx.out.ok();
    Flow::Continue
}

/// CLIENT GETREDIR: the redirect target, 0 for none, -1 if tracking is off.
pub(super) fn getredir(ctx: &mut Ctx<'_>) -> Flow {
    let reply = ctx.conn.tracking.map_or(-1, |options| options.redirect as i64);
    ctx.out.integer(reply);
    Flow::Continue
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes, as Redis reports them.
pub(super) fn trackinginfo(ctx: &mut Ctx<'_>) -> Flow {
    let info = ctx.shared.tracking.info(ctx.conn.id);
    let mut flags: Vec<&[u8]> = Vec::new();
    match &info {
        None => flags.push(b"off"),
        Some(info) => {
            let options = info.options;
            flags.push(b"on");
            if options.bcast {
                flags.push(b"bcast");
            }
            if options.optin {
                flags.push(b"optin");
                if ctx.conn.caching {
                    flags.push(b"caching-yes");
                }
            }
            if options.optout {
                flags.push(b"optout");
                if ctx.conn.caching {
                    flags.push(b"caching-no");
                }
            }
            if options.noloop {
                flags.push(b"noloop");
            }
            if info.broken {
                flags.push(b"broken_redirect");
            }
        }
    }
    let out = &mut ctx.out;
    out.map(3);
    out.bulk(b"flags").set(flags.len());
    for flag in flags {
        out.bulk(flag);
    }
    out.bulk(b"redirect")
        .integer(info.as_ref().map_or(-1, |info| info.options.redirect as i64));
    let prefixes = info.map(|info| info.prefixes).unwrap_or_default();
    out.bulk(b"prefixes").array(prefixes.len());
    for prefix in &prefixes {
        out.bulk(prefix);
    }
    Flow::Continue
}
