//! The node's settings, their defaults and the TOML file.
//!
//! ```toml
//! listen = "127.0.0.1:7600"
//! origin = "strata-node.db"            # or "postgres://user@host:port/db"
//! strategy = "cache-aside"             # write-through | write-behind | naive
//! l2 = ["127.0.0.1:7311"]              # memcached-protocol addresses (the ring)
//! tracking = ["127.0.0.1:7379"]        # RESP addresses of the same servers
//! l2_password = "s3cret"               # their requirepass, if any
//! api_token = "long-random-string"     # HTTP API clients send `Authorization: Bearer <it>`
//!
//! [tls]                                # serve the HTTP API over HTTPS
//! cert_file = "/etc/strata/node.pem"
//! key_file = "/etc/strata/node.key"
//!
//! [l1]
//! max_bytes = 67108864
//! ttl_ms = 5000                        # the bound on staleness if a push is lost
//!
//! [l2_settings]
//! ttl_secs = 3600
//! lease_wait_ms = 500                  # a lease loser waits this long in all
//! serve_stale = true                   # ...or takes a stale value at once
//!
//! [write_behind]
//! dir = "strata-node-journal"
//! limit_bytes = 67108864
//! flush_batch = 256
//! flush_interval_ms = 5
//! full_wait_ms = 2000
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[cfg(feature = "testing")]
use crate::faults::Faults;

/// How writes reach the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Write the origin, then delete the key in L2. Reads fill under a
    /// lease; the delete voids it, so a slow reader cannot put back the
    /// value it read before the write. The default: simplest, and correct
    /// under concurrency.
    #[default]
    CacheAside,
    /// Write the origin, then set the new row in L2 with its version; a
    /// set only replaces an older version. Reads after a write hit at once
    /// (no refill), at the cost of caching rows that may never be read.
    WriteThrough,
    /// Append to a durable local journal (fsync) and acknowledge; a flusher
    /// applies the journal to the origin in batches, in order, then sets
    /// L2 with the versions. Lowest write latency, and writes survive an
    /// origin outage (up to the journal's limit); other nodes read the old
    /// value until the flush (this node reads its own pending writes).
    /// Each key's writes must go through one node: journals of different
    /// nodes flush in no agreed order.
    WriteBehind,
    /// Plain cache-aside without leases, tracking or log invalidation: the
    /// checker's control group, which shows the races the others close.
    Naive,
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::CacheAside => "cache-aside",
            Strategy::WriteThrough => "write-through",
            Strategy::WriteBehind => "write-behind",
            Strategy::Naive => "naive",
        })
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "cache-aside" => Ok(Strategy::CacheAside),
            "write-through" => Ok(Strategy::WriteThrough),
            "write-behind" => Ok(Strategy::WriteBehind),
            "naive" => Ok(Strategy::Naive),
            other => Err(format!(
                "unknown strategy {other:?}: expected cache-aside, write-through, write-behind or naive"
            )),
        }
    }
}

/// The local cache.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1Settings {
    /// Hard limit in bytes (0 disables L1).
    pub max_bytes: u64,
    /// Entries expire this long after they are filled, whatever else
    /// happens: the bound on staleness should an invalidation be lost.
    pub ttl_ms: u64,
}

impl Default for L1Settings {
    fn default() -> Self {
        L1Settings {
            max_bytes: 64 << 20,
            ttl_ms: 5_000,
        }
    }
}

/// How the node uses L2.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L2Settings {
    /// TTL of rows cached in L2.
    pub ttl_secs: u64,
    /// How long a lease loser waits in all for the winner's fill.
    pub lease_wait_ms: u64,
    /// Whether a lease loser takes a stale value at once.
    pub serve_stale: bool,
    /// How long a lease stays exclusive.
    pub lease_ttl_secs: u64,
}

impl Default for L2Settings {
    fn default() -> Self {
        L2Settings {
            ttl_secs: 3600,
            lease_wait_ms: 500,
            serve_stale: true,
            lease_ttl_secs: 10,
        }
    }
}

/// Write-behind's journal and flusher.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriteBehindSettings {
    /// The journal's directory.
    pub dir: PathBuf,
    /// Most unflushed bytes; past it, writes wait, then get 503.
    pub limit_bytes: u64,
    /// Most writes applied to the origin per transaction.
    pub flush_batch: usize,
    /// Pause between flushes when the journal is empty.
    pub flush_interval_ms: u64,
    /// How long a write waits for room in a full journal.
    pub full_wait_ms: u64,
}

impl Default for WriteBehindSettings {
    fn default() -> Self {
        WriteBehindSettings {
            dir: PathBuf::from("strata-node-journal"),
            limit_bytes: 64 << 20,
            flush_batch: 256,
            flush_interval_ms: 5,
            full_wait_ms: 2_000,
        }
    }
}

pub use strata_session::Secret;

/// The HTTP API's TLS certificate and key (PEM files).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpTls {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
}

/// Everything the node can be told.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The HTTP listener.
    pub listen: SocketAddr,
    /// The origin: a SQLite file path (`sqlite:PATH` or a path) or a
    /// `postgres://` URL.
    pub origin: String,
    /// The write strategy.
    pub strategy: Strategy,
    /// memcached-protocol addresses of the L2 servers (the ring).
    pub l2: Vec<String>,
    /// RESP addresses of the same servers, for near-cache invalidation
    /// (client tracking). Empty: L1 relies on its TTL alone.
    pub tracking: Vec<String>,
    /// The L2 servers' `requirepass`, if they have one (memcached ASCII
    /// auth on the data connections, `HELLO 3 AUTH` on tracking).
    pub l2_password: Option<Secret>,
    /// The bearer token the HTTP API's `/items` routes require
    /// (`Authorization: Bearer <token>`); `None`: open. `/healthz` and
    /// `/metrics` stay open (see [`crate::http`]).
    pub api_token: Option<Secret>,
    /// Serve the HTTP API over TLS with this certificate and key.
    pub tls: Option<HttpTls>,
    /// L1.
    pub l1: L1Settings,
    /// L2.
    pub l2_settings: L2Settings,
    /// Write-behind.
    pub write_behind: WriteBehindSettings,
    /// Fraction of cache hits re-read from the origin in the background to
    /// measure staleness (0 disables).
    pub verify_sample: f64,
    /// Injected trouble, for `strata check` (all off by default; only
    /// with the `testing` feature).
    #[cfg(feature = "testing")]
    pub faults: Faults,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7600)),
            origin: "strata-node.db".into(),
            strategy: Strategy::default(),
            l2: vec!["127.0.0.1:7311".into()],
            tracking: vec!["127.0.0.1:7379".into()],
            l2_password: None,
            api_token: None,
            tls: None,
            l1: L1Settings::default(),
            l2_settings: L2Settings::default(),
            write_behind: WriteBehindSettings::default(),
            verify_sample: 0.01,
            #[cfg(feature = "testing")]
            faults: Faults::default(),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML is invalid.
    #[error("invalid node config: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is out of range.
    #[error("invalid node config: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, NodeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, NodeConfigError> {
        let config: NodeConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), NodeConfigError> {
        if self.l2.is_empty() {
            return Err(NodeConfigError::Invalid("l2 lists no servers".into()));
        }
        if self.api_token.as_ref().is_some_and(|token| token.expose().is_empty()) {
            return Err(NodeConfigError::Invalid(
                "api_token is empty (leave it out for an open API)".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.verify_sample) {
            return Err(NodeConfigError::Invalid("verify_sample must be within 0..=1".into()));
        }
        if self.write_behind.flush_batch == 0 {
            return Err(NodeConfigError::Invalid(
                "write_behind.flush_batch must be at least 1".into(),
            ));
        }
        #[cfg(feature = "testing")]
        self.faults.validate().map_err(NodeConfigError::Invalid)?;
        Ok(())
    }

    /// L2 TTL.
    pub fn l2_ttl(&self) -> Duration {
        Duration::from_secs(self.l2_settings.ttl_secs.max(1))
    }
}
