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
use strata_session::{Secret, TlsAcceptor, TlsFiles};

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

Security:
  --requirepass asks the proxy's own clients for a password on both doors, as strata's server
  does: AUTH / HELLO ... AUTH on RESP (-NOAUTH until then), and memcached's ASCII auth on the
  memcached door (a first `set` whose data is `<user> <password>`). Ten wrong ones close the
  connection. --server-password is the servers' requirepass, sent on every new connection to
  them. Both may come from the environment instead (STRATA_PROXY_PASSWORD,
  STRATA_SERVER_PASSWORD), which keeps them out of the process list.
  --tls-port and --memcache-tls-port open TLS doors beside the plain ones, with the
  certificate and key of --tls-cert-file and --tls-key-file (PEM). --server-tls-ca-file makes
  the proxy speak TLS to its servers (list their memcache-tls-port addresses in the file).

Examples:
  strata proxy --config cluster.toml
  redis-cli -p 7479 set k v
  printf 'get k\\r\\n' | nc -q1 127.0.0.1 7411
  STRATA_PROXY_PASSWORD=s3cret strata proxy --config cluster.toml --tls-port 7480 \\
      --tls-cert-file proxy.pem --tls-key-file proxy.key
  redis-cli --tls --cacert ca.pem -p 7480 --user default --pass s3cret ping")]
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
    /// Require this password of the proxy's clients, on both doors (or set
    /// STRATA_PROXY_PASSWORD).
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
    /// The servers' requirepass, sent on each new connection to them (or
    /// set STRATA_SERVER_PASSWORD).
    #[arg(long, value_name = "PASSWORD")]
    server_password: Option<String>,
    /// RESP over TLS on this port, beside the plain one (0: any free port).
    /// Needs --tls-cert-file and --tls-key-file.
    #[arg(long, value_name = "PORT")]
    tls_port: Option<u16>,
    /// memcached over TLS on this port, beside the plain one (0: any free
    /// port). Needs --tls-cert-file and --tls-key-file.
    #[arg(long, value_name = "PORT")]
    memcache_tls_port: Option<u16>,
    /// The TLS doors' certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// The TLS doors' private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// CA certificates (PEM) that clients' certificates must be signed by;
    /// with it, the TLS doors require a client certificate.
    #[arg(long, value_name = "FILE")]
    tls_ca_cert_file: Option<PathBuf>,
    /// Speak TLS to the servers, trusting the CA certificates (PEM) in
    /// this file; the cluster file then lists the servers' memcache-tls-port
    /// addresses, and each server's certificate must match its host.
    #[arg(long, value_name = "FILE")]
    server_tls_ca_file: Option<PathBuf>,
}

impl ProxyArgs {
    /// The TLS doors' acceptor, if a TLS port is asked for.
    fn tls(&self) -> anyhow::Result<Option<TlsAcceptor>> {
        if self.tls_port.is_none() && self.memcache_tls_port.is_none() {
            anyhow::ensure!(
                self.tls_cert_file.is_none() && self.tls_key_file.is_none(),
                "--tls-cert-file is set but no TLS port is: add --tls-port and/or --memcache-tls-port"
            );
            return Ok(None);
        }
        let (Some(cert_file), Some(key_file)) = (&self.tls_cert_file, &self.tls_key_file) else {
            anyhow::bail!("a TLS port needs --tls-cert-file and --tls-key-file");
        };
        let files = TlsFiles {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            ca_cert_file: self.tls_ca_cert_file.clone(),
            auth_clients: self.tls_ca_cert_file.is_some(),
        };
        Ok(Some(TlsAcceptor::from_files(&files)?))
    }
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
    let mut config = client_config(
        cluster,
        Duration::from_secs(args.gutter_ttl),
        Duration::from_secs(args.warmup),
        Duration::from_millis(args.timeout_ms),
    );
    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    config.node.password = args
        .server_password
        .clone()
        .or_else(|| from_env("STRATA_SERVER_PASSWORD"))
        .map(Secret::from);
    let requirepass = args
        .requirepass
        .clone()
        .or_else(|| from_env("STRATA_PROXY_PASSWORD"))
        .map(Secret::from);
    let tls = args.tls()?;
    if let Some(ca) = &args.server_tls_ca_file {
        config.node.tls = Some(strata_session::TlsConnector::from_files(ca, None)?);
    }
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
                requirepass,
                tls_resp: args.tls_port.map(|port| SocketAddr::new(args.bind, port)),
                tls_memcache: args.memcache_tls_port.map(|port| SocketAddr::new(args.bind, port)),
                tls,
            },
        )
        .await
        .context("binding the proxy's ports")?;
        let mut tls = String::new();
        if let Some(addr) = running.tls_resp_addr {
            tls.push_str(&format!(", RESP over TLS on {addr}"));
        }
        if let Some(addr) = running.tls_memcache_addr {
            tls.push_str(&format!(", memcached over TLS on {addr}"));
        }
        println!(
            "strata proxy: RESP on {}, memcached on {}{tls}, {} nodes in the main pool (Ctrl-C to stop)",
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
