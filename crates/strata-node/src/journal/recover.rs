//! Recovery: what `Journal::open` does before serving. Creates the
//! directory durably and locks it, reads the checkpoint and every segment,
//! truncates a torn tail of the newest segment, refuses any other damage,
//! opens (or starts) the active segment and deletes segments a crash left
//! behind after their checkpoint.

use std::io;

use super::codec::parse_segment;
use super::files::{
    CHECKPOINT_TMP, create_dir_durably, delete_segments, fully_flushed_segments, list_segments, lock_dir,
    read_checkpoint, segment_name, sync_dir,
};
use super::fs::{JournalFile, JournalFs, LockGuard};
use super::{JournalConfig, JournalError, Unflushed, io_error};

pub(super) struct Recovered {
    /// Held for the journal's life.
    pub(super) lock: Box<dyn LockGuard>,
    pub(super) flushed_seq: u64,
    pub(super) last_seq: u64,
    pub(super) unflushed: Vec<Unflushed>,
    pub(super) segments: Vec<u64>,
    pub(super) active: Box<dyn JournalFile>,
    pub(super) active_bytes: u64,
}

pub(super) fn recover(fs: &dyn JournalFs, config: &JournalConfig) -> Result<Recovered, JournalError> {
    let dir = &config.dir;
    create_dir_durably(fs, dir)?;
    // Before anything in the directory is read or changed.
    let lock = lock_dir(fs, dir)?;
    let leftover = dir.join(CHECKPOINT_TMP);
    match fs.remove_file(&leftover) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(io_error(format!("deleting {}", leftover.display()), error));
        }
        _ => {}
    }
    // The lock file's name and the leftover's removal: not needed for
    // safety (a leftover that comes back is removed again), but it leaves
    // no name change in the directory unsynced.
    sync_dir(fs, dir)?;
    let flushed_seq = read_checkpoint(fs, dir)?;
    let mut segments = list_segments(fs, dir)?;
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
        let bytes = fs
            .read(&path)
            .map_err(|error| io_error(format!("reading {}", path.display()), error))?;
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
            let mut file = fs
                .open_append(&path)
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
            fs.open_append(&path)
                .map_err(|error| io_error(format!("opening {}", path.display()), error))?
        }
        None => {
            let path = dir.join(segment_name(last_seq + 1));
            let file = fs
                .create_new(&path)
                .map_err(|error| io_error(format!("creating {}", path.display()), error))?;
            sync_dir(fs, dir)?;
            segments.push(last_seq + 1);
            active_bytes = 0;
            file
        }
    };

    // A crash between a checkpoint and its deletions leaves these behind.
    let reclaimable = fully_flushed_segments(&segments, flushed_seq);
    if reclaimable > 0 {
        delete_segments(fs, dir, segments.drain(..reclaimable))?;
        sync_dir(fs, dir)?;
    }
    Ok(Recovered {
        lock,
        flushed_seq,
        last_seq,
        unflushed,
        segments,
        active,
        active_bytes,
    })
}
