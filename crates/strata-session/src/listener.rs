//! The accept loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::tls::{Incoming, TlsAcceptor};

/// How long the loop pauses after a failed `accept` (out of file
/// descriptors and the like), so it does not spin.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Who gets in: the connection limit, what those past it are told, and
/// on a TLS port the handshake every connection must pass first.
#[derive(Clone, Debug)]
pub struct Gate {
    /// One permit per open connection; shared by ports that count
    /// together.
    pub connections: Arc<Semaphore>,
    /// Written to a connection refused for want of a permit, before it is
    /// closed (the protocol's "too many clients" error).
    pub refusal: &'static [u8],
    /// On a TLS port, the acceptor: each connection's handshake runs on
    /// its own task ([`Incoming::open`]), within the acceptor's deadline.
    pub tls: Option<TlsAcceptor>,
}

impl Gate {
    /// A plain (not TLS) port's gate.
    pub fn plain(connections: Arc<Semaphore>, refusal: &'static [u8]) -> Self {
        Self {
            connections,
            refusal,
            tls: None,
        }
    }
}

/// Accepts connections on `listener` until `shutdown`, then waits for
/// every connection to finish what it has read.
///
/// Each accepted connection (with `TCP_NODELAY` set) is handed to
/// `handle` as an [`Incoming`], and the future `handle` returns runs on
/// the connection's own task while holding one of the gate's permits; it
/// calls [`Incoming::open`] for the stream to serve (on a TLS port, that
/// is where the handshake happens: never in this loop, so a slow client
/// delays nobody). A connection past the limit is sent the gate's refusal
/// (on a TLS port after the handshake, so the client can read it) and
/// closed, and `on_refused` is called. A failed `accept` is logged and
/// followed by a short pause.
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    gate: Gate,
    shutdown: CancellationToken,
    mut on_refused: impl FnMut(),
    mut handle: H,
) where
    H: FnMut(Incoming) -> F,
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
        let incoming = Incoming::new(stream, gate.tls.clone(), shutdown.clone());
        let Ok(permit) = Arc::clone(&gate.connections).try_acquire_owned() else {
            on_refused();
            clients.spawn(refuse(incoming, gate.refusal));
            continue;
        };
        let connection = handle(incoming);
        clients.spawn(async move {
            connection.await;
            drop(permit);
        });
    }
    // Stop accepting; let every connection finish what it has read.
    drop(listener);
    while clients.join_next().await.is_some() {}
}

async fn refuse(incoming: Incoming, message: &'static [u8]) {
    let Some(mut stream) = incoming.open().await else {
        return;
    };
    let _ = stream.write_all(message).await;
    let _ = stream.shutdown().await;
}
