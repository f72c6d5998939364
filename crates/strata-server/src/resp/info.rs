//! Connection and server commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT,
//! RESET, INFO, CONFIG, CLIENT, COMMAND, TIME.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_proto::resp::Protocol;
use strata_session::Secret;
use strata_store::Capacity;

use strata_proto::resp::parse_strict_i64;

use super::{COMMANDS, Ctx, Flow};
use crate::config::{ByteSize, parse_policy};
use crate::metrics::Protocol as MetricsProtocol;
use crate::{REDIS_COMPAT_VERSION, VERSION, glob};

/// PING [message]; in RESP2 pub/sub mode, `pong` and the message as an
/// array, as Redis answers there.
pub(super) fn ping(ctx: &mut Ctx<'_>) -> Flow {
    if ctx.argc() > 2 {
        ctx.out.error(b"ERR wrong number of arguments for 'ping' command");
    } else if ctx.conn.protocol == Protocol::Resp2 && ctx.conn.subscriptions() > 0 {
        let message = if ctx.argc() == 2 { ctx.arg(1) } else { b"" };
        ctx.out.array(2).bulk(b"pong").bulk(message);
    } else if ctx.argc() == 2 {
        ctx.out.bulk(ctx.arg(1));
    } else {
        ctx.out.simple(b"PONG");
    }
    Flow::Continue
}

/// ECHO message
pub(super) fn echo(ctx: &mut Ctx<'_>) -> Flow {
    ctx.out.bulk(ctx.arg(1));
    Flow::Continue
}

/// Answers a failed password check, counting it against the connection.
fn auth_failed(ctx: &mut Ctx<'_>, message: &[u8]) -> Flow {
    ctx.out.error(message);
    ctx.shared.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
    if ctx.conn.auth_attempts.failed() {
        tracing::warn!(
            client = ctx.conn.id,
            "closing a connection after {} failed AUTH attempts",
            strata_session::auth::MAX_AUTH_FAILURES
        );
        return Flow::Close;
    }
    Flow::Continue
}

/// Checks `user`/`password` against `requirepass`. `Err` is the reply.
fn check_password(ctx: &Ctx<'_>, user: &[u8], password: &[u8]) -> Result<(), &'static [u8]> {
    strata_session::auth::check_resp(ctx.shared.requirepass().as_ref(), user, password)
}

/// AUTH [username] password
pub(super) fn auth(ctx: &mut Ctx<'_>) -> Flow {
    let (user, password) = match ctx.argc() {
        2 => (&b"default"[..], ctx.arg(1)),
        3 => (ctx.arg(1), ctx.arg(2)),
        _ => {
            ctx.syntax_error();
            return Flow::Continue;
        }
    };
    match check_password(ctx, user, password) {
        Ok(()) => {
            ctx.conn.authenticated = true;
            ctx.out.ok();
        }
        Err(message) => return auth_failed(ctx, message),
    }
    Flow::Continue
}

fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub(super) fn hello(ctx: &mut Ctx<'_>) -> Flow {
    let mut protocol = ctx.conn.protocol;
    let mut i = 1;
    if ctx.argc() >= 2 {
        match parse_strict_i64(ctx.arg(1)) {
            Some(2) => protocol = Protocol::Resp2,
            Some(3) => protocol = Protocol::Resp3,
            Some(_) => {
                ctx.out.error(b"NOPROTO unsupported protocol version");
                return Flow::Continue;
            }
            None => {
                ctx.out.error(b"ERR Protocol version is not an integer or out of range");
                return Flow::Continue;
            }
        }
        i = 2;
    }
    let mut name = None;
    while i < ctx.argc() {
        if ctx.arg_is(i, "AUTH") && i + 2 < ctx.argc() {
            if let Err(message) = check_password(ctx, ctx.arg(i + 1), ctx.arg(i + 2)) {
                return auth_failed(ctx, message);
            }
            ctx.conn.authenticated = true;
            i += 3;
        } else if ctx.arg_is(i, "SETNAME") && i + 1 < ctx.argc() {
            if !valid_client_name(ctx.arg(i + 1)) {
                ctx.out
                    .error(b"ERR Client names cannot contain spaces, newlines or special characters.");
                return Flow::Continue;
            }
            name = Some(ctx.arg(i + 1).to_vec());
            i += 2;
        } else {
            let text = format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(ctx.arg(i))
            );
            ctx.out.error(text.as_bytes());
            return Flow::Continue;
        }
    }
    if !ctx.conn.authenticated {
        ctx.out.error(strata_session::auth::HELLO_NOAUTH);
        return Flow::Continue;
    }
    if name.is_some() {
        ctx.conn.name = name;
    }
    ctx.conn.protocol = protocol;
    ctx.out.set_protocol(protocol);
    let out = &mut ctx.out;
    out.map(8);
    out.bulk(b"server").bulk(b"redis");
    out.bulk(b"version").bulk(REDIS_COMPAT_VERSION.as_bytes());
    out.bulk(b"proto")
        .integer(if protocol == Protocol::Resp3 { 3 } else { 2 });
    out.bulk(b"id").integer(ctx.conn.id as i64);
    out.bulk(b"mode").bulk(b"standalone");
    out.bulk(b"role").bulk(b"master");
    out.bulk(b"modules").array(0);
    out.bulk(b"strata_version").bulk(VERSION.as_bytes());
    Flow::Continue
}

/// SELECT index: only database 0 exists.
pub(super) fn select(ctx: &mut Ctx<'_>) -> Flow {
    match parse_strict_i64(ctx.arg(1)) {
        Some(0) => ctx.out.ok(),
        Some(_) => ctx.out.error(b"ERR DB index is out of range"),
        None => ctx.out.error(b"ERR value is not an integer or out of range"),
    };
    Flow::Continue
}

/// QUIT
pub(super) fn quit(ctx: &mut Ctx<'_>) -> Flow {
    ctx.out.ok();
    Flow::Close
}

/// RESET: back to a fresh connection's state (tracking off, no
/// subscriptions).
pub(super) fn reset(ctx: &mut Ctx<'_>) -> Flow {
    ctx.shared.tracking.disable(ctx.conn.id);
    ctx.conn.tracking = None;
    ctx.conn.caching = false;
    super::pubsub::drop_all(ctx);
    ctx.conn.protocol = Protocol::Resp2;
    ctx.conn.name = None;
    ctx.conn.authenticated = ctx.shared.requirepass().is_none();
    ctx.out.set_protocol(Protocol::Resp2);
    ctx.out.simple(b"RESET");
    Flow::Continue
}

/// TIME
pub(super) fn time(ctx: &mut Ctx<'_>) -> Flow {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk(now.as_secs().to_string().as_bytes());
    ctx.out.bulk(now.subsec_micros().to_string().as_bytes());
    Flow::Continue
}

fn human(bytes: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", units[unit])
    }
}

/// INFO [section …]
pub(super) fn info(ctx: &mut Ctx<'_>) -> Flow {
    let requested: Vec<String> = ctx
        .args_from(1)
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let all = requested.iter().any(|s| s == "all" || s == "everything");
    let default_set = [
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "replication",
        "cpu",
        "keyspace",
        "strata",
    ];
    let wants = |section: &str| {
        if requested.is_empty() || requested.iter().any(|s| s == "default") {
            default_set.contains(&section)
        } else {
            all || requested.iter().any(|s| s == section)
        }
    };
    let shared = ctx.shared;
    let config = shared.config.read().clone();
    let metrics = &shared.metrics;
    let mut text = String::with_capacity(2048);
    let mut section = |name: &str, body: &dyn Fn(&mut String)| {
        if wants(&name.to_ascii_lowercase()) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            let _ = write!(text, "# {name}\r\n");
            body(&mut text);
        }
    };
    let uptime = metrics.uptime_secs();
    section("Server", &|t| {
        let _ = write!(
            t,
            "redis_version:{REDIS_COMPAT_VERSION}\r\nstrata_version:{VERSION}\r\nredis_mode:standalone\r\n\
             os:{} {}\r\narch_bits:64\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\ntcp_port:{}\r\n\
             memcache_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nexecutable:strata\r\n",
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::process::id(),
            shared.resp_addr.port(),
            shared.memcache_addr.port(),
            uptime / 86_400
        );
    });
    section("Clients", &|t| {
        let _ = write!(
            t,
            "connected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\ntracking_clients:{}\r\n",
            metrics.connections.load(Ordering::Relaxed),
            config.max_connections,
            shared.tracking.clients(),
        );
    });
    let stats = shared.store.stats();
    let rss = crate::resident_bytes();
    let policy = shared.store.policy();
    let clients = shared.metrics.client_memory.bytes() as u64;
    section("Memory", &|t| {
        // Redis's used_memory counts what the allocator holds, clients
        // included; the dataset is what the items are charged.
        let used = stats.record_bytes + stats.overhead_bytes + clients;
        let dataset = stats.used;
        let _ = write!(
            t,
            "used_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\n\
             used_memory_dataset:{dataset}\r\nmem_clients_normal:{clients}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\n\
             maxmemory_policy:{policy}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_allocator:strata-arena\r\n",
            human(used),
            human(rss),
            stats.capacity,
            human(stats.capacity),
            rss as f64 / used.max(1) as f64
        );
    });
    section("Persistence", &|t| {
        t.push_str("loading:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\naof_enabled:0\r\n");
    });
    section("Stats", &|t| {
        let commands = metrics.calls(MetricsProtocol::Resp) + metrics.calls(MetricsProtocol::Memcache);
        let _ = write!(
            t,
            "total_connections_received:{}\r\ntotal_commands_processed:{commands}\r\nrejected_connections:{}\r\n\
             expired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\n\
             total_error_replies:0\r\nprotocol_errors:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n\
             tracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\n\
             tracking_invalidations:{}\r\npush_disconnects:{}\r\n",
            metrics.connections_total.load(Ordering::Relaxed),
            metrics.rejected_connections.load(Ordering::Relaxed),
            stats.expirations(),
            stats.evictions,
            stats.hits,
            stats.misses,
            metrics.protocol_errors.load(Ordering::Relaxed),
            shared.pubsub.channel_count(),
            shared.pubsub.pattern_count(),
            shared.tracking.total_keys(),
            shared.tracking.total_items(),
            shared.tracking.total_prefixes(),
            metrics.invalidations.load(Ordering::Relaxed),
            metrics.push_disconnects.load(Ordering::Relaxed),
        );
    });
    section("Replication", &|t| {
        t.push_str("role:master\r\nconnected_slaves:0\r\n");
    });
    section("CPU", &|t| {
        let cpu = strata_session::process::cpu_times();
        let (sys, user) = (cpu.system.as_secs_f64(), cpu.user.as_secs_f64());
        let _ = write!(t, "used_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n");
    });
    section("Commandstats", &|t| {
        for (protocol, prefix) in [(MetricsProtocol::Resp, ""), (MetricsProtocol::Memcache, "memcache_")] {
            for (name, calls, nanos) in metrics.command_times(protocol) {
                let usec = nanos / 1000;
                let _ = write!(
                    t,
                    "cmdstat_{prefix}{name}:calls={calls},usec={usec},usec_per_call={:.2},rejected_calls=0,failed_calls=0\r\n",
                    usec as f64 / calls.max(1) as f64
                );
            }
        }
    });
    section("Keyspace", &|t| {
        if stats.items > 0 {
            let _ = write!(
                t,
                "db0:keys={},expires={},avg_ttl=0\r\n",
                stats.items, stats.items_with_ttl
            );
        }
    });
    section("Strata", &|t| {
        let _ = write!(
            t,
            "policy:{policy}\r\nshards:{}\r\nitems:{}\r\nbytes_charged:{}\r\nrecord_bytes:{}\r\n\
             overhead_bytes:{}\r\nlease_ms:{}\r\nlatency_p50_us:{}\r\nlatency_p99_us:{}\r\nlatency_p999_us:{}\r\n",
            shared.store.shard_count(),
            stats.items,
            stats.used,
            stats.record_bytes,
            stats.overhead_bytes,
            config.lease_ms,
            metrics.latency_percentile_us(0.50),
            metrics.latency_percentile_us(0.99),
            metrics.latency_percentile_us(0.999),
        );
        for (name, value) in &stats.policy_stats.values {
            let _ = write!(t, "policy_{name}:{value}\r\n");
        }
    });
    ctx.out.verbatim(b"txt", text.as_bytes());
    Flow::Continue
}

/// The settings CONFIG GET reports: (name, value).
fn config_values(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let config = ctx.shared.config.read();
    let capacity = match ctx.shared.store.capacity() {
        Capacity::Bytes(bytes) | Capacity::Entries(bytes) => bytes,
    };
    vec![
        ("bind", config.bind.to_string()),
        ("port", ctx.shared.resp_addr.port().to_string()),
        ("memcache-port", ctx.shared.memcache_addr.port().to_string()),
        ("admin-port", config.admin_port.to_string()),
        ("maxmemory", capacity.to_string()),
        ("maxmemory-policy", ctx.shared.store.policy().to_string()),
        ("max-item-size", config.max_item_size.to_string()),
        ("proto-max-bulk-len", config.proto_max_bulk_len.to_string()),
        ("maxclients", config.max_connections.to_string()),
        ("timeout", config.timeout.to_string()),
        // Never shown: a client that may run CONFIG may not need the
        // password to read it (Redis shows it; strata does not).
        (
            "requirepass",
            if config.requirepass.is_some() {
                "(redacted)".into()
            } else {
                String::new()
            },
        ),
        (
            "protected-mode",
            if config.protected_mode { "yes" } else { "no" }.into(),
        ),
        ("active-expire-effort", config.active_expire_effort.to_string()),
        ("lease-ms", config.lease_ms.to_string()),
        ("tracking-table-max-keys", ctx.shared.tracking.max_keys().to_string()),
        ("push-buffer-limit", config.push_buffer_limit.to_string()),
        ("reply-buffer-limit", config.reply_limit().to_string()),
        (
            "push-buffer-soft-limit",
            config
                .push_buffer_soft_limit
                .map_or_else(|| "0".into(), |size| size.to_string()),
        ),
        ("push-buffer-soft-seconds", config.push_buffer_soft_seconds.to_string()),
        // Redis's form of the same limits, in bytes: normal clients' hard
        // limit is the reply limit (a client that does not read holds one
        // 64 KiB chunk besides, so there is no soft limit to set), pub/sub
        // is the push queue, and there are no replicas.
        (
            "client-output-buffer-limit",
            format!(
                "normal {} 0 0 replica 0 0 0 pubsub {} {} {}",
                config.reply_limit(),
                config.push_buffer_limit.0,
                config.push_buffer_soft_limit.map_or(0, |size| size.0),
                config.push_buffer_soft_seconds
            ),
        ),
        ("databases", "1".into()),
        ("save", String::new()),
        ("appendonly", "no".into()),
    ]
}

/// CONFIG GET | SET | RESETSTAT | REWRITE | HELP
pub(super) fn config(ctx: &mut Ctx<'_>) -> Flow {
    let sub = ctx.arg(1).to_ascii_uppercase();
    match sub.as_slice() {
        b"GET" if ctx.argc() >= 3 => {
            let values = config_values(ctx);
            let patterns: Vec<&[u8]> = ctx.args_from(2).collect();
            let matched: Vec<&(&str, String)> = values
                .iter()
                .filter(|(name, _)| patterns.iter().any(|p| glob::matches(p, name.as_bytes(), true)))
                .collect();
            ctx.out.map(matched.len());
            for (name, value) in matched {
                ctx.out.bulk(name.as_bytes()).bulk(value.as_bytes());
            }
        }
        b"SET" if ctx.argc() >= 4 && ctx.argc() % 2 == 0 => {
            for i in (2..ctx.argc()).step_by(2) {
                if let Err(message) = config_set(ctx, ctx.arg(i), ctx.arg(i + 1)) {
                    ctx.out.error(message.as_bytes());
                    return Flow::Continue;
                }
            }
            ctx.out.ok();
        }
        b"RESETSTAT" => {
            ctx.out.ok();
        }
        b"REWRITE" => {
            ctx.out.error(b"ERR The server is running without a config file");
        }
        b"HELP" => {
            ctx.out.array(2);
            ctx.out.simple(b"CONFIG GET <pattern> [<pattern> ...]");
            ctx.out
                .simple(b"CONFIG SET <parameter> <value> [<parameter> <value> ...]");
        }
        _ => {
            let text = format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(ctx.arg(1))
            );
            ctx.out.error(text.as_bytes());
        }
    }
    Flow::Continue
}

/// `CONFIG SET client-output-buffer-limit "<class> <hard> <soft> <seconds>
/// ..."`, Redis's form: `normal` sets `reply-buffer-limit` (hard 0, Redis's
/// "unlimited", means strata's default; a soft limit is refused, a client
/// that does not read never holds more than a chunk besides its reply),
/// `pubsub` sets the push queue's hard and soft limits, `replica` must be
/// all zeros (strata has no replicas). Checked whole before any is set.
fn client_output_buffer_limit(ctx: &Ctx<'_>, text: &str) -> Result<(), String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || words.len() % 4 != 0 {
        return Err("wrong number of arguments".into());
    }
    let size = |word: &str| -> Result<u64, String> { word.parse::<ByteSize>().map(|size| size.0) };
    let mut config = ctx.shared.config.read().clone();
    for class in words.chunks(4) {
        let (hard, soft) = (size(class[1])?, size(class[2])?);
        let seconds: u64 = class[3].parse().map_err(|_| format!("bad seconds {:?}", class[3]))?;
        match class[0].to_ascii_lowercase().as_str() {
            "normal" => {
                if soft != 0 || seconds != 0 {
                    return Err("strata has no soft limit for normal clients (one that does not read holds one 64 KiB chunk besides its reply)".into());
                }
                if hard != 0 && hard < config.max_item_size.0.saturating_add(1024) {
                    return Err("the normal hard limit must exceed max-item-size".into());
                }
                config.reply_buffer_limit = (hard != 0).then_some(ByteSize(hard));
            }
            "pubsub" => {
                if hard < 1024 {
                    return Err("the pubsub hard limit must be at least 1kb (strata bounds every queue)".into());
                }
                config.push_buffer_limit = ByteSize(hard);
                config.push_buffer_soft_limit = (soft != 0).then_some(ByteSize(soft));
                config.push_buffer_soft_seconds = seconds;
            }
            "replica" | "slave" if hard == 0 && soft == 0 && seconds == 0 => {}
            "replica" | "slave" => return Err("strata has no replicas".into()),
            other => return Err(format!("unknown class {other:?}")),
        }
    }
    // Connections opened from now on get the new limits.
    *ctx.shared.config.write() = config;
    Ok(())
}

fn config_set(ctx: &Ctx<'_>, name: &[u8], value: &[u8]) -> Result<(), String> {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let text = String::from_utf8_lossy(value).into_owned();
    let failed = |why: &str| format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}");
    let number = || {
        text.parse::<u64>()
            .map_err(|_| failed("argument couldn't be parsed into an integer"))
    };
    match name.as_str() {
        "maxmemory" => {
            let bytes: ByteSize = text.parse().map_err(|e: String| failed(&e))?;
            if bytes.0 < 1024 * 1024 {
                return Err(failed("maxmemory must be at least 1mb"));
            }
            ctx.shared
                .store
                .set_capacity(Capacity::Bytes(bytes.0))
                .map_err(|e| failed(&e.to_string()))?;
            ctx.shared.config.write().maxmemory = bytes;
        }
        "maxmemory-policy" => {
            let policy = parse_policy(&text).map_err(|e| failed(&e.to_string()))?;
            ctx.shared.store.set_policy(policy);
            ctx.shared.config.write().maxmemory_policy = text;
        }
        "timeout" => ctx.shared.config.write().timeout = number()?,
        "requirepass" => ctx.shared.config.write().requirepass = (!text.is_empty()).then(|| Secret::from(text)),
        "active-expire-effort" => match number()? {
            effort @ 1..=10 => ctx.shared.config.write().active_expire_effort = effort as u8,
            _ => return Err(failed("argument must be between 1 and 10 inclusive")),
        },
        "lease-ms" => match number()? {
            0 => return Err(failed("argument must be at least 1")),
            ms => ctx.shared.config.write().lease_ms = ms,
        },
        "tracking-table-max-keys" => match number()? {
            0 => return Err(failed("argument must be at least 1 (strata bounds the table)")),
            keys => {
                let keys = usize::try_from(keys).unwrap_or(usize::MAX);
                ctx.shared.tracking.set_max_keys(keys);
                ctx.shared.config.write().tracking_table_max_keys = keys;
            }
        },
        "push-buffer-limit" => {
            let bytes: ByteSize = text.parse().map_err(|e: String| failed(&e))?;
            if bytes.0 < 1024 {
                return Err(failed("push-buffer-limit must be at least 1kb"));
            }
            // Connections opened from now on get the new limit.
            ctx.shared.config.write().push_buffer_limit = bytes;
        }
        "protected-mode" => {
            ctx.shared.config.write().protected_mode = match text.to_ascii_lowercase().as_str() {
                "yes" => true,
                "no" => false,
                _ => return Err(failed("argument must be 'yes' or 'no'")),
            };
        }
        "reply-buffer-limit" => {
            let bytes: ByteSize = text.parse().map_err(|e: String| failed(&e))?;
            let mut config = ctx.shared.config.write();
            if bytes.0 < config.max_item_size.0.saturating_add(1024) {
                return Err(failed("reply-buffer-limit must exceed max-item-size"));
            }
            // Connections opened from now on get the new limit.
            config.reply_buffer_limit = Some(bytes);
        }
        "push-buffer-soft-limit" => {
            let bytes: ByteSize = text.parse().map_err(|e: String| failed(&e))?;
            // Connections opened from now on get the new limit.
            ctx.shared.config.write().push_buffer_soft_limit = (bytes.0 > 0).then_some(bytes);
        }
        "push-buffer-soft-seconds" => ctx.shared.config.write().push_buffer_soft_seconds = number()?,
        "client-output-buffer-limit" => client_output_buffer_limit(ctx, &text).map_err(|why| failed(&why))?,
        // strata has no persistence yet: only the values that mean "off"
        // are accepted; anything else would be a silent lie.
        "save" if text.trim().is_empty() => {}
        "appendonly" if text.eq_ignore_ascii_case("no") => {}
        "save" | "appendonly" => {
            return Err(failed(
                "strata does not persist data yet (no RDB snapshots, no AOF); only save \"\" and appendonly no are accepted",
            ));
        }
        _ => {
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        }
    }
    Ok(())
}

/// CLIENT ID | SETNAME | GETNAME | SETINFO | INFO | LIST | NO-EVICT |
/// NO-TOUCH | TRACKING | CACHING | GETREDIR | TRACKINGINFO | HELP
pub(super) fn client(ctx: &mut Ctx<'_>) -> Flow {
    let sub = ctx.arg(1).to_ascii_uppercase();
    match (sub.as_slice(), ctx.argc()) {
        (b"TRACKING", 3..) => return super::tracking::tracking(ctx),
        (b"CACHING", 3) => return super::tracking::caching(ctx),
        (b"GETREDIR", 2) => return super::tracking::getredir(ctx),
        (b"TRACKINGINFO", 2) => return super::tracking::trackinginfo(ctx),
        (b"ID", 2) => {
            ctx.out.integer(ctx.conn.id as i64);
        }
        (b"SETNAME", 3) => {
            let name = ctx.arg(2);
            if !valid_client_name(name) {
                ctx.out
                    .error(b"ERR Client names cannot contain spaces, newlines or special characters.");
            } else {
                ctx.conn.name = (!name.is_empty()).then(|| name.to_vec());
                ctx.out.ok();
            }
        }
        (b"GETNAME", 2) => match ctx.conn.name.clone() {
            Some(name) => {
                ctx.out.bulk(&name);
            }
            None => {
                ctx.out.null();
            }
        },
        (b"SETINFO", 4) => {
            let value = ctx.arg(3).to_vec();
            if ctx.arg_is(2, "LIB-NAME") {
                ctx.conn.lib_name = Some(value);
                ctx.out.ok();
            } else if ctx.arg_is(2, "LIB-VER") {
                ctx.conn.lib_ver = Some(value);
                ctx.out.ok();
            } else {
                let text = format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(ctx.arg(2)));
                ctx.out.error(text.as_bytes());
            }
        }
        (b"INFO", 2) | (b"LIST", _) => {
            let conn = &ctx.conn;
            // Redis's flags letters: P pub/sub, t tracking, B broadcast,
            // R broken redirect; N none.
            let tracking = ctx.shared.tracking.info(conn.id);
            let mut flags = String::new();
            if conn.subscriptions() > 0 {
                flags.push('P');
            }
            if let Some(info) = &tracking {
                flags.push('t');
                if info.options.bcast {
                    flags.push('B');
                }
                if info.broken {
                    flags.push('R');
                }
            }
            if flags.is_empty() {
                flags.push('N');
            }
            let line = format!(
                "id={} addr=? laddr={} fd=0 name={} age={} idle=0 flags={flags} db=0 sub={} psub={} multi=-1 \
                 resp={} lib-name={} lib-ver={} redir={}\n",
                conn.id,
                ctx.shared.resp_addr,
                String::from_utf8_lossy(conn.name.as_deref().unwrap_or_default()),
                conn.created.elapsed().as_secs(),
                conn.channels.len(),
                conn.patterns.len(),
                if conn.protocol == Protocol::Resp3 { 3 } else { 2 },
                String::from_utf8_lossy(conn.lib_name.as_deref().unwrap_or_default()),
                String::from_utf8_lossy(conn.lib_ver.as_deref().unwrap_or_default()),
                tracking.map_or(-1, |info| info.options.redirect as i64),
            );
            ctx.out.verbatim(b"txt", line.as_bytes());
        }
        (b"NO-EVICT", 3) | (b"NO-TOUCH", 3) => {
            ctx.out.ok();
        }
        (b"HELP", _) => {
            ctx.out.array(2);
            ctx.out
                .simple(b"CLIENT ID | SETNAME <name> | GETNAME | SETINFO <LIB-NAME|LIB-VER> <value> | INFO | LIST");
            ctx.out.simple(
                b"CLIENT TRACKING ON|OFF [REDIRECT <id>] [PREFIX <prefix> ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP] | \
                  CACHING YES|NO | GETREDIR | TRACKINGINFO",
            );
        }
        _ => {
            let text = format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(ctx.arg(1))
            );
            ctx.out.error(text.as_bytes());
        }
    }
    Flow::Continue
}

fn command_info(ctx: &mut Ctx<'_>, command: &super::Command) {
    ctx.out.array(10);
    ctx.out.bulk(command.name.as_bytes());
    ctx.out.integer(i64::from(command.arity));
    ctx.out.set(command.flags.len());
    for flag in command.flags {
        ctx.out.simple(flag.as_bytes());
    }
    ctx.out.integer(i64::from(command.first_key));
    ctx.out.integer(i64::from(command.last_key));
    ctx.out.integer(i64::from(command.step));
    ctx.out.set(0);
    ctx.out.set(0);
    ctx.out.array(0);
    ctx.out.array(0);
}

/// COMMAND [COUNT | INFO name … | DOCS [name …] | LIST]
pub(super) fn command(ctx: &mut Ctx<'_>) -> Flow {
    if ctx.argc() == 1 {
        ctx.out.array(COMMANDS.len());
        for command in COMMANDS {
            command_info(ctx, command);
        }
        return Flow::Continue;
    }
    let sub = ctx.arg(1).to_ascii_uppercase();
    match sub.as_slice() {
        b"COUNT" => {
            ctx.out.integer(COMMANDS.len() as i64);
        }
        b"LIST" => {
            ctx.out.array(COMMANDS.len());
            for command in COMMANDS {
                ctx.out.bulk(command.name.as_bytes());
            }
        }
        b"INFO" => {
            let names: Vec<&[u8]> = ctx.args_from(2).collect();
            if names.is_empty() {
                ctx.out.array(COMMANDS.len());
                for command in COMMANDS {
                    command_info(ctx, command);
                }
            } else {
                ctx.out.array(names.len());
                for name in names {
                    match super::lookup(name) {
                        Some((_, command)) => command_info(ctx, command),
                        None => {
                            ctx.out.null_array();
                        }
                    }
                }
            }
        }
        b"DOCS" => {
            // Names with an empty doc map: enough for redis-cli's hints.
            let names: Vec<&'static str> = if ctx.argc() == 2 {
                COMMANDS.iter().map(|c| c.name).collect()
            } else {
                ctx.args_from(2)
                    .filter_map(|n| super::lookup(n).map(|(_, c)| c.name))
                    .collect()
            };
            ctx.out.map(names.len());
            for name in names {
                ctx.out.bulk(name.as_bytes()).map(0);
            }
        }
        _ => {
            let text = format!(
                "ERR unknown subcommand '{}'. Try COMMAND HELP.",
                String::from_utf8_lossy(ctx.arg(1))
            );
            ctx.out.error(text.as_bytes());
        }
    }
    Flow::Continue
}
