//! `strata check`: the consistency checker, and (`--herd`) the
//! thundering-herd benchmark. The machinery is `strata_check`.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata_check::herd::{HerdConfig, run_herd};
use strata_check::{CheckConfig, CheckReport, run_check};
use strata_node::Strategy;

/// Flags of `strata check`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Starts cache servers, request nodes and the invalidator in this process over a real origin
(SQLite in a temp dir, or PostgreSQL with --postgres), all talking over loopback, and drives
concurrent readers and writers through the nodes with trouble injected: slow origin loads,
fills delayed past a newer write, cache updates dropped or delayed, the invalidator killed
and restarted, a cache server restarted empty.

Reports per strategy the stale-read rate during the run (a read older than a write
acknowledged before it began) and, after quiescence, the rows whose L2 or L1 copy disagrees
with the origin and the acknowledged writes the origin lost. The naive strategy (no leases,
no tracking, no invalidator) runs the same load to show the races exist.

--herd instead runs the thundering-herd benchmark: one hot row, --clients readers over
--nodes nodes, invalidated --rounds times; origin loads per invalidation, guarded vs naive.

Examples:
  strata check                                   # every strategy, 100k writes each
  strata check --strategy cache-aside --writes 1000000
  strata check --postgres auto                   # a private PostgreSQL (Debian's postgresql)
  strata check --herd --clients 200 --nodes 4")]
pub struct CheckArgs {
    /// Strategies to check, comma-separated (default: all four).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    strategy: Option<Vec<Strategy>>,
    /// Writes per strategy.
    #[arg(long, default_value_t = 100_000)]
    writes: u64,
    /// Distinct rows.
    #[arg(long, default_value_t = 500)]
    keys: usize,
    /// Request nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Cache servers.
    #[arg(long, default_value_t = 2)]
    servers: usize,
    /// Writer tasks.
    #[arg(long, default_value_t = 16)]
    writers: usize,
    /// Reader tasks.
    #[arg(long, default_value_t = 32)]
    readers: usize,
    /// Run without injected faults.
    #[arg(long)]
    no_faults: bool,
    /// Restart the invalidator every this many milliseconds (0: never).
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    invalidator_restart_ms: u64,
    /// Restart cache server 0 this many times during the run.
    #[arg(long, default_value_t = 2)]
    server_restarts: u32,
    /// Stop the load after this many seconds even if writes remain.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    max_secs: u64,
    /// Use PostgreSQL: a postgres:// URL, or `auto` for a private server
    /// started from Debian's postgresql binaries.
    #[arg(long, value_name = "URL|auto")]
    postgres: Option<String>,
    /// Print the reports as JSON lines.
    #[arg(long)]
    json: bool,
    /// Run the thundering-herd benchmark instead.
    #[arg(long)]
    herd: bool,
    /// Herd: concurrent readers of the hot row.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Herd: invalidations.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Herd: extra milliseconds per origin load (a loaded database).
    #[arg(long, default_value_t = 20, value_name = "MS")]
    origin_delay_ms: u64,
}

/// A scratch directory removed on drop.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the checks and prints their reports; fails if a guarded strategy
/// left an inconsistency.
pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let scratch = Scratch(std::env::temp_dir().join(format!("strata-check-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).context("creating a scratch directory")?;
    // A private PostgreSQL lives as long as the run.
    let mut private_pg = None;
    let postgres_url = match args.postgres.as_deref() {
        Some("auto") => {
            let server = strata_check::PgServer::start().map_err(|error| anyhow::anyhow!("{error}"))?;
            let url = server.url();
            private_pg = Some(server);
            Some(url)
        }
        Some(url) => Some(url.to_owned()),
        None => None,
    };
    let runtime = crate::runtime(None)?;
    let result = runtime.block_on(async {
        if args.herd {
            return herd(&args, postgres_url.as_deref(), &scratch.0).await;
        }
        let strategies = args.strategy.clone().unwrap_or_else(|| {
            vec![
                Strategy::Naive,
                Strategy::CacheAside,
                Strategy::WriteThrough,
                Strategy::WriteBehind,
            ]
        });
        let mut reports = Vec::new();
        for (index, strategy) in strategies.iter().enumerate() {
            let origin = match &postgres_url {
                Some(url) => url.clone(),
                None => scratch.0.join(format!("origin-{index}.db")).display().to_string(),
            };
            if postgres_url.is_some() {
                reset_postgres(&origin).await?;
            }
            let config = CheckConfig {
                strategy: *strategy,
                origin,
                writes: args.writes,
                keys: args.keys,
                nodes: args.nodes,
                servers: args.servers,
                writers: args.writers,
                readers: args.readers,
                faults: !args.no_faults,
                invalidator_restart_every: Duration::from_millis(args.invalidator_restart_ms),
                server_restarts: args.server_restarts,
                max_duration: Duration::from_secs(args.max_secs),
                scratch: scratch.0.join(format!("run-{index}")),
                slot: format!("strata_check_{index}"),
            };
            let bar = progress_bar(args.writes, &strategy.to_string());
            let report = run_check(&config, &|done| bar.set_position(done))
                .await
                .map_err(|error| anyhow::anyhow!("{strategy}: {error}"))?;
            bar.finish_and_clear();
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            }
            reports.push(report);
        }
        if !args.json {
            print_table(&reports);
        }
        let broken: Vec<&str> = reports
            .iter()
            .filter(|report| report.strategy != "naive" && !report.is_consistent())
            .map(|report| report.strategy.as_str())
            .collect();
        if !broken.is_empty() {
            anyhow::bail!("inconsistencies left after quiescence: {}", broken.join(", "));
        }
        Ok(())
    });
    drop(private_pg);
    result
}

/// Empties the checker's table between strategies and drops its old slots.
async fn reset_postgres(url: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {}", crate::node::redact(url)))?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "DO $$ BEGIN
               PERFORM pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                 WHERE slot_name LIKE 'strata_check_%' AND NOT active;
             END $$;
             DROP TABLE IF EXISTS items;",
        )
        .await
        .context("resetting the checker's table")?;
    Ok(())
}

fn progress_bar(total: u64, label: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:40}] {pos}/{len} writes ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    bar
}

fn print_table(reports: &[CheckReport]) {
    println!(
        "{:<14} {:>9} {:>10} {:>11} {:>9} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9}",
        "strategy",
        "writes",
        "reads",
        "stale-rate",
        "L2-left",
        "L1-left",
        "lost",
        "errors",
        "inval",
        "p50 ms",
        "p99 ms"
    );
    for report in reports {
        println!(
            "{:<14} {:>9} {:>10} {:>10.4}% {:>9} {:>9} {:>9} {:>8} {:>10} {:>9.1} {:>9.1}",
            report.strategy,
            report.writes,
            report.reads,
            100.0 * report.stale_rate,
            report.l2_inconsistent,
            report.l1_inconsistent,
            report.lost_writes,
            report.write_errors + report.read_errors,
            report.invalidations,
            report.invalidation_p50_ms,
            report.invalidation_p99_ms,
        );
    }
    for report in reports.iter().filter(|report| !report.l2_samples.is_empty()) {
        println!(
            "{}: rows left inconsistent in L2 (first {}):",
            report.strategy,
            report.l2_samples.len()
        );
        for sample in &report.l2_samples {
            println!("  {sample}");
        }
    }
    println!(
        "(L2-left, L1-left: rows whose cached copy disagrees with the origin after quiescence; \
         lost: acknowledged writes missing from the origin; p50/p99: commit to L2 delete by the invalidator)"
    );
}

async fn herd(args: &CheckArgs, postgres: Option<&str>, scratch: &std::path::Path) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for (index, guarded) in [false, true].into_iter().enumerate() {
        let origin = match postgres {
            Some(url) => url.to_owned(),
            None => scratch.join(format!("herd-{index}.db")).display().to_string(),
        };
        let config = HerdConfig {
            origin,
            nodes: args.nodes,
            servers: args.servers,
            clients: args.clients,
            rounds: args.rounds,
            origin_delay_ms: args.origin_delay_ms,
            scratch: scratch.join(format!("herd-run-{index}")),
        };
        let report = run_herd(&config, guarded)
            .await
            .map_err(|error| anyhow::anyhow!(error))?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        }
        reports.push(report);
    }
    if !args.json {
        println!(
            "thundering herd: {} clients over {} nodes, {} invalidations, origin load +{} ms",
            args.clients, args.nodes, args.rounds, args.origin_delay_ms
        );
        println!(
            "{:<22} {:>10} {:>10} {:>10} {:>8}",
            "mode", "loads/inv", "min", "max", "errors"
        );
        for report in &reports {
            println!(
                "{:<22} {:>10.2} {:>10} {:>10} {:>8}",
                report.mode, report.loads_mean, report.loads_min, report.loads_max, report.errors
            );
        }
    }
    Ok(())
}
