//! Write-behind's durable journal: a write is acknowledged once it is on
//! disk here, and a flusher later applies journaled writes to the origin in
//! batches, in order, then marks them flushed so their space is reclaimed.
//!
//! # Layout
//!
//! - `mod.rs` (here): [`JournalConfig`], [`Journal`], [`Entry`],
//!   [`JournalError`]: the API.
//! - `writer.rs`: the writer thread (`Writer`): the one owner of the active
//!   segment file; group commit happens there.
//! - `recover.rs`: recovery (`recover`): what [`Journal::open`] does before
//!   serving.
//! - `codec.rs`: the record and checkpoint codecs: pure functions over bytes
//!   (`encode_record`, `decode_record`, `parse_segment`, `encode_checkpoint`,
//!   `decode_checkpoint`), unit-tested without files.
//! - `files.rs`: the directory's files: creating the directory durably, its
//!   lock, segment names and listing, the checkpoint's atomic replacement,
//!   deleting flushed segments, syncing the directory.
//! - `fs.rs`: the file operations themselves, behind a small trait, so that
//!   the power-loss test (`power_loss.rs`, test builds only) can run the
//!   journal over a model of a disk that keeps only what was synced.
//!
//! # On-disk format
//!
//! A directory holds segment files `journal-<firstseq>.log` (the first seq
//! zero-padded to 20 digits so that names sort), a `checkpoint` file and an
//! empty `lock` file (see "One journal per directory").
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
//! A file's `fsync` makes its contents durable but not its name: a file
//! created, renamed or deleted is durable only once its directory is
//! fsynced, and a directory only once its parent is. So:
//!
//! 0. [`Journal::open`] creates the directory (and missing ancestors),
//!    fsyncing the parent of each — and the journal directory's parent
//!    even when it already existed — before anything is acknowledged.
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
//! 6. The journal forgets what the flusher marks flushed, so the origin's
//!    commit must be durable by then, not merely visible: the SQLite origin
//!    runs `synchronous = FULL` and the PostgreSQL origin never commits with
//!    `synchronous_commit = off` (see their module docs). Otherwise a power
//!    loss right after a checkpoint could take a write from both.
//!
//! # What write-behind loses
//!
//! If fsync is honest: nothing that was acknowledged, whether the process is
//! killed or the machine loses power (given a durable origin, item 6). A process crash (kill -9, panic, OOM)
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
//! The power-loss test (`power_loss.rs`) checks all of this against a model
//! of the disk rather than trusting the argument above: it runs a workload
//! (appends, rolls, checkpoints, deletions, reopens) over a file system that
//! loses everything not synced — unsynced data beyond a random prefix, and
//! any subset of unsynced name changes — crashes it after every single file
//! operation in turn, and checks that every acknowledged write is either
//! replayed or was flushed. Removing any one of the fsyncs durability rests
//! on — a segment's data, a new segment's name (on roll and on open), the
//! checkpoint's data, its rename, the journal directory's name — makes it
//! fail (each was removed by hand to see it fail). Its disk keeps a prefix
//! of unsynced data, never later pages without earlier ones: that case is
//! the false alarm of item 2, an error at open rather than a loss.
//!
//! # One journal per directory
//!
//! Two journals writing one directory would interleave their segments and
//! checkpoints and lose writes. [`Journal::open`] therefore takes an
//! exclusive, non-blocking lock (`flock`, through
//! [`std::fs::File::try_lock`]) on the directory's `lock` file, before it
//! reads or changes anything there, and holds it until the journal is
//! dropped; a second open fails at once with [`JournalError::Locked`],
//! naming the directory. The lock belongs to the open file, not the
//! process, so a second open in the same process is refused too, and the
//! kernel releases it when the holder dies, however it dies: no stale lock
//! to clean up after a crash. (On NFS `flock` may be local to one client;
//! keep the journal on a local disk, which it needs for its fsyncs anyway.)

mod codec;
mod files;
mod fs;
#[cfg(test)]
mod power_loss;
mod recover;
mod writer;

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

use crate::origin::Write;
use codec::{MAX_PAYLOAD_BYTES, encode_write, record_len};
use files::{delete_segments, fully_flushed_segments, sync_dir, write_checkpoint};
use fs::{JournalFs, LockGuard, RealFs};
use recover::recover;
use writer::Writer;

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
    /// Another journal (in this process or another) has the directory open.
    #[error(
        "journal directory {} is in use: another strata node (or another journal in this process) holds its lock",
        dir.display()
    )]
    Locked {
        /// The journal directory.
        dir: PathBuf,
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
    /// The directory's lock, released after the writer has stopped (fields
    /// drop after `Drop::drop` has joined it).
    _lock: Box<dyn LockGuard>,
}

#[derive(Debug)]
struct Shared {
    config: JournalConfig,
    /// Every file operation goes through here (`fs.rs`).
    fs: Arc<dyn JournalFs>,
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
    ///
    /// Fails with [`JournalError::Locked`] while another journal has the
    /// directory open.
    pub fn open(config: JournalConfig) -> Result<(Journal, Vec<Entry>), JournalError> {
        Journal::open_with(config, Arc::new(RealFs))
    }

    /// [`Journal::open`] over the file system `fs`.
    fn open_with(config: JournalConfig, fs: Arc<dyn JournalFs>) -> Result<(Journal, Vec<Entry>), JournalError> {
        let recovered = recover(&*fs, &config)?;
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
            fs,
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
            _lock: recovered.lock,
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
        let (fs, dir) = (&*self.shared.fs, &self.shared.config.dir);
        write_checkpoint(fs, dir, seq)?;
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
            delete_segments(fs, dir, doomed)?;
            sync_dir(fs, dir)?;
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

fn io_error(context: String, source: io::Error) -> JournalError {
    JournalError::Io { context, source }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::files::list_segments;
    use super::*;

    #[test]
    fn journal_is_send_and_sync() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Journal>();
        shareable::<JournalError>();
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
            let seq = journal.append(Write::put(format!("k{i}"), "value")).await.unwrap();
            assert_eq!(seq, i + 1);
        }
        assert_eq!(journal.pending(3, 2).iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
        assert!(list_segments(&RealFs, &dir.0).unwrap().len() > 3);
        journal.mark_flushed(6).unwrap();
        assert_eq!(journal.unflushed_entries(), 4);
        drop(journal);
        let (journal, replay) = Journal::open(config).unwrap();
        assert_eq!(replay.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 8, 9, 10]);
        // Segments holding only seqs through 6 are gone; the oldest left
        // holds seq 7.
        let segments = list_segments(&RealFs, &dir.0).unwrap();
        assert!(
            segments[0] <= 7 && segments.get(1).is_none_or(|&next| next > 7),
            "{segments:?}"
        );
        assert_eq!(journal.append(Write::put("next", "v")).await.unwrap(), 11);
    }
}
