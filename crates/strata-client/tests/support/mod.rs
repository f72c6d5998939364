//! The harness: real strata servers on free loopback ports, and a small
//! fault-injecting TCP relay in front of each, so a test can make a node
//! refuse, reset or stall on cue instead of relying on sleeps and luck.

#![allow(dead_code, reason = "each test file uses a different part of the harness")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use strata_client::{Client, ClientConfig, Failover, HealthPolicy};
use strata_ring::{ClusterConfig, Member};
use strata_server::{Config, RunningServer, Server};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A strata server on free ports.
pub async fn server() -> RunningServer {
    Server::start(Config::default().on_free_ports())
        .await
        .expect("server starts")
}

/// What a relay does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Forward both ways.
    Pass = 0,
    /// Accept, then close at once: the client sees resets and EOFs.
    Reset = 1,
    /// Accept and never answer: the client sees timeouts.
    Stall = 2,
}

/// A relay on a free port forwarding to a target.
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    changed: watch::Sender<u8>,
}

impl Relay {
    /// A relay to `target`, passing traffic.
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let (changed, _) = watch::channel(Mode::Pass as u8);
        let relay = Relay {
            addr,
            mode: Arc::clone(&mode),
            changed: changed.clone(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let mode = Arc::clone(&mode);
                let mut changes = changed.subscribe();
                tokio::spawn(async move {
                    match mode.load(Ordering::SeqCst) {
                        m if m == Mode::Reset as u8 => drop(client),
                        m if m == Mode::Stall as u8 => {
                            // Hold the socket, read nothing, until the mode
                            // changes; then drop it.
                            let _ = changes.changed().await;
                            drop(client);
                        }
                        _ => {
                            let Ok(upstream) = TcpStream::connect(target).await else {
                                return;
                            };
                            let (mut client, mut upstream) = (client, upstream);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                                // Any change of mode cuts live connections.
                                _ = changes.changed() => {}
                            }
                        }
                    }
                });
            }
        });
        relay
    }

    /// Changes what the relay does; live connections are cut.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        let _ = self.changed.send(mode as u8);
    }
}

/// N servers, each behind a relay, and a gutter server behind its own.
pub struct Cluster {
    /// The main pool's servers.
    pub servers: Vec<RunningServer>,
    /// Their relays (the client talks to these).
    pub relays: Vec<Relay>,
    /// The gutter server.
    pub gutter: RunningServer,
    /// Its relay.
    pub gutter_relay: Relay,
}

impl Cluster {
    /// `n` servers and a gutter.
    pub async fn start(n: usize) -> Cluster {
        let mut servers = Vec::new();
        let mut relays = Vec::new();
        for _ in 0..n {
            let server = server().await;
            relays.push(Relay::start(server.memcache_addr).await);
            servers.push(server);
        }
        let gutter = server().await;
        let gutter_relay = Relay::start(gutter.memcache_addr).await;
        Cluster {
            servers,
            relays,
            gutter,
            gutter_relay,
        }
    }

    /// The cluster config over the first `n` relays.
    pub fn config(&self, n: usize) -> ClusterConfig {
        let member = |addr: SocketAddr| Member::new(addr.ip().to_string(), addr.port());
        let mut pools = std::collections::BTreeMap::new();
        pools.insert(
            "main".to_owned(),
            self.relays[..n].iter().map(|r| member(r.addr)).collect(),
        );
        pools.insert("gutter".to_owned(), vec![member(self.gutter_relay.addr)]);
        ClusterConfig {
            scheme: strata_ring::Scheme::Ketama,
            pools,
        }
    }

    /// A client over the first `n` nodes with test-friendly settings:
    /// short timeouts, TKO after 2 failures, probes only when asked (a
    /// long backoff), gutter failover.
    pub fn client(&self, n: usize) -> Client {
        let mut config = ClientConfig::new(self.config(n));
        config.failover = Failover::Gutter;
        config.node.request_timeout = Duration::from_millis(300);
        config.node.connect_timeout = Duration::from_millis(300);
        // Generous, so a loaded CI machine cannot make a waiting lease
        // loser give up and load for itself.
        config.lease.max_wait = Duration::from_secs(10);
        config.node.health = HealthPolicy {
            threshold: 2,
            backoff_min: Duration::from_secs(3600),
            backoff_max: Duration::from_secs(3600),
        };
        Client::new(config).expect("valid cluster")
    }

    /// Index of the server whose relay is `addr` (`host:port`).
    pub fn index_of(&self, addr: &str) -> usize {
        self.relays
            .iter()
            .position(|r| r.addr.to_string() == addr)
            .unwrap_or_else(|| panic!("no relay {addr}"))
    }
}

/// `key:i`.
pub fn key(i: usize) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}
