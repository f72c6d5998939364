//! The journal directory's files: segment names and listing, the
//! checkpoint file and its atomic replacement, deleting flushed segments,
//! and syncing the directory so that created, renamed and deleted names
//! are durable.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;

use super::codec::{decode_checkpoint, encode_checkpoint};
use super::{JournalError, io_error};

/// Deletes these segment files (already gone is fine); the caller syncs the
/// directory.
pub(super) fn delete_segments(dir: &Path, first_seqs: impl IntoIterator<Item = u64>) -> Result<(), JournalError> {
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
pub(super) fn fully_flushed_segments(segments: &[u64], flushed_seq: u64) -> usize {
    segments
        .windows(2)
        .take_while(|pair| pair[1] <= flushed_seq.saturating_add(1))
        .count()
}

/// First seqs of the directory's segment files, in order. Other files are
/// ignored.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<u64>, JournalError> {
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

pub(super) fn segment_name(first_seq: u64) -> String {
    format!("journal-{first_seq:020}.log")
}

const CHECKPOINT: &str = "checkpoint";
pub(super) const CHECKPOINT_TMP: &str = "checkpoint.tmp";

pub(super) fn read_checkpoint(dir: &Path) -> Result<u64, JournalError> {
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
pub(super) fn write_checkpoint(dir: &Path, flushed_seq: u64) -> Result<(), JournalError> {
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
pub(super) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
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
