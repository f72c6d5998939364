//! One cache server: a small pool of connections speaking memcached's meta
//! protocol, its health, and the writes it missed while down.
//!
//! The client speaks the meta protocol (`mg`, `ms`, `md`, `mn`) because it
//! carries everything the client needs in a standard form — values with
//! TTL and CAS, leases (`N`, `W`/`Z`/`X`), stale marking (`I`) — and so the
//! same client drives strata servers and memcached 1.6 alike.
//!
//! A request is a *batch*: every command for this node from one call (one
//! key, or all of a multi-get's keys that live here), answered in order.
//! Connections are multiplexed: any number of callers queue batches on one
//! connection, a writer task sends all that are queued in one `write`, and
//! a reader task hands each batch its replies — so under concurrency the
//! requests of many callers share system calls and round trips, as a
//! pipelining client's do. A node keeps `connections` such connections and
//! spreads batches over them. A connection that fails, times out or garbles
//! a reply is retired and reopened by the next caller; failures count
//! towards the node's TKO.
//!
//! A new connection is opened in up to three steps, each within the
//! connect timeout: TCP; TLS if `PoolSettings::tls` is set (the servers'
//! `memcache-tls-port`s are then the ring's addresses, and each server's
//! certificate must name its host); and memcached's ASCII auth if
//! `PoolSettings::password` is set.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use strata_proto::memcache::{ReplyKind, Response, ResponseDecoder, ResponseLimits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::health::{Health, HealthPolicy};
use crate::recovery::MissedWrites;

/// Why a request to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
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
    /// The server refused the password (or wants one).
    #[error("{addr}: authentication failed: {message}")]
    Auth {
        /// The node.
        addr: String,
        /// What the server said.
        message: String,
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
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Connections kept per node (each multiplexed: many callers at once).
    pub connections: usize,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for a batch's replies.
    pub request_timeout: Duration,
    /// TKO settings.
    pub health: HealthPolicy,
    /// Keys remembered per down node (see `recovery.rs`).
    pub missed_writes_limit: usize,
    /// The servers' `requirepass`: each new connection authenticates with
    /// memcached's ASCII auth (`set` of `<user> <password>`) before use.
    pub password: Option<strata_session::Secret>,
    /// Speak TLS to the servers (their `memcache-tls-port`s are then the
    /// ring's addresses): each new connection's handshake must finish
    /// within `connect_timeout`, and the server's certificate must match
    /// the host of its address.
    pub tls: Option<strata_session::TlsConnector>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            connections: 2,
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(1),
            health: HealthPolicy::default(),
            missed_writes_limit: 100_000,
            password: None,
            tls: None,
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

/// One queued batch and where its replies go.
struct Job {
    bytes: Bytes,
    kinds: Arc<[ReplyKind]>,
    reply: ReplyTo,
}

/// Where a batch's replies (or why there are none) go.
type ReplyTo = oneshot::Sender<Result<Vec<Response>, String>>;

/// Batches written but not yet answered, in the order they were written.
type Pending = Arc<parking_lot::Mutex<VecDeque<(Arc<[ReplyKind]>, ReplyTo)>>>;

/// The batch being answered: its kinds, the next reply's index and
/// decoder, the replies so far, and where they go.
type Answering = (Arc<[ReplyKind]>, usize, ResponseDecoder, Vec<Response>, ReplyTo);

/// A multiplexed connection: callers queue batches; a writer task sends
/// every batch queued so far in one write (so concurrent callers' requests
/// share system calls and round trips, like a pipelining client), and a
/// reader task matches replies to batches in order. Separate tasks, so a
/// large pipeline can never deadlock with the server's replies.
struct Conn {
    jobs: mpsc::Sender<Job>,
    alive: Arc<AtomicBool>,
    /// The reader task, ended when the connection is retired: a server that
    /// hangs without closing must not keep a task per retired connection.
    reader: tokio::task::AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// More unanswered bytes than this from a server mean it is not speaking
/// the protocol (replies never exceed their requests' limits by this much).
const MAX_UNREAD_BYTES: usize = 64 << 20;

impl Conn {
    /// Starts the writer and reader tasks over a connection's two halves
    /// (a TCP stream's own, or `tokio::io::split`'s of a TLS stream).
    fn start<R, W>(mut reader: R, mut writer: W, addr: String) -> Conn
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (jobs, mut queue) = mpsc::channel::<Job>(4096);
        let alive = Arc::new(AtomicBool::new(true));
        let pending: Pending = Arc::default();
        {
            let (alive, pending) = (Arc::clone(&alive), Arc::clone(&pending));
            tokio::spawn(async move {
                let mut out = Vec::with_capacity(64 * 1024);
                while let Some(job) = queue.recv().await {
                    let mut next = Some(job);
                    while let Some(job) = next.take() {
                        out.extend_from_slice(&job.bytes);
                        pending.lock().push_back((job.kinds, job.reply));
                        if out.len() < 256 * 1024 {
                            next = queue.try_recv().ok();
                        }
                    }
                    if writer.write_all(&out).await.is_err() {
                        break;
                    }
                    out.clear();
                }
                alive.store(false, Ordering::Relaxed);
                // Dropping the pending senders fails their callers.
                pending.lock().clear();
            });
        }
        let reader_task = {
            let alive = Arc::clone(&alive);
            tokio::spawn(async move {
                let mut input: Vec<u8> = Vec::with_capacity(64 * 1024);
                let mut chunk = vec![0u8; 64 * 1024];
                let mut start = 0;
                let mut current: Option<Answering> = None;
                'read: loop {
                    loop {
                        if current.is_none() {
                            let Some((kinds, reply)) = pending.lock().pop_front() else {
                                break;
                            };
                            let decoder = ResponseDecoder::new(kinds[0], ResponseLimits::default());
                            let replies = Vec::with_capacity(kinds.len());
                            current = Some((kinds, 0, decoder, replies, reply));
                        }
                        let Some((kinds, index, decoder, replies, _)) = current.as_mut() else {
                            break;
                        };
                        let progress = match decoder.decode(&input[start..]) {
                            Ok(progress) => progress,
                            Err(error) => {
                                if let Some((.., reply)) = current.take() {
                                    let _ = reply.send(Err(format!("garbled reply: {error}")));
                                }
                                break 'read;
                            }
                        };
                        start += progress.consumed;
                        let Some(response) = progress.response else {
                            break;
                        };
                        replies.push(response);
                        *index += 1;
                        if *index < kinds.len() {
                            *decoder = ResponseDecoder::new(kinds[*index], ResponseLimits::default());
                        } else if let Some((_, _, _, replies, reply)) = current.take() {
                            let _ = reply.send(Ok(replies));
                        }
                    }
                    input.drain(..start);
                    start = 0;
                    if input.len() > MAX_UNREAD_BYTES {
                        tracing::warn!(node = %addr, "closing a connection flooded with unrequested bytes");
                        break;
                    }
                    match reader.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => input.extend_from_slice(&chunk[..n]),
                    }
                }
                alive.store(false, Ordering::Relaxed);
                tracing::debug!(node = %addr, "connection closed");
            })
        };
        Conn {
            jobs,
            alive,
            reader: reader_task.abort_handle(),
        }
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed) && !self.jobs.is_closed()
    }
}

/// The connection pool to one cache server (a member of the ring).
pub struct ServerPool {
    addr: String,
    settings: PoolSettings,
    slots: Vec<Mutex<Option<Conn>>>,
    next_slot: AtomicUsize,
    /// Up, down, or due a probe.
    pub health: Health,
    /// Writes it missed while down.
    pub missed: parking_lot::Mutex<MissedWrites>,
}

impl std::fmt::Debug for ServerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPool")
            .field("addr", &self.addr)
            .field("down", &self.health.is_down())
            .finish_non_exhaustive()
    }
}

impl ServerPool {
    /// A node at `addr` (`host:port`); connects lazily.
    pub fn new(addr: String, settings: PoolSettings) -> Self {
        ServerPool {
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
    /// a proxy cut it): if a reused connection fails before answering, the
    /// batch is sent once more on a fresh one. Only then is it a failure.
    pub async fn exec(&self, batch: Batch) -> Result<Vec<Response>, PoolError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Shared, so a retry resends without copying the request.
        let (bytes, kinds) = (Bytes::from(batch.bytes), Arc::<[ReplyKind]>::from(batch.kinds));
        let index = self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let (sender, reused) = self.connection(index).await?;
        match self.send(index, &sender, bytes.clone(), Arc::clone(&kinds)).await {
            Err(PoolError::Io { .. }) if reused => {
                let (sender, _) = self.connection(index).await?;
                self.send(index, &sender, bytes, kinds).await
            }
            other => other,
        }
    }

    /// The live connection of slot `index`, connecting if needed; and
    /// whether it already existed.
    async fn connection(&self, index: usize) -> Result<(mpsc::Sender<Job>, bool), PoolError> {
        let mut slot = self.slots[index].lock().await;
        if let Some(conn) = slot.as_ref().filter(|conn| conn.is_alive()) {
            return Ok((conn.jobs.clone(), true));
        }
        let conn = match self.open().await {
            Ok(conn) => conn,
            Err(error) => {
                *slot = None;
                return Err(error);
            }
        };
        let sender = conn.jobs.clone();
        *slot = Some(conn);
        Ok((sender, false))
    }

    /// Opens a connection: TCP, then TLS if configured, then the password
    /// if one is set, each within `connect_timeout`.
    async fn open(&self) -> Result<Conn, PoolError> {
        let timeout = self.settings.connect_timeout;
        let timed_out = || PoolError::Timeout {
            addr: self.addr.clone(),
            timeout,
        };
        let io_error = |source| PoolError::Io {
            addr: self.addr.clone(),
            source,
        };
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(self.addr.as_str()))
            .await
            .map_err(|_| timed_out())?
            .map_err(io_error)?;
        let _ = tcp.set_nodelay(true);
        match &self.settings.tls {
            None => {
                let mut tcp = tcp;
                self.login(&mut tcp).await?;
                let (reader, writer) = tcp.into_split();
                Ok(Conn::start(reader, writer, self.addr.clone()))
            }
            Some(connector) => {
                let mut tls = tokio::time::timeout(timeout, connector.connect(&self.addr, tcp))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(io_error)?;
                self.login(&mut tls).await?;
                let (reader, writer) = tokio::io::split(tls);
                Ok(Conn::start(reader, writer, self.addr.clone()))
            }
        }
    }

    /// Authenticates a new connection, if the servers want a password.
    async fn login<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: &mut S) -> Result<(), PoolError> {
        let Some(password) = &self.settings.password else {
            return Ok(());
        };
        let login = authenticate(stream, password.expose());
        match tokio::time::timeout(self.settings.connect_timeout, login).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(PoolError::Auth {
                addr: self.addr.clone(),
                message,
            }),
            Err(_) => Err(PoolError::Timeout {
                addr: self.addr.clone(),
                timeout: self.settings.connect_timeout,
            }),
        }
    }

    async fn send(
        &self,
        index: usize,
        sender: &mpsc::Sender<Job>,
        bytes: Bytes,
        kinds: Arc<[ReplyKind]>,
    ) -> Result<Vec<Response>, PoolError> {
        let (reply, answer) = oneshot::channel();
        let job = Job { bytes, kinds, reply };
        let closed = || PoolError::Io {
            addr: self.addr.clone(),
            source: std::io::ErrorKind::ConnectionAborted.into(),
        };
        let outcome = tokio::time::timeout(self.settings.request_timeout, async {
            sender.send(job).await.map_err(|_| closed())?;
            match answer.await {
                Ok(Ok(replies)) => Ok(replies),
                Ok(Err(message)) => Err(PoolError::Protocol {
                    addr: self.addr.clone(),
                    message,
                }),
                Err(_) => Err(closed()),
            }
        })
        .await;
        let result = outcome.unwrap_or_else(|_| {
            Err(PoolError::Timeout {
                addr: self.addr.clone(),
                timeout: self.settings.request_timeout,
            })
        });
        if result.is_err() {
            // A connection that timed out or garbled a reply is not to be
            // trusted with the next batch: the next caller opens a new one.
            self.retire(index).await;
        }
        result
    }

    async fn retire(&self, index: usize) {
        let mut slot = self.slots[index].lock().await;
        if let Some(conn) = slot.take() {
            conn.alive.store(false, Ordering::Relaxed);
        }
    }

    /// Closes every pooled connection (after the node was marked down,
    /// they are likely dead).
    pub fn drop_connections(&self) {
        for slot in &self.slots {
            if let Ok(mut slot) = slot.try_lock() {
                *slot = None;
            }
        }
    }
}

/// memcached's ASCII authentication: `set <key> 0 0 <len>` whose data is
/// `<user> <password>`; the server answers `STORED`.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, password: &str) -> Result<(), String> {
    let data = format!("strata {password}");
    let request = format!("set auth 0 0 {}\r\n{data}\r\n", data.len());
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| error.to_string())?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    // One short line; read it byte by byte so nothing after it is consumed.
    while !reply.ends_with(b"\r\n") {
        if reply.len() > 512 || stream.read(&mut byte).await.map_err(|error| error.to_string())? == 0 {
            return Err("connection closed during authentication".into());
        }
        reply.push(byte[0]);
    }
    if reply == b"STORED\r\n" {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&reply).trim_end().to_owned())
    }
}
