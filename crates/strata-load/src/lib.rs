//! # strata-load
//!
//! The load generator behind `strata bench`: many connections driving a
//! cache server with a GET/SET mix over either protocol, measuring
//! throughput, latency percentiles (hdrhistogram) and, when told the
//! server's pid, the server's CPU time and resident memory over exactly the
//! measured interval.
//!
//! # How a run goes
//!
//! 1. Open `connections` TCP connections (and `AUTH` on RESP if asked).
//! 2. Optionally *prefill*: write every key once, pipelined 64 deep, so the
//!    reads that follow hit. Not measured.
//! 3. Measure: each connection sends `pipeline` requests in one write, then
//!    reads until all their replies are in, then sends the next batch, until
//!    the request budget is spent or the time bound passes, whichever comes
//!    first. Each request's latency is its batch's round trip (what
//!    `redis-benchmark -P` and memtier report). Keys are drawn uniformly from
//!    `keys` distinct keys of 16 bytes (`key:000000000042`), like
//!    `redis-benchmark -r`; each request is a SET with probability
//!    `sets / (gets + sets)`.
//!
//! The generator is written to cost less than the server it measures: one
//! output and one input buffer per connection, requests encoded in place,
//! replies scanned without copying ([`wire`]).

pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use strata_session::process::Watched;
pub use wire::{Outcome, Wire};

/// Length of every generated key: `key:` and 12 digits.
pub const KEY_LEN: usize = 16;

/// Requests per write while prefilling.
const PREFILL_PIPELINE: usize = 64;

/// How long to wait for a reply before calling the server stuck.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a load run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A connection failed mid-run.
    #[error("connection to {addr} failed: {source}")]
    Io {
        /// The server address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server closed a connection or stopped answering.
    #[error("{addr} closed the connection or stopped answering")]
    Closed {
        /// The server address.
        addr: SocketAddr,
    },
    /// The server sent something the generator's requests cannot get.
    #[error(transparent)]
    Reply(#[from] wire::UnexpectedReply),
    /// `AUTH` was refused.
    #[error("AUTH refused by {addr}")]
    Auth {
        /// The server address.
        addr: SocketAddr,
    },
    /// The settings make no run.
    #[error("invalid load: {0}")]
    Invalid(String),
    /// The server process could not be read.
    #[error("cannot watch server process {pid}: {source}")]
    Watch {
        /// The process id.
        pid: u32,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Value sizes: fixed, or uniform in `min..=max` per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ValueSize {
    /// Smallest value in bytes.
    pub min: usize,
    /// Largest value in bytes.
    pub max: usize,
}

impl std::str::FromStr for ValueSize {
    type Err = String;

    /// `32`, or `100-16384`.
    fn from_str(text: &str) -> Result<Self, String> {
        let parse = |part: &str| {
            part.trim()
                .parse::<usize>()
                .map_err(|_| format!("value size {text:?}: expected BYTES or MIN-MAX"))
        };
        let (min, max) = match text.split_once('-') {
            Some((min, max)) => (parse(min)?, parse(max)?),
            None => {
                let size = parse(text)?;
                (size, size)
            }
        };
        if min > max {
            return Err(format!("value size {text:?}: MIN exceeds MAX"));
        }
        Ok(ValueSize { min, max })
    }
}

/// One load run's settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadSpec {
    /// The server.
    pub addr: SocketAddr,
    /// Its protocol.
    pub wire: Wire,
    /// Concurrent connections.
    pub connections: usize,
    /// Requests per write on each connection.
    pub pipeline: usize,
    /// Distinct keys.
    pub keys: u64,
    /// Value sizes of SETs.
    pub value_size: ValueSize,
    /// GETs in the mix…
    pub gets: u32,
    /// …per this many SETs.
    pub sets: u32,
    /// Stop after this many requests…
    pub requests: u64,
    /// …or after this long, whichever comes first.
    pub duration: Duration,
    /// Write every key once before measuring.
    pub prefill: bool,
    /// Seed of the key and mix choices.
    pub seed: u64,
    /// The server's pid, for its CPU time and memory.
    pub server_pid: Option<u32>,
    /// Sample the server's RSS this often while measuring.
    pub rss_interval: Duration,
    /// RESP `AUTH` password.
    #[serde(skip)]
    pub password: Option<strata_session::Secret>,
}

impl LoadSpec {
    /// The standard row: GET/SET 10:1, 100,000 keys, 32-byte
    /// values, 50 connections, no pipelining, 2,000,000 requests or 10 s.
    pub fn standard(addr: SocketAddr, wire: Wire) -> Self {
        LoadSpec {
            addr,
            wire,
            connections: 50,
            pipeline: 1,
            keys: 100_000,
            value_size: ValueSize { min: 32, max: 32 },
            gets: 10,
            sets: 1,
            requests: 2_000_000,
            duration: Duration::from_secs(10),
            prefill: true,
            seed: 1,
            server_pid: None,
            rss_interval: Duration::from_millis(100),
            password: None,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let problem = if self.connections == 0 {
            "connections must be at least 1"
        } else if self.pipeline == 0 {
            "pipeline must be at least 1"
        } else if self.keys == 0 || self.keys > 999_999_999_999 {
            "keys must be between 1 and 999999999999"
        } else if self.gets == 0 && self.sets == 0 {
            "the GET:SET ratio must not be 0:0"
        } else if self.requests == 0 {
            "requests must be at least 1"
        } else if self.value_size.max > 512 * 1024 * 1024 {
            "values are limited to 512 MiB"
        } else {
            return Ok(());
        };
        Err(Error::Invalid(problem.to_owned()))
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

/// What the server process did during the measured interval.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ServerUsage {
    /// Its pid.
    pub pid: u32,
    /// CPU seconds (user + system, all threads).
    pub cpu_seconds: f64,
    /// Requests per server CPU-second.
    pub ops_per_cpu_second: f64,
    /// RSS before measuring (after prefill), bytes.
    pub rss_start_bytes: u64,
    /// Largest RSS sampled while measuring, bytes.
    pub rss_max_bytes: u64,
    /// RSS at the end, bytes.
    pub rss_end_bytes: u64,
}

/// The result of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadReport {
    /// What was run.
    pub spec: LoadSpec,
    /// Requests answered in the measured interval.
    pub requests: u64,
    /// Length of the measured interval, seconds.
    pub elapsed_seconds: f64,
    /// Requests per second.
    pub ops_per_second: f64,
    /// GETs that found their key.
    pub hits: u64,
    /// GETs that did not.
    pub misses: u64,
    /// SETs stored.
    pub stored: u64,
    /// Error replies.
    pub errors: u64,
    /// hits / (hits + misses).
    pub hit_ratio: f64,
    /// Latency percentiles.
    pub latency: Latency,
    /// The server's CPU and memory, if its pid was given.
    pub server: Option<ServerUsage>,
}

#[derive(Debug)]
struct Tally {
    hits: u64,
    misses: u64,
    stored: u64,
    errors: u64,
    histogram: Histogram<u64>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            hits: 0,
            misses: 0,
            stored: 0,
            errors: 0,
            // 1 µs to 100 s at 3 significant digits; the bounds are constants.
            histogram: Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds"),
        }
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Hit => self.hits += 1,
            Outcome::Miss => self.misses += 1,
            Outcome::Stored => self.stored += 1,
            Outcome::Error => self.errors += 1,
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.stored += other.stored;
        self.errors += other.errors;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }
}

/// One connection's buffers and state.
struct Connection {
    stream: TcpStream,
    addr: SocketAddr,
    wire: Wire,
    out: Vec<u8>,
    input: Vec<u8>,
    start: usize,
}

impl Connection {
    async fn open(spec: &LoadSpec) -> Result<Self, Error> {
        let stream = TcpStream::connect(spec.addr).await.map_err(|source| Error::Connect {
            addr: spec.addr,
            source,
        })?;
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            stream,
            addr: spec.addr,
            wire: spec.wire,
            out: Vec::with_capacity(64 * 1024),
            input: Vec::with_capacity(64 * 1024),
            start: 0,
        };
        if let (Some(password), Wire::Resp) = (&spec.password, spec.wire) {
            strata_proto::resp::encode_command(&mut connection.out, &[&b"AUTH"[..], password.expose().as_bytes()]);
            let mut tally = Tally::new();
            connection.round_trip(1, &mut tally).await?;
            if tally.stored != 1 {
                return Err(Error::Auth { addr: spec.addr });
            }
        }
        Ok(connection)
    }

    /// Sends `out` and reads `replies` replies into `tally`.
    async fn round_trip(&mut self, replies: usize, tally: &mut Tally) -> Result<(), Error> {
        let io = |source| Error::Io {
            addr: self.addr,
            source,
        };
        self.stream.write_all(&self.out).await.map_err(io)?;
        self.out.clear();
        let mut answered = 0;
        loop {
            while answered < replies {
                match wire::scan_reply(self.wire, &self.input[self.start..])? {
                    Some((len, outcome)) => {
                        self.start += len;
                        answered += 1;
                        tally.count(outcome);
                    }
                    None => break,
                }
            }
            if answered == replies {
                return Ok(());
            }
            // Keep the unread tail at the front, then read more after it.
            self.input.drain(..self.start);
            self.start = 0;
            let len = self.input.len();
            if self.input.capacity() - len < 16 * 1024 {
                self.input.reserve(64 * 1024);
            }
            let spare = self.input.capacity() - len;
            self.input.resize(len + spare, 0);
            let read = tokio::time::timeout(REPLY_TIMEOUT, self.stream.read(&mut self.input[len..])).await;
            let read = match read {
                Ok(Ok(0)) | Err(_) => {
                    self.input.truncate(len);
                    return Err(Error::Closed { addr: self.addr });
                }
                Ok(Ok(read)) => read,
                Ok(Err(source)) => {
                    self.input.truncate(len);
                    return Err(Error::Io {
                        addr: self.addr,
                        source,
                    });
                }
            };
            self.input.truncate(len + read);
        }
    }
}

/// Writes `key:` and `index` as 12 zero-padded digits into `key`.
pub fn write_key(key: &mut [u8; KEY_LEN], mut index: u64) {
    key[..4].copy_from_slice(b"key:");
    for digit in key[4..].iter_mut().rev() {
        *digit = b'0' + (index % 10) as u8;
        index /= 10;
    }
}

/// Takes up to `want` requests from the shared budget.
fn take_budget(budget: &AtomicU64, want: u64) -> u64 {
    let mut left = budget.load(Ordering::Relaxed);
    loop {
        let take = left.min(want);
        if take == 0 {
            return 0;
        }
        match budget.compare_exchange_weak(left, left - take, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return take,
            Err(actual) => left = actual,
        }
    }
}

/// Bytes every value is cut from.
fn value_bytes(max: usize) -> Vec<u8> {
    (0..max).map(|i| b'a' + (i % 26) as u8).collect()
}

async fn prefill(connection: &mut Connection, spec: &LoadSpec, index: usize, values: &[u8]) -> Result<u64, Error> {
    let mut rng = SmallRng::seed_from_u64(spec.seed ^ 0x5EED_0000 ^ index as u64);
    let mut tally = Tally::new();
    let mut key = [0u8; KEY_LEN];
    let mut batch = 0;
    let mut keys = (index as u64..spec.keys).step_by(spec.connections).peekable();
    while keys.peek().is_some() {
        for key_index in keys.by_ref().take(PREFILL_PIPELINE) {
            write_key(&mut key, key_index);
            let len = rng.random_range(spec.value_size.min..=spec.value_size.max);
            wire::encode_set(spec.wire, &mut connection.out, &key, &values[..len]);
            batch += 1;
        }
        connection.round_trip(batch, &mut tally).await?;
        batch = 0;
    }
    Ok(tally.errors)
}

async fn measure(
    connection: &mut Connection,
    spec: &LoadSpec,
    index: usize,
    values: &[u8],
    budget: &AtomicU64,
    deadline: Instant,
    progress: &ProgressBar,
) -> Result<Tally, Error> {
    let mut rng = SmallRng::seed_from_u64(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64);
    let mut tally = Tally::new();
    let mut key = [0u8; KEY_LEN];
    let total = u64::from(spec.gets) + u64::from(spec.sets);
    while Instant::now() < deadline {
        let batch = take_budget(budget, spec.pipeline as u64);
        if batch == 0 {
            break;
        }
        for _ in 0..batch {
            write_key(&mut key, rng.random_range(0..spec.keys));
            if rng.random_range(0..total) < u64::from(spec.sets) {
                let len = rng.random_range(spec.value_size.min..=spec.value_size.max);
                wire::encode_set(spec.wire, &mut connection.out, &key, &values[..len]);
            } else {
                wire::encode_get(spec.wire, &mut connection.out, &key);
            }
        }
        let sent = Instant::now();
        connection.round_trip(batch as usize, &mut tally).await?;
        let micros = (sent.elapsed().as_micros() as u64).max(1);
        tally.histogram.saturating_record_n(micros, batch);
        progress.inc(batch);
    }
    Ok(tally)
}

/// Samples the server's RSS until `stop`; returns the largest sample.
async fn sample_rss(watched: Watched, interval: Duration, stop: Arc<AtomicBool>) -> u64 {
    let mut max = 0;
    let mut ticker = tokio::time::interval(interval);
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        if let Ok(rss) = watched.resident_bytes() {
            max = max.max(rss);
        }
    }
    max
}

/// Runs `spec` on the current tokio runtime. `progress` counts measured
/// requests (pass [`ProgressBar::hidden`] for none).
pub async fn run(spec: LoadSpec, progress: ProgressBar) -> Result<LoadReport, Error> {
    spec.validate()?;
    let watched = spec
        .server_pid
        .map(|pid| Watched::new(pid).map_err(|source| Error::Watch { pid, source }))
        .transpose()?;
    let mut connections = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections {
        connections.push(Connection::open(&spec).await?);
    }
    let spec = Arc::new(spec);
    let values: Arc<[u8]> = value_bytes(spec.value_size.max).into();

    if spec.prefill {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, mut connection) in connections.into_iter().enumerate() {
            let (spec, values) = (Arc::clone(&spec), Arc::clone(&values));
            tasks.spawn(async move {
                let errors = prefill(&mut connection, &spec, index, &values).await?;
                Ok::<_, Error>((index, connection, errors))
            });
        }
        let mut opened = Vec::with_capacity(spec.connections);
        let mut errors = 0;
        while let Some(joined) = tasks.join_next().await {
            let (index, connection, failed) = joined.map_err(|e| Error::Invalid(format!("prefill task: {e}")))??;
            opened.push((index, connection));
            errors += failed;
        }
        if errors > 0 {
            tracing::warn!(errors, "the server refused some prefill writes");
        }
        opened.sort_by_key(|(index, _)| *index);
        connections = opened.into_iter().map(|(_, connection)| connection).collect();
    }

    let stop_sampling = Arc::new(AtomicBool::new(false));
    let usage_start = match &watched {
        Some(watched) => Some((
            watched.cpu_time().map_err(|source| Error::Watch {
                pid: watched.pid(),
                source,
            })?,
            watched.resident_bytes().unwrap_or(0),
        )),
        None => None,
    };
    let sampler = watched
        .clone()
        .map(|watched| tokio::spawn(sample_rss(watched, spec.rss_interval, Arc::clone(&stop_sampling))));

    let budget = Arc::new(AtomicU64::new(spec.requests));
    let started = Instant::now();
    let deadline = started + spec.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (index, mut connection) in connections.into_iter().enumerate() {
        let (spec, values, budget, progress) = (
            Arc::clone(&spec),
            Arc::clone(&values),
            Arc::clone(&budget),
            progress.clone(),
        );
        tasks.spawn(async move { measure(&mut connection, &spec, index, &values, &budget, deadline, &progress).await });
    }
    let mut total = Tally::new();
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(tally)) => total.merge(&tally),
            Ok(Err(error)) => failure = failure.or(Some(error)),
            Err(error) => failure = failure.or(Some(Error::Invalid(format!("load task: {error}")))),
        }
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    stop_sampling.store(true, Ordering::Relaxed);
    if let Some(error) = failure {
        return Err(error);
    }

    let requests = total.histogram.len();
    let elapsed_seconds = elapsed.as_secs_f64();
    let ops_per_second = requests as f64 / elapsed_seconds.max(1e-9);
    let server = match (watched, usage_start) {
        (Some(watched), Some((cpu_start, rss_start))) => {
            let cpu_end = watched.cpu_time().map_err(|source| Error::Watch {
                pid: watched.pid(),
                source,
            })?;
            let rss_end = watched.resident_bytes().unwrap_or(0);
            let rss_max = match sampler {
                Some(sampler) => sampler.await.unwrap_or(0),
                None => 0,
            };
            let cpu_seconds = cpu_end.saturating_sub(cpu_start).as_secs_f64();
            Some(ServerUsage {
                pid: watched.pid(),
                cpu_seconds,
                ops_per_cpu_second: if cpu_seconds > 0.0 {
                    requests as f64 / cpu_seconds
                } else {
                    0.0
                },
                rss_start_bytes: rss_start,
                rss_max_bytes: rss_max.max(rss_end),
                rss_end_bytes: rss_end,
            })
        }
        _ => None,
    };
    let histogram = &total.histogram;
    let reads = total.hits + total.misses;
    Ok(LoadReport {
        spec: Arc::unwrap_or_clone(spec),
        requests,
        elapsed_seconds,
        ops_per_second,
        hits: total.hits,
        misses: total.misses,
        stored: total.stored,
        errors: total.errors,
        hit_ratio: if reads == 0 {
            0.0
        } else {
            total.hits as f64 / reads as f64
        },
        latency: Latency {
            p50_us: histogram.value_at_quantile(0.50),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
            mean_us: histogram.mean(),
        },
        server,
    })
}

impl LoadReport {
    /// A few lines for a person.
    pub fn render_text(&self) -> String {
        let spec = &self.spec;
        let mut text = format!(
            "{wire} {addr}: {conns} connections, pipeline {pipeline}, {keys} keys, values {vmin}{vmax} B, GET:SET {gets}:{sets}\n\
             {requests} requests in {secs:.2} s: {ops:.0} ops/s; latency p50 {p50} µs, p99 {p99} µs, p99.9 {p999} µs, max {max} µs\n\
             hits {hits}, misses {misses} (hit ratio {ratio:.4}), stored {stored}, errors {errors}\n",
            wire = spec.wire,
            addr = spec.addr,
            conns = spec.connections,
            pipeline = spec.pipeline,
            keys = spec.keys,
            vmin = spec.value_size.min,
            vmax = if spec.value_size.max == spec.value_size.min {
                String::new()
            } else {
                format!("-{}", spec.value_size.max)
            },
            gets = spec.gets,
            sets = spec.sets,
            requests = self.requests,
            secs = self.elapsed_seconds,
            ops = self.ops_per_second,
            p50 = self.latency.p50_us,
            p99 = self.latency.p99_us,
            p999 = self.latency.p999_us,
            max = self.latency.max_us,
            hits = self.hits,
            misses = self.misses,
            ratio = self.hit_ratio,
            stored = self.stored,
            errors = self.errors,
        );
        if let Some(server) = &self.server {
            text.push_str(&format!(
                "server pid {pid}: {cpu:.2} CPU-s, {per_cpu:.0} ops per server CPU-second; RSS {start:.1} MiB at start, {max:.1} MiB max, {end:.1} MiB at end\n",
                pid = server.pid,
                cpu = server.cpu_seconds,
                per_cpu = server.ops_per_cpu_second,
                start = server.rss_start_bytes as f64 / 1048576.0,
                max = server.rss_max_bytes as f64 / 1048576.0,
                end = server.rss_end_bytes as f64 / 1048576.0,
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sixteen_bytes() {
        let mut key = [0; KEY_LEN];
        write_key(&mut key, 42);
        assert_eq!(&key, b"key:000000000042");
        write_key(&mut key, 999_999_999_999);
        assert_eq!(&key, b"key:999999999999");
    }

    #[test]
    fn the_budget_is_shared_exactly() {
        let budget = AtomicU64::new(10);
        assert_eq!(take_budget(&budget, 4), 4);
        assert_eq!(take_budget(&budget, 4), 4);
        assert_eq!(take_budget(&budget, 4), 2);
        assert_eq!(take_budget(&budget, 4), 0);
    }

    #[test]
    fn value_sizes_parse() {
        assert_eq!("32".parse(), Ok(ValueSize { min: 32, max: 32 }));
        assert_eq!("1-4096".parse(), Ok(ValueSize { min: 1, max: 4096 }));
        assert!("9-3".parse::<ValueSize>().is_err());
        assert!("big".parse::<ValueSize>().is_err());
    }
}
