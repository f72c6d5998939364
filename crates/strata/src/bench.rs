//! `strata bench`: flags in, a load run against a cache server out. The
//! generator is `strata_load`.

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata_load::{self as load, LoadSpec, ValueSize, Wire};

/// Flags of `strata bench`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Drives any Redis- or memcached-protocol server (strata, redis-server, memcached, a proxy)
with a GET/SET mix and reports throughput, latency percentiles (hdrhistogram) and, with
--server-pid, the server's CPU time and RSS over exactly the measured interval: ops per
server CPU-second is the fair comparison when the load generator saturates its core first.

Keys are 16 bytes (key:000000000042), drawn uniformly from --keys. Each connection sends
--pipeline requests in one write and waits for all their replies; a request's latency is
its batch's round trip. The run stops at --requests or --duration, whichever comes first.

Examples:
  strata bench                                            # strata's RESP port, the standard row
  strata bench --protocol memcache --addr 127.0.0.1:7311 --pipeline 16
  strata bench --addr 127.0.0.1:6380 --value-size 1024 --server-pid $(pidof redis-server)
  strata bench --ratio 0:1 --keys 10000000 --value-size 1-16384 --duration 60s --server-pid PID")]
pub struct BenchArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7379", value_name = "HOST:PORT")]
    addr: String,
    /// Protocol to speak.
    #[arg(long, value_enum, default_value_t = Protocol::Resp)]
    protocol: Protocol,
    /// Concurrent connections.
    #[arg(long, short = 'c', default_value_t = 50, value_name = "N")]
    connections: usize,
    /// Requests per write on each connection.
    #[arg(long, short = 'P', default_value_t = 1, value_name = "N")]
    pipeline: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    keys: u64,
    /// Value size of SETs in bytes: fixed, or MIN-MAX (uniform per request).
    #[arg(long, short = 'd', default_value = "32", value_name = "BYTES|MIN-MAX")]
    value_size: ValueSize,
    /// GET:SET ratio.
    #[arg(long, default_value = "10:1", value_name = "GETS:SETS")]
    ratio: String,
    /// Stop after this many requests…
    #[arg(long, short = 'n', default_value_t = 2_000_000, value_name = "N")]
    requests: u64,
    /// …or after this long (e.g. 10s, 500ms, 2m), whichever comes first.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    duration: Duration,
    /// Do not write every key once before measuring.
    #[arg(long)]
    no_prefill: bool,
    /// Seed for keys and the mix.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The server's process id: report its CPU time and RSS (Linux).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// RESP password (AUTH).
    #[arg(long, value_name = "PASSWORD")]
    password: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Protocol {
    /// Redis protocol: GET, SET.
    Resp,
    /// memcached text protocol: get, set.
    Memcache,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// A few lines for a person.
    Text,
    /// One JSON object (for scripts).
    Json,
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale_ms) = if let Some(number) = text.strip_suffix("ms") {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1000.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60_000.0)
    } else {
        (text, 1000.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration such as 10s, 500ms or 2m"))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    Ok(Duration::from_secs_f64(value * scale_ms / 1000.0))
}

fn parse_ratio(text: &str) -> anyhow::Result<(u32, u32)> {
    let (gets, sets) = text
        .split_once(':')
        .with_context(|| format!("--ratio {text:?}: expected GETS:SETS, e.g. 10:1"))?;
    let gets = gets.trim().parse().with_context(|| format!("--ratio {text:?}: GETS"))?;
    let sets = sets.trim().parse().with_context(|| format!("--ratio {text:?}: SETS"))?;
    Ok((gets, sets))
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("--addr {addr:?}"))?
        .next()
        .with_context(|| format!("--addr {addr:?} resolves to no address"))
}

/// Runs one load and prints its report.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (gets, sets) = parse_ratio(&args.ratio)?;
    let wire = match args.protocol {
        Protocol::Resp => Wire::Resp,
        Protocol::Memcache => Wire::Memcache,
    };
    let spec = LoadSpec {
        connections: args.connections,
        pipeline: args.pipeline,
        keys: args.keys,
        value_size: args.value_size,
        gets,
        sets,
        requests: args.requests,
        duration: args.duration,
        prefill: !args.no_prefill,
        seed: args.seed,
        server_pid: args.server_pid,
        password: args.password.map(Into::into),
        ..LoadSpec::standard(resolve(&args.addr)?, wire)
    };
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let progress = ProgressBar::with_draw_target(Some(spec.requests), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} load [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} requests, {per_sec}",
    ) {
        progress.set_style(style.progress_chars("=> "));
    }
    // One thread: the generator is meant to be pinned to one core
    // (taskset), beside a server pinned to another.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(load::run(spec, progress))?;
    match args.format {
        Format::Text => print!("{}", report.render_text()),
        Format::Json => println!("{}", serde_json::to_string(&report)?),
    }
    if report.errors > 0 {
        eprintln!(
            "strata bench: the server answered {} requests with errors",
            report.errors
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn ratios_parse() {
        assert_eq!(parse_ratio("10:1").unwrap(), (10, 1));
        assert_eq!(parse_ratio("0:1").unwrap(), (0, 1));
        assert!(parse_ratio("10").is_err());
    }
}
