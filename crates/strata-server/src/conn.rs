//! The server's side of the session layer (`strata-session`): its
//! protocols' [`Session`] trait, which also counts into per-connection
//! statistics, and [`Served`], which runs such a session on the shared
//! connection loop — flushing its statistics after every batch and
//! handing the loop a RESP connection's push queue.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub(crate) use strata_session::Outcome;

use crate::metrics::{LocalStats, Metrics};
use crate::push::{Inbox, Push};

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

/// A server session with its statistics, as the connection loop runs it.
pub(crate) struct Served<S> {
    session: S,
    stats: LocalStats,
    metrics: Arc<Metrics>,
}

impl<S> Served<S> {
    pub(crate) fn new(session: S, stats: LocalStats, metrics: Arc<Metrics>) -> Self {
        Self {
            session,
            stats,
            metrics,
        }
    }
}

impl<S: Session> strata_session::Session for Served<S> {
    type Inbox = Inbox;

    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> impl Future<Output = Outcome> + Send {
        std::future::ready(self.session.process(input, out, &mut self.stats))
    }

    fn batch_done(&mut self) {
        self.metrics.flush(&mut self.stats);
    }

    fn take_inbox(&mut self) -> Option<Inbox> {
        self.session.take_inbox()
    }

    fn write_pushes(&mut self, pushes: &mut Vec<Push>, out: &mut Vec<u8>) {
        self.session.write_pushes(pushes, out);
    }
}

impl strata_session::Inbox for Inbox {
    type Push = Push;

    fn recv(&mut self) -> impl Future<Output = Option<Push>> + Send {
        Inbox::recv(self)
    }

    fn try_recv(&mut self) -> Option<Push> {
        Inbox::try_recv(self)
    }

    fn kill_token(&self) -> CancellationToken {
        Inbox::kill_token(self)
    }
}
