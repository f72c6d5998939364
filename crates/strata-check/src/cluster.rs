//! The system under check, all in this process but speaking the real
//! protocols over loopback: cache servers, request nodes, an origin
//! database and (unless naive) the invalidator, each restartable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strata_client::{Client, ClientConfig};
use strata_node::faults::Faults;
use strata_node::invalidator::{Invalidator, InvalidatorConfig, InvalidatorStats, Source};
use strata_node::{Node, NodeConfig, Strategy};
use strata_ring::ClusterConfig;
use strata_server::{Config, RunningServer, Server};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One cache server and how to bring it back on the same ports.
pub struct CacheServer {
    running: Option<RunningServer>,
    config: Config,
    /// Its memcached address.
    pub memcache: SocketAddr,
    /// Its RESP address.
    pub resp: SocketAddr,
}

impl CacheServer {
    /// Starts a server on free ports.
    pub async fn start() -> Result<Self, String> {
        let config = Config {
            maxmemory: strata_server::ByteSize(64 << 20),
            ..Config::default()
        }
        .on_free_ports();
        let running = Server::start(config.clone()).await.map_err(|error| error.to_string())?;
        let config = Config {
            resp_port: running.resp_addr.port(),
            memcache_port: running.memcache_addr.port(),
            admin_port: 0,
            ..config
        };
        Ok(CacheServer {
            memcache: running.memcache_addr,
            resp: running.resp_addr,
            running: Some(running),
            config,
        })
    }

    /// Stops it (its contents are lost) and starts it again on the same
    /// ports, as a crashed and restarted server would come back.
    pub async fn restart(&mut self) -> Result<(), String> {
        if let Some(running) = self.running.take() {
            running.shutdown();
            running.wait().await;
        }
        let mut tries = 0;
        loop {
            match Server::start(self.config.clone()).await {
                Ok(running) => {
                    self.running = Some(running);
                    return Ok(());
                }
                Err(error) if tries < 50 => {
                    tries += 1;
                    tracing::debug!(%error, "restart: port not free yet");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => return Err(error.to_string()),
            }
        }
    }

    /// Stops it for good.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown();
            running.wait().await;
        }
    }
}

/// The invalidator, restartable (a new process resuming from the log).
pub struct RunningInvalidator {
    origin: String,
    slot: String,
    client: Client,
    stats: Arc<InvalidatorStats>,
    task: Option<(CancellationToken, JoinHandle<()>)>,
}

impl RunningInvalidator {
    /// Starts tailing `origin` into the cluster of `client`.
    pub async fn start(origin: &str, slot: &str, client: Client) -> Result<Self, String> {
        let mut invalidator = RunningInvalidator {
            origin: origin.to_owned(),
            slot: slot.to_owned(),
            client,
            stats: Arc::default(),
            task: None,
        };
        invalidator.spawn().await?;
        Ok(invalidator)
    }

    async fn make(&self) -> Result<Invalidator, String> {
        let source = Source::open(&self.origin, &self.slot)
            .await
            .map_err(|error| error.to_string())?;
        Ok(Invalidator::with_stats(
            source,
            self.client.clone(),
            InvalidatorConfig {
                poll_interval: Duration::from_millis(5),
                retry_delay: Duration::from_millis(50),
                ..InvalidatorConfig::default()
            },
            Arc::clone(&self.stats),
        ))
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let invalidator = self.make().await?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move { invalidator.run(token).await });
        self.task = Some((stop, task));
        Ok(())
    }

    /// Stops it abruptly (mid-batch if it is in one) and starts another.
    pub async fn restart(&mut self) -> Result<(), String> {
        if let Some((_, task)) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.spawn().await
    }

    /// Stops it, then applies everything left in the log.
    pub async fn drain(&mut self) -> Result<usize, String> {
        if let Some((stop, task)) = self.task.take() {
            stop.cancel();
            let _ = task.await;
        }
        let applied = self.make().await?.drain().await.map_err(|error| error.to_string())?;
        Ok(applied)
    }

    /// Its counters (across restarts).
    pub fn stats(&self) -> &Arc<InvalidatorStats> {
        &self.stats
    }
}

/// Servers, nodes and the invalidator.
pub struct System {
    /// The cache servers.
    pub servers: Vec<CacheServer>,
    /// The request nodes.
    pub nodes: Vec<Node>,
    /// The invalidator (absent in naive mode).
    pub invalidator: Option<RunningInvalidator>,
    /// A client of the cluster for the final comparison.
    pub client: Client,
    /// Journal directories to remove at the end.
    journals: Vec<PathBuf>,
}

/// How to build a [`System`].
#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// The origin address (SQLite path or postgres URL).
    pub origin: String,
    /// The write strategy of every node.
    pub strategy: Strategy,
    /// Cache servers.
    pub servers: usize,
    /// Request nodes.
    pub nodes: usize,
    /// Faults every node injects.
    pub faults: Faults,
    /// L1 size per node (0: none).
    pub l1_bytes: u64,
    /// Lease losers: wait this long in all.
    pub lease_wait: Duration,
    /// Scratch directory (journals).
    pub scratch: PathBuf,
    /// Replication slot name (PostgreSQL).
    pub slot: String,
    /// Start the invalidator (ignored in naive mode, which never has one).
    pub invalidator: bool,
}

impl System {
    /// Starts everything.
    pub async fn start(config: &SystemConfig) -> Result<System, String> {
        let mut servers = Vec::new();
        for _ in 0..config.servers.max(1) {
            servers.push(CacheServer::start().await?);
        }
        let l2: Vec<String> = servers.iter().map(|server| server.memcache.to_string()).collect();
        let tracking: Vec<String> = servers.iter().map(|server| server.resp.to_string()).collect();
        let cluster = ClusterConfig::from_nodes(&l2).map_err(|error| error.to_string())?;
        let client = Client::new(ClientConfig::new(cluster)).map_err(|error| error.to_string())?;
        let naive = config.strategy == Strategy::Naive;
        let mut nodes = Vec::new();
        let mut journals = Vec::new();
        for index in 0..config.nodes.max(1) {
            let mut node_config = NodeConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                origin: config.origin.clone(),
                strategy: config.strategy,
                l2: l2.clone(),
                tracking: tracking.clone(),
                faults: config.faults.clone(),
                verify_sample: 0.0,
                ..NodeConfig::default()
            };
            node_config.l1.max_bytes = config.l1_bytes;
            node_config.l2_settings.lease_wait_ms = config.lease_wait.as_millis() as u64;
            let journal = config.scratch.join(format!("journal-{index}"));
            node_config.write_behind.dir = journal.clone();
            journals.push(journal);
            nodes.push(Node::start(node_config).await.map_err(|error| error.to_string())?);
        }
        let invalidator = if naive || !config.invalidator {
            None
        } else {
            Some(RunningInvalidator::start(&config.origin, &config.slot, client.clone()).await?)
        };
        Ok(System {
            servers,
            nodes,
            invalidator,
            client,
            journals,
        })
    }

    /// Stops everything and removes the journals.
    pub async fn stop(self) {
        for node in &self.nodes {
            node.shutdown().await;
        }
        if let Some(invalidator) = self.invalidator
            && let Some((stop, task)) = invalidator.task
        {
            stop.cancel();
            let _ = task.await;
        }
        for server in self.servers {
            server.stop().await;
        }
        for journal in self.journals {
            let _ = std::fs::remove_dir_all(journal);
        }
    }
}
