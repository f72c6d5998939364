//! Near-cache invalidation: a subscriber to the L2 servers' client
//! tracking.
//!
//! A request node keeps an in-process L1 cache in front of the cluster and
//! must drop a key as soon as any L2 server sees it change. [`Tracker`]
//! keeps one connection to each server's RESP port, in RESP3, with
//! `CLIENT TRACKING ON BCAST` over the configured prefixes: the server then
//! pushes every change of a matching key, made through either protocol, and
//! each push becomes an [`Invalidation`] handed to the node's callback.
//! Broadcast mode needs no per-key state on the server and covers keys this
//! node never read through that server (a key's owner can change).
//!
//! **Losing a connection loses messages.** So the tracker is *healthy* only
//! while every connection is up and subscribed; the node bypasses L1 while
//! it is not. When a connection drops (EOF, an error, or a heartbeat
//! unanswered: a `PING` after 1 s of silence, given up 2 s later, so a
//! half-open connection is noticed) the tracker marks itself unhealthy, then
//! calls back [`Invalidation::All`]; it reconnects every `reconnect_delay`
//! until it succeeds or is shut down, and after every subscription —
//! including the first — calls back [`Invalidation::All`] once more, then
//! becomes healthy again: anything cached between the loss and the new
//! subscription may be stale. A server flush (`FLUSHALL`, memcached
//! `flush_all`) also arrives as [`Invalidation::All`].
//!
//! Memory is bounded: one read buffer per connection, at most
//! [`MAX_BUFFER_BYTES`]; a frame that would not fit drops the connection
//! (and so flushes L1) rather than grow it.
//!
//! The servers must not require a password (the handshake sends none).
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use strata_client::tracking::{Invalidation, Tracker, TrackingConfig};
//!
//! let tracker = Tracker::spawn(
//!     TrackingConfig {
//!         addrs: vec!["127.0.0.1:7379".into()],
//!         prefixes: vec!["row:".into()],
//!         reconnect_delay: Duration::from_millis(200),
//!         password: None,
//!     },
//!     |invalidation| match invalidation {
//!         Invalidation::Keys(keys) => { /* drop each key from L1 */ }
//!         Invalidation::All => { /* drop everything */ }
//!     },
//! );
//! assert!(!tracker.is_healthy() || tracker.received() == 0);
//! tracker.shutdown();
//! # }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use strata_proto::resp::{Reply, ReplyLimits, encode_command, parse_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest read buffer a tracking connection holds.
pub const MAX_BUFFER_BYTES: usize = 8 << 20;

/// A connection or handshake that takes longer fails (and is retried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Silence after which a `PING` is sent, and how long its answer may take.
const HEARTBEAT_IDLE: Duration = Duration::from_secs(1);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where to subscribe, and to what.
#[derive(Clone, Debug)]
pub struct TrackingConfig {
    /// RESP addresses (`host:port`) of the L2 servers: all of them, since
    /// any may hold a key this node caches.
    pub addrs: Vec<String>,
    /// Key prefixes to be told about; none means every key.
    pub prefixes: Vec<String>,
    /// Pause between reconnection attempts.
    pub reconnect_delay: Duration,
    /// The servers' `requirepass`, sent with `HELLO 3 AUTH default …`.
    pub password: Option<strata_session::Secret>,
}

/// What the L1 cache must drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// These keys changed.
    Keys(Vec<Vec<u8>>),
    /// Everything: a server was flushed, or a connection was lost or
    /// re-established (messages may have been missed).
    All,
}

/// The tracking subscriber: one task per server. Cheap to clone; the tasks
/// stop at [`Tracker::shutdown`] or when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Tracker {
    handle: Arc<Handle>,
}

/// What the user's clones share; dropping the last one stops the tasks.
#[derive(Debug)]
struct Handle {
    state: Arc<State>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.state.stop.cancel();
    }
}

/// What the tasks share with the handle.
#[derive(Debug)]
struct State {
    /// Per address: connected and subscribed.
    subscribed: Vec<AtomicBool>,
    received: AtomicU64,
    stop: CancellationToken,
}

type Callback = dyn Fn(Invalidation) + Send + Sync;

impl Tracker {
    /// Starts one subscriber task per address on the current tokio runtime
    /// (call from within one). `on_invalidate` runs on those tasks, one
    /// call at a time per server, and should be quick.
    pub fn spawn(config: TrackingConfig, on_invalidate: impl Fn(Invalidation) + Send + Sync + 'static) -> Tracker {
        let state = Arc::new(State {
            subscribed: config.addrs.iter().map(|_| AtomicBool::new(false)).collect(),
            received: AtomicU64::new(0),
            stop: CancellationToken::new(),
        });
        let callback: Arc<Callback> = Arc::new(on_invalidate);
        let subscribe = Arc::new(subscribe_command(
            &config.prefixes,
            config.password.as_ref().map(|p| p.expose()),
        ));
        for (index, addr) in config.addrs.iter().enumerate() {
            let task = Subscriber {
                index,
                addr: addr.clone(),
                subscribe: Arc::clone(&subscribe),
                reconnect_delay: config.reconnect_delay,
                state: Arc::clone(&state),
                callback: Arc::clone(&callback),
            };
            tokio::spawn(task.run());
        }
        Tracker {
            handle: Arc::new(Handle { state }),
        }
    }

    /// True while every connection is up and subscribed (and the tracker
    /// was not shut down). While false, the node must not use its L1.
    pub fn is_healthy(&self) -> bool {
        let state = &self.handle.state;
        !state.stop.is_cancelled() && state.subscribed.iter().all(|up| up.load(Ordering::Acquire))
    }

    /// Keys invalidated so far (for metrics; flushes not counted).
    pub fn received(&self) -> u64 {
        self.handle.state.received.load(Ordering::Relaxed)
    }

    /// Stops every task and closes the connections; the tracker is
    /// unhealthy from now on.
    pub fn shutdown(&self) {
        self.handle.state.stop.cancel();
    }
}

/// `HELLO 3 [AUTH default <password>]` and `CLIENT TRACKING ON BCAST
/// [PREFIX p]…`, pipelined.
fn subscribe_command(prefixes: &[String], password: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    match password {
        Some(password) => encode_command(&mut out, &["HELLO", "3", "AUTH", "default", password]),
        None => encode_command(&mut out, &["HELLO", "3"]),
    }
    let mut tracking: Vec<&str> = vec!["CLIENT", "TRACKING", "ON", "BCAST"];
    for prefix in prefixes {
        tracking.push("PREFIX");
        tracking.push(prefix);
    }
    encode_command(&mut out, &tracking);
    out
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("closed by the server")]
    Eof,
    #[error("refused: {0}")]
    Refused(String),
    #[error("bad frame: {0}")]
    Protocol(String),
    #[error("a frame larger than {MAX_BUFFER_BYTES} bytes")]
    TooLarge,
    #[error("shut down")]
    Stopped,
}

/// One server's subscription.
struct Subscriber {
    index: usize,
    addr: String,
    subscribe: Arc<Vec<u8>>,
    reconnect_delay: Duration,
    state: Arc<State>,
    callback: Arc<Callback>,
}

impl Subscriber {
    async fn run(self) {
        let mut failures = 0u64;
        let mut down_since: Option<Instant> = None;
        loop {
            let lost = self.session(&mut failures, &mut down_since).await;
            if matches!(lost, Lost::Stopped) || self.state.stop.is_cancelled() {
                break;
            }
            let was_up = self.state.subscribed[self.index].swap(false, Ordering::AcqRel);
            if was_up {
                (self.callback)(Invalidation::All);
                tracing::warn!(addr = %self.addr, error = %lost, "tracking connection lost; L1 bypassed until resubscribed");
                down_since = Some(Instant::now());
                failures = 0;
            } else {
                failures += 1;
                if failures == 1 && down_since.is_none() {
                    tracing::warn!(addr = %self.addr, error = %lost, "cannot subscribe to invalidations; retrying");
                    down_since = Some(Instant::now());
                } else {
                    tracing::debug!(addr = %self.addr, error = %lost, failures, "tracking reconnect failed");
                }
            }
            tokio::select! {
                _ = self.state.stop.cancelled() => break,
                _ = tokio::time::sleep(self.reconnect_delay) => {}
            }
        }
        self.state.subscribed[self.index].store(false, Ordering::Release);
    }

    /// Connects, subscribes and reads invalidations until the connection
    /// ends; returns why.
    async fn session(&self, failures: &mut u64, down_since: &mut Option<Instant>) -> Lost {
        let stop = &self.state.stop;
        let connected = tokio::select! {
            _ = stop.cancelled() => return Lost::Stopped,
            connected = tokio::time::timeout(CONNECT_TIMEOUT, self.handshake()) => connected,
        };
        let (mut stream, mut reader) = match connected {
            Ok(Ok(connected)) => connected,
            Ok(Err(lost)) => return lost,
            Err(_) => return Lost::Timeout,
        };
        // Subscribed: whatever was cached before may have missed a message.
        (self.callback)(Invalidation::All);
        self.state.subscribed[self.index].store(true, Ordering::Release);
        match down_since.take() {
            Some(since) => tracing::info!(
                addr = %self.addr,
                down_ms = since.elapsed().as_millis() as u64,
                attempts = *failures + 1,
                "tracking resubscribed"
            ),
            None => tracing::debug!(addr = %self.addr, "tracking subscribed"),
        }
        *failures = 0;
        let mut ping_sent: Option<Instant> = None;
        loop {
            let wait = match ping_sent {
                None => HEARTBEAT_IDLE,
                Some(sent) => HEARTBEAT_TIMEOUT.saturating_sub(sent.elapsed()),
            };
            let frame = tokio::select! {
                _ = stop.cancelled() => return Lost::Stopped,
                frame = tokio::time::timeout(wait, reader.next(&mut stream)) => frame,
            };
            let reply = match frame {
                Ok(Ok(reply)) => reply,
                Ok(Err(lost)) => return lost,
                Err(_) if ping_sent.is_none() => {
                    let mut ping = Vec::new();
                    encode_command(&mut ping, &["PING"]);
                    if let Err(error) = stream.write_all(&ping).await {
                        return error.into();
                    }
                    ping_sent = Some(Instant::now());
                    continue;
                }
                Err(_) => return Lost::Timeout,
            };
            // Anything from the server proves it alive.
            ping_sent = None;
            match reply {
                Reply::Push(items) => self.on_push(items),
                Reply::Simple(_) => {} // PONG
                Reply::Error(text) => return Lost::Refused(String::from_utf8_lossy(&text).into_owned()),
                other => {
                    tracing::debug!(addr = %self.addr, reply = ?other, "unexpected reply on the tracking connection")
                }
            }
        }
    }

    /// Connects and subscribes.
    async fn handshake(&self) -> Result<(TcpStream, Reader), Lost> {
        let mut stream = TcpStream::connect(&self.addr).await?;
        let _ = stream.set_nodelay(true);
        stream.write_all(&self.subscribe).await?;
        let mut reader = Reader::default();
        for step in ["HELLO 3", "CLIENT TRACKING"] {
            match reader.next(&mut stream).await? {
                Reply::Error(text) => {
                    return Err(Lost::Refused(format!("{step}: {}", String::from_utf8_lossy(&text))));
                }
                Reply::Push(_) => return Err(Lost::Protocol(format!("a push before {step} was answered"))),
                _ => {}
            }
        }
        Ok((stream, reader))
    }

    fn on_push(&self, items: Vec<Reply>) {
        let mut items = items.into_iter();
        if items.next() != Some(Reply::Bulk(b"invalidate".to_vec())) {
            // Not ours (e.g. a pub/sub message): nothing to drop.
            return;
        }
        match items.next() {
            Some(Reply::Array(keys)) => {
                let keys: Vec<Vec<u8>> = keys
                    .into_iter()
                    .filter_map(|key| match key {
                        Reply::Bulk(key) => Some(key),
                        _ => None,
                    })
                    .collect();
                self.state.received.fetch_add(keys.len() as u64, Ordering::Relaxed);
                (self.callback)(Invalidation::Keys(keys));
            }
            // A flush: `_` in RESP3 (and RESP2's forms, for safety).
            Some(Reply::Null | Reply::NullArray) => (self.callback)(Invalidation::All),
            other => {
                // Malformed: dropping everything is the safe reading.
                tracing::debug!(addr = %self.addr, payload = ?other, "unrecognised invalidation");
                (self.callback)(Invalidation::All);
            }
        }
    }
}

/// A bounded read buffer and the frames in it.
#[derive(Default)]
struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    fn limits() -> ReplyLimits {
        ReplyLimits {
            max_depth: 8,
            max_bulk_bytes: MAX_BUFFER_BYTES / 2,
            max_elements: 1 << 20,
            max_line_bytes: 64 * 1024,
        }
    }

    /// The next frame from `stream` (cancel safe: bytes read stay in the
    /// buffer).
    async fn next(&mut self, stream: &mut TcpStream) -> Result<Reply, Lost> {
        loop {
            match parse_reply(&self.buf, &Self::limits()) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
                        self.buf = Vec::new();
                    }
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(error) => return Err(Lost::Protocol(error.to_string())),
            }
            if self.buf.len() >= MAX_BUFFER_BYTES {
                return Err(Lost::TooLarge);
            }
            self.buf.reserve((MAX_BUFFER_BYTES - self.buf.len()).min(64 * 1024));
            match stream.read_buf(&mut self.buf).await {
                Ok(0) => return Err(Lost::Eof),
                Ok(_) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subscription_is_one_pipelined_write() {
        let bytes = subscribe_command(&["row:".into()], None);
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*6\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\nON\r\n$5\r\nBCAST\r\n\
             $6\r\nPREFIX\r\n$4\r\nrow:\r\n"
        );
    }
}
