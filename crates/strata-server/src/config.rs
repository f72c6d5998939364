//! Server settings: defaults, a TOML file, and validation.
//!
//! Names follow Redis's configuration where one exists (`maxmemory`,
//! `maxmemory-policy`, `requirepass`, `timeout`, `active-expire-effort`),
//! so `CONFIG GET` answers what Redis users expect. Sizes accept Redis's
//! units: `1k` is 1000 bytes, `1kb` is 1024, likewise `m`/`mb` and `g`/`gb`.
//!
//! Default ports sit beside Redis's 6379 and memcached's 11211 without
//! colliding: RESP on 7379, memcached on 7311, the admin HTTP endpoint
//! (`/metrics`) on 7390. Port 0 asks the OS for a free port (tests use it).
//!
//! TLS follows Redis: a separate port, `tls-port`, speaks RESP over TLS
//! beside the plain `resp-port`, with the certificate in `tls-cert-file`
//! and its key in `tls-key-file` (PEM). memcached 1.6 turns its one port
//! into TLS (`-Z`, `ssl_chain_cert`, `ssl_key`); strata instead gives
//! memcached a TLS port of its own too, `memcache-tls-port`, with the same
//! certificate, so plain and TLS clients can share a server while they
//! migrate. With `tls-ca-cert-file` set, clients must present a
//! certificate signed by that CA (Redis's `tls-auth-clients`, on by
//! default when a CA is given; `tls-auth-clients = false` turns it off).
//! Unset TLS ports are not opened; unlike Redis, `port = 0` does not close
//! the plain port (0 means "any free port" here), so to refuse plain text,
//! bind the plain ports to loopback behind a firewall.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use strata_store::PolicyKind;

/// Default port of the RESP (Redis) listener.
pub const DEFAULT_RESP_PORT: u16 = 7379;
/// Default port of the memcached listener.
pub const DEFAULT_MEMCACHE_PORT: u16 = 7311;
/// Default port of the admin HTTP endpoint.
pub const DEFAULT_ADMIN_PORT: u16 = 7390;

/// Everything `strata server` can be told.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Address to listen on; loopback unless told otherwise.
    pub bind: IpAddr,
    /// RESP (Redis protocol) port; 0 for any free port.
    pub resp_port: u16,
    /// memcached protocol port; 0 for any free port.
    pub memcache_port: u16,
    /// Admin HTTP port (`/metrics`, `/healthz`); 0 for any free port.
    pub admin_port: u16,
    /// RESP over TLS port (Redis's `tls-port`); unset: none; 0 for any
    /// free port. Needs `tls-cert-file` and `tls-key-file`.
    pub tls_port: Option<u16>,
    /// memcached over TLS port; unset: none; 0 for any free port. Needs
    /// `tls-cert-file` and `tls-key-file`.
    pub memcache_tls_port: Option<u16>,
    /// The TLS ports' certificate chain, PEM (Redis's `tls-cert-file`).
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key, PEM (Redis's `tls-key-file`).
    pub tls_key_file: Option<PathBuf>,
    /// CA certificates, PEM, that client certificates must chain to
    /// (Redis's `tls-ca-cert-file`).
    pub tls_ca_cert_file: Option<PathBuf>,
    /// Require client certificates (Redis's `tls-auth-clients`); by
    /// default, exactly when `tls-ca-cert-file` is set.
    pub tls_auth_clients: Option<bool>,
    /// Memory limit for keys, values and per-item overhead.
    pub maxmemory: ByteSize,
    /// Eviction policy: a strata policy name, or Redis's `allkeys-lru` /
    /// `allkeys-lfu`.
    pub maxmemory_policy: String,
    /// Largest item (key, value and header) accepted.
    pub max_item_size: ByteSize,
    /// Largest RESP bulk argument a client may send (Redis's
    /// `proto-max-bulk-len`, 512 MB): a longer one is a protocol error and
    /// closes the connection. A value between `max-item-size` and this is
    /// refused with an error reply (and discarded as it arrives, never
    /// buffered); the connection stays usable.
    pub proto_max_bulk_len: ByteSize,
    /// Connections beyond this many are refused.
    pub max_connections: usize,
    /// Close a client idle this many seconds; 0 never (Redis's `timeout`).
    pub timeout: u64,
    /// Redis's `protected-mode`: while no password is set, refuse clients
    /// that do not connect from a loopback address, with an error that
    /// says why and how to fix it — so binding to a public address without
    /// a password does not open the cache to the network. On by default.
    pub protected_mode: bool,
    /// Password required by `AUTH` (RESP) and by memcached's ASCII
    /// authentication (a first `set` whose data is `<user> <password>`).
    pub requirepass: Option<strata_session::Secret>,
    /// Active expiry effort, 1–10 (Redis's `active-expire-effort`): how many
    /// expired items each background pass may reclaim per shard, in units of
    /// 256, and how often passes run.
    pub active_expire_effort: u8,
    /// How long a lease (memcached `mg … N` aside, strata `LGET`) stays
    /// exclusive, in milliseconds.
    pub lease_ms: u64,
    /// Most keys the client-tracking table remembers for default-mode
    /// tracking clients (Redis's `tracking-table-max-keys`); past it the
    /// oldest key is forgotten and its readers told to drop it. At least 1.
    pub tracking_table_max_keys: usize,
    /// Most bytes of pushes (tracking invalidations, pub/sub messages)
    /// queued for one RESP connection that is not reading them; past it
    /// the connection is closed (Redis's pub/sub output-buffer hard limit).
    pub push_buffer_limit: ByteSize,
    /// A softer bound on the same queue: a connection whose queued pushes
    /// stay past it for `push-buffer-soft-seconds` is closed too (Redis's
    /// pub/sub soft limit). None (the default): only the hard limit.
    pub push_buffer_soft_limit: Option<ByteSize>,
    /// How long a push queue may stay past `push-buffer-soft-limit`.
    pub push_buffer_soft_seconds: u64,
    /// Largest reply one command may build (an `MGET` of many large
    /// values, a memcached multiget): a command whose reply passes it is
    /// not answered and its connection is closed, with a log line and
    /// `strata_reply_limit_disconnects` (Redis's `client-output-buffer-limit`
    /// hard limit for normal clients, which Redis leaves unlimited by
    /// default; strata does not, because one such reply can hold more
    /// memory than `maxmemory`). Default: an eighth of `maxmemory`, at
    /// least twice `max-item-size`.
    pub reply_buffer_limit: Option<ByteSize>,
    /// Engine shards; default by core count.
    pub shards: Option<usize>,
    /// Tokio worker threads; default one per core.
    pub threads: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            resp_port: DEFAULT_RESP_PORT,
            memcache_port: DEFAULT_MEMCACHE_PORT,
            admin_port: DEFAULT_ADMIN_PORT,
            tls_port: None,
            memcache_tls_port: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_cert_file: None,
            tls_auth_clients: None,
            maxmemory: ByteSize(64 * 1024 * 1024),
            maxmemory_policy: "default".into(),
            max_item_size: ByteSize(1024 * 1024),
            proto_max_bulk_len: ByteSize(512 * 1024 * 1024),
            max_connections: 10_000,
            timeout: 0,
            protected_mode: true,
            requirepass: None,
            active_expire_effort: 1,
            lease_ms: 10_000,
            tracking_table_max_keys: 1_000_000,
            push_buffer_limit: ByteSize(8 << 20),
            push_buffer_soft_limit: None,
            push_buffer_soft_seconds: 60,
            reply_buffer_limit: None,
            shards: None,
            threads: None,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: String,
        /// What is wrong, with the line.
        message: String,
    },
    /// A value is out of range or unknown.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// These settings with every port 0, so the OS picks free ones (read
    /// the bound addresses from the running server): for tests, examples
    /// and servers embedded beside others.
    pub fn on_free_ports(self) -> Self {
        Config {
            resp_port: 0,
            memcache_port: 0,
            admin_port: 0,
            tls_port: self.tls_port.map(|_| 0),
            memcache_tls_port: self.memcache_tls_port.map(|_| 0),
            ..self
        }
    }

    /// The TLS ports' certificate files, if any TLS port is configured.
    pub fn tls_files(&self) -> Result<Option<strata_session::TlsFiles>, ConfigError> {
        if self.tls_port.is_none() && self.memcache_tls_port.is_none() {
            if self.tls_cert_file.is_some() || self.tls_key_file.is_some() {
                return Err(ConfigError::Invalid(
                    "tls-cert-file is set but no TLS port is: set tls-port (RESP) and/or memcache-tls-port".into(),
                ));
            }
            return Ok(None);
        }
        let (Some(cert_file), Some(key_file)) = (&self.tls_cert_file, &self.tls_key_file) else {
            return Err(ConfigError::Invalid(
                "a TLS port needs tls-cert-file and tls-key-file (PEM files)".into(),
            ));
        };
        let auth_clients = self.tls_auth_clients.unwrap_or(self.tls_ca_cert_file.is_some());
        if auth_clients && self.tls_ca_cert_file.is_none() {
            return Err(ConfigError::Invalid(
                "tls-auth-clients needs tls-ca-cert-file: the CA client certificates must chain to".into(),
            ));
        }
        Ok(Some(strata_session::TlsFiles {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            ca_cert_file: self.tls_ca_cert_file.clone(),
            auth_clients,
        }))
    }

    /// Reads a TOML file; settings it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Toml {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The largest reply one command may build (see
    /// [`Config::reply_buffer_limit`]).
    pub fn reply_limit(&self) -> usize {
        let bytes = self.reply_buffer_limit.map_or_else(
            || (self.maxmemory.0 / 8).max(self.max_item_size.0.saturating_mul(2)),
            |limit| limit.0,
        );
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    /// The eviction policy named by `maxmemory-policy`.
    pub fn policy(&self) -> Result<PolicyKind, ConfigError> {
        parse_policy(&self.maxmemory_policy)
    }

    /// Checks ranges and names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy()?;
        self.tls_files()?;
        if self.maxmemory.0 < 1024 * 1024 {
            return Err(ConfigError::Invalid(format!(
                "maxmemory {} is below the minimum of 1mb",
                self.maxmemory
            )));
        }
        if self.max_item_size.0 < 1024 || self.max_item_size.0 > self.maxmemory.0 / 2 {
            return Err(ConfigError::Invalid(format!(
                "max-item-size {} must be between 1kb and half of maxmemory ({})",
                self.max_item_size, self.maxmemory
            )));
        }
        if !(1..=10).contains(&self.active_expire_effort) {
            return Err(ConfigError::Invalid(format!(
                "active-expire-effort {} must be between 1 and 10",
                self.active_expire_effort
            )));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid("max-connections must be at least 1".into()));
        }
        if self.lease_ms == 0 {
            return Err(ConfigError::Invalid("lease-ms must be at least 1".into()));
        }
        if self.tracking_table_max_keys == 0 {
            return Err(ConfigError::Invalid(
                "tracking-table-max-keys must be at least 1 (strata bounds the table)".into(),
            ));
        }
        if self.proto_max_bulk_len.0 < self.max_item_size.0 {
            return Err(ConfigError::Invalid(format!(
                "proto-max-bulk-len {} is below max-item-size {}",
                self.proto_max_bulk_len, self.max_item_size
            )));
        }
        if let Some(limit) = self.reply_buffer_limit
            && limit.0 < self.max_item_size.0.saturating_add(1024)
        {
            return Err(ConfigError::Invalid(format!(
                "reply-buffer-limit {limit} must exceed max-item-size ({}): one value must fit in a reply",
                self.max_item_size
            )));
        }
        if self.push_buffer_limit.0 < 1024 {
            return Err(ConfigError::Invalid(format!(
                "push-buffer-limit {} is below the minimum of 1kb",
                self.push_buffer_limit
            )));
        }
        Ok(())
    }

    /// The bounds of each RESP connection's push queue.
    pub(crate) fn push_limits(&self) -> crate::push::PushLimits {
        let bytes = |size: ByteSize| usize::try_from(size.0).unwrap_or(usize::MAX);
        crate::push::PushLimits {
            hard: bytes(self.push_buffer_limit),
            soft: self.push_buffer_soft_limit.map_or(usize::MAX, bytes),
            soft_for: std::time::Duration::from_secs(self.push_buffer_soft_seconds),
        }
    }
}

/// Parses a policy name as `maxmemory-policy` accepts it.
pub fn parse_policy(name: &str) -> Result<PolicyKind, ConfigError> {
    if name.eq_ignore_ascii_case("noeviction") || name.starts_with("volatile-") {
        return Err(ConfigError::Invalid(format!(
            "maxmemory-policy {name:?} is not supported: strata is a cache and always evicts, from all keys \
             (use default, lru, lfu, arc, sieve, s3fifo, wtinylfu, clock or fifo)"
        )));
    }
    name.parse::<PolicyKind>()
        .map_err(|e| ConfigError::Invalid(format!("maxmemory-policy: {e}")))
}

/// A size in bytes, written with Redis's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &lower[digits.len()..];
        let number: u64 = digits
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a size (examples: 1048576, 64mb, 1gb)"))?;
        let scale: u64 = match unit {
            "" | "b" => 1,
            "k" => 1_000,
            "kb" => 1 << 10,
            "m" => 1_000_000,
            "mb" => 1 << 20,
            "g" => 1_000_000_000,
            "gb" => 1 << 30,
            _ => return Err(format!("{text:?}: unknown unit {unit:?} (use k, kb, m, mb, g or gb)")),
        };
        number
            .checked_mul(scale)
            .map(ByteSize)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_redis_units() {
        assert_eq!("1k".parse(), Ok(ByteSize(1000)));
        assert_eq!("1kb".parse(), Ok(ByteSize(1024)));
        assert_eq!("64MB".parse(), Ok(ByteSize(64 << 20)));
        assert_eq!("2gb".parse(), Ok(ByteSize(2 << 30)));
        assert_eq!("12345".parse(), Ok(ByteSize(12345)));
        assert!("12xb".parse::<ByteSize>().is_err());
        assert!("lots".parse::<ByteSize>().is_err());
    }

    #[test]
    fn toml_overrides_defaults_and_is_validated() {
        let config: Config = toml::from_str(
            "maxmemory = \"128mb\"\nmaxmemory-policy = \"allkeys-lru\"\nrequirepass = \"s3cret\"\nresp-port = 0\n",
        )
        .unwrap();
        assert_eq!(config.maxmemory, ByteSize(128 << 20));
        assert_eq!(config.policy().unwrap(), PolicyKind::Lru);
        assert_eq!(config.requirepass.as_ref().map(|p| p.expose()), Some("s3cret"));
        assert_eq!(config.resp_port, 0);
        assert_eq!(config.memcache_port, DEFAULT_MEMCACHE_PORT);
        config.validate().unwrap();
        assert!(toml::from_str::<Config>("no-such-setting = 1").is_err());
        let bad = Config {
            maxmemory_policy: "noeviction".into(),
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        let bad = Config {
            active_expire_effort: 11,
            ..Config::default()
        };
        assert!(bad.validate().is_err());
        assert!(Config::default().validate().is_ok());
        let tls: Config =
            toml::from_str("tls-port = 7380\ntls-cert-file = \"cert.pem\"\ntls-key-file = \"key.pem\"\n").unwrap();
        let files = tls.tls_files().unwrap().unwrap();
        assert_eq!(files.cert_file, PathBuf::from("cert.pem"));
        assert!(!files.auth_clients);
        let with_ca = Config {
            tls_ca_cert_file: Some("ca.pem".into()),
            ..tls.clone()
        };
        assert!(with_ca.tls_files().unwrap().unwrap().auth_clients, "Redis's default");
        let without_key = Config {
            tls_key_file: None,
            ..tls.clone()
        };
        assert!(without_key.validate().is_err());
        let without_port = Config {
            tls_port: None,
            ..tls.clone()
        };
        assert!(without_port.validate().is_err(), "certificates but no TLS port");
        let without_ca = Config {
            tls_auth_clients: Some(true),
            ..tls
        };
        assert!(without_ca.validate().is_err());
        assert!(![6379, 11211].contains(&DEFAULT_RESP_PORT) && ![6379, 11211].contains(&DEFAULT_MEMCACHE_PORT));
    }
}
