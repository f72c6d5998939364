//! The power-loss test: the journal over a model of a disk that keeps only
//! what was synced, crashed after every file operation in turn.
//!
//! A process crash (`tests/journal.rs` kills a writer with SIGKILL) cannot
//! show a missing fsync: the kernel's page cache outlives the process and
//! writes everything out anyway. A power cut does not, and a real one is
//! not something a test can arrange. So [`SimFs`] implements the journal's
//! file operations ([`JournalFs`]) over memory, keeping two states:
//!
//! - for each file, its contents (what reads see) and its durable contents
//!   (as of its last `fdatasync`/`fsync`);
//! - for each directory, its entries and its durable entries (as of its
//!   last `fsync`), with the name changes since then (create, rename,
//!   remove) in a list.
//!
//! [`SimFs::after_power_loss`] builds the disk a reboot would find: each
//! directory's durable entries plus *any subset* of its unsynced name
//! changes (file systems do not promise to keep them in order), reachable
//! from the root only through durable-or-kept names (a directory whose
//! own name was lost takes its contents with it); each file's durable
//! contents plus a prefix of what was appended after them. It does that
//! three ways for every crash point: keep nothing unsynced, keep
//! everything (a process crash), and random choices from a seed.
//!
//! The workload opens the journal in a directory that does not exist yet,
//! appends (rolling small segments), marks entries flushed (checkpoints,
//! segment deletions), drops and reopens it; the test runs it with the
//! power cut after 0, 1, 2, … operations until it completes, and for every
//! image checks: the journal opens (no damage reported), nothing is
//! claimed flushed that the origin was not given, every acknowledged write
//! is either replayed (same seq, same write) or flushed, and new seqs
//! follow every acknowledged one. Removing any one `fsync` of a file or a
//! directory from the journal makes it fail.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use super::fs::{JournalFile, JournalFs, LockGuard};
use super::{Entry, Journal, JournalConfig, JournalError};
use crate::origin::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(usize),
    Dir,
}

/// A name change not yet made durable by syncing its directory.
#[derive(Clone, Debug)]
enum NameChange {
    Link(OsString, Node),
    Unlink(OsString),
    Rename(OsString, OsString, Node),
}

impl NameChange {
    fn apply(&self, entries: &mut BTreeMap<OsString, Node>) {
        match self {
            NameChange::Link(name, node) => {
                entries.insert(name.clone(), *node);
            }
            NameChange::Unlink(name) => {
                entries.remove(name);
            }
            NameChange::Rename(from, to, node) => {
                entries.remove(from);
                entries.insert(to.clone(), *node);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Dir {
    entries: BTreeMap<OsString, Node>,
    durable: BTreeMap<OsString, Node>,
    unsynced: Vec<NameChange>,
}

impl Dir {
    fn change(&mut self, change: NameChange) {
        change.apply(&mut self.entries);
        self.unsynced.push(change);
    }
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct Disk {
    /// Every directory ever created, by path (none is ever removed).
    dirs: HashMap<PathBuf, Dir>,
    inodes: Vec<Inode>,
    locks: HashSet<PathBuf>,
    /// Operations that may still succeed before the power goes; `None`:
    /// it never goes.
    ops_left: Option<u64>,
    ops_done: u64,
}

/// What survives of the unsynced state in one image.
#[derive(Clone, Copy, Debug)]
enum Keep {
    Nothing,
    Everything,
    Random(u64),
}

impl Keep {
    fn coin(&mut self) -> bool {
        self.below(2) == 1
    }

    /// A number in `0..n` (`n > 0`): 0 for `Nothing`, `n - 1` for
    /// `Everything`.
    fn below(&mut self, n: u64) -> u64 {
        match self {
            Keep::Nothing => 0,
            Keep::Everything => n - 1,
            Keep::Random(state) => splitmix(state) % n,
        }
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The simulated disk (a shared handle).
#[derive(Clone, Debug)]
struct SimFs(Arc<Mutex<Disk>>);

const ROOT: &str = "/";

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss")
}

fn split(path: &Path) -> io::Result<(&Path, OsString)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name.to_owned())),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "no parent")),
    }
}

impl SimFs {
    /// A disk holding `/sim`, durably.
    fn new() -> SimFs {
        let mut disk = Disk::default();
        let mut root = Dir::default();
        root.entries.insert("sim".into(), Node::Dir);
        root.durable = root.entries.clone();
        disk.dirs.insert(PathBuf::from(ROOT), root);
        disk.dirs.insert(PathBuf::from("/sim"), Dir::default());
        SimFs(Arc::new(Mutex::new(disk)))
    }

    /// The power goes after `ops` more operations.
    fn cut_power_after(&self, ops: u64) {
        self.0.lock().ops_left = Some(ops);
    }

    fn ops_done(&self) -> u64 {
        self.0.lock().ops_done
    }

    /// Counts one operation, or fails it once the power is gone.
    fn op(&self) -> io::Result<MutexGuard<'_, Disk>> {
        let mut disk = self.0.lock();
        match &mut disk.ops_left {
            Some(0) => return Err(power_lost()),
            Some(left) => *left -= 1,
            None => {}
        }
        disk.ops_done += 1;
        Ok(disk)
    }

    /// The disk a reboot finds (see the module docs).
    fn after_power_loss(&self, mut keep: Keep) -> SimFs {
        let disk = self.0.lock();
        let mut image = Disk::default();
        let mut inode_map: HashMap<usize, usize> = HashMap::new();
        let mut stack = vec![PathBuf::from(ROOT)];
        while let Some(path) = stack.pop() {
            let Some(dir) = disk.dirs.get(&path) else { continue };
            let mut entries = dir.durable.clone();
            for change in &dir.unsynced {
                if keep.coin() {
                    change.apply(&mut entries);
                }
            }
            for (name, node) in &mut entries {
                match node {
                    Node::Dir => stack.push(path.join(name)),
                    Node::File(ino) => {
                        let new = *inode_map.entry(*ino).or_insert_with(|| {
                            let inode = &disk.inodes[*ino];
                            let data = surviving_data(inode, &mut keep);
                            image.inodes.push(Inode {
                                data: data.clone(),
                                durable: data,
                            });
                            image.inodes.len() - 1
                        });
                        *node = Node::File(new);
                    }
                }
            }
            image.dirs.insert(
                path,
                Dir {
                    durable: entries.clone(),
                    entries,
                    unsynced: Vec::new(),
                },
            );
        }
        SimFs(Arc::new(Mutex::new(image)))
    }
}

/// A file's durable contents plus a prefix of what was appended after them
/// (all of it, or the durable contents alone, when the file was cut
/// shorter since).
fn surviving_data(inode: &Inode, keep: &mut Keep) -> Vec<u8> {
    if inode.data.starts_with(&inode.durable) {
        let extra = (inode.data.len() - inode.durable.len()) as u64;
        let kept = keep.below(extra + 1) as usize;
        inode.data[..inode.durable.len() + kept].to_vec()
    } else if keep.coin() {
        inode.data.clone()
    } else {
        inode.durable.clone()
    }
}

impl Disk {
    fn dir(&mut self, path: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(path).ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn lookup(&mut self, path: &Path) -> io::Result<Node> {
        let (parent, name) = split(path)?;
        self.dir(parent)?
            .entries
            .get(&name)
            .copied()
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn new_file(&mut self, path: &Path) -> io::Result<usize> {
        let (parent, name) = split(path)?;
        let ino = self.inodes.len();
        let dir = self.dir(parent)?;
        if dir.entries.contains_key(&name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        dir.change(NameChange::Link(name, Node::File(ino)));
        self.inodes.push(Inode::default());
        Ok(ino)
    }
}

impl JournalFs for SimFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.op()?;
        let (parent, name) = split(path)?;
        let dir = disk.dir(parent)?;
        if dir.entries.contains_key(&name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        dir.change(NameChange::Link(name, Node::Dir));
        disk.dirs.insert(path.to_owned(), Dir::default());
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut disk = self.op()?;
        match disk.lookup(path)? {
            Node::File(ino) => Ok(disk.inodes[ino].data.clone()),
            Node::Dir => Err(io::Error::other("is a directory")),
        }
    }

    fn list(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let mut disk = self.op()?;
        Ok(disk.dir(path)?.entries.keys().cloned().collect())
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        let ino = self.op()?.new_file(path)?;
        Ok(Box::new(SimFile { fs: self.clone(), ino }))
    }

    fn create_truncate(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        let mut disk = self.op()?;
        let ino = match disk.lookup(path) {
            Ok(Node::File(ino)) => {
                disk.inodes[ino].data.clear();
                ino
            }
            Ok(Node::Dir) => return Err(io::Error::other("is a directory")),
            Err(_) => disk.new_file(path)?,
        };
        Ok(Box::new(SimFile { fs: self.clone(), ino }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn JournalFile>> {
        match self.op()?.lookup(path)? {
            Node::File(ino) => Ok(Box::new(SimFile { fs: self.clone(), ino })),
            Node::Dir => Err(io::Error::other("is a directory")),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.op()?;
        let ((parent, from_name), (to_parent, to_name)) = (split(from)?, split(to)?);
        assert_eq!(parent, to_parent, "the journal renames within its directory");
        let dir = disk.dir(parent)?;
        let node = *dir.entries.get(&from_name).ok_or(io::ErrorKind::NotFound)?;
        dir.change(NameChange::Rename(from_name, to_name, node));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.op()?;
        let (parent, name) = split(path)?;
        let dir = disk.dir(parent)?;
        if !dir.entries.contains_key(&name) {
            return Err(io::ErrorKind::NotFound.into());
        }
        dir.change(NameChange::Unlink(name));
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.op()?;
        let dir = disk.dir(path)?;
        dir.durable = dir.entries.clone();
        dir.unsynced.clear();
        Ok(())
    }

    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        let mut disk = self.op()?;
        if disk.lookup(path).is_err() {
            disk.new_file(path)?;
        }
        if !disk.locks.insert(path.to_owned()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(SimLock {
            fs: self.clone(),
            path: path.to_owned(),
        }))
    }
}

#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    ino: usize,
}

impl JournalFile for SimFile {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.fs.op()?.inodes[self.ino].data.extend_from_slice(bytes);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut disk = self.fs.op()?;
        let inode = &mut disk.inodes[self.ino];
        inode.durable = inode.data.clone();
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        self.fs.op()?.inodes[self.ino].data.resize(len, 0);
        Ok(())
    }
}

#[derive(Debug)]
struct SimLock {
    fs: SimFs,
    path: PathBuf,
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.fs.0.lock().locks.remove(&self.path);
    }
}

// ---------------------------------------------------------------------------
// The workload and the check.

const JOURNAL_DIR: &str = "/sim/node/journal";

fn config() -> JournalConfig {
    JournalConfig {
        dir: PathBuf::from(JOURNAL_DIR),
        limit_bytes: 1 << 20,
        // Two or three records a segment: rolls and deletions all along.
        segment_bytes: 120,
        full_wait: Duration::from_secs(5),
    }
}

fn open(fs: &SimFs) -> Result<(Journal, Vec<Entry>), JournalError> {
    Journal::open_with(config(), Arc::new(fs.clone()))
}

/// What the workload got done before the power went.
#[derive(Debug, Default)]
struct Outcome {
    /// Every acknowledged write.
    acked: Vec<Entry>,
    /// The origin (a model) has been given every entry through this seq.
    applied_through: u64,
    /// It ran to the end.
    completed: bool,
}

fn write_for(round: u64, i: u64) -> Write {
    let id = format!("r{round}-{i}");
    if i % 5 == 4 {
        Write::Delete { id }
    } else {
        Write::Put {
            id,
            value: "v".repeat((i * 7 % 40) as usize),
        }
    }
}

/// Three lives of a journal: open (the first creates the directory),
/// appends, flushes of all but the newest entry, a drop; the second ends
/// with everything flushed, so the third starts past the newest segment.
fn workload(fs: &SimFs, runtime: &tokio::runtime::Runtime, outcome: &mut Outcome) -> Result<(), JournalError> {
    for round in 0..3 {
        let (journal, _replay) = open(fs)?;
        for i in 0..16 {
            let write = write_for(round, i);
            let seq = runtime.block_on(journal.append(write.clone()))?;
            outcome.acked.push(Entry { seq, write });
            if i % 4 == 3 {
                // The flusher: the origin takes the entries, then the
                // journal forgets them.
                outcome.applied_through = seq - 1;
                journal.mark_flushed(seq - 1)?;
            }
        }
        if round == 1 {
            outcome.applied_through = journal.last_seq();
            journal.mark_flushed(journal.last_seq())?;
        }
    }
    outcome.completed = true;
    Ok(())
}

/// Reopens the journal on a power-loss image and checks that no
/// acknowledged write was lost.
fn check(image: &SimFs, outcome: &Outcome, runtime: &tokio::runtime::Runtime, what: &str) {
    let (journal, replay) = open(image).unwrap_or_else(|error| panic!("{what}: reopen failed: {error}"));
    let flushed = journal.flushed_seq();
    assert!(
        flushed <= outcome.applied_through,
        "{what}: the checkpoint says {flushed} flushed, the origin got only {}",
        outcome.applied_through
    );
    let replayed: Vec<u64> = replay.iter().map(|entry| entry.seq).collect();
    let expected: Vec<u64> = (flushed + 1..flushed + 1 + replay.len() as u64).collect();
    assert_eq!(replayed, expected, "{what}: replay is not consecutive after {flushed}");
    for entry in &outcome.acked {
        if entry.seq <= flushed {
            continue;
        }
        let found = replay.iter().find(|replayed| replayed.seq == entry.seq);
        assert_eq!(
            found,
            Some(entry),
            "{what}: acknowledged seq {} lost (flushed {flushed}, replayed {replayed:?})",
            entry.seq
        );
    }
    let newest_acked = outcome.acked.iter().map(|entry| entry.seq).max().unwrap_or(0);
    let next = runtime
        .block_on(journal.append(Write::put("after", "reboot")))
        .unwrap_or_else(|error| panic!("{what}: append after reboot: {error}"));
    assert!(next > newest_acked, "{what}: seq {next} reused after {newest_acked}");
}

#[test]
fn no_acknowledged_write_is_lost_to_a_power_cut_at_any_point() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut crash_points = 0u64;
    let mut images_with_replay = 0u64;
    for cut_after in 0.. {
        let fs = SimFs::new();
        fs.cut_power_after(cut_after);
        let mut outcome = Outcome::default();
        let result = workload(&fs, &runtime, &mut outcome);
        if outcome.completed {
            result.expect("completed");
            assert_eq!(cut_after, fs.ops_done(), "the last run did not use its whole budget");
            break;
        }
        assert_eq!(fs.ops_done(), cut_after);
        crash_points += 1;
        let mut keeps = vec![Keep::Nothing, Keep::Everything];
        keeps.extend((0..4).map(|n| Keep::Random(cut_after * 1000 + n)));
        for keep in keeps {
            let image = fs.after_power_loss(keep);
            let what = format!("power cut after {cut_after} operations, {keep:?}");
            check(&image, &outcome, &runtime, &what);
            images_with_replay += u64::from(outcome.acked.iter().any(|e| e.seq > outcome.applied_through));
        }
    }
    // The workload really did what the test is about: hundreds of
    // operations, most crash points with acknowledged, unflushed writes.
    assert!(crash_points > 200, "only {crash_points} crash points");
    assert!(
        images_with_replay > crash_points,
        "{images_with_replay} images replayed anything"
    );
}
