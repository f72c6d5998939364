//! Write-behind: the journal in front of the origin, the flusher behind
//! it, and the overlay that lets this node read its own pending writes.
//!
//! A write is acknowledged once [`Journal::append`] has fsynced it. The
//! flusher takes the oldest unflushed entries, applies them to the origin
//! in one transaction, in order, updates L2 with the versions the origin
//! assigned, and only then marks them flushed. A crash between the origin
//! commit and the mark replays those entries on restart: the values end
//! the same, the versions advance once more (at-least-once). When the
//! origin is down the flusher retries with backoff and the journal fills;
//! once full, writes wait `full_wait_ms` for room and then fail with 503 —
//! backpressure, never an unbounded journal and never a silent drop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::WriteBehindSettings;
use crate::journal::{Journal, JournalConfig, JournalError};
use crate::node::{NodeError, NodeInner};
use crate::origin::Write;

/// A write that is journaled but not yet in the origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// The row's new value.
    Put(String),
    /// The row is deleted.
    Delete,
}

#[derive(Debug)]
pub(crate) struct WriteBehind {
    journal: Arc<Journal>,
    /// The newest pending write per id, with its journal seq.
    overlay: Mutex<HashMap<String, (u64, Pending)>>,
    settings: WriteBehindSettings,
    /// Wakes the flusher after an append.
    appended: Notify,
    /// Set once the flusher has stopped.
    stopped: tokio_util::sync::CancellationToken,
}

impl WriteBehind {
    pub(crate) fn open(settings: &WriteBehindSettings) -> Result<Self, NodeError> {
        let (journal, replay) = Journal::open(JournalConfig {
            dir: settings.dir.clone(),
            limit_bytes: settings.limit_bytes,
            segment_bytes: (settings.limit_bytes / 4).clamp(1 << 20, 64 << 20),
            full_wait: Duration::from_millis(settings.full_wait_ms),
        })?;
        let mut overlay = HashMap::new();
        for entry in replay {
            overlay.insert(entry.write.id().to_owned(), (entry.seq, pending_of(&entry.write)));
        }
        if !overlay.is_empty() {
            tracing::info!(
                entries = overlay.len(),
                "write-behind journal has unflushed writes; replaying"
            );
        }
        Ok(WriteBehind {
            journal: Arc::new(journal),
            overlay: Mutex::new(overlay),
            settings: settings.clone(),
            appended: Notify::new(),
            stopped: tokio_util::sync::CancellationToken::new(),
        })
    }

    pub(crate) async fn append(&self, write: Write) -> Result<u64, JournalError> {
        let id = write.id().to_owned();
        let pending = pending_of(&write);
        let seq = self.journal.append(write).await?;
        {
            let mut overlay = self.overlay.lock();
            let newer = overlay.get(&id).is_none_or(|(held, _)| *held < seq);
            if newer {
                overlay.insert(id, (seq, pending));
            }
        }
        self.appended.notify_one();
        Ok(seq)
    }

    pub(crate) fn pending(&self, id: &str) -> Option<Pending> {
        self.overlay.lock().get(id).map(|(_, pending)| pending.clone())
    }

    pub(crate) fn unflushed(&self) -> usize {
        self.journal.unflushed_entries()
    }

    pub(crate) async fn wait_stopped(&self) {
        self.stopped.cancelled().await;
    }
}

fn pending_of(write: &Write) -> Pending {
    match write {
        Write::Put { value, .. } => Pending::Put(value.clone()),
        Write::Delete { .. } => Pending::Delete,
    }
}

/// The flusher: runs until the node shuts down, then makes one last pass.
pub(crate) async fn flush_loop(inner: Arc<NodeInner>) {
    let Some(write_behind) = inner.write_behind() else {
        return;
    };
    let mut after = write_behind.journal.flushed_seq();
    let mut backoff = Duration::from_millis(10);
    let idle = Duration::from_millis(write_behind.settings.flush_interval_ms.max(1));
    loop {
        let stopping = inner.is_shutting_down().is_cancelled();
        let entries = write_behind.journal.pending(after, write_behind.settings.flush_batch);
        if entries.is_empty() {
            if stopping {
                break;
            }
            tokio::select! {
                () = write_behind.appended.notified() => {}
                () = tokio::time::sleep(idle) => {}
                () = inner.is_shutting_down().cancelled() => {}
            }
            continue;
        }
        let writes: Vec<Write> = entries.iter().map(|entry| entry.write.clone()).collect();
        let last_seq = entries.last().map_or(after, |entry| entry.seq);
        match inner.origin.apply(&writes).await {
            Ok(applied) => {
                backoff = Duration::from_millis(10);
                inner.metrics.flushed.inc_by(applied.len() as u64);
                for applied in applied {
                    inner.update_cache(applied).await;
                }
                let journal = Arc::clone(&write_behind.journal);
                let marked = tokio::task::spawn_blocking(move || journal.mark_flushed(last_seq)).await;
                match marked {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::error!(%error, "cannot record the flush; entries will be replayed"),
                    Err(error) => tracing::error!(%error, "flush record task failed"),
                }
                after = last_seq;
                write_behind.overlay.lock().retain(|_, (seq, _)| *seq > last_seq);
            }
            Err(error) => {
                inner.metrics.origin_errors.inc();
                tracing::warn!(%error, pending = write_behind.unflushed(), "write-behind flush failed; retrying");
                if stopping {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = inner.is_shutting_down().cancelled() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    write_behind.stopped.cancel();
}
