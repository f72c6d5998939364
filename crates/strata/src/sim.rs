//! `strata sim`: flags in, report out. The engine is `strata_sim`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use strata_sim::engine::total_work;
use strata_sim::progress::Bar;
use strata_sim::synthetic::DEFAULT_SPEC;
use strata_sim::{Algorithm, CapacitySpec, Format, Plan, SizeMode, SyntheticSpec, plot, report, simulate, trace};

/// The long help's epilogue: the grammars and what `opt` and `belady` mean.
fn after_help() -> String {
    format!(
        "\
With no --trace and no --synthetic, a built-in synthetic workload is run:
  {DEFAULT_SPEC}

Policies:
  lru fifo clock lfu arc sieve s3fifo wtinylfu adaptive   strata's eviction policies
  opt      Belady's MIN allowed to bypass: an object needed later than every
           resident is not admitted. In count mode, the optimal hit ratio.
           In byte mode, only residents needed later than the newcomer may
           be evicted for it, farthest first; if they cannot make room, it
           bypasses (exact optimum is NP-hard with sizes).
  belady   Belady always admitting, evicting the farthest next use; the same
           results as libCacheSim's Belady, byte mode included.
  all      every policy, then opt and belady (the default)

Capacities (comma-separated; each workload runs at each):
  1000, 10k, 2M       entries (k, M, G = 10^3, 10^6, 10^9)
  65536, 64k, 128M    bytes with --bytes (k, M, G, T = 2^10, 2^20, 2^30, 2^40;
                      KiB, MB, … also accepted)
  5%, 0.5%            of the workload's distinct keys (bytes of distinct
                      objects with --bytes)

Synthetic workloads (--synthetic SPEC):
  SPEC = DIST[,NAME=VALUE]...
  DIST               zipf:ALPHA (ALPHA >= 0; 0.6-1.0 is typical) or uniform
  keys=N             distinct keys drawn from DIST (default 100000)
  requests=N         total requests (default 10 x keys)
  scan=SHARE[/LEN]   SHARE of requests are scans: runs of LEN one-time keys
                     (LEN defaults to keys/10)
  loop=SHARE[/LEN]   SHARE of requests are loops: in-order passes over one
                     fixed set of LEN keys (LEN defaults to keys/10)
  size=B | size=MIN-MAX   object sizes for --bytes: fixed, or per key
                     log-uniform in MIN..=MAX (default 1)
  seed=N             RNG seed (default 1); the same spec gives the same workload
  SHARE is a fraction (0.1) or a percentage (10%).

Hit ratio = hits / requests, every run a cold cache. Misses are counted the
way libCacheSim counts them: an object larger than the cache misses and is
not admitted.

Examples:
  strata sim
  strata sim --trace arc_OLTP.txt.gz --capacity 1000,5000,10000 --policy lru,arc,opt
  strata sim --trace cloud.sizes.txt.gz --bytes --capacity 128M,512M,1G --format csv
  strata sim --synthetic zipf:0.9,keys=50000,scan=20%/10000 --plot hit-ratio.svg"
    )
}

/// Flags of `strata sim`.
#[derive(Debug, Args)]
#[command(after_long_help = after_help())]
pub struct SimArgs {
    /// A trace to replay: one key per line (`key size` with --bytes), plain
    /// or gzip. Repeat for several.
    #[arg(short, long = "trace", value_name = "FILE")]
    traces: Vec<PathBuf>,

    /// A synthetic workload to generate and replay, such as
    /// `zipf:0.9,keys=100000,requests=1000000,scan=0.1/5000` (grammar in
    /// --help). Repeat for several.
    #[arg(short, long = "synthetic", value_name = "SPEC")]
    synthetic: Vec<String>,

    /// Policies to run, comma-separated: lru, fifo, clock, lfu, arc, sieve,
    /// s3fifo, wtinylfu, adaptive, opt, belady, or all.
    #[arg(short, long, value_name = "LIST", default_value = "all")]
    policy: String,

    /// Cache capacities, comma-separated: entries (1000, 10k), bytes with
    /// --bytes (64k, 128M, 1G), or percentages of the workload's footprint
    /// (5%).
    #[arg(short, long, value_name = "LIST", default_value = "1%,5%,10%,25%")]
    capacity: String,

    /// Byte mode: capacity in bytes, each object costs its size (from
    /// `key size` lines), no per-object overhead.
    #[arg(long)]
    bytes: bool,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,

    /// Also draw hit ratio against capacity, one chart per workload, to this
    /// SVG file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,

    /// Worker threads; 0 means one per core. Results do not depend on it.
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

/// `--format` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutputFormat {
    /// Aligned columns: hit ratio (%) and misses per capacity and policy.
    Table,
    /// One row per workload, capacity and policy, with raw counts.
    Csv,
    /// The whole report as JSON.
    Json,
}

/// Runs the simulator.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let mode = if args.bytes { SizeMode::Bytes } else { SizeMode::Count };
    if let Some(path) = &args.plot {
        // Fail before a long run, not after it.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        anyhow::ensure!(
            dir.is_dir(),
            "cannot write the plot to {}: {} is not a directory",
            path.display(),
            dir.display()
        );
    }
    let algorithms = Algorithm::parse_list(&args.policy)?;
    let capacities = CapacitySpec::parse_list(&args.capacity, mode)?;
    let specs = if args.traces.is_empty() && args.synthetic.is_empty() {
        eprintln!("strata sim: no --trace or --synthetic given; simulating the built-in workload {DEFAULT_SPEC}");
        vec![DEFAULT_SPEC.parse::<SyntheticSpec>()?]
    } else {
        args.synthetic
            .iter()
            .map(|spec| spec.parse::<SyntheticSpec>())
            .collect::<Result<_, _>>()?
    };

    let mut workloads = Vec::with_capacity(args.traces.len() + specs.len());
    for path in &args.traces {
        workloads.push(trace::load(path, mode)?);
    }
    workloads.extend(specs.iter().map(|spec| spec.generate(mode)));

    let plan = Plan {
        algorithms,
        capacities,
        mode,
        threads: args.threads,
    };
    let bar = Bar::new(total_work(&workloads, &plan));
    let result = simulate(&workloads, &plan, &bar);
    bar.finish();
    let report = result?;

    let format = match args.format {
        OutputFormat::Table => Format::Table,
        OutputFormat::Csv => Format::Csv,
        OutputFormat::Json => Format::Json,
    };
    let text = report::render(&report, format);
    if let Err(err) = std::io::stdout().lock().write_all(text.as_bytes()) {
        // `strata sim | head` closing the pipe early is not an error.
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(err).context("writing the report to stdout");
        }
    }

    if let Some(path) = &args.plot {
        let svg = plot::render_svg(&report)?;
        std::fs::write(path, svg).with_context(|| format!("writing the plot to {}", path.display()))?;
        eprintln!("strata sim: wrote the plot to {}", path.display());
    }
    Ok(())
}
