//! `strata node`: the request-handling node (HTTP over an origin, with L1
//! and the cluster as L2) until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use strata_node::{Node, NodeConfig, Strategy};

/// Flags of `strata node`. Each overrides the same setting of the
/// `--config` file, which overrides the defaults.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Defaults: HTTP on 127.0.0.1:7600, origin ./strata-node.db (SQLite, created if absent),
L2 = the strata server on 127.0.0.1:7311 (tracking on its RESP port 7379), cache-aside.

Strategies:
  cache-aside    write the database, then delete the key in L2 (the delete voids leases)
  write-through  write the database, then a versioned set (only a newer version replaces)
  write-behind   fsync to a local journal and answer 202; flushed to the database in order
  naive          cache-aside without leases, tracking or log invalidation (for comparison)

Examples:
  strata server &  strata node &
  curl -X PUT localhost:7600/items/42 -d '{\"value\":\"hello\"}'
  curl localhost:7600/items/42          # source: origin, then l1
  curl localhost:7600/metrics
  strata node --origin postgres://app@127.0.0.1:5433/app --strategy write-through

Security: with --api-token (or STRATA_API_TOKEN, or api_token in the file) the /items routes
require `Authorization: Bearer <token>` and answer 401 otherwise; /healthz and /metrics stay
open for load balancers and scrapers. With --tls-cert-file and --tls-key-file (or a [tls]
table with cert_file and key_file) the API is HTTPS only:
  STRATA_API_TOKEN=t0ken strata node --tls-cert-file node.pem --tls-key-file node.key
  curl --cacert ca.pem -H 'Authorization: Bearer t0ken' https://localhost:7600/items/42")]
pub struct NodeArgs {
    /// A TOML file of settings (see the strata-node crate docs for the keys).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// HTTP address.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The origin: a SQLite file path or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL")]
    origin: Option<String>,
    /// cache-aside, write-through, write-behind or naive.
    #[arg(long, value_name = "STRATEGY")]
    strategy: Option<Strategy>,
    /// memcached addresses of the L2 servers, comma-separated.
    #[arg(long, value_name = "ADDRS", value_delimiter = ',')]
    l2: Option<Vec<String>>,
    /// RESP addresses of the same servers for near-cache invalidation,
    /// comma-separated ("" for none: L1 relies on its TTL).
    #[arg(long, value_name = "ADDRS", value_delimiter = ',')]
    tracking: Option<Vec<String>>,
    /// The L2 servers' requirepass (or set STRATA_L2_PASSWORD, which keeps
    /// it out of the process list).
    #[arg(long, value_name = "PASSWORD")]
    l2_password: Option<String>,
    /// Require `Authorization: Bearer <TOKEN>` on the /items routes (or
    /// set STRATA_API_TOKEN, which keeps it out of the process list).
    #[arg(long, value_name = "TOKEN")]
    api_token: Option<String>,
    /// Serve the HTTP API over TLS with this certificate chain (PEM);
    /// needs --tls-key-file.
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// The TLS certificate's private key (PEM); needs --tls-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// Write-behind's journal directory.
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
}

/// Applies the flags over `config`.
pub fn configure(args: NodeArgs) -> anyhow::Result<NodeConfig> {
    let mut config = match &args.config {
        Some(path) => NodeConfig::from_file(path)?,
        None => NodeConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(origin) = args.origin {
        config.origin = origin;
    }
    if let Some(strategy) = args.strategy {
        config.strategy = strategy;
    }
    if let Some(l2) = args.l2 {
        config.l2 = l2;
    }
    if let Some(tracking) = args.tracking {
        config.tracking = tracking.into_iter().filter(|addr| !addr.is_empty()).collect();
    }
    if let Some(password) = args.l2_password.or_else(|| std::env::var("STRATA_L2_PASSWORD").ok()) {
        config.l2_password = Some(password.into());
    }
    if let Some(token) = args
        .api_token
        .or_else(|| std::env::var("STRATA_API_TOKEN").ok().filter(|token| !token.is_empty()))
    {
        config.api_token = Some(token.into());
    }
    if let (Some(cert_file), Some(key_file)) = (args.tls_cert_file, args.tls_key_file) {
        config.tls = Some(strata_node::config::HttpTls { cert_file, key_file });
    }
    if let Some(dir) = args.journal_dir {
        config.write_behind.dir = dir;
    }
    config.validate()?;
    Ok(config)
}

/// Runs the node until Ctrl-C or SIGTERM.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    let config = configure(args)?;
    let runtime = crate::runtime(None)?;
    runtime.block_on(async {
        let stop = crate::signals::stop();
        let listen = config.listen;
        let strategy = config.strategy;
        let origin = config.origin.clone();
        let node = Node::start(config).await.context("starting the node")?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let scheme = if node.config().tls.is_some() { "https" } else { "http" };
        tracing::info!(%listen, %strategy, scheme, origin = %redact(&origin), "strata node serving");
        strata_node::http::serve(node.clone(), listener, stop)
            .await
            .context("serving HTTP")?;
        tracing::info!("strata node stopping");
        node.shutdown().await;
        Ok(())
    })
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &credentials[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
