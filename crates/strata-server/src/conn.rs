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
//! Shutdown stops reading; requests already read have already been
//! executed and their replies written, so nothing in flight is lost.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::metrics::LocalStats;

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
}

/// Settings of the connection loop.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Close a connection idle this long.
    pub(crate) idle_timeout: Option<Duration>,
    /// Largest read buffer a connection may hold.
    pub(crate) max_buffer: usize,
}

/// Serves one connection until the client leaves, the session asks to
/// close, the connection idles out, or the server shuts down.
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
    loop {
        let read = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            read = read_some(&mut stream, &mut input, limits.idle_timeout) => read,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let outcome = session.process(&input, &mut out, &mut stats);
        input.advance(outcome.consumed);
        metrics.flush(&mut stats);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
            // Give back memory after an unusually large reply.
            if out.capacity() > 4 * 1024 * 1024 {
                out = Vec::with_capacity(16 * 1024);
            }
        }
        if outcome.close {
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
