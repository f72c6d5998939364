//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
//! PUBLISH, PUBSUB. Confirmations are pushes (RESP3 `>`, RESP2 arrays),
//! one per channel, with the connection's subscription count, as Redis
//! sends them. While a RESP2 connection has subscriptions it may only run
//! the pub/sub commands, PING, QUIT and RESET (`mod.rs` enforces that).

use bytes::Bytes;

use super::{Ctx, Flow};

fn confirm(ctx: &mut Ctx<'_>, kind: &[u8], name: Option<&[u8]>) {
    let count = ctx.conn.subscriptions() as i64;
    ctx.out.push(3).bulk(kind);
    match name {
        Some(name) => ctx.out.bulk(name),
        None => ctx.out.null(),
    };
    ctx.out.integer(count);
}

/// SUBSCRIBE channel [channel …]
pub(super) fn subscribe(ctx: &mut Ctx<'_>) -> Flow {
    for i in 1..ctx.argc() {
        let channel = ctx.arg(i);
        if !ctx.conn.channels.contains(channel) {
            let channel = Bytes::copy_from_slice(channel);
            ctx.conn.channels.insert(channel.clone());
            ctx.shared.pubsub.subscribe(ctx.conn.id, channel);
        }
        confirm(ctx, b"subscribe", Some(channel));
    }
    Flow::Continue
}

/// UNSUBSCRIBE [channel …]: none named means all.
pub(super) fn unsubscribe(ctx: &mut Ctx<'_>) -> Flow {
    let named: Vec<Bytes> = if ctx.argc() > 1 {
        ctx.args_from(1).map(Bytes::copy_from_slice).collect()
    } else {
        ctx.conn.channels.iter().cloned().collect()
    };
    if named.is_empty() {
        confirm(ctx, b"unsubscribe", None);
    }
    for channel in named {
        if ctx.conn.channels.remove(&channel) {
            ctx.shared.pubsub.unsubscribe(ctx.conn.id, &channel);
        }
        confirm(ctx, b"unsubscribe", Some(&channel));
    }
    Flow::Continue
}

/// PSUBSCRIBE pattern [pattern …]
pub(super) fn psubscribe(ctx: &mut Ctx<'_>) -> Flow {
    for i in 1..ctx.argc() {
        let pattern = ctx.arg(i);
        if !ctx.conn.patterns.contains(pattern) {
            let pattern = Bytes::copy_from_slice(pattern);
            ctx.conn.patterns.insert(pattern.clone());
            ctx.shared.pubsub.psubscribe(ctx.conn.id, pattern);
        }
        confirm(ctx, b"psubscribe", Some(pattern));
    }
    Flow::Continue
}

/// PUNSUBSCRIBE [pattern …]: none named means all.
pub(super) fn punsubscribe(ctx: &mut Ctx<'_>) -> Flow {
    let named: Vec<Bytes> = if ctx.argc() > 1 {
        ctx.args_from(1).map(Bytes::copy_from_slice).collect()
    } else {
        ctx.conn.patterns.iter().cloned().collect()
    };
    if named.is_empty() {
        confirm(ctx, b"punsubscribe", None);
    }
    for pattern in named {
        if ctx.conn.patterns.remove(&pattern) {
            ctx.shared.pubsub.punsubscribe(ctx.conn.id, &pattern);
        }
        confirm(ctx, b"punsubscribe", Some(&pattern));
    }
    Flow::Continue
}

/// Drops every subscription without confirmations (RESET, and a
/// connection closing does the same through the session's drop).
pub(super) fn drop_all(ctx: &mut Ctx<'_>) {
    for channel in std::mem::take(&mut ctx.conn.channels) {
        ctx.shared.pubsub.unsubscribe(ctx.conn.id, &channel);
    }
    for pattern in std::mem::take(&mut ctx.conn.patterns) {
        ctx.shared.pubsub.punsubscribe(ctx.conn.id, &pattern);
    }
}

/// PUBLISH channel message: how many subscriptions it was queued for.
pub(super) fn publish(ctx: &mut Ctx<'_>) -> Flow {
    let receivers = ctx.shared.pubsub.publish(&ctx.shared.clients, ctx.arg(1), ctx.arg(2));
    ctx.out.integer(receivers as i64);
    Flow::Continue
}

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel …] | NUMPAT | HELP
pub(super) fn pubsub(ctx: &mut Ctx<'_>) -> Flow {
    let sub = ctx.arg(1).to_ascii_uppercase();
    match (sub.as_slice(), ctx.argc()) {
        (b"CHANNELS", 2 | 3) => {
            let pattern = (ctx.argc() == 3).then(|| ctx.arg(2));
            let channels = ctx.shared.pubsub.channels(pattern);
            ctx.out.array(channels.len());
            for channel in &channels {
                ctx.out.bulk(channel);
            }
        }
        (b"NUMSUB", _) => {
            let channels: Vec<&[u8]> = ctx.args_from(2).collect();
            ctx.out.map(channels.len());
            for channel in channels {
                let count = ctx.shared.pubsub.subscribers(channel);
                ctx.out.bulk(channel).integer(count as i64);
            }
        }
        (b"NUMPAT", 2) => {
            ctx.out.integer(ctx.shared.pubsub.pattern_count() as i64);
        }
        (b"HELP", 2) => {
            ctx.out.array(3);
            ctx.out.simple(b"CHANNELS [<pattern>]");
            ctx.out.simple(b"NUMSUB [<channel> ...]");
            ctx.out.simple(b"NUMPAT");
        }
        _ => {
            let text = format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(ctx.arg(1))
            );
            ctx.out.error(text.as_bytes());
        }
    }
    Flow::Continue
}
