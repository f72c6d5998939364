//! The proxy's RESP front door (RESP2).
//!
//! Served: PING, ECHO, QUIT, SELECT 0, HELLO [2], COMMAND (empty, enough
//! for redis-cli), INFO, CLIENT SETNAME/GETNAME/ID, GET, MGET, SET (EX, PX,
//! EXAT, PXAT, NX), SETEX, PSETEX, SETNX, MSET, DEL, UNLINK, EXISTS,
//! EXPIRE, PEXPIRE. Anything else gets Redis's `unknown command` error.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_proto::resp::command::{CommandError, Condition, Expiry, ExpiryMs, SetOptions};
use strata_proto::resp::{
    Args, Encoder, Limits, MAX_COMMAND_NAME_LEN, Protocol, parse_request, parse_strict_i64, uppercase_command,
};

use super::{Outcome, ProxyShared};
use strata_client::ClientError;

/// One RESP connection's state.
#[derive(Default)]
pub(crate) struct Session {
    args: Args,
    name: Option<Vec<u8>>,
}

fn upper(arg: &[u8]) -> Vec<u8> {
    arg.to_ascii_uppercase()
}

fn wrong_args(out: &mut Encoder<'_>, name: &[u8]) {
    let text = format!(
        "ERR wrong number of arguments for '{}' command",
        String::from_utf8_lossy(name).to_lowercase()
    );
    out.error(text.as_bytes());
}

fn cluster_error(out: &mut Encoder<'_>, shared: &ProxyShared, error: &ClientError) {
    shared.stats.failed.fetch_add(1, Ordering::Relaxed);
    match error {
        ClientError::InvalidKey { .. } => out.error(format!("ERR {error}").as_bytes()),
        _ => out.error(format!("ERR cluster: {error}").as_bytes()),
    };
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Which runs of a pipeline become one multi-key call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunKind {
    /// `GET key`, answered by one multi-get.
    Get,
    /// `SET key value` without options, stored by one multi-set.
    Set,
}

/// The kind of the run at the front of `commands`, and its length (0 when
/// the first command is not batchable).
fn batchable_run(commands: &[Vec<Cow<'_, [u8]>>]) -> (RunKind, usize) {
    let kind_of = |c: &Vec<Cow<'_, [u8]>>| match c.len() {
        2 if c[0].eq_ignore_ascii_case(b"GET") => Some(RunKind::Get),
        3 if c[0].eq_ignore_ascii_case(b"SET") => Some(RunKind::Set),
        _ => None,
    };
    let Some(kind) = commands.first().and_then(kind_of) else {
        return (RunKind::Get, 0);
    };
    (kind, commands.iter().take_while(|c| kind_of(c) == Some(kind)).count())
}

/// Answers a run of GETs or of plain SETs with one multi-key call, which
/// the client splits by node and sends concurrently.
async fn run_batch(kind: RunKind, commands: &[Vec<Cow<'_, [u8]>>], out: &mut Vec<u8>, shared: &ProxyShared) {
    let mut encoder = Encoder::new(out, Protocol::Resp2);
    let result = match kind {
        RunKind::Get => {
            let keys: Vec<&[u8]> = commands.iter().map(|c| &*c[1]).collect();
            shared.client.get_many(&keys).await.map(|values| {
                for value in values {
                    match value {
                        Some(value) => encoder.bulk(&value),
                        None => encoder.null(),
                    };
                }
            })
        }
        RunKind::Set => {
            let items: Vec<(&[u8], &[u8])> = commands.iter().map(|c| (&*c[1], &*c[2])).collect();
            shared.client.set_many(&items, None).await.map(|()| {
                for _ in commands {
                    encoder.ok();
                }
            })
        }
    };
    if let Err(error) = result {
        for _ in commands {
            cluster_error(&mut encoder, shared, &error);
        }
    }
}

/// What a SET asks for.
struct SetArgs {
    ttl: Option<Duration>,
    only_if_absent: bool,
    expired: bool,
}

/// Reads SET's options with `strata_proto`'s parser (Redis's rules and
/// error texts), then keeps what the proxy can do: an expiry and NX.
fn parse_set_options(args: &[&[u8]]) -> Result<SetArgs, String> {
    let options = SetOptions::parse(args).map_err(|error| error.to_string())?;
    if options.get || options.keepttl || options.condition == Some(Condition::IfPresent) {
        return Err("ERR this SET option is not supported by strata proxy".into());
    }
    let mut parsed = SetArgs {
        ttl: None,
        only_if_absent: options.condition == Some(Condition::IfAbsent),
        expired: false,
    };
    if let Some(expiry) = options.expiry {
        let now = unix_ms();
        let deadline = expiry
            .deadline_ms(now)
            .ok_or_else(|| CommandError::InvalidExpireTime("set").to_string())?;
        match deadline.checked_sub(now) {
            Some(left) if left > 0 => parsed.ttl = Some(Duration::from_millis(left)),
            _ => parsed.expired = true,
        }
    }
    Ok(parsed)
}

/// A relative TTL argument (`SETEX`, `EXPIRE`, …) in `unit`s, checked as
/// Redis checks it: a strict integer whose milliseconds fit an `i64`.
/// `Ok(None)` for a zero or negative amount.
fn ttl_arg(arg: &[u8], seconds: bool) -> Result<Option<Duration>, CommandError> {
    let amount = parse_strict_i64(arg).ok_or(CommandError::NotAnInteger)?;
    if amount <= 0 {
        return Ok(None);
    }
    let expiry = if seconds {
        Expiry::Ex(amount as u64)
    } else {
        Expiry::Px(amount as u64)
    };
    match expiry.to_ms() {
        Some(ExpiryMs::After(ms)) => Ok(Some(Duration::from_millis(ms))),
        _ => Err(CommandError::InvalidExpireTime("")),
    }
}

impl Session {
    pub(crate) async fn process(&mut self, input: &[u8], out: &mut Vec<u8>, shared: &ProxyShared) -> Outcome {
        let limits = Limits {
            max_bulk_bytes: shared.max_value_bytes + 1024,
            max_request_bytes: shared.max_value_bytes + 64 * 1024,
            ..Limits::default()
        };
        // Arguments borrow the read buffer; only those unescaped from a
        // quoted inline request are copied.
        let mut commands: Vec<Vec<Cow<'_, [u8]>>> = Vec::new();
        let mut consumed = 0;
        let mut fatal = None;
        loop {
            let buf = &input[consumed..];
            match parse_request(buf, &limits, &mut self.args) {
                Ok(Some(used)) => {
                    if !self.args.is_empty() {
                        let args = &self.args;
                        commands.push(
                            (0..args.len())
                                .map(|i| match args.get_in_buffer(buf, i) {
                                    Some(arg) => Cow::Borrowed(arg),
                                    None => Cow::Owned(args.get(buf, i).to_vec()),
                                })
                                .collect(),
                        );
                    }
                    consumed += used;
                }
                Ok(None) => break,
                Err(error) => {
                    fatal = Some(error);
                    consumed = input.len();
                    break;
                }
            }
        }
        let mut close = false;
        let mut at = 0;
        while at < commands.len() {
            let (kind, run) = batchable_run(&commands[at..]);
            if run > 1 {
                run_batch(kind, &commands[at..at + run], out, shared).await;
                shared.stats.requests.fetch_add(run as u64, Ordering::Relaxed);
                at += run;
                continue;
            }
            shared.stats.requests.fetch_add(1, Ordering::Relaxed);
            let args: Vec<&[u8]> = commands[at].iter().map(|arg| &**arg).collect();
            if self.execute(&args, out, shared).await {
                close = true;
                break;
            }
            at += 1;
        }
        if let Some(error) = fatal {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            Encoder::new(out, Protocol::Resp2).error(format!("ERR {error}").as_bytes());
            close = true;
        }
        Outcome { consumed, close }
    }

    /// Runs one command; true to close the connection.
    async fn execute(&mut self, args: &[&[u8]], out: &mut Vec<u8>, shared: &ProxyShared) -> bool {
        let client = &shared.client;
        let mut scratch = [0u8; MAX_COMMAND_NAME_LEN];
        // A name longer than any command's is simply unknown.
        let name: &[u8] = uppercase_command(args[0], &mut scratch).unwrap_or(b"");
        let mut encoder = Encoder::new(out, Protocol::Resp2);
        let argc = args.len();
        match name {
            b"PING" => match argc {
                1 => encoder.simple(b"PONG"),
                2 => encoder.bulk(args[1]),
                _ => {
                    wrong_args(&mut encoder, name);
                    return false;
                }
            },
            b"ECHO" if argc == 2 => encoder.bulk(args[1]),
            b"QUIT" => {
                encoder.ok();
                return true;
            }
            b"SELECT" if argc == 2 => {
                if args[1] == b"0" {
                    encoder.ok()
                } else {
                    encoder.error(b"ERR DB index is out of range")
                }
            }
            b"HELLO" => {
                if argc > 1 && args[1] != b"2" {
                    encoder.error(b"NOPROTO this protocol version is not supported by strata proxy")
                } else {
                    encoder.array(6);
                    encoder.bulk(b"server").bulk(b"strata-proxy");
                    encoder.bulk(b"version").bulk(env!("CARGO_PKG_VERSION").as_bytes());
                    encoder.bulk(b"proto").integer(2)
                }
            }
            b"COMMAND" => encoder.array(0),
            b"CLIENT" if argc >= 2 => match upper(args[1]).as_slice() {
                b"SETNAME" if argc == 3 => {
                    self.name = Some(args[2].to_vec());
                    encoder.ok()
                }
                b"GETNAME" => match &self.name {
                    Some(name) => encoder.bulk(name),
                    None => encoder.null(),
                },
                b"ID" => encoder.integer(1),
                _ => encoder.error(b"ERR unknown CLIENT subcommand for strata proxy"),
            },
            b"INFO" => {
                let stats = client.stats();
                let proxy = &shared.stats;
                let text = format!(
                    "# Proxy\r\nstrata_version:{}\r\nring_epoch:{}\r\nnodes_down:{}\r\nconnections_received:{}\r\nrequests:{}\r\nrefused:{}\r\nfailed:{}\r\n\r\n# Cluster\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nfailovers:{}\r\nwarmup_hits:{}\r\n",
                    env!("CARGO_PKG_VERSION"),
                    client.epoch(),
                    client.down_nodes().len(),
                    proxy.connections.load(Ordering::Relaxed),
                    proxy.requests.load(Ordering::Relaxed),
                    proxy.refused.load(Ordering::Relaxed),
                    proxy.failed.load(Ordering::Relaxed),
                    stats.hits,
                    stats.gets - stats.hits,
                    stats.failovers,
                    stats.warmup_hits,
                );
                encoder.bulk(text.as_bytes())
            }
            b"GET" if argc == 2 => match client.get(args[1]).await {
                Ok(Some(value)) => encoder.bulk(&value),
                Ok(None) => encoder.null(),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"MGET" if argc >= 2 => match client.get_many(&args[1..]).await {
                Ok(values) => {
                    encoder.array(values.len());
                    for value in values {
                        match value {
                            Some(value) => encoder.bulk(&value),
                            None => encoder.null(),
                        };
                    }
                    return false;
                }
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"SET" if argc >= 3 => {
                let options = match parse_set_options(&args[3..]) {
                    Ok(options) => options,
                    Err(message) => {
                        encoder.error(message.as_bytes());
                        return false;
                    }
                };
                set(&mut encoder, shared, args[1], args[2], options).await;
                return false;
            }
            b"SETEX" | b"PSETEX" if argc == 4 => {
                let command = if name == b"SETEX" { "setex" } else { "psetex" };
                let ttl = match ttl_arg(args[2], name == b"SETEX") {
                    Ok(Some(ttl)) => ttl,
                    Ok(None) | Err(CommandError::InvalidExpireTime(_)) => {
                        encoder.error(CommandError::InvalidExpireTime(command).to_string().as_bytes());
                        return false;
                    }
                    Err(error) => {
                        encoder.error(error.to_string().as_bytes());
                        return false;
                    }
                };
                let options = SetArgs {
                    ttl: Some(ttl),
                    only_if_absent: false,
                    expired: false,
                };
                set(&mut encoder, shared, args[1], args[3], options).await;
                return false;
            }
            b"SETNX" if argc == 3 => match client.add(args[1], args[2], None).await {
                Ok(stored) => encoder.integer(i64::from(stored)),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"MSET" if argc >= 3 && argc % 2 == 1 => {
                let items: Vec<(&[u8], &[u8])> = args[1..].chunks_exact(2).map(|pair| (pair[0], pair[1])).collect();
                match client.set_many(&items, None).await {
                    Ok(()) => encoder.ok(),
                    Err(error) => {
                        cluster_error(&mut encoder, shared, &error);
                        return false;
                    }
                }
            }
            b"DEL" | b"UNLINK" if argc >= 2 => match client.delete_many(&args[1..]).await {
                Ok(count) => encoder.integer(count as i64),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"EXISTS" if argc >= 2 => match client.get_many(&args[1..]).await {
                Ok(values) => encoder.integer(values.iter().filter(|v| v.is_some()).count() as i64),
                Err(error) => {
                    cluster_error(&mut encoder, shared, &error);
                    return false;
                }
            },
            b"EXPIRE" | b"PEXPIRE" if argc == 3 => {
                let command = if name == b"EXPIRE" { "expire" } else { "pexpire" };
                let result = match ttl_arg(args[2], name == b"EXPIRE") {
                    Ok(None) => client.delete(args[1]).await,
                    Ok(Some(ttl)) => client.touch(args[1], ttl).await,
                    Err(CommandError::InvalidExpireTime(_)) => {
                        encoder.error(CommandError::InvalidExpireTime(command).to_string().as_bytes());
                        return false;
                    }
                    Err(error) => {
                        encoder.error(error.to_string().as_bytes());
                        return false;
                    }
                };
                match result {
                    Ok(found) => encoder.integer(i64::from(found)),
                    Err(error) => {
                        cluster_error(&mut encoder, shared, &error);
                        return false;
                    }
                }
            }
            b"ECHO" | b"SELECT" | b"CLIENT" | b"GET" | b"MGET" | b"SET" | b"SETEX" | b"PSETEX" | b"SETNX" | b"MSET"
            | b"DEL" | b"UNLINK" | b"EXISTS" | b"EXPIRE" | b"PEXPIRE" => {
                wrong_args(&mut encoder, name);
                return false;
            }
            _ => {
                shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                let mut text = b"ERR unknown command '".to_vec();
                text.extend(
                    args[0]
                        .iter()
                        .take(128)
                        .map(|&b| if b.is_ascii_control() { b' ' } else { b }),
                );
                text.extend_from_slice(b"', with args beginning with: ");
                for arg in args.iter().skip(1).take(15) {
                    text.push(b'\'');
                    text.extend(
                        arg.iter()
                            .take(128)
                            .map(|&b| if b.is_ascii_control() { b' ' } else { b }),
                    );
                    text.extend_from_slice(b"' ");
                }
                encoder.error(&text)
            }
        };
        false
    }
}

async fn set(encoder: &mut Encoder<'_>, shared: &ProxyShared, key: &[u8], value: &[u8], options: SetArgs) {
    let client = &shared.client;
    if options.expired {
        // Redis stores and expires at once: the key is gone.
        match client.delete(key).await {
            Ok(_) => {
                encoder.ok();
            }
            Err(error) => cluster_error(encoder, shared, &error),
        }
        return;
    }
    let result = if options.only_if_absent {
        client.add(key, value, options.ttl).await
    } else {
        client.set(key, value, options.ttl).await.map(|()| true)
    };
    match result {
        Ok(true) => {
            encoder.ok();
        }
        Ok(false) => {
            encoder.null();
        }
        Err(error) => cluster_error(encoder, shared, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(args: &str) -> Result<SetArgs, String> {
        let args: Vec<&[u8]> = args.split_whitespace().map(str::as_bytes).collect();
        parse_set_options(&args)
    }

    #[test]
    fn set_options_follow_redis() {
        // Was a multiplication overflow (panic in debug, wrap in release).
        assert_eq!(
            set("EXAT 9223372036854775807").err().as_deref(),
            Some("ERR invalid expire time in 'set' command")
        );
        assert_eq!(set("EX 1 EX 2").err().as_deref(), Some("ERR syntax error"));
        assert_eq!(
            set("EX +5").err().as_deref(),
            Some("ERR value is not an integer or out of range")
        );
        assert_eq!(
            set("EX 007").err().as_deref(),
            Some("ERR value is not an integer or out of range")
        );
        assert_eq!(set("NX XX").err().as_deref(), Some("ERR syntax error"));
        assert!(set("XX").is_err_and(|e| e.contains("not supported")));
        let parsed = set("NX EX 10").expect("valid");
        assert!(parsed.only_if_absent && !parsed.expired);
        assert!(parsed.ttl.is_some_and(|ttl| ttl <= Duration::from_secs(10)));
        assert!(set("PXAT 1").expect("valid").expired);
    }

    #[test]
    fn ttl_arguments_are_checked() {
        assert_eq!(ttl_arg(b"5", true), Ok(Some(Duration::from_secs(5))));
        assert_eq!(ttl_arg(b"0", true), Ok(None));
        assert_eq!(ttl_arg(b"+5", true), Err(CommandError::NotAnInteger));
        assert_eq!(
            ttl_arg(b"9223372036854775807", true),
            Err(CommandError::InvalidExpireTime(""))
        );
        assert_eq!(
            ttl_arg(b"9223372036854775807", false),
            Ok(Some(Duration::from_millis(i64::MAX as u64)))
        );
    }
}
