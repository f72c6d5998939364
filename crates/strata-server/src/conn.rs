//! The connection loop both protocols share.
//!
//! Read into one buffer; hand the protocol's [`Session`] everything read so
//! far; it parses and executes every *complete* request at the front,
//! appending replies to one output buffer; write that buffer once; repeat.
//! So a pipeline of N requests that arrives in one read costs one parse pass
//! and one `write` — the batching that makes pipelining pay off. Partial
//! requests stay in the buffer until the rest arrives.
//!
//! The read buffer is bounded: the parsers refuse any request whose
//! declared size exceeds the protocol's limits as soon as its header is in,
//! so the buffer never holds more than one maximal request plus one read.
//!
//! A RESP connection also has a push queue (`push.rs`): the loop waits on
//! it beside the socket, and writes pushes only between batches — those
//! queued while a batch ran go out right after its replies, never inside
//! one, and never before the reply of a read they invalidate. A writer that
//! finds the queue full cancels the connection's kill token, which stops
//! the loop even while it is stuck writing to a client that does not read.
//!
//! Shutdown stops reading; requests already read have already been
//! executed and their replies written, so nothing in flight is lost.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::metrics::LocalStats;
use crate::push::{Inbox, Push};

/// Pushes written in one go at most, and the output size after which the
/// loop writes before taking more, so a flood of pushes is written in
/// bounded slices.
const PUSH_BATCH: usize = 1024;
const PUSH_BATCH_BYTES: usize = 64 * 1024;

/// What a session did with the bytes it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Bytes at the front of the input that were fully handled.
    pub(crate) consumed: usize,
    /// Close the connection once the replies so far are written.
    pub(crate) close: bool,
}

/// One protocol's per-connection state and request execution.
pub(crate) trait Session: Send {
    /// Parses and executes the complete requests at the front of `input`,
    /// appending their replies to `out`.
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>, stats: &mut LocalStats) -> Outcome;

    /// The connection's push queue, taken once by the loop; `None` for a
    /// protocol without pushes.
    fn take_inbox(&mut self) -> Option<Inbox> {
        None
    }

    /// Appends `pushes` to `out` in the connection's current protocol,
    /// draining them.
    fn write_pushes(&mut self, pushes: &mut Vec<Push>, _out: &mut Vec<u8>) {
        pushes.clear();
    }
}

/// Settings of the connection loop.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Close a connection idle this long.
    pub(crate) idle_timeout: Option<Duration>,
    /// Largest read buffer a connection may hold.
    pub(crate) max_buffer: usize,
}

/// What woke the loop.
enum Event {
    Read(std::io::Result<usize>),
    Push(Push),
}

/// Serves one connection until the client leaves, the session asks to
/// close, the connection idles out, a writer cuts it off for not reading
/// its pushes, or the server shuts down.
pub(crate) async fn serve(
    mut stream: TcpStream,
    mut session: impl Session,
    limits: Limits,
    mut stats: LocalStats,
    metrics: &crate::metrics::Metrics,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut out = Vec::with_capacity(16 * 1024);
    let mut inbox = session.take_inbox();
    let kill = inbox.as_ref().map(Inbox::kill_token);
    let mut pushes = Vec::new();
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
            Event::Read(Ok(_)) => {
                let outcome = session.process(&input, &mut out, &mut stats);
                input.advance(outcome.consumed);
                metrics.flush(&mut stats);
                close = outcome.close;
            }
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
            }
        }
        if !out.is_empty() {
            if !write_all(&mut stream, &out, kill.as_ref()).await {
                break;
            }
            out.clear();
            // Give back memory after an unusually large reply.
            if out.capacity() > 4 * 1024 * 1024 {
                out = Vec::with_capacity(16 * 1024);
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
        if input.is_empty() && input.capacity() > 4 * 1024 * 1024 {
            input = BytesMut::with_capacity(16 * 1024);
        }
    }
    metrics.flush(&mut stats);
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
async fn next_push(inbox: Option<&mut Inbox>) -> Option<Push> {
    match inbox {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes `out`, giving up if the connection is cut off meanwhile (its
/// client may never read). False if the connection is done.
async fn write_all(stream: &mut TcpStream, out: &[u8], kill: Option<&CancellationToken>) -> bool {
    match kill {
        Some(kill) => tokio::select! {
            biased;
            _ = kill.cancelled() => false,
            written = stream.write_all(out) => written.is_ok(),
        },
        None => stream.write_all(out).await.is_ok(),
    }
}

async fn read_some(stream: &mut TcpStream, input: &mut BytesMut, idle: Option<Duration>) -> std::io::Result<usize> {
    if input.capacity() - input.len() < 4096 {
        input.reserve(16 * 1024);
    }
    match idle {
        Some(timeout) => match tokio::time::timeout(timeout, stream.read_buf(input)).await {
            Ok(read) => read,
            Err(_) => Ok(0),
        },
        None => stream.read_buf(input).await,
    }
}
