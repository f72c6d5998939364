//! `strata invalidator`: tails the origin's log (a PostgreSQL logical
//! replication slot, or SQLite's outbox) and deletes every changed key in
//! the cluster, until Ctrl-C or SIGTERM.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use strata_client::{Client, ClientConfig};
use strata_node::invalidator::{Invalidator, InvalidatorConfig, Source};
use strata_ring::ClusterConfig;
use tokio_util::sync::CancellationToken;

/// Flags of `strata invalidator`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
PostgreSQL needs wal_level=logical (postgresql.conf) and a role with REPLICATION or superuser;
the invalidator creates the slot (test_decoding) on first start and resumes from it after.
A slot holds WAL until it is advanced: cap it with max_slot_wal_keep_size. If the slot is
lost (dropped, or invalidated by that cap), changes were missed: flush the cluster and
start the invalidator again, which recreates the slot.

Applications can name extra keys to invalidate inside their transaction:
  PostgreSQL: SELECT pg_logical_emit_message(true, 'strata.invalidate', 'item:1\\nitem:2');
  SQLite:     INSERT INTO strata_outbox (key, committed_at_ms) VALUES ('item:1', 0);

Examples:
  strata invalidator --origin strata-node.db
  strata invalidator --origin postgres://app@127.0.0.1:5433/app --l2 127.0.0.1:7311,127.0.0.1:7312")]
pub struct InvalidatorArgs {
    /// The origin: a SQLite file path or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL", default_value = "strata-node.db")]
    origin: String,
    /// memcached addresses of the cluster, comma-separated.
    #[arg(long, value_name = "ADDRS", value_delimiter = ',', default_value = "127.0.0.1:7311")]
    l2: Vec<String>,
    /// The cluster's requirepass (or set STRATA_L2_PASSWORD).
    #[arg(long, value_name = "PASSWORD")]
    l2_password: Option<String>,
    /// PostgreSQL replication slot name.
    #[arg(long, value_name = "NAME", default_value = "strata_invalidator")]
    slot: String,
    /// Most changes applied per batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Milliseconds between polls of an empty log.
    #[arg(long, default_value_t = 20, value_name = "MS")]
    poll_ms: u64,
    /// Serve Prometheus metrics on http://127.0.0.1:PORT/metrics (0: off).
    #[arg(long, default_value_t = 7691, value_name = "PORT")]
    metrics_port: u16,
    /// Seconds between status lines (0: none).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    status_every: u64,
}

/// Runs the invalidator until Ctrl-C or SIGTERM.
pub fn run(args: InvalidatorArgs) -> anyhow::Result<()> {
    let runtime = crate::runtime(None)?;
    runtime.block_on(async {
        let signals = crate::signals::stop();
        let cluster = ClusterConfig::from_nodes(&args.l2)?;
        let mut client_config = ClientConfig::new(cluster);
        client_config.node.password = args
            .l2_password
            .clone()
            .or_else(|| std::env::var("STRATA_L2_PASSWORD").ok())
            .map(strata_session::Secret::from);
        let client = Client::new(client_config)?;
        let source = Source::open(&args.origin, &args.slot)
            .await
            .with_context(|| format!("opening the change log of {}", crate::node::redact(&args.origin)))?;
        let invalidator = Invalidator::new(
            source,
            client,
            InvalidatorConfig {
                batch: args.batch.max(1),
                poll_interval: Duration::from_millis(args.poll_ms.max(1)),
                ..InvalidatorConfig::default()
            },
        );
        let stats = invalidator.stats();
        let shutdown = CancellationToken::new();
        let status = {
            let stats = stats.clone();
            let every = args.status_every;
            tokio::spawn(async move {
                if every == 0 {
                    return;
                }
                let mut ticker = tokio::time::interval(Duration::from_secs(every));
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    tracing::info!(
                        applied = stats.applied.load(std::sync::atomic::Ordering::Relaxed),
                        errors = stats.errors.load(std::sync::atomic::Ordering::Relaxed),
                        invalid_keys = stats.invalid_keys.load(std::sync::atomic::Ordering::Relaxed),
                        p50_ms = stats.latency_ms(0.5),
                        p99_ms = stats.latency_ms(0.99),
                        "invalidator: keys deleted, commit-to-delete latency"
                    );
                }
            })
        };
        if args.metrics_port != 0 {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.metrics_port));
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot serve metrics on {addr} (--metrics-port 0 turns them off)"))?;
            let stats = stats.clone();
            let router = strata_session::admin::metrics_router(move || stats.render());
            tokio::spawn(strata_session::admin::serve(listener, router, shutdown.clone()));
            tracing::info!(%addr, "invalidator metrics at /metrics");
        }
        tracing::info!(origin = %crate::node::redact(&args.origin), "strata invalidator tailing");
        let stop = shutdown.clone();
        tokio::spawn(async move {
            signals.await;
            stop.cancel();
        });
        invalidator.run(shutdown).await;
        status.abort();
        tracing::info!("strata invalidator stopped");
        Ok(())
    })
}
