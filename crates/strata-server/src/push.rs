//! Pushes: what a RESP connection is sent without asking — client-tracking
//! invalidations and pub/sub messages — and the registry through which a
//! command on one connection reaches another.
//!
//! Every RESP connection registers an [`Outbox`] under its client id when it
//! opens and removes it when it closes. A writer hands a [`Push`] to the
//! outbox; the connection loop (`conn.rs`) waits on the other end, the
//! [`Inbox`], beside its socket, and writes pushes between replies, never
//! inside one. The receiving session encodes them, so the form (a RESP3
//! push, or a RESP2 pub/sub message) follows that connection's protocol at
//! the moment it is written.
//!
//! The queue is bounded in bytes (`push-buffer-limit`), not in messages, so
//! a burst of small invalidations does not cut off a client that is reading
//! and merely behind. A client that stops reading fills it; the writer then
//! *disconnects* that client (its `kill` token) instead of blocking or
//! dropping a message silently: a near cache that loses its connection
//! knows to drop everything, one that loses a message does not. The cut-off
//! is counted (`strata_push_disconnects`). What is queued counts against
//! `maxmemory` as client memory, like the connections' buffers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One message for a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    /// A key a tracking client must drop.
    Invalidate(Bytes),
    /// Every key (the keyspace was flushed).
    InvalidateAll,
    /// The connection this tracking client redirects to has closed; the
    /// id is the one it named.
    RedirectBroken(u64),
    /// A pub/sub message on a channel.
    Message {
        /// The channel.
        channel: Bytes,
        /// The payload.
        payload: Bytes,
    },
    /// A pub/sub message matched by a pattern subscription.
    PatternMessage {
        /// The pattern subscribed to.
        pattern: Bytes,
        /// The channel published on.
        channel: Bytes,
        /// The payload.
        payload: Bytes,
    },
}

impl Push {
    /// What the message costs against the queue's byte limit: its payload
    /// plus a fixed share for framing and bookkeeping.
    fn cost(&self) -> usize {
        const OVERHEAD: usize = 48;
        OVERHEAD
            + match self {
                Push::Invalidate(key) => key.len(),
                Push::InvalidateAll | Push::RedirectBroken(_) => 0,
                Push::Message { channel, payload } => channel.len() + payload.len(),
                Push::PatternMessage {
                    pattern,
                    channel,
                    payload,
                } => pattern.len() + channel.len() + payload.len(),
            }
    }
}

/// The bounds of one connection's push queue, as Redis's
/// `client-output-buffer-limit pubsub <hard> <soft> <seconds>`: past
/// `hard` bytes the connection is cut off at once; past `soft` bytes for
/// longer than `soft_for`, too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PushLimits {
    pub(crate) hard: usize,
    /// `usize::MAX`: no soft limit.
    pub(crate) soft: usize,
    pub(crate) soft_for: std::time::Duration,
}

impl From<usize> for PushLimits {
    /// A hard limit alone.
    fn from(hard: usize) -> Self {
        Self {
            hard,
            soft: usize::MAX,
            soft_for: std::time::Duration::ZERO,
        }
    }
}

/// Milliseconds on a monotonic clock since the first call (never 0).
fn monotonic_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The sending side of one connection's push queue.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: mpsc::UnboundedSender<Push>,
    queued_bytes: AtomicUsize,
    limits: PushLimits,
    /// When the queue last went over the soft limit (`monotonic_ms`); 0
    /// while under it.
    over_soft_since: AtomicU64,
    cut_off: AtomicBool,
    kill: CancellationToken,
    memory: strata_session::ClientMemory,
}

impl Outbox {
    fn queue(&self, cost: usize) -> usize {
        self.memory.add(cost);
        self.queued_bytes.fetch_add(cost, Ordering::Relaxed) + cost
    }

    fn unqueue(&self, cost: usize) {
        self.memory.sub(cost);
        let queued = self.queued_bytes.fetch_sub(cost, Ordering::Relaxed) - cost;
        if queued <= self.limits.soft {
            self.over_soft_since.store(0, Ordering::Relaxed);
        }
    }

    /// Whether a queue of `queued` bytes breaks a limit: the hard one, or
    /// the soft one for longer than allowed (the clock starts now if it
    /// just went over).
    fn over_limit(&self, queued: usize) -> bool {
        if queued > self.limits.hard {
            return true;
        }
        if queued <= self.limits.soft {
            return false;
        }
        let now = monotonic_ms();
        let since = match self
            .over_soft_since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => now,
            Err(since) => since,
        };
        u128::from(now - since.min(now)) >= self.limits.soft_for.as_millis()
    }
}

/// Why a push was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The connection is closing or was cut off already.
    Closed,
    /// This push overflowed the queue: the connection is being cut off.
    Overflow,
}

impl Outbox {
    /// Queues `push`, or, if that would pass the byte limit, cuts the
    /// connection off.
    pub(crate) fn send(&self, push: Push) -> Result<(), Refused> {
        if self.cut_off.load(Ordering::Relaxed) {
            return Err(Refused::Closed);
        }
        let cost = push.cost();
        let queued = self.queue(cost);
        if self.over_limit(queued) {
            self.unqueue(cost);
            return if self.cut_off.swap(true, Ordering::Relaxed) {
                Err(Refused::Closed)
            } else {
                self.kill.cancel();
                Err(Refused::Overflow)
            };
        }
        self.tx.send(push).map_err(|_| {
            self.unqueue(cost);
            Refused::Closed
        })
    }
}

/// The receiving side, owned by the connection loop.
#[derive(Debug)]
pub(crate) struct Inbox {
    rx: mpsc::UnboundedReceiver<Push>,
    outbox: Arc<Outbox>,
}

impl Inbox {
    /// The next push (cancel safe).
    pub(crate) async fn recv(&mut self) -> Option<Push> {
        let push = self.rx.recv().await?;
        self.outbox.unqueue(push.cost());
        Some(push)
    }

    /// A push already queued, if any.
    pub(crate) fn try_recv(&mut self) -> Option<Push> {
        let push = self.rx.try_recv().ok()?;
        self.outbox.unqueue(push.cost());
        Some(push)
    }

    /// The token a writer cancels to cut this connection off.
    pub(crate) fn kill_token(&self) -> CancellationToken {
        self.outbox.kill.clone()
    }
}

impl Drop for Inbox {
    /// Gives back what is still queued: closed first, so a send from now
    /// on fails (and takes its own cost back), then drained.
    fn drop(&mut self) {
        self.rx.close();
        while self.try_recv().is_some() {}
    }
}

/// Every open RESP connection's outbox, by client id.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    outboxes: RwLock<HashMap<u64, Arc<Outbox>>>,
    /// Connections cut off for not reading their pushes.
    disconnects: Arc<AtomicU64>,
    /// Where queued pushes are counted as client memory.
    memory: strata_session::ClientMemory,
}

impl Clients {
    /// No connections; cut-offs counted in `disconnects`.
    pub(crate) fn new(disconnects: Arc<AtomicU64>, memory: strata_session::ClientMemory) -> Self {
        Self {
            outboxes: RwLock::default(),
            disconnects,
            memory,
        }
    }

    /// Registers connection `id` and returns its inbox.
    pub(crate) fn register(&self, id: u64, limits: impl Into<PushLimits>) -> Inbox {
        let (tx, rx) = mpsc::unbounded_channel();
        let outbox = Arc::new(Outbox {
            tx,
            queued_bytes: AtomicUsize::new(0),
            limits: limits.into(),
            over_soft_since: AtomicU64::new(0),
            cut_off: AtomicBool::new(false),
            kill: CancellationToken::new(),
            memory: self.memory.clone(),
        });
        self.outboxes.write().insert(id, Arc::clone(&outbox));
        Inbox { rx, outbox }
    }

    /// Removes connection `id` (it closed).
    pub(crate) fn remove(&self, id: u64) {
        self.outboxes.write().remove(&id);
    }

    /// True if connection `id` is open.
    pub(crate) fn exists(&self, id: u64) -> bool {
        self.outboxes.read().contains_key(&id)
    }

    /// Queues `push` for connection `id`; false if it is not open (or was
    /// cut off, now or before).
    pub(crate) fn send(&self, id: u64, push: Push) -> bool {
        let outboxes = self.outboxes.read();
        let Some(outbox) = outboxes.get(&id) else {
            return false;
        };
        match outbox.send(push) {
            Ok(()) => true,
            Err(Refused::Closed) => false,
            Err(Refused::Overflow) => {
                self.disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(client = id, "disconnecting a client that does not read its pushes");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_cuts_the_client_off_once() {
        let clients = Clients::default();
        let mut inbox = clients.register(7, 200);
        let key = Bytes::from_static(b"0123456789");
        assert!(clients.send(7, Push::Invalidate(key.clone())));
        assert!(clients.send(7, Push::Invalidate(key.clone())));
        assert!(clients.send(7, Push::Invalidate(key.clone())));
        // 3 × 58 bytes queued; a fourth passes 200.
        assert!(!clients.send(7, Push::Invalidate(key.clone())));
        assert!(!clients.send(7, Push::InvalidateAll));
        assert_eq!(clients.disconnects.load(Ordering::Relaxed), 1);
        inbox.kill_token().cancelled().await;
        assert_eq!(inbox.try_recv(), Some(Push::Invalidate(key)));
        assert!(!clients.send(99, Push::InvalidateAll), "no such client");
        clients.remove(7);
        assert!(!clients.exists(7));
    }

    #[tokio::test]
    async fn reading_frees_room() {
        let clients = Clients::default();
        let mut inbox = clients.register(1, 100);
        for _ in 0..10 {
            assert!(clients.send(1, Push::InvalidateAll));
            assert_eq!(inbox.recv().await, Some(Push::InvalidateAll));
        }
        assert_eq!(inbox.outbox.queued_bytes.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn the_soft_limit_cuts_off_a_client_that_stays_over_it() {
        let clients = Clients::default();
        let key = Bytes::from_static(b"0123456789");
        // Over the soft limit (100 bytes) for no time at all: cut off on
        // the push that goes over.
        let mut strict = clients.register(
            1,
            PushLimits {
                hard: 10_000,
                soft: 100,
                soft_for: std::time::Duration::ZERO,
            },
        );
        assert!(clients.send(1, Push::Invalidate(key.clone())));
        assert!(!clients.send(1, Push::Invalidate(key.clone())), "58 + 58 > 100");
        strict.kill_token().cancelled().await;
        assert_eq!(strict.try_recv(), Some(Push::Invalidate(key.clone())));
        // Allowed an hour over it: not cut off, and reading brings it back
        // under (the clock stops).
        let mut patient = clients.register(
            2,
            PushLimits {
                hard: 10_000,
                soft: 100,
                soft_for: std::time::Duration::from_secs(3600),
            },
        );
        for _ in 0..5 {
            assert!(clients.send(2, Push::Invalidate(key.clone())));
        }
        assert_ne!(patient.outbox.over_soft_since.load(Ordering::Relaxed), 0);
        while patient.try_recv().is_some() {}
        assert_eq!(patient.outbox.over_soft_since.load(Ordering::Relaxed), 0);
        assert_eq!(clients.disconnects.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn queued_pushes_count_as_client_memory_until_read_or_dropped() {
        let memory = strata_session::ClientMemory::default();
        let clients = Clients::new(Arc::default(), memory.clone());
        let mut inbox = clients.register(1, 10_000);
        let payload = Bytes::from(vec![b'p'; 1000]);
        for _ in 0..3 {
            let push = Push::Message {
                channel: Bytes::from_static(b"c"),
                payload: payload.clone(),
            };
            assert!(clients.send(1, push));
        }
        assert_eq!(memory.bytes(), 3 * (48 + 1001));
        inbox.recv().await.expect("queued");
        assert_eq!(memory.bytes(), 2 * (48 + 1001));
        drop(inbox);
        assert_eq!(memory.bytes(), 0, "a closed connection's queue is given back");
        assert!(!clients.send(1, Push::InvalidateAll));
        assert_eq!(memory.bytes(), 0);
    }
}
