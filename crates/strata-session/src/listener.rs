//! The accept loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long the loop pauses after a failed `accept` (out of file
/// descriptors and the like), so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Who gets in: the connection limit and what those past it are told.
#[derive(Clone, Debug)]
pub struct Gate {
    /// One permit per open connection; shared by ports that count
    /// together.
    pub connections: Arc<Semaphore>,
    /// Written to a connection refused for want of a permit, before it is
    /// closed (the protocol's "too many clients" error).
    pub refusal: &'static [u8],
}

/// Accepts connections on `listener` until `shutdown`, then waits for
/// every connection to finish what it has read.
///
/// Each accepted connection (with `TCP_NODELAY` set) is run by `handle`
/// on its own task while holding one of the gate's permits; a connection
/// past the limit is sent the gate's refusal and closed, and
/// `on_refused` is called. A failed `accept` is logged and followed by a
/// short pause.
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    gate: Gate,
    shutdown: CancellationToken,
    mut on_refused: impl FnMut(),
    mut handle: H,
) where
    H: FnMut(TcpStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut clients = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = clients.join_next(), if !clients.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(&gate.connections).try_acquire_owned() else {
            on_refused();
            clients.spawn(refuse(stream, gate.refusal));
            continue;
        };
        let connection = handle(stream);
        clients.spawn(async move {
            connection.await;
            drop(permit);
        });
    }
    // Stop accepting; let every connection finish what it has read.
    drop(listener);
    while clients.join_next().await.is_some() {}
}

async fn refuse(mut stream: TcpStream, message: &'static [u8]) {
    let _ = stream.write_all(message).await;
    let _ = stream.shutdown().await;
}
