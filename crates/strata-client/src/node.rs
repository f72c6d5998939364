//! One cache server: a small pool of connections speaking memcached's meta
//! protocol, its health, and the writes it missed while down.
//!
//! The client speaks the meta protocol (`mg`, `ms`, `md`, `mn`) because it
//! carries everything the client needs in a standard form — values with
//! TTL and CAS, leases (`N`, `W`/`Z`/`X`), stale marking (`I`) — and so the
//! same client drives strata servers and memcached 1.6 alike.
//!
//! A request is a *batch*: every command for this node from one call (one
//! key, or all of a multi-get's keys that live here), written in one
//! `write` and answered in order. A caller takes one pooled connection for
//! its batch; with `connections` slots, that many batches are in flight to
//! the node at once. A connection that fails is dropped and reopened by the
//! next caller; failures count towards the node's TKO.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strata_proto::memcache::{ReplyKind, Response, ResponseDecoder, ResponseLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::health::{Health, HealthPolicy};
use crate::recovery::MissedWrites;

/// Why a request to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Connecting, writing or reading failed.
    #[error("{addr}: {source}")]
    Io {
        /// The node.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No reply within the timeout.
    #[error("{addr}: no reply within {timeout:?}")]
    Timeout {
        /// The node.
        addr: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The reply could not be parsed.
    #[error("{addr}: garbled reply: {message}")]
    Protocol {
        /// The node.
        addr: String,
        /// What was wrong.
        message: String,
    },
}

/// Connection settings.
#[derive(Clone, Copy, Debug)]
pub struct NodeSettings {
    /// Connections kept per node.
    pub connections: usize,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for a batch's replies.
    pub request_timeout: Duration,
    /// TKO settings.
    pub health: HealthPolicy,
    /// Keys remembered per down node (see `recovery.rs`).
    pub missed_writes_limit: usize,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            connections: 4,
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(1),
            health: HealthPolicy::default(),
            missed_writes_limit: 100_000,
        }
    }
}

/// Commands for one node, and the kind of reply each gets.
#[derive(Debug, Default)]
pub struct Batch {
    /// The encoded commands.
    pub bytes: Vec<u8>,
    /// One per command, in order.
    pub kinds: Vec<ReplyKind>,
}

impl Batch {
    /// Adds a command whose encoding `encode` appends.
    pub fn push(&mut self, kind: ReplyKind, encode: impl FnOnce(&mut Vec<u8>)) {
        encode(&mut self.bytes);
        self.kinds.push(kind);
    }

    /// Whether it holds no command.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }
}

struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
}

impl Conn {
    async fn exchange(&mut self, batch: &Batch, addr: &str) -> Result<Vec<Response>, NodeError> {
        let io = |source| NodeError::Io {
            addr: addr.to_owned(),
            source,
        };
        self.stream.write_all(&batch.bytes).await.map_err(io)?;
        let mut replies = Vec::with_capacity(batch.kinds.len());
        let mut start = 0;
        for &kind in &batch.kinds {
            let mut decoder = ResponseDecoder::new(kind, ResponseLimits::default());
            loop {
                let progress = decoder.decode(&self.input[start..]).map_err(|e| NodeError::Protocol {
                    addr: addr.to_owned(),
                    message: e.to_string(),
                })?;
                start += progress.consumed;
                if let Some(response) = progress.response {
                    replies.push(response);
                    break;
                }
                self.input.drain(..start);
                start = 0;
                let mut chunk = [0u8; 16 * 1024];
                let read = self.stream.read(&mut chunk).await.map_err(io)?;
                if read == 0 {
                    return Err(NodeError::Io {
                        addr: addr.to_owned(),
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    });
                }
                self.input.extend_from_slice(&chunk[..read]);
            }
        }
        self.input.drain(..start);
        Ok(replies)
    }
}

/// A cache server.
pub struct Node {
    addr: String,
    settings: NodeSettings,
    slots: Vec<Mutex<Option<Conn>>>,
    next_slot: AtomicUsize,
    /// Up, down, or due a probe.
    pub health: Health,
    /// Writes it missed while down.
    pub missed: parking_lot::Mutex<MissedWrites>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("addr", &self.addr)
            .field("down", &self.health.is_down())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node at `addr` (`host:port`); connects lazily.
    pub fn new(addr: String, settings: NodeSettings) -> Self {
        Node {
            slots: (0..settings.connections.max(1)).map(|_| Mutex::new(None)).collect(),
            next_slot: AtomicUsize::new(0),
            health: Health::new(settings.health),
            missed: parking_lot::Mutex::new(MissedWrites::new(settings.missed_writes_limit)),
            addr,
            settings,
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `batch` and returns its replies, in order. Does not touch the
    /// node's health; callers report the outcome.
    ///
    /// A pooled connection may have died while idle (the server restarted,
    /// a proxy cut it): if a reused connection fails with an I/O error, the
    /// batch is sent once more on a fresh one. Only then is it a failure.
    pub async fn exec(&self, batch: &Batch) -> Result<Vec<Response>, NodeError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let index = self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[index].lock().await;
        let reused = slot.is_some();
        let first = self.exec_on(&mut slot, batch).await;
        match first {
            Err(NodeError::Io { .. }) if reused => self.exec_on(&mut slot, batch).await,
            other => other,
        }
    }

    async fn exec_on(&self, slot: &mut Option<Conn>, batch: &Batch) -> Result<Vec<Response>, NodeError> {
        if slot.is_none() {
            let connect = TcpStream::connect(self.addr.as_str());
            let stream = match tokio::time::timeout(self.settings.connect_timeout, connect).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(source)) => {
                    return Err(NodeError::Io {
                        addr: self.addr.clone(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(NodeError::Timeout {
                        addr: self.addr.clone(),
                        timeout: self.settings.connect_timeout,
                    });
                }
            };
            let _ = stream.set_nodelay(true);
            *slot = Some(Conn {
                stream,
                input: Vec::with_capacity(16 * 1024),
            });
        }
        let Some(conn) = slot.as_mut() else {
            unreachable!("the slot was just filled")
        };
        let result = match tokio::time::timeout(self.settings.request_timeout, conn.exchange(batch, &self.addr)).await {
            Ok(result) => result,
            Err(_) => Err(NodeError::Timeout {
                addr: self.addr.clone(),
                timeout: self.settings.request_timeout,
            }),
        };
        if result.is_err() {
            // The stream may hold half a reply: never reuse it.
            *slot = None;
        }
        result
    }

    /// Closes every idle pooled connection (after the node was marked
    /// down, they are likely dead).
    pub fn drop_connections(&self) {
        for slot in &self.slots {
            if let Ok(mut slot) = slot.try_lock() {
                *slot = None;
            }
        }
    }
}
