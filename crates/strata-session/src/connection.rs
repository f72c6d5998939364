//! The connection loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::{Inbox, Session};

/// Pushes written in one go at most, and the output size after which the
/// loop writes before taking more, so a flood of pushes is written in
/// bounded slices.
const PUSH_BATCH: usize = 1024;
const PUSH_BATCH_BYTES: usize = 64 * 1024;

/// Replies a session should buffer before it stops taking requests and
/// lets the loop write them: a session checks `out.len() >= OUTPUT_CHUNK`
/// before each request and, if so, returns what it consumed so far (the
/// loop calls it again on the rest once the chunk is written). So the
/// replies buffered for a connection are this plus one reply, however
/// many requests its client pipelines.
pub const OUTPUT_CHUNK: usize = 64 * 1024;

/// Initial size of the read and write buffers, and what they shrink back
/// to after growing past [`SHRINK_ABOVE`].
const INITIAL_BUFFER: usize = 16 * 1024;
const SHRINK_ABOVE: usize = 4 * 1024 * 1024;

/// Settings of the connection loop.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Close a connection idle this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Largest read buffer a connection may hold; past it the connection
    /// is closed.
    pub max_buffer: usize,
    /// Where the connection counts the memory its buffers hold.
    pub client_memory: ClientMemory,
}

/// The bytes that connections' read and write buffers hold, summed over
/// every connection given the same gauge (clones share it): client state
/// that the server counts against its memory limit beside the store.
#[derive(Clone, Debug, Default)]
pub struct ClientMemory(Arc<AtomicUsize>);

impl ClientMemory {
    /// The bytes held now.
    pub fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts `bytes` more (client state held elsewhere: queued pushes).
    pub fn add(&self, bytes: usize) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` fewer (given back what [`add`](Self::add) counted).
    pub fn sub(&self, bytes: usize) {
        self.0.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Moves one connection's share from `*held` to `now`.
    fn update(&self, held: &mut usize, now: usize) {
        if now > *held {
            self.0.fetch_add(now - *held, Ordering::Relaxed);
        } else if now < *held {
            self.0.fetch_sub(*held - now, Ordering::Relaxed);
        }
        *held = now;
    }
}

/// What woke the loop.
enum Event<P> {
    Read(std::io::Result<usize>),
    Push(P),
}

/// Serves one connection until the client leaves, the session asks to
/// close, the connection idles out, its buffer passes the limit, a writer
/// cuts it off for not reading its pushes, or `shutdown`.
pub async fn serve<T, S>(mut stream: T, mut session: S, limits: Limits, shutdown: CancellationToken)
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Session,
{
    let mut input = BytesMut::with_capacity(INITIAL_BUFFER);
    let mut out = Vec::with_capacity(INITIAL_BUFFER);
    let mut inbox = session.take_inbox();
    let kill = inbox.as_ref().map(Inbox::kill_token);
    let mut pushes = Vec::new();
    let gauge = &limits.client_memory;
    let mut held = 0;
    gauge.update(&mut held, input.capacity() + out.capacity());
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = cancelled(kill.as_ref()) => break,
            read = read_some(&mut stream, &mut input, limits.idle_timeout) => Event::Read(read),
            Some(push) = next_push(inbox.as_mut()) => Event::Push(push),
        };
        let mut close = false;
        match event {
            Event::Read(Ok(0) | Err(_)) => break,
            Event::Read(Ok(_)) => loop {
                let outcome = session.process(&input, &mut out).await;
                gauge.update(&mut held, input.capacity() + out.capacity());
                input.advance(outcome.consumed);
                session.batch_done();
                close = outcome.close;
                if close || outcome.consumed == 0 || input.is_empty() || out.len() < OUTPUT_CHUNK {
                    break;
                }
                // The session stopped at a full chunk of replies with
                // requests still buffered: write the chunk before taking
                // more. A client that pipelines without reading then
                // blocks this write, and its requests wait in the kernel
                // and the bounded input buffer rather than as replies here.
                if !write_all(&mut stream, &out, kill.as_ref()).await {
                    session.batch_done();
                    gauge.update(&mut held, 0);
                    let _ = stream.shutdown().await;
                    return;
                }
                out.clear();
            },
            Event::Push(push) => pushes.push(push),
        }
        // Pushes queued meanwhile (some by this very batch) go after its
        // replies.
        if let Some(inbox) = inbox.as_mut() {
            while pushes.len() < PUSH_BATCH
                && out.len() < PUSH_BATCH_BYTES
                && let Some(push) = inbox.try_recv()
            {
                pushes.push(push);
            }
            if !pushes.is_empty() {
                session.write_pushes(&mut pushes, &mut out);
                gauge.update(&mut held, input.capacity() + out.capacity());
            }
        }
        if !out.is_empty() {
            if !write_all(&mut stream, &out, kill.as_ref()).await {
                break;
            }
            out.clear();
            // Give back memory after an unusually large reply.
            if out.capacity() > SHRINK_ABOVE {
                out = Vec::with_capacity(INITIAL_BUFFER);
            }
        }
        if close {
            break;
        }
        if input.len() > limits.max_buffer {
            // The parsers bound every request, so this means a bug; refuse
            // rather than grow without bound.
            tracing::warn!(
                buffered = input.len(),
                "closing a connection whose input exceeds the buffer limit"
            );
            break;
        }
        if input.is_empty() && input.capacity() > SHRINK_ABOVE {
            input = BytesMut::with_capacity(INITIAL_BUFFER);
        }
        // Reads grow the input buffer before they return; counted here,
        // before the next wait, so the gauge lags by at most one read.
        if input.capacity() - input.len() < 4096 {
            input.reserve(INITIAL_BUFFER);
        }
        gauge.update(&mut held, input.capacity() + out.capacity());
    }
    gauge.update(&mut held, 0);
    session.batch_done();
    let _ = stream.shutdown().await;
}

/// Resolves when `kill` is cancelled; never without one.
async fn cancelled(kill: Option<&CancellationToken>) {
    match kill {
        Some(kill) => kill.cancelled().await,
        None => std::future::pending().await,
    }
}

/// The next push; never without a queue.
async fn next_push<I: Inbox>(inbox: Option<&mut I>) -> Option<I::Push> {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes `out`, giving up if the connection is cut off meanwhile (its
/// client may never read). False if the connection is done.
async fn write_all<T: AsyncWrite + Unpin>(stream: &mut T, out: &[u8], kill: Option<&CancellationToken>) -> bool {
    match kill {
        Some(kill) => tokio::select! {
            biased;
            _ = kill.cancelled() => false,
            written = stream.write_all(out) => written.is_ok(),
        },
        None => stream.write_all(out).await.is_ok(),
    }
}

/// Reads what is available into `input`; `Ok(0)` (as at end of stream)
/// once the connection has been idle for `idle`.
async fn read_some<T: AsyncRead + Unpin>(
    stream: &mut T,
    input: &mut BytesMut,
    idle: Option<Duration>,
) -> std::io::Result<usize> {
    if input.capacity() - input.len() < 4096 {
        input.reserve(INITIAL_BUFFER);
    }
    match idle {
        Some(timeout) => tokio::time::timeout(timeout, stream.read_buf(input))
            .await
            .unwrap_or(Ok(0)),
        None => stream.read_buf(input).await,
    }
}
