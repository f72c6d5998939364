//! The writer thread: the one owner of the active segment file, where
//! group commit happens (see "Group commit" in the module docs).

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};

use super::codec::encode_record;
use super::files::{delete_segments, segment_name, sync_dir};
use super::fs::JournalFile;
use super::{AppendRequest, Entry, JournalError, Shared, Unflushed, io_error, take_reclaimable};

/// Owns the active segment; runs on its own thread.
pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) file: Box<dyn JournalFile>,
    pub(super) file_bytes: u64,
    pub(super) next_seq: u64,
    pub(super) buf: Vec<u8>,
}

impl Writer {
    pub(super) fn run(mut self, requests: mpsc::Receiver<AppendRequest>) {
        let mut failed: Option<String> = None;
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            batch.extend(requests.try_iter());
            if let Some(reason) = &failed {
                self.refuse(batch, || JournalError::Failed { reason: reason.clone() });
                continue;
            }
            match self.write_batch(&batch) {
                Ok(first_seq) => self.commit(batch, first_seq),
                Err(error) => {
                    let reason = error.to_string();
                    tracing::error!(%reason, "journal write failed; refusing further appends");
                    self.shared.state.lock().failed = Some(reason.clone());
                    let mut first_error = Some(error);
                    self.refuse(batch, || {
                        first_error
                            .take()
                            .unwrap_or_else(|| JournalError::Failed { reason: reason.clone() })
                    });
                    failed = Some(reason);
                }
            }
        }
    }

    /// Writes the batch (rolling segments as needed) and fsyncs it; returns
    /// the first seq given out.
    fn write_batch(&mut self, batch: &[AppendRequest]) -> Result<u64, JournalError> {
        let first_seq = self.next_seq;
        self.buf.clear();
        for (seq, request) in (first_seq..).zip(batch) {
            let segment_bytes = self.file_bytes + self.buf.len() as u64;
            if segment_bytes > 0 && segment_bytes + request.record_bytes > self.shared.config.segment_bytes {
                self.write_out()?;
                self.roll(seq)?;
            }
            encode_record(&mut self.buf, seq, &request.payload);
        }
        self.write_out()?;
        self.next_seq = first_seq + batch.len() as u64;
        Ok(first_seq)
    }

    /// Writes the buffer to the active segment and fdatasyncs it (which also
    /// makes the file's new length durable).
    fn write_out(&mut self) -> Result<(), JournalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let io = |what: &str, error| io_error(format!("{what} the active journal segment"), error);
        self.file.write_all(&self.buf).map_err(|e| io("writing", e))?;
        self.file.sync_data().map_err(|e| io("syncing", e))?;
        self.file_bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Starts segment `journal-<first_seq>.log` (the previous one is
    /// synced). If the flusher has already flushed everything in the segment
    /// just sealed (or older ones), deletes them too: one directory fsync
    /// covers both.
    fn roll(&mut self, first_seq: u64) -> Result<(), JournalError> {
        let (fs, dir) = (&*self.shared.fs, &self.shared.config.dir);
        let path = dir.join(segment_name(first_seq));
        self.file = fs
            .create_new(&path)
            .map_err(|error| io_error(format!("creating {}", path.display()), error))?;
        self.file_bytes = 0;
        let doomed = {
            let mut state = self.shared.state.lock();
            state.segments.push(first_seq);
            take_reclaimable(&mut state)
        };
        if let Err(error) = delete_segments(fs, dir, doomed) {
            // Space, not durability: the next open deletes what is left.
            tracing::warn!(%error, "cannot delete a flushed journal segment");
        }
        // The new segment's name: without this, records acknowledged in it
        // could vanish with the name after a power loss.
        sync_dir(fs, dir)
    }

    /// The batch is durable: hand it to the flusher's view, then answer.
    fn commit(&mut self, batch: Vec<AppendRequest>, first_seq: u64) {
        let mut replies = Vec::with_capacity(batch.len());
        {
            let mut state = self.shared.state.lock();
            for (seq, request) in (first_seq..).zip(batch) {
                state.in_flight_bytes -= request.record_bytes;
                state.unflushed_bytes += request.record_bytes;
                state.unflushed.push_back(Unflushed {
                    entry: Entry {
                        seq,
                        write: request.write,
                    },
                    record_bytes: request.record_bytes,
                });
                state.last_seq = seq;
                replies.push((request.reply, seq));
            }
        }
        self.shared.group_commits.fetch_add(1, Ordering::Relaxed);
        self.shared.appended.notify_waiters();
        for (reply, seq) in replies {
            let _ = reply.send(Ok(seq));
        }
    }

    /// Answers every request in the batch with an error and releases its
    /// reservation.
    fn refuse(&mut self, batch: Vec<AppendRequest>, mut error: impl FnMut() -> JournalError) {
        self.shared.state.lock().in_flight_bytes -= batch.iter().map(|r| r.record_bytes).sum::<u64>();
        self.shared.room.notify_waiters();
        for request in batch {
            let _ = request.reply.send(Err(error()));
        }
    }
}
