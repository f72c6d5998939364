//! `strata proxy`: a cluster file in, RESP and memcached front doors out,
//! routing through `strata_client`, until Ctrl-C or SIGTERM. SIGHUP (or any
//! change to the file) reloads the cluster into a new epoch.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use strata_client::{Client, ClientConfig, Failover};
use strata_proxy::{self as proxy, ProxyConfig};
use strata_ring::ClusterConfig;

/// Default RESP port of the proxy.
pub const DEFAULT_RESP_PORT: u16 = 7479;
/// Default memcached port of the proxy.
pub const DEFAULT_MEMCACHE_PORT: u16 = 7411;

/// Flags of `strata proxy`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Listens for Redis (RESP2, and RESP3 after HELLO 3) and memcached (text and meta) clients and
routes every key to its node on the ketama ring of the cluster file's main pool
(libmemcached-compatible). Commands that need every server (DBSIZE, KEYS, SCAN, flush_all, ...)
are refused, saying so. A node that fails
3 times in a row is marked down and its keys go to the gutter pool (writes there live at most
--gutter-ttl) or, without a gutter pool, to the next node on the ring. Before a node that was
down serves again, the keys written elsewhere meanwhile are deleted on it. After a change of
membership, misses on a key's new node read its previous node for --warmup.

The cluster file:

    scheme = \"ketama\"
    [pools.main]
    nodes = [\"127.0.0.1:7311\", \"127.0.0.1:7312\", \"127.0.0.1:7313\"]   # memcached ports
    [pools.gutter]
    nodes = [\"127.0.0.1:7320\"]

It is reloaded on SIGHUP and whenever it changes; a file that fails to parse is ignored.

Examples:
  strata proxy --config cluster.toml
  redis-cli -p 7479 set k v
  printf 'get k\\r\\n' | nc -q1 127.0.0.1 7411")]
pub struct ProxyArgs {
    /// The cluster file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST), value_name = "ADDR")]
    bind: IpAddr,
    /// RESP port (0: any free port).
    #[arg(long, default_value_t = DEFAULT_RESP_PORT, value_name = "PORT")]
    port: u16,
    /// memcached port (0: any free port).
    #[arg(long, default_value_t = DEFAULT_MEMCACHE_PORT, value_name = "PORT")]
    memcache_port: u16,
    /// Longest a write to a stand-in (gutter) lives, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    gutter_ttl: u64,
    /// Warm-up period after a membership change, in seconds (0: off).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    warmup: u64,
    /// Per-request timeout towards a node, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    timeout_ms: u64,
    /// Refuse client connections beyond this many.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_connections: usize,
    /// Close a client connection idle this many seconds (0: never, like
    /// the server's `timeout`).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    idle_timeout: u64,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// The client settings shared by `strata proxy` and `strata up`.
pub fn client_config(
    cluster: ClusterConfig,
    gutter_ttl: Duration,
    warmup: Duration,
    timeout: Duration,
) -> ClientConfig {
    let mut config = ClientConfig::new(cluster);
    config.gutter_ttl = gutter_ttl;
    config.warmup = warmup;
    config.node.request_timeout = timeout;
    if config.cluster.gutter().is_empty() {
        config.failover = Failover::NextOnRing;
    }
    config
}

/// Runs the proxy until Ctrl-C or SIGTERM.
pub fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config).with_context(|| format!("reading {}", args.config.display()))?;
    let cluster = ClusterConfig::from_toml(&text).with_context(|| args.config.display().to_string())?;
    let config = client_config(
        cluster,
        Duration::from_secs(args.gutter_ttl),
        Duration::from_secs(args.warmup),
        Duration::from_millis(args.timeout_ms),
    );
    let runtime = crate::runtime(args.threads)?;
    runtime.block_on(async move {
        let client = Client::new(config)?;
        let stop = crate::signals::stop_or_reload(|| match client.reload(&args.config) {
            Ok(epoch) => tracing::info!(epoch, "SIGHUP: cluster file reloaded"),
            Err(error) => tracing::warn!(%error, "SIGHUP: cluster file not reloaded"),
        });
        let running = proxy::start(
            client.clone(),
            ProxyConfig {
                resp: SocketAddr::new(args.bind, args.port),
                memcache: SocketAddr::new(args.bind, args.memcache_port),
                max_connections: args.max_connections,
                max_value_bytes: 1024 * 1024,
                idle_timeout: (args.idle_timeout > 0).then(|| std::time::Duration::from_secs(args.idle_timeout)),
            },
        )
        .await
        .context("binding the proxy's ports")?;
        println!(
            "strata proxy: RESP on {}, memcached on {}, {} nodes in the main pool (Ctrl-C to stop)",
            running.resp_addr,
            running.memcache_addr,
            client.ring().members().len()
        );
        let _watch = client.watch(args.config.clone(), Duration::from_secs(1));
        stop.await;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        running.shutdown();
        if tokio::time::timeout(Duration::from_secs(10), running.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 10 s; exiting anyway");
        }
        Ok(())
    })
}
