//! The memcached session: PLACEHOLDER until the codec lands.

use std::sync::Arc;

use crate::Shared;
use crate::conn::{Outcome, Session};
use crate::metrics::LocalStats;

/// Command names for the metrics.
pub(crate) static COMMAND_NAMES: &[&str] = &["get"];

/// One memcached client.
pub(crate) struct McSession {
    _shared: Arc<Shared>,
}

impl McSession {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { _shared: shared }
    }
}

impl Session for McSession {
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>, _stats: &mut LocalStats) -> Outcome {
        out.extend_from_slice(b"SERVER_ERROR not implemented yet\r\n");
        Outcome {
            consumed: input.len(),
            close: true,
        }
    }
}
