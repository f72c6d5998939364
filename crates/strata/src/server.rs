//! `strata server`: flags and config file in, a running server out, until
//! Ctrl-C or SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use strata_server::{ByteSize, Config, Server};

/// Flags of `strata server`. Each overrides the same setting of the
/// `--config` file, which overrides the defaults.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Defaults: RESP on 127.0.0.1:7379, memcached on :7311, metrics on http://127.0.0.1:7390/metrics,
maxmemory 64mb with the adaptive W-TinyLFU policy, items up to 1mb.

Sizes take Redis's units: 1k = 1000 bytes, 1kb = 1024, likewise m/mb and g/gb.

The config file is TOML with the same names, e.g.

    bind = \"0.0.0.0\"
    resp-port = 7379
    maxmemory = \"1gb\"
    maxmemory-policy = \"default\"
    requirepass = \"change-me\"

TLS, as Redis does it: a separate port speaks RESP over TLS beside the plain one; memcached
gets a TLS port of its own too (memcached 1.6 instead switches its one port with -Z). Both use
one certificate and key (PEM); with a CA file, clients must present a certificate it signed.

    tls-port = 7380
    memcache-tls-port = 7312
    tls-cert-file = \"/etc/strata/server.pem\"
    tls-key-file = \"/etc/strata/server.key\"
    tls-ca-cert-file = \"/etc/strata/clients-ca.pem\"   # optional: require client certificates

Examples:
  strata server
  redis-cli -p 7379 set greeting hello
  printf 'get greeting\\r\\n' | nc 127.0.0.1 7311
  curl -s 127.0.0.1:7390/metrics
  strata server --tls-port 7380 --tls-cert-file server.pem --tls-key-file server.key
  redis-cli --tls --cacert ca.pem -p 7380 ping")]
pub struct ServerArgs {
    /// A TOML file of settings.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    bind: Option<IpAddr>,
    /// RESP (Redis protocol) port; 0 picks a free one.
    #[arg(long, visible_alias = "resp-port", value_name = "PORT")]
    port: Option<u16>,
    /// memcached protocol port; 0 picks a free one.
    #[arg(long, value_name = "PORT")]
    memcache_port: Option<u16>,
    /// Admin HTTP port for /metrics and /healthz; 0 picks a free one.
    #[arg(long, value_name = "PORT")]
    admin_port: Option<u16>,
    /// RESP over TLS on this port, beside the plain one (Redis's tls-port;
    /// 0 picks a free one). Needs --tls-cert-file and --tls-key-file.
    #[arg(long, value_name = "PORT")]
    tls_port: Option<u16>,
    /// memcached over TLS on this port, beside the plain one (0 picks a
    /// free one). Needs --tls-cert-file and --tls-key-file.
    #[arg(long, value_name = "PORT")]
    memcache_tls_port: Option<u16>,
    /// The TLS ports' certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE")]
    tls_cert_file: Option<PathBuf>,
    /// The TLS ports' private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must be signed by;
    /// setting it requires client certificates unless --tls-auth-clients no.
    #[arg(long, value_name = "FILE")]
    tls_ca_cert_file: Option<PathBuf>,
    /// Require a client certificate on the TLS ports (yes/no; default: yes
    /// exactly when --tls-ca-cert-file is given).
    #[arg(long, value_name = "yes|no", value_parser = parse_yes_no)]
    tls_auth_clients: Option<bool>,
    /// Memory limit for keys, values and per-item overhead (e.g. 256mb).
    #[arg(long, value_name = "SIZE")]
    maxmemory: Option<ByteSize>,
    /// Eviction policy: default, lru, lfu, arc, sieve, s3fifo, wtinylfu,
    /// clock, fifo (or allkeys-lru, allkeys-lfu).
    #[arg(long, value_name = "POLICY")]
    maxmemory_policy: Option<String>,
    /// Largest item accepted (key, value and header).
    #[arg(long, value_name = "SIZE")]
    max_item_size: Option<ByteSize>,
    /// Refuse connections beyond this many.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Close clients idle this many seconds (0: never).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Require this password (AUTH, or memcached's ASCII auth); or set
    /// STRATA_REQUIREPASS, which keeps it out of the process list.
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
    /// Protected mode (yes/no): without a password, refuse clients that
    /// are not on a loopback address (on by default, as in Redis).
    #[arg(long, value_name = "yes|no", value_parser = parse_yes_no)]
    protected_mode: Option<bool>,
    /// Largest RESP value a client may send (Redis's proto-max-bulk-len,
    /// default 512mb); values past --max-item-size get an error reply.
    #[arg(long, value_name = "SIZE")]
    proto_max_bulk_len: Option<ByteSize>,
    /// Largest reply one command may build; a connection whose reply
    /// passes it is closed (default: maxmemory/8, at least 2 items).
    #[arg(long, value_name = "SIZE")]
    reply_buffer_limit: Option<ByteSize>,
    /// Active expiry effort, 1–10.
    #[arg(long, value_name = "N")]
    active_expire_effort: Option<u8>,
    /// Lease period in milliseconds.
    #[arg(long, value_name = "MS")]
    lease_ms: Option<u64>,
    /// Engine shards (default: by core count).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

impl ServerArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        macro_rules! apply {
            ($($field:ident),*) => {$(
                if let Some(value) = self.$field.clone() {
                    config.$field = value;
                }
            )*};
        }
        apply!(
            bind,
            memcache_port,
            admin_port,
            maxmemory,
            maxmemory_policy,
            max_item_size,
            max_connections,
            timeout,
            active_expire_effort,
            lease_ms,
            protected_mode,
            proto_max_bulk_len
        );
        if self.reply_buffer_limit.is_some() {
            config.reply_buffer_limit = self.reply_buffer_limit;
        }
        if let Some(port) = self.port {
            config.resp_port = port;
        }
        let from_env = || std::env::var("STRATA_REQUIREPASS").ok().filter(|p| !p.is_empty());
        if let Some(password) = self.requirepass.clone().or_else(from_env) {
            config.requirepass = Some(password.into());
        }
        macro_rules! apply_optional {
            ($($field:ident),*) => {$(
                if self.$field.is_some() {
                    config.$field = self.$field.clone();
                }
            )*};
        }
        apply_optional!(
            tls_port,
            memcache_tls_port,
            tls_cert_file,
            tls_key_file,
            tls_ca_cert_file,
            tls_auth_clients,
            shards
        );
        if self.threads.is_some() {
            config.threads = self.threads;
        }
        config.validate()?;
        Ok(config)
    }
}

/// Redis's yes/no (and true/false) for a boolean setting.
fn parse_yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("expected yes or no, not {text:?}")),
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = crate::runtime(config.threads)?;
    runtime.block_on(async move {
        let stop = crate::signals::stop();
        let server = Server::start(config).await?;
        let mut tls = String::new();
        if let Some(addr) = server.tls_addr {
            tls.push_str(&format!(", RESP over TLS on {addr}"));
        }
        if let Some(addr) = server.memcache_tls_addr {
            tls.push_str(&format!(", memcached over TLS on {addr}"));
        }
        println!(
            "strata server: RESP on {}, memcached on {}{tls}, metrics on http://{}/metrics (Ctrl-C to stop)",
            server.resp_addr, server.memcache_addr, server.admin_addr
        );
        stop.await;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        server.shutdown();
        if tokio::time::timeout(Duration::from_secs(10), server.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 10 s; exiting anyway");
        }
        Ok(())
    })
}
