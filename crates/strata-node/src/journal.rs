//! Write-behind's durable journal: a write is acknowledged once it is on
//! disk here, and a flusher later applies journaled writes to the origin in
//! batches, in order, then marks them flushed so their space is reclaimed.
//!
//! # Layout
//!
//! - [`JournalConfig`], [`Journal`], [`Entry`], [`JournalError`]: the API.
//! - The writer thread (`Writer`): the one owner of the active segment file;
//!   group commit happens there.
//! - Recovery (`recover`): what [`Journal::open`] does before serving.
//! - The record and checkpoint codecs: pure functions over bytes
//!   (`encode_record`, `decode_record`, `parse_segment`, `encode_checkpoint`,
//!   `decode_checkpoint`), unit-tested without files.
//!
//! # On-disk format
//!
//! A directory holds segment files `journal-<firstseq>.log` (the first seq
//! zero-padded to 20 digits so that names sort) and a `checkpoint` file.
//! A segment is a run of records with consecutive seqs, starting at the
//! seq in its name; a new segment is started when the next record would
//! take the active one past `segment_bytes` (a record larger than that gets
//! a segment of its own). All integers are little-endian:
//!
//! ```text
//! record     = magic u32 ("STJ1") | body_len u32 | crc32 u32 | body
//! body       = seq u64 | write
//! write      = 1 u8 | id_len u32 | id | value_len u32 | value     (Put)
//!            | 2 u8 | id_len u32 | id                             (Delete)
//! crc32      = CRC-32 (IEEE) of body_len's four bytes followed by body
//! checkpoint = magic u32 ("STJC") | flushed_seq u64 | crc32 u32 of the first 12 bytes
//! ```
//!
//! The encoding is hand-rolled rather than JSON: it is a dozen lines, has no
//! escaping, and the journal's hot path is the fsync, not the encoder, but
//! there is no reason to pay for more. The magic lets recovery tell "zeros or
//! garbage after a torn write" from "a valid record follows the damage".
//!
//! # Group commit
//!
//! One dedicated std thread owns the active segment. [`Journal::append`]
//! reserves room, sends the encoded write over a channel and awaits a
//! oneshot answer. The thread takes everything queued, gives the records
//! consecutive seqs, writes them with one `write(2)`, calls `fdatasync` once
//! and only then answers every appender. While it waits on the disk, new
//! appends queue up and form the next batch, so the batch size adapts to
//! the fsync latency: with N concurrent appenders one fsync carries up to N
//! writes. A std thread rather than `spawn_blocking` because it is one
//! long-lived owner of the file (no task per batch, no lock on the file),
//! and because fsync must never block a tokio worker.
//!
//! # Crash safety
//!
//! 1. An append is acknowledged only after the `fdatasync` covering its
//!    record returned success, and, if the record opened a new segment,
//!    after the directory was fsynced to make that file's name durable.
//! 2. Records are only ever appended, in seq order, and a segment is fsynced
//!    before its successor is created. So bytes a crash can damage (those
//!    written after the last successful fsync, never acknowledged) lie at
//!    the tail of the newest segment. Recovery reads every segment and
//!    truncates the newest at its first record that is incomplete or fails
//!    its checksum, provided no valid record follows it. Damage anywhere
//!    else — in an older segment, or followed by a valid record — is
//!    reported as [`JournalError::Corrupt`], never skipped: it may have hit
//!    acknowledged writes. (After a power loss a file system may persist
//!    unsynced pages out of order, leaving a valid unacknowledged record
//!    after a damaged one; that is reported as corrupt too, a false alarm
//!    we accept rather than guess.)
//! 3. [`Journal::mark_flushed`] writes the checkpoint to a temporary file,
//!    fsyncs it, renames it over `checkpoint` and fsyncs the directory, so
//!    either the old or the new flushed seq survives a crash. Segments are
//!    deleted only after the checkpoint covering them is durable; a crash in
//!    between leaves files that the next open deletes.
//! 4. Seqs are consecutive and strictly increasing across restarts: the
//!    newest segment is never deleted, and the checkpoint keeps the flushed
//!    seq, so the highest seq ever acknowledged is always recoverable. A
//!    seq of a torn (unacknowledged) record may be reused; nothing saw it.
//! 5. Only durable entries are handed to the flusher, so the origin never
//!    sees a write the journal could lose. Flushing is at-least-once: a crash
//!    after the origin applied a batch but before `mark_flushed` replays that
//!    batch, in order, on restart. A re-applied `Put` writes the same value
//!    (its version bumps again), a re-applied `Delete` is a no-op, and
//!    because the replay is in order the final state is the same.
//!
//! # What write-behind loses
//!
//! If fsync is honest: nothing that was acknowledged, whether the process is
//! killed or the machine loses power. A process crash (kill -9, panic, OOM)
//! loses nothing acknowledged even if the disk lies, since the page cache
//! survives it; that is what the crash test in `tests/journal.rs` exercises.
//! If the disk acknowledges flushes it has not done (a volatile write cache
//! without power-loss protection, `nobarrier` mounts, some virtual disks), a
//! power loss can lose acknowledged writes not yet flushed to the origin —
//! at most `limit_bytes` of them — or leave damage that open reports as
//! corrupt. And the journal is local: losing the machine's disk loses the
//! unflushed writes. Until they are flushed, other readers of the origin do
//! not see them either.
//!
//! One [`Journal`] per directory: nothing stops a second process from
//! opening the same directory, which would interleave two writers.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

use crate::origin::Write;

/// Where the journal lives and how large it may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// The journal's directory (created if missing).
    pub dir: PathBuf,
    /// The most bytes of records not yet flushed to the origin (counting
    /// appends in flight); appends beyond it wait, then fail with
    /// [`JournalError::Full`].
    pub limit_bytes: u64,
    /// A new segment file is started when a record would take the active one
    /// past this size.
    pub segment_bytes: u64,
    /// How long an append waits for the flusher to make room before failing.
    pub full_wait: Duration,
}

impl JournalConfig {
    /// A journal in `dir` with 64 MiB of unflushed writes, 8 MiB segments
    /// and a one-second wait for room.
    pub fn new(dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig {
            dir: dir.into(),
            limit_bytes: 64 << 20,
            segment_bytes: 8 << 20,
            full_wait: Duration::from_secs(1),
        }
    }
}

/// One journaled write and its sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Consecutive, strictly increasing across restarts, starting at 1.
    pub seq: u64,
    /// The write to apply to the origin.
    pub write: Write,
}

/// Why the journal could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("journal I/O ({context}): {source}")]
    Io {
        /// What was being done, and to which path.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A segment or the checkpoint holds damage that is not a torn tail.
    #[error("journal corrupt: {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where in it the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The unflushed writes stayed at the limit for the whole `full_wait`.
    #[error(
        "journal full: {unflushed_bytes} of {limit_bytes} bytes unflushed after waiting {waited:?} for the flusher"
    )]
    Full {
        /// Unflushed bytes (with appends in flight) when the wait ended.
        unflushed_bytes: u64,
        /// The configured limit.
        limit_bytes: u64,
        /// How long the append waited.
        waited: Duration,
    },
    /// One entry is larger than the whole journal may hold.
    #[error("journal entry of {record_bytes} bytes exceeds the journal's limit of {limit_bytes} bytes")]
    TooLarge {
        /// The encoded entry's size.
        record_bytes: u64,
        /// The configured limit (or the format's, 4 GiB).
        limit_bytes: u64,
    },
    /// `mark_flushed` named a seq the journal has not made durable.
    #[error("cannot mark seq {seq} flushed: the journal's last durable seq is {last_seq}")]
    NotJournaled {
        /// The seq asked for.
        seq: u64,
        /// The last durable seq.
        last_seq: u64,
    },
    /// An earlier write or fsync failed; after a failed fsync the file's
    /// contents are unknown, so the journal takes no more appends until it
    /// is reopened (which recovers what is on disk).
    #[error("journal writer failed earlier ({reason}); reopen the journal to recover")]
    Failed {
        /// The first failure.
        reason: String,
    },
}

/// Write-behind's durable journal. `Send + Sync`: share it behind an `Arc`.
///
/// Dropping it waits for the writer thread to finish its current batch.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    /// `Option` only so that `Drop` can close the channel before joining.
    requests: Option<mpsc::Sender<AppendRequest>>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    config: JournalConfig,
    /// A parking_lot mutex, not tokio's: it is held only for in-memory
    /// updates, never across an `.await` or any I/O.
    state: Mutex<State>,
    /// Notified when unflushed bytes drop (or the writer fails).
    room: Notify,
    /// Notified when a batch became durable.
    appended: Notify,
    /// Serialises `mark_flushed` calls: they share `checkpoint.tmp`.
    checkpointing: Mutex<()>,
    /// Batches made durable (one data fsync each, two if it rolled).
    group_commits: AtomicU64,
}

#[derive(Debug)]
struct State {
    /// Durable entries not yet flushed, oldest first, with their encoded
    /// sizes; bounded by `limit_bytes`.
    unflushed: VecDeque<Unflushed>,
    /// The sum of `unflushed`'s record sizes.
    unflushed_bytes: u64,
    /// Bytes reserved by appends the writer has not yet made durable.
    in_flight_bytes: u64,
    flushed_seq: u64,
    /// The last durable seq.
    last_seq: u64,
    /// First seqs of the segment files, oldest first; the last is active.
    segments: Vec<u64>,
    /// Set once a write or fsync failed.
    failed: Option<String>,
}

#[derive(Debug)]
struct Unflushed {
    entry: Entry,
    record_bytes: u64,
}

#[derive(Debug)]
struct AppendRequest {
    write: Write,
    payload: Vec<u8>,
    record_bytes: u64,
    reply: oneshot::Sender<Result<u64, JournalError>>,
}

impl Journal {
    /// Opens (creating) the journal and returns it with every entry not yet
    /// marked flushed, oldest first, to replay. Truncates a torn tail left
    /// by a crash. Blocking (it reads every segment): call it at startup.
    pub fn open(config: JournalConfig) -> Result<(Journal, Vec<Entry>), JournalError> {
        let recovered = recover(&config)?;
        let replay = recovered.unflushed.iter().map(|u| u.entry.clone()).collect();
        let unflushed_bytes = recovered.unflushed.iter().map(|u| u.record_bytes).sum();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                unflushed: recovered.unflushed.into(),
                unflushed_bytes,
                in_flight_bytes: 0,
                flushed_seq: recovered.flushed_seq,
                last_seq: recovered.last_seq,
                segments: recovered.segments,
                failed: None,
            }),
            room: Notify::new(),
            appended: Notify::new(),
            checkpointing: Mutex::new(()),
            group_commits: AtomicU64::new(0),
            config,
        });
        let writer = Writer {
            shared: Arc::clone(&shared),
            file: recovered.active,
            file_bytes: recovered.active_bytes,
            next_seq: recovered.last_seq + 1,
            buf: Vec::new(),
        };
        let (requests, received) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("strata-journal".into())
            .spawn(move || writer.run(received))
            .map_err(|source| JournalError::Io {
                context: "starting the journal writer thread".into(),
                source,
            })?;
        let journal = Journal {
            shared,
            requests: Some(requests),
            writer: Some(writer),
        };
        Ok((journal, replay))
    }

    /// Appends `write` and returns its seq once it is on disk (fdatasync).
    /// Concurrent appends share one fsync.
    ///
    /// When the unflushed bytes would exceed `limit_bytes`, waits up to
    /// `full_wait` for [`mark_flushed`](Self::mark_flushed) to make room,
    /// then fails with [`JournalError::Full`]. An entry larger than
    /// `limit_bytes` fails at once with [`JournalError::TooLarge`]. Waiters
    /// are not queued in order: a small append may pass a large one.
    ///
    /// If the future is dropped after the write was handed to the writer,
    /// the write is still journaled (and will be flushed), unacknowledged.
    pub async fn append(&self, write: Write) -> Result<u64, JournalError> {
        let limit_bytes = self.shared.config.limit_bytes;
        let payload = encode_write(&write);
        let record_bytes = record_len(payload.len());
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(JournalError::TooLarge {
                record_bytes,
                limit_bytes: record_len(MAX_PAYLOAD_BYTES),
            });
        }
        if record_bytes > limit_bytes {
            return Err(JournalError::TooLarge {
                record_bytes,
                limit_bytes,
            });
        }
        let started = tokio::time::Instant::now();
        let deadline = started + self.shared.config.full_wait;
        loop {
            // Registered before the check, so a `mark_flushed` between the
            // check and the await still wakes us.
            let room = self.shared.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            {
                let mut state = self.shared.state.lock();
                if let Some(reason) = &state.failed {
                    return Err(JournalError::Failed { reason: reason.clone() });
                }
                if state.unflushed_bytes + state.in_flight_bytes + record_bytes <= limit_bytes {
                    // No `.await` from here to the send: a cancelled append
                    // cannot leak its reservation.
                    state.in_flight_bytes += record_bytes;
                    break;
                }
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(JournalError::Full {
                    unflushed_bytes: self.unflushed_bytes(),
                    limit_bytes,
                    waited: started.elapsed(),
                });
            }
        }
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            write,
            payload,
            record_bytes,
            reply,
        };
        let sent = self.requests.as_ref().map(|requests| requests.send(request));
        if !matches!(sent, Some(Ok(()))) {
            self.shared.state.lock().in_flight_bytes -= record_bytes;
            return Err(JournalError::Failed {
                reason: "the writer thread has exited".into(),
            });
        }
        answer.await.unwrap_or_else(|_| {
            Err(JournalError::Failed {
                reason: "the writer thread exited before answering".into(),
            })
        })
    }

    /// Up to `max` durable, unflushed entries after `after_seq` (exclusive),
    /// oldest first, from memory.
    pub fn pending(&self, after_seq: u64, max: usize) -> Vec<Entry> {
        let state = self.shared.state.lock();
        let start = state.unflushed.partition_point(|u| u.entry.seq <= after_seq);
        state
            .unflushed
            .range(start..)
            .take(max)
            .map(|u| u.entry.clone())
            .collect()
    }

    /// Records durably that every entry through `seq` reached the origin,
    /// wakes appends waiting for room, and deletes segment files holding
    /// only flushed entries. Blocking (two fsyncs): from async code call it
    /// in `spawn_blocking`. A `seq` at or below the flushed seq is a no-op.
    pub fn mark_flushed(&self, seq: u64) -> Result<(), JournalError> {
        let _checkpointing = self.shared.checkpointing.lock();
        {
            let state = self.shared.state.lock();
            if seq <= state.flushed_seq {
                return Ok(());
            }
            if seq > state.last_seq {
                return Err(JournalError::NotJournaled {
                    seq,
                    last_seq: state.last_seq,
                });
            }
        }
        let dir = &self.shared.config.dir;
        write_checkpoint(dir, seq)?;
        let doomed: Vec<u64> = {
            let mut state = self.shared.state.lock();
            state.flushed_seq = seq;
            while state.unflushed.front().is_some_and(|u| u.entry.seq <= seq) {
                if let Some(flushed) = state.unflushed.pop_front() {
                    state.unflushed_bytes -= flushed.record_bytes;
                }
            }
            take_reclaimable(&mut state)
        };
        self.shared.room.notify_waiters();
        if !doomed.is_empty() {
            delete_segments(dir, doomed)?;
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// How many durable entries are not yet flushed.
    pub fn unflushed_entries(&self) -> usize {
        self.shared.state.lock().unflushed.len()
    }

    /// Bytes of records not yet flushed, counting appends in flight: what
    /// `limit_bytes` bounds.
    pub fn unflushed_bytes(&self) -> u64 {
        let state = self.shared.state.lock();
        state.unflushed_bytes + state.in_flight_bytes
    }

    /// Every entry through this seq has been marked flushed.
    pub fn flushed_seq(&self) -> u64 {
        self.shared.state.lock().flushed_seq
    }

    /// The last durable seq (0 if nothing was ever appended).
    pub fn last_seq(&self) -> u64 {
        self.shared.state.lock().last_seq
    }

    /// How many batches the writer has made durable since open: appends
    /// divided by this is the mean group-commit size.
    pub fn group_commits(&self) -> u64 {
        self.shared.group_commits.load(Ordering::Relaxed)
    }

    /// Resolves once an entry after `after_seq` is durable: the flusher's
    /// wakeup.
    pub async fn wait_appended(&self, after_seq: u64) {
        loop {
            let appended = self.shared.appended.notified();
            let mut appended = std::pin::pin!(appended);
            appended.as_mut().enable();
            if self.last_seq() > after_seq {
                return;
            }
            appended.await;
        }
    }

    /// Resolves once fewer than `bytes` are unflushed (see
    /// [`unflushed_bytes`](Self::unflushed_bytes)).
    pub async fn wait_unflushed_below(&self, bytes: u64) {
        loop {
            let room = self.shared.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            if self.unflushed_bytes() < bytes {
                return;
            }
            room.await;
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop once it has answered
        // everything queued; joining means the files are closed when `drop`
        // returns, so the directory can be reopened at once.
        drop(self.requests.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Removes from the list the sealed segments holding only flushed entries,
/// returning them for deletion. The file is deleted after the list entry,
/// by whoever took it: `mark_flushed`, or the writer when it rolls.
fn take_reclaimable(state: &mut State) -> Vec<u64> {
    let reclaimable = fully_flushed_segments(&state.segments, state.flushed_seq);
    state.segments.drain(..reclaimable).collect()
}

/// Deletes these segment files (already gone is fine); the caller syncs the
/// directory.
fn delete_segments(dir: &Path, first_seqs: impl IntoIterator<Item = u64>) -> Result<(), JournalError> {
    for first_seq in first_seqs {
        let path = dir.join(segment_name(first_seq));
        match fs::remove_file(&path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(io_error(format!("deleting {}", path.display()), error));
            }
            _ => {}
        }
    }
    Ok(())
}

/// How many of the oldest segments hold only entries through `flushed_seq`:
/// all but the active (last) one whose successor starts at or before
/// `flushed_seq + 1`.
fn fully_flushed_segments(segments: &[u64], flushed_seq: u64) -> usize {
    segments
        .windows(2)
        .take_while(|pair| pair[1] <= flushed_seq.saturating_add(1))
        .count()
}

// ---------------------------------------------------------------------------
// The writer thread

/// Owns the active segment; runs on its own thread.
struct Writer {
    shared: Arc<Shared>,
    file: File,
    file_bytes: u64,
    next_seq: u64,
    buf: Vec<u8>,
}

impl Writer {
    fn run(mut self, requests: mpsc::Receiver<AppendRequest>) {
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
        let dir = &self.shared.config.dir;
        let path = dir.join(segment_name(first_seq));
        self.file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|error| io_error(format!("creating {}", path.display()), error))?;
        self.file_bytes = 0;
        let doomed = {
            let mut state = self.shared.state.lock();
            state.segments.push(first_seq);
            take_reclaimable(&mut state)
        };
        if let Err(error) = delete_segments(dir, doomed) {
            // Space, not durability: the next open deletes what is left.
            tracing::warn!(%error, "cannot delete a flushed journal segment");
        }
        sync_dir(dir)
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

// ---------------------------------------------------------------------------
// Recovery

struct Recovered {
    flushed_seq: u64,
    last_seq: u64,
    unflushed: Vec<Unflushed>,
    segments: Vec<u64>,
    active: File,
    active_bytes: u64,
}

fn recover(config: &JournalConfig) -> Result<Recovered, JournalError> {
    let dir = &config.dir;
    fs::create_dir_all(dir).map_err(|error| io_error(format!("creating {}", dir.display()), error))?;
    let leftover = dir.join(CHECKPOINT_TMP);
    match fs::remove_file(&leftover) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(io_error(format!("deleting {}", leftover.display()), error));
        }
        _ => {}
    }
    let flushed_seq = read_checkpoint(dir)?;
    let mut segments = list_segments(dir)?;
    let mut unflushed = Vec::new();
    // The seq the next segment must start at (gaps are allowed only where
    // every missing seq was flushed).
    let mut next_seq: Option<u64> = None;
    let mut active_bytes = 0;
    for (index, &first_seq) in segments.iter().enumerate() {
        let path = dir.join(segment_name(first_seq));
        let corrupt = |offset: u64, reason: String| JournalError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        let expected = next_seq.unwrap_or(flushed_seq + 1);
        if first_seq < expected && next_seq.is_some() {
            return Err(corrupt(
                0,
                format!("starts at seq {first_seq}, overlapping the previous segment"),
            ));
        }
        if first_seq > expected && first_seq - 1 > flushed_seq {
            return Err(corrupt(
                0,
                format!("starts at seq {first_seq}: unflushed entries from seq {expected} are missing"),
            ));
        }
        let bytes = fs::read(&path).map_err(|error| io_error(format!("reading {}", path.display()), error))?;
        let parsed = parse_segment(&bytes, first_seq).map_err(|damage| corrupt(damage.offset, damage.reason))?;
        let newest = index + 1 == segments.len();
        if let Some(torn) = parsed.torn {
            if !newest {
                return Err(corrupt(
                    torn.offset,
                    format!("{} in a segment that is not the newest", torn.reason),
                ));
            }
            tracing::warn!(
                path = %path.display(), offset = torn.offset, reason = torn.reason,
                dropped_bytes = bytes.len() as u64 - torn.offset,
                "truncating the journal's torn tail (never acknowledged)"
            );
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|error| io_error(format!("opening {}", path.display()), error))?;
            file.set_len(torn.offset)
                .and_then(|()| file.sync_all())
                .map_err(|error| io_error(format!("truncating {}", path.display()), error))?;
        }
        if newest {
            active_bytes = parsed.valid_bytes;
        }
        next_seq = Some(first_seq + parsed.records.len() as u64);
        unflushed.extend(
            parsed
                .records
                .into_iter()
                .filter(|record| record.entry.seq > flushed_seq),
        );
    }
    let last_seq = flushed_seq.max(next_seq.map_or(0, |next| next - 1));

    // The newest segment stays active if it ends where the journal does;
    // otherwise (no segment yet, or the checkpoint is ahead of it) start one.
    let active_first = segments.last().copied().filter(|_| next_seq == Some(last_seq + 1));
    let active = match active_first {
        Some(first_seq) => {
            let path = dir.join(segment_name(first_seq));
            OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|error| io_error(format!("opening {}", path.display()), error))?
        }
        None => {
            let path = dir.join(segment_name(last_seq + 1));
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(|error| io_error(format!("creating {}", path.display()), error))?;
            sync_dir(dir)?;
            segments.push(last_seq + 1);
            active_bytes = 0;
            file
        }
    };

    // A crash between a checkpoint and its deletions leaves these behind.
    let reclaimable = fully_flushed_segments(&segments, flushed_seq);
    if reclaimable > 0 {
        delete_segments(dir, segments.drain(..reclaimable))?;
        sync_dir(dir)?;
    }
    Ok(Recovered {
        flushed_seq,
        last_seq,
        unflushed,
        segments,
        active,
        active_bytes,
    })
}

/// First seqs of the directory's segment files, in order. Other files are
/// ignored.
fn list_segments(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let listing = |error| io_error(format!("listing {}", dir.display()), error);
    let mut segments = Vec::new();
    for item in fs::read_dir(dir).map_err(listing)? {
        let name = item.map_err(listing)?.file_name();
        let first_seq = name
            .to_str()
            .and_then(|name| name.strip_prefix("journal-"))
            .and_then(|name| name.strip_suffix(".log"))
            .and_then(|digits| digits.parse::<u64>().ok());
        segments.extend(first_seq);
    }
    segments.sort_unstable();
    Ok(segments)
}

fn segment_name(first_seq: u64) -> String {
    format!("journal-{first_seq:020}.log")
}

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";

fn read_checkpoint(dir: &Path) -> Result<u64, JournalError> {
    let path = dir.join(CHECKPOINT);
    match fs::read(&path) {
        Ok(bytes) => decode_checkpoint(&bytes).ok_or_else(|| JournalError::Corrupt {
            path,
            offset: 0,
            reason: "checkpoint fails its length, magic or checksum".into(),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(io_error(format!("reading {}", path.display()), error)),
    }
}

/// Temp file, fsync, rename, fsync the directory: the old or the new
/// checkpoint survives any crash.
fn write_checkpoint(dir: &Path, flushed_seq: u64) -> Result<(), JournalError> {
    let tmp = dir.join(CHECKPOINT_TMP);
    let io = |error| io_error(format!("writing {}", tmp.display()), error);
    let mut file = File::create(&tmp).map_err(io)?;
    file.write_all(&encode_checkpoint(flushed_seq)).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, dir.join(CHECKPOINT)).map_err(io)?;
    sync_dir(dir)
}

/// Makes the directory's entries (created, renamed, deleted files) durable.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| io_error(format!("syncing directory {}", dir.display()), error))
}

fn io_error(context: String, source: io::Error) -> JournalError {
    JournalError::Io { context, source }
}

// ---------------------------------------------------------------------------
// The codecs: bytes in, values out, no I/O.

const RECORD_MAGIC: [u8; 4] = *b"STJ1";
const CHECKPOINT_MAGIC: [u8; 4] = *b"STJC";
/// magic, body_len, crc32.
const HEADER_BYTES: usize = 12;
const SEQ_BYTES: usize = 8;
/// body_len is a u32 and the body holds the seq as well.
const MAX_PAYLOAD_BYTES: usize = u32::MAX as usize - SEQ_BYTES;
const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;

/// A record's size on disk for a payload (encoded write) of `payload_len`.
fn record_len(payload_len: usize) -> u64 {
    (HEADER_BYTES + SEQ_BYTES) as u64 + payload_len as u64
}

fn encode_write(write: &Write) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, text: &str) {
        // Longer fields make the payload exceed MAX_PAYLOAD_BYTES, which
        // `append` refuses before anything is written.
        out.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    let mut out = Vec::new();
    match write {
        Write::Put { id, value } => {
            out.reserve(9 + id.len() + value.len());
            out.push(KIND_PUT);
            field(&mut out, id);
            field(&mut out, value);
        }
        Write::Delete { id } => {
            out.reserve(5 + id.len());
            out.push(KIND_DELETE);
            field(&mut out, id);
        }
    }
    out
}

fn encode_record(out: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let body_len = ((SEQ_BYTES + payload.len()) as u32).to_le_bytes();
    let seq = seq.to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&body_len);
    crc.update(&seq);
    crc.update(payload);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&body_len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq);
    out.extend_from_slice(payload);
}

/// Why the bytes at an offset are not a record.
#[derive(Debug, PartialEq, Eq)]
enum BadRecord {
    /// Fewer bytes than the header or its length claim: a torn write, or a
    /// damaged length.
    Incomplete,
    /// Wrong magic or checksum: a torn write, or damage.
    Damaged(&'static str),
    /// The checksum holds but the content does not parse: not a torn write.
    Invalid(String),
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes the record at the start of `bytes`: its entry and size.
fn decode_record(bytes: &[u8]) -> Result<(Entry, usize), BadRecord> {
    let header = bytes.get(..HEADER_BYTES).ok_or(BadRecord::Incomplete)?;
    if header[..4] != RECORD_MAGIC {
        return Err(BadRecord::Damaged("bad magic"));
    }
    let body_len = u32_at(header, 4).ok_or(BadRecord::Incomplete)? as usize;
    let crc = u32_at(header, 8).ok_or(BadRecord::Incomplete)?;
    let body = bytes
        .get(HEADER_BYTES..HEADER_BYTES + body_len)
        .ok_or(BadRecord::Incomplete)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[4..8]);
    hasher.update(body);
    if hasher.finalize() != crc {
        return Err(BadRecord::Damaged("checksum mismatch"));
    }
    let seq_bytes = body
        .get(..SEQ_BYTES)
        .ok_or_else(|| BadRecord::Invalid("body shorter than a seq".into()))?;
    let seq = u64::from_le_bytes(seq_bytes.try_into().map_err(|_| BadRecord::Invalid("seq".into()))?);
    let write = decode_write(&body[SEQ_BYTES..]).map_err(BadRecord::Invalid)?;
    Ok((Entry { seq, write }, HEADER_BYTES + body_len))
}

fn decode_write(payload: &[u8]) -> Result<Write, String> {
    fn field(payload: &[u8], at: &mut usize) -> Result<String, String> {
        let len = u32_at(payload, *at).ok_or("truncated field length")? as usize;
        let start = *at + 4;
        let text = payload.get(start..start + len).ok_or("truncated field")?;
        *at = start + len;
        String::from_utf8(text.to_vec()).map_err(|_| "field is not UTF-8".to_string())
    }
    let mut at = 1;
    let write = match payload.first() {
        Some(&KIND_PUT) => Write::Put {
            id: field(payload, &mut at)?,
            value: field(payload, &mut at)?,
        },
        Some(&KIND_DELETE) => Write::Delete {
            id: field(payload, &mut at)?,
        },
        other => return Err(format!("unknown write kind {other:?}")),
    };
    if at != payload.len() {
        return Err(format!("{} stray bytes after the write", payload.len() - at));
    }
    Ok(write)
}

/// A segment's valid records, and where its torn tail starts, if it has one.
#[derive(Debug)]
struct ParsedSegment {
    records: Vec<Unflushed>,
    valid_bytes: u64,
    torn: Option<Torn>,
}

#[derive(Debug, PartialEq, Eq)]
struct Torn {
    offset: u64,
    reason: &'static str,
}

/// Damage that is not a torn tail.
#[derive(Debug, PartialEq, Eq)]
struct Damage {
    offset: u64,
    reason: String,
}

/// Parses a segment whose first record must have seq `first_seq`. A bad
/// record with nothing valid after it is a torn tail; one followed by a
/// valid record, a checksummed record that does not parse, or a seq out of
/// order is damage.
fn parse_segment(bytes: &[u8], first_seq: u64) -> Result<ParsedSegment, Damage> {
    let mut records = Vec::new();
    let mut offset = 0;
    let mut expected_seq = first_seq;
    while offset < bytes.len() {
        let at = offset as u64;
        match decode_record(&bytes[offset..]) {
            Ok((entry, len)) if entry.seq == expected_seq => {
                records.push(Unflushed {
                    entry,
                    record_bytes: len as u64,
                });
                offset += len;
                expected_seq += 1;
            }
            Ok((entry, _)) => {
                return Err(Damage {
                    offset: at,
                    reason: format!("seq {} where {expected_seq} was expected", entry.seq),
                });
            }
            Err(BadRecord::Invalid(reason)) => {
                return Err(Damage {
                    offset: at,
                    reason: format!("checksummed record does not parse: {reason}"),
                });
            }
            Err(bad) => {
                let reason = match bad {
                    BadRecord::Damaged(reason) => reason,
                    _ => "incomplete record",
                };
                if let Some(valid) = next_valid_record(bytes, offset + 1) {
                    return Err(Damage {
                        offset: at,
                        reason: format!("{reason}, followed by a valid record at offset {valid}"),
                    });
                }
                return Ok(ParsedSegment {
                    records,
                    valid_bytes: at,
                    torn: Some(Torn { offset: at, reason }),
                });
            }
        }
    }
    Ok(ParsedSegment {
        records,
        valid_bytes: offset as u64,
        torn: None,
    })
}

/// The offset of the first checksum-valid record at or after `from`.
fn next_valid_record(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(HEADER_BYTES - 1))
        .filter(|&at| bytes[at..].starts_with(&RECORD_MAGIC))
        .find(|&at| decode_record(&bytes[at..]).is_ok())
}

fn encode_checkpoint(flushed_seq: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&CHECKPOINT_MAGIC);
    out[4..12].copy_from_slice(&flushed_seq.to_le_bytes());
    let crc = crc32fast::hash(&out[..12]);
    out[12..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_checkpoint(bytes: &[u8]) -> Option<u64> {
    let bytes: &[u8; 16] = bytes.try_into().ok()?;
    if bytes[..4] != CHECKPOINT_MAGIC || u32_at(bytes, 12)? != crc32fast::hash(&bytes[..12]) {
        return None;
    }
    Some(u64::from_le_bytes(bytes[4..12].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: &str, value: &str) -> Write {
        Write::Put {
            id: id.into(),
            value: value.into(),
        }
    }

    fn segment(first_seq: u64, writes: &[Write]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, write) in (first_seq..).zip(writes) {
            encode_record(&mut out, seq, &encode_write(write));
        }
        out
    }

    fn seqs(parsed: &ParsedSegment) -> Vec<u64> {
        parsed.records.iter().map(|r| r.entry.seq).collect()
    }

    #[test]
    fn journal_is_send_and_sync() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Journal>();
        shareable::<JournalError>();
    }

    #[test]
    fn records_round_trip() {
        let writes = [
            put("a", "1"),
            Write::Delete { id: "b".into() },
            put("", ""),
            put("ключ", "значение"),
        ];
        let bytes = segment(7, &writes);
        let parsed = parse_segment(&bytes, 7).unwrap();
        assert_eq!(parsed.torn, None);
        assert_eq!(parsed.valid_bytes, bytes.len() as u64);
        let decoded: Vec<Write> = parsed.records.iter().map(|r| r.entry.write.clone()).collect();
        assert_eq!(decoded, writes);
        assert_eq!(seqs(&parsed), [7, 8, 9, 10]);
        let sizes: u64 = parsed.records.iter().map(|r| r.record_bytes).sum();
        assert_eq!(sizes, bytes.len() as u64);
        assert_eq!(
            parsed.records[0].record_bytes,
            record_len(encode_write(&writes[0]).len())
        );
    }

    #[test]
    fn every_truncation_is_a_torn_tail() {
        let bytes = segment(1, &[put("a", "one"), put("b", "two"), put("c", "three")]);
        let whole = parse_segment(&bytes, 1).unwrap().records;
        for cut in 0..=bytes.len() {
            let parsed = parse_segment(&bytes[..cut], 1).unwrap();
            // The records that fit whole before the cut survive.
            let mut expected_valid = 0;
            let mut expected_records = 0;
            for record in &whole {
                if expected_valid + record.record_bytes <= cut as u64 {
                    expected_valid += record.record_bytes;
                    expected_records += 1;
                }
            }
            assert_eq!(parsed.valid_bytes, expected_valid, "cut at {cut}");
            assert_eq!(parsed.records.len(), expected_records, "cut at {cut}");
            assert_eq!(parsed.torn.is_some(), expected_valid != cut as u64, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_or_zeros_after_the_last_record_are_a_torn_tail() {
        let mut bytes = segment(1, &[put("a", "one"), put("b", "two")]);
        let good = bytes.len() as u64;
        bytes.extend_from_slice(&[0; 100]);
        let parsed = parse_segment(&bytes, 1).unwrap();
        assert_eq!(seqs(&parsed), [1, 2]);
        assert_eq!(parsed.torn.map(|t| t.offset), Some(good));
        // A half-written record whose checksum fails.
        let mut bytes = segment(1, &[put("a", "one"), put("b", "two")]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let parsed = parse_segment(&bytes, 1).unwrap();
        assert_eq!(seqs(&parsed), [1]);
        assert!(parsed.torn.is_some());
    }

    #[test]
    fn damage_followed_by_a_valid_record_is_corruption() {
        let mut bytes = segment(1, &[put("a", "one"), put("b", "two"), put("c", "three")]);
        bytes[HEADER_BYTES + SEQ_BYTES + 3] ^= 0x01;
        let damage = parse_segment(&bytes, 1).unwrap_err();
        assert_eq!(damage.offset, 0);
        assert!(damage.reason.contains("checksum"), "{}", damage.reason);
        // A damaged length field (reads as incomplete) is caught the same way.
        let mut bytes = segment(1, &[put("a", "one"), put("b", "two")]);
        bytes[5] = 0x7f;
        assert!(parse_segment(&bytes, 1).is_err());
    }

    #[test]
    fn out_of_order_seq_is_corruption() {
        let mut bytes = segment(1, &[put("a", "one")]);
        bytes.extend(segment(3, &[put("b", "two")]));
        let damage = parse_segment(&bytes, 1).unwrap_err();
        assert!(damage.reason.contains("seq 3 where 2"), "{}", damage.reason);
        assert!(parse_segment(&segment(5, &[put("a", "one")]), 4).is_err());
    }

    #[test]
    fn checksummed_garbage_is_corruption() {
        let mut bytes = Vec::new();
        encode_record(&mut bytes, 1, &[9, 9, 9]);
        let damage = parse_segment(&bytes, 1).unwrap_err();
        assert!(damage.reason.contains("unknown write kind"), "{}", damage.reason);
        let mut bytes = Vec::new();
        encode_record(&mut bytes, 1, &[KIND_DELETE, 1, 0, 0, 0, 0xff]);
        assert!(parse_segment(&bytes, 1).unwrap_err().reason.contains("UTF-8"));
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        let bytes = encode_checkpoint(123_456_789);
        assert_eq!(decode_checkpoint(&bytes), Some(123_456_789));
        for at in 0..bytes.len() {
            let mut damaged = bytes;
            damaged[at] ^= 0x10;
            assert_eq!(decode_checkpoint(&damaged), None);
        }
        assert_eq!(decode_checkpoint(&bytes[..15]), None);
    }

    #[test]
    fn fully_flushed_segments_keeps_the_active_one() {
        assert_eq!(fully_flushed_segments(&[1], 100), 0);
        assert_eq!(fully_flushed_segments(&[1, 10, 20], 8), 0);
        assert_eq!(fully_flushed_segments(&[1, 10, 20], 9), 1);
        assert_eq!(fully_flushed_segments(&[1, 10, 20], 19), 2);
        assert_eq!(fully_flushed_segments(&[1, 10, 20], 1000), 2);
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir().join(format!("strata-journal-{name}-{}-{nanos}", std::process::id()));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn appends_survive_reopen_and_segments_roll() {
        let dir = TempDir::new("unit");
        let config = JournalConfig {
            segment_bytes: 100,
            ..JournalConfig::new(&dir.0)
        };
        let (journal, replay) = Journal::open(config.clone()).unwrap();
        assert!(replay.is_empty());
        for i in 0..10 {
            let seq = journal.append(put(&format!("k{i}"), "value")).await.unwrap();
            assert_eq!(seq, i + 1);
        }
        assert_eq!(journal.pending(3, 2).iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
        assert!(list_segments(&dir.0).unwrap().len() > 3);
        journal.mark_flushed(6).unwrap();
        assert_eq!(journal.unflushed_entries(), 4);
        drop(journal);
        let (journal, replay) = Journal::open(config).unwrap();
        assert_eq!(replay.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 8, 9, 10]);
        // Segments holding only seqs through 6 are gone; the oldest left
        // holds seq 7.
        let segments = list_segments(&dir.0).unwrap();
        assert!(
            segments[0] <= 7 && segments.get(1).is_none_or(|&next| next > 7),
            "{segments:?}"
        );
        assert_eq!(journal.append(put("next", "v")).await.unwrap(), 11);
    }
}
