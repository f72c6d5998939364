//! `strata`: one binary, one subcommand per job. Thin by design: it parses
//! flags and config, then calls into a library crate.

use clap::{Parser, Subcommand};

/// jemalloc, set to give freed pages back to the kernel at once. The
/// store's memory budget counts pages and records as a page-granular
/// allocator holds them; glibc's `malloc` keeps what is freed resident and
/// fragments under mixed sizes (a 64 MiB store held 136 MiB of RSS), so a
/// hard `maxmemory` needs an allocator whose resident memory follows what
/// is allocated. Purging at once costs an `madvise` per freed extent:
/// measured in BENCHMARKS.md §6.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (`malloc_conf`).
#[cfg(not(target_env = "msvc"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: ConfString = ConfString(c"dirty_decay_ms:0,muzzy_decay_ms:0".as_ptr());

/// A C string pointer jemalloc reads once at start.
#[repr(transparent)]
struct ConfString(*const std::ffi::c_char);

// SAFETY: the pointer is to a static, immutable C string.
unsafe impl Sync for ConfString {}

mod bench;
mod check;
mod invalidator;
mod node;
mod proxy;
mod ring;
mod server;
mod signals;
mod sim;
mod up;

/// strata: a layered, distributed cache.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a cache server that Redis (RESP2/RESP3) and memcached (text and
    /// meta) clients use unchanged, with Prometheus metrics on an admin port.
    Server(server::ServerArgs),
    /// Replay access traces (or a synthetic workload) through the eviction
    /// policies and report hit ratios against Belady's optimum.
    Sim(sim::SimArgs),
    /// Drive a Redis- or memcached-protocol server with a GET/SET load and
    /// report ops/s, latency percentiles and ops per server CPU-second.
    Bench(bench::BenchArgs),
    /// Show how a pool's keys spread over its nodes and which fraction a
    /// proposed --add/--remove would move, and where.
    Ring(ring::RingArgs),
    /// Route Redis and memcached clients to a cluster of cache servers
    /// (ketama, gutter failover, warm-up), like twemproxy or mcrouter.
    Proxy(proxy::ProxyArgs),
    /// Start a local stack on loopback — servers, a gutter, a proxy, a
    /// request node over SQLite (or PostgreSQL) and the invalidator — and
    /// show its live status until Ctrl-C.
    Up(up::UpArgs),
    /// Serve an HTTP/JSON API over a database (SQLite or PostgreSQL) with a
    /// local cache in front of the cluster, kept consistent by leases,
    /// server-pushed invalidation and a chosen write strategy.
    Node(node::NodeArgs),
    /// Tail the database's log (PostgreSQL logical decoding, or SQLite's
    /// outbox) and delete every changed key in the cluster.
    Invalidator(invalidator::InvalidatorArgs),
    /// Measure consistency: concurrent readers and writers with injected
    /// faults, per write strategy; stale reads during the run and
    /// inconsistencies left after it (or, with --herd, the thundering herd).
    Check(check::CheckArgs),
}

/// The multi-threaded runtime every long-running subcommand runs on
/// (`threads`: worker count, default one per core).
pub(crate) fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    builder.enable_all().build().context("starting the async runtime")
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `strata check` injects faults on purpose (dropped deletes, a killed
    // invalidator, a restarted server): the warnings they cause are
    // expected, and its progress bar and final table say what matters. So
    // it logs errors only, unless STRATA_LOG says otherwise.
    let default_filter = match cli.command {
        Command::Check(_) => "error",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Sim(args) => sim::run(args),
        Command::Server(args) => server::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Ring(args) => ring::run(args),
        Command::Proxy(args) => proxy::run(args),
        Command::Up(args) => up::run(args),
        Command::Node(args) => node::run(args),
        Command::Check(args) => check::run(args),
        Command::Invalidator(args) => invalidator::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("strata: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
