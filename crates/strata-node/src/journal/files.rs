//! The journal directory's files: creating the directory durably, its
//! lock, segment names and listing, the checkpoint file and its atomic
//! replacement, deleting flushed segments, and syncing the directory so
//! that created, renamed and deleted names are durable.
//!
//! The rule: a file's `fsync` makes its contents durable, not its name. A
//! name created, renamed or removed is durable only once the directory
//! holding it is fsynced, and a directory just created only once its
//! parent is. Every function here that changes a name either syncs the
//! directory itself or says that its caller does.

use std::io;
use std::path::Path;

use super::codec::{decode_checkpoint, encode_checkpoint};
use super::fs::{JournalFs, LockGuard};
use super::{JournalError, io_error};

/// The lock file inside the journal directory: held (`flock`) for the
/// journal's life, so two journals never write one directory.
pub(super) const LOCK: &str = "lock";

/// Creates `dir` and any missing ancestors, and fsyncs the parent of
/// `dir` and of every ancestor it had to create, so that the directory
/// survives a power loss. The parent is synced even when `dir` already
/// existed: it may have been made by `mkdir`, or by an earlier open that
/// crashed before syncing, and one fsync at startup is cheap.
pub(super) fn create_dir_durably(fs: &dyn JournalFs, dir: &Path) -> Result<(), JournalError> {
    let creating = |error| io_error(format!("creating directory {}", dir.display()), error);
    match fs.create_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = parent_of(dir) {
                create_dir_durably(fs, parent)?;
            }
            match fs.create_dir(dir) {
                Err(error) if error.kind() != io::ErrorKind::AlreadyExists => return Err(creating(error)),
                _ => {}
            }
        }
        Err(error) => return Err(creating(error)),
    }
    match parent_of(dir) {
        Some(parent) => sync_dir(fs, parent),
        None => Ok(()),
    }
}

/// The directory holding `path` (`.` for a bare relative name), or `None`
/// for a root.
fn parent_of(path: &Path) -> Option<&Path> {
    match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Some(Path::new(".")),
        parent => parent,
    }
}

/// Locks the journal directory for this process, or says who holds it.
pub(super) fn lock_dir(fs: &dyn JournalFs, dir: &Path) -> Result<Box<dyn LockGuard>, JournalError> {
    let path = dir.join(LOCK);
    fs.try_lock(&path).map_err(|error| {
        if error.kind() == io::ErrorKind::WouldBlock {
            JournalError::Locked { dir: dir.to_owned() }
        } else {
            io_error(format!("locking {}", path.display()), error)
        }
    })
}

/// Deletes these segment files (already gone is fine); the caller syncs the
/// directory.
pub(super) fn delete_segments(
    fs: &dyn JournalFs,
    dir: &Path,
    first_seqs: impl IntoIterator<Item = u64>,
) -> Result<(), JournalError> {
    for first_seq in first_seqs {
        let path = dir.join(segment_name(first_seq));
        match fs.remove_file(&path) {
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
pub(super) fn fully_flushed_segments(segments: &[u64], flushed_seq: u64) -> usize {
    segments
        .windows(2)
        .take_while(|pair| pair[1] <= flushed_seq.saturating_add(1))
        .count()
}

/// First seqs of the directory's segment files, in order. Other files are
/// ignored.
pub(super) fn list_segments(fs: &dyn JournalFs, dir: &Path) -> Result<Vec<u64>, JournalError> {
    let names = fs
        .list(dir)
        .map_err(|error| io_error(format!("listing {}", dir.display()), error))?;
    let mut segments = Vec::new();
    for name in names {
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

pub(super) fn segment_name(first_seq: u64) -> String {
    format!("journal-{first_seq:020}.log")
}

const CHECKPOINT: &str = "checkpoint";
pub(super) const CHECKPOINT_TMP: &str = "checkpoint.tmp";

pub(super) fn read_checkpoint(fs: &dyn JournalFs, dir: &Path) -> Result<u64, JournalError> {
    let path = dir.join(CHECKPOINT);
    match fs.read(&path) {
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
pub(super) fn write_checkpoint(fs: &dyn JournalFs, dir: &Path, flushed_seq: u64) -> Result<(), JournalError> {
    let tmp = dir.join(CHECKPOINT_TMP);
    let io = |error| io_error(format!("writing {}", tmp.display()), error);
    let mut file = fs.create_truncate(&tmp).map_err(io)?;
    file.write_all(&encode_checkpoint(flushed_seq)).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs.rename(&tmp, &dir.join(CHECKPOINT)).map_err(io)?;
    sync_dir(fs, dir)
}

/// Makes the directory's entries (created, renamed, deleted files) durable.
pub(super) fn sync_dir(fs: &dyn JournalFs, dir: &Path) -> Result<(), JournalError> {
    fs.sync_dir(dir)
        .map_err(|error| io_error(format!("syncing directory {}", dir.display()), error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fully_flushed_segments_keeps_the_active_one() {
        assert_eq!(fully_flushed_segments(&[1], 100), 0);
        assert_eq!(fully_flushed_segments(&[1, 10, 20], 8), 0);
        assert_eq!(fully_flushed_segments(&[1, 10, 20], 9), 1);
        assert_eq!(fully_flushed_segments(&[1, 10, 20], 19), 2);
        assert_eq!(fully_flushed_segments(&[1, 10, 20], 1000), 2);
    }
}
