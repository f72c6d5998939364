//! The file operations the journal makes, behind a small trait
//! ([`JournalFs`]) with one production implementation ([`RealFs`], plain
//! `std::fs`).
//!
//! Why a trait for a handful of calls: the journal's promise — nothing
//! acknowledged is lost, even to a power cut — rests on every `fsync` of a
//! file *and of the directory holding it* being in the right place, and a
//! missing one does not show up in any test that only kills the process
//! (the page cache survives that). The power-loss test
//! (`power_loss.rs`, test builds only) implements this trait with a model
//! of a disk that keeps only what was synced, crashes it at every
//! operation in turn, and checks that every acknowledged write survives.
//! Everything the journal does to its directory goes through here, so
//! nothing escapes that model; dynamic dispatch costs nothing next to the
//! fsync each batch pays anyway.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

/// The journal's view of a file system.
pub(super) trait JournalFs: Send + Sync + fmt::Debug {
    /// Creates one directory (`mkdir`): `AlreadyExists` if the name is
    /// taken, `NotFound` if the parent is missing.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// The whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The names in a directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;
    /// A new file for appending; `AlreadyExists` if the name is taken.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn JournalFile>>;
    /// The file emptied (created if missing), for writing.
    fn create_truncate(&self, path: &Path) -> io::Result<Box<dyn JournalFile>>;
    /// An existing file, for appending (and truncating).
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn JournalFile>>;
    /// Renames within one directory, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (files created, renamed, removed in
    /// it) durable: `fsync` of the directory.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing) without
    /// waiting, held until the returned guard is dropped: `WouldBlock` if
    /// someone else holds it.
    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>>;
}

/// An open file.
pub(super) trait JournalFile: Send + fmt::Debug {
    /// Writes all of `bytes` (at the end for files opened to append).
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// `fdatasync`: the data and the length are durable.
    fn sync_data(&mut self) -> io::Result<()>;
    /// `fsync`: the data, the length and the other metadata are durable.
    fn sync_all(&mut self) -> io::Result<()>;
    /// Truncates (or extends) the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// A held lock; released when dropped.
pub(super) trait LockGuard: Send + Sync + fmt::Debug {}

/// `std::fs`, for real.
#[derive(Debug, Default)]
pub(super) struct RealFs;

impl JournalFs for RealFs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(dir)?
            .map(|item| item.map(|item| item.file_name()))
            .collect()
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        let file = OpenOptions::new().create_new(true).append(true).open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn create_truncate(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        Ok(Box::new(RealFile(File::create(path)?)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        Ok(Box::new(RealFile(OpenOptions::new().append(true).open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        // Never truncated, never deleted: deleting a lock file lets a
        // third process lock a new file of the same name while the second
        // still holds the old one.
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        // `flock(LOCK_EX | LOCK_NB)` on Unix: held by this open file
        // description, so a second open in the same process is refused
        // too, and released by the kernel when the process dies, however.
        match file.try_lock() {
            Ok(()) => Ok(Box::new(RealLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(error)) => Err(error),
        }
    }
}

#[derive(Debug)]
struct RealFile(File);

impl JournalFile for RealFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// The lock file, open and locked; closing it releases the lock.
#[derive(Debug)]
struct RealLock {
    _file: File,
}

impl LockGuard for RealLock {}
