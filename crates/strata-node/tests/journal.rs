//! Black-box tests of write-behind's journal: crash safety under SIGKILL (the
//! test binary re-executes itself as the writer), the directory lock, torn
//! tails, corruption, flushing and restart, backpressure, a model-based
//! property test, and an ignored throughput measurement. (Power loss, which
//! no process kill can show, is tested against a model of the disk in the
//! crate's unit tests: `src/journal/power_loss.rs`.)

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use strata_node::journal::{Entry, Journal, JournalConfig, JournalError};
use strata_node::origin::Write;

/// A directory under cargo's per-target temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "journal-{name}-{}-{}",
            std::process::id(),
            random_seed()
        ));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos ^ u64::from(std::process::id()).rotate_left(32);
    splitmix(&mut state)
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// Segment files, oldest first (names are zero-padded, so they sort).
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_str().unwrap().starts_with("journal-"))
        .collect();
    files.sort();
    files
}

fn first_seq_of(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    name.trim_start_matches("journal-")
        .trim_end_matches(".log")
        .parse()
        .unwrap()
}

fn config(dir: &Path) -> JournalConfig {
    JournalConfig {
        dir: dir.to_owned(),
        limit_bytes: 1 << 20,
        segment_bytes: 512,
        full_wait: Duration::from_millis(10),
    }
}

// ---------------------------------------------------------------------------
// Crash safety: SIGKILL a writer that acknowledges as fast as it can.

const CHILD_DIR: &str = "STRATA_JOURNAL_CHILD_DIR";
const CHILD_ROUND: &str = "STRATA_JOURNAL_CHILD_ROUND";
const CHILD_TASKS: u64 = 16;

fn child_config(dir: &Path) -> JournalConfig {
    JournalConfig {
        dir: dir.to_owned(),
        limit_bytes: 16 << 20,
        // Small segments, so that kills land around rolls and deletions too.
        segment_bytes: 32 << 10,
        full_wait: Duration::from_secs(5),
    }
}

/// The write the child's task `task` makes `i`th in `round`; the id names
/// all three, so any journaled entry can be checked against it.
fn child_write(round: u64, task: u64, i: u64) -> Write {
    let id = format!("r{round}-t{task}-{i}");
    if i % 5 == 4 {
        Write::Delete { id }
    } else {
        let padding = "x".repeat(((i * 37 + task * 11) % 300) as usize);
        Write::Put {
            id,
            value: format!("{round}/{task}/{i}/{padding}"),
        }
    }
}

fn expected_write(id: &str) -> Write {
    let mut parts = id.split('-');
    let mut number = |prefix: &str| -> u64 {
        let part = parts.next().and_then(|part| part.strip_prefix(prefix));
        part.and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("journal holds a foreign id {id:?}"))
    };
    let (round, task, i) = (number("r"), number("t"), number(""));
    child_write(round, task, i)
}

/// Child mode (does nothing unless `STRATA_JOURNAL_CHILD_DIR` is set):
/// appends from several tasks as fast as it can, printing `ACK seq round
/// task i` for each acknowledged write, while a flusher marks all but the
/// newest few hundred entries flushed and prints `FLUSHED seq`. Runs until
/// the parent kills it (or 60 s pass).
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (journal, _replay) = Journal::open(child_config(Path::new(&dir))).unwrap();
        let journal = Arc::new(journal);
        let flusher = Arc::clone(&journal);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let target = flusher.last_seq().saturating_sub(300);
                if target > flusher.flushed_seq() {
                    let journal = Arc::clone(&flusher);
                    tokio::task::spawn_blocking(move || journal.mark_flushed(target))
                        .await
                        .unwrap()
                        .unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "FLUSHED {target}").unwrap();
                    out.flush().unwrap();
                }
            }
        });
        for task in 0..CHILD_TASKS {
            let journal = Arc::clone(&journal);
            tokio::spawn(async move {
                for i in 0.. {
                    let seq = journal.append(child_write(round, task, i)).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {seq} {round} {task} {i}").unwrap();
                    out.flush().unwrap();
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

/// Kills the child if the parent's assertions fail first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = TempDir::new("sigkill");
    let seed = random_seed();
    let mut rng = seed;
    eprintln!("sigkill test seed {seed:#x}");
    // Acknowledged (seq → write) not yet known to be flushed, over all rounds.
    let mut acked: BTreeMap<u64, Write> = BTreeMap::new();
    let mut last_seq_before = 0;
    for round in 0..6 {
        let kill_after = 200 + splitmix(&mut rng) % 3000;
        let mut child = KillOnDrop(
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
                .env(CHILD_DIR, &dir.0)
                .env(CHILD_ROUND, round.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
        let (mut acks, mut max_flushed, mut min_acked) = (0, 0, u64::MAX);
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                break;
            }
            // A line cut off by the kill has no newline; it was never whole.
            let Some(line) = line.strip_suffix('\n') else { break };
            let fields: Vec<u64> = line.split(' ').skip(1).filter_map(|f| f.parse().ok()).collect();
            if line.starts_with("ACK ") {
                let [seq, line_round, task, i] = fields[..] else {
                    panic!("bad line {line:?}")
                };
                assert_eq!(line_round, round);
                assert!(
                    acked.insert(seq, child_write(round, task, i)).is_none(),
                    "seq {seq} acknowledged twice"
                );
                min_acked = min_acked.min(seq);
                acks += 1;
                if round == 0 && acks == 1 {
                    // The child holds the directory: this process is refused.
                    match Journal::open(child_config(&dir.0)) {
                        Err(JournalError::Locked { dir: locked }) => assert_eq!(locked, dir.0),
                        other => panic!("a second process opened a journal in use: {other:?}"),
                    }
                }
                if acks == kill_after {
                    child.0.kill().unwrap(); // SIGKILL
                }
            } else if line.starts_with("FLUSHED ") {
                max_flushed = max_flushed.max(fields[0]);
            }
        }
        let status = child.0.wait().unwrap();
        assert!(
            acks >= kill_after,
            "child exited ({status}) after only {acks} acknowledgements"
        );
        assert!(
            min_acked > last_seq_before,
            "round {round} reused seq {min_acked} (≤ {last_seq_before})"
        );

        let newest = segment_files(&dir.0).pop().unwrap();
        let newest_bytes = fs::metadata(&newest).unwrap().len();
        let (journal, replay) = Journal::open(child_config(&dir.0)).unwrap();
        let torn_bytes = newest_bytes - fs::metadata(&newest).map_or(newest_bytes, |m| m.len());
        let flushed = journal.flushed_seq();
        assert!(
            flushed >= max_flushed,
            "checkpoint {flushed} behind a reported flush {max_flushed}"
        );
        let expected_seqs: Vec<u64> = (flushed + 1..=journal.last_seq()).collect();
        assert_eq!(
            seqs(&replay),
            expected_seqs,
            "replay not consecutive after the checkpoint"
        );
        for entry in &replay {
            assert_eq!(entry.write, expected_write(entry.write.id()), "seq {}", entry.seq);
        }
        acked.retain(|&seq, _| seq > flushed);
        for (&seq, write) in &acked {
            let entry = replay
                .get((seq - flushed - 1) as usize)
                .unwrap_or_else(|| panic!("acknowledged seq {seq} lost (round {round}, seed {seed:#x})"));
            assert_eq!(entry.seq, seq);
            assert_eq!(&entry.write, write, "acknowledged seq {seq} changed");
        }
        eprintln!(
            "round {round}: {acks} acknowledged before SIGKILL, flushed through {flushed}, \
             {} replayed, {torn_bytes} torn bytes truncated, {} segment files",
            replay.len(),
            segment_files(&dir.0).len()
        );
        last_seq_before = journal.last_seq();
    }
}

// ---------------------------------------------------------------------------
// Torn tails and corruption.

#[tokio::test]
async fn torn_tail_is_truncated_and_its_seq_reused() {
    let dir = TempDir::new("torn");
    let config = JournalConfig {
        segment_bytes: 1 << 20,
        ..config(&dir.0)
    };
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 1..=5 {
        journal.append(Write::put(format!("k{i}"), "value")).await.unwrap();
    }
    drop(journal);
    let segment = segment_files(&dir.0).pop().unwrap();
    let whole = fs::metadata(&segment).unwrap().len();

    // Garbage after the last record (a write cut short with its length set).
    let mut file = fs::OpenOptions::new().append(true).open(&segment).unwrap();
    file.write_all(&[0xab; 37]).unwrap();
    drop(file);
    let (journal, replay) = Journal::open(config.clone()).unwrap();
    assert_eq!(seqs(&replay), [1, 2, 3, 4, 5]);
    assert_eq!(fs::metadata(&segment).unwrap().len(), whole);
    drop(journal);

    // The last record cut in half.
    fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(whole - 7)
        .unwrap();
    let (journal, replay) = Journal::open(config.clone()).unwrap();
    assert_eq!(seqs(&replay), [1, 2, 3, 4]);
    assert_eq!(journal.last_seq(), 4);
    assert_eq!(journal.append(Write::put("k5", "again")).await.unwrap(), 5);
    drop(journal);
    let (_journal, replay) = Journal::open(config).unwrap();
    assert_eq!(seqs(&replay), [1, 2, 3, 4, 5]);
    assert_eq!(replay[4].write, Write::put("k5", "again"));
}

#[tokio::test]
async fn damage_before_the_tail_is_an_error() {
    let dir = TempDir::new("corrupt");
    let config = JournalConfig {
        segment_bytes: 120,
        ..config(&dir.0)
    };
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 1..=12 {
        journal.append(Write::put(format!("k{i}"), "some value")).await.unwrap();
    }
    drop(journal);
    let files = segment_files(&dir.0);
    assert!(files.len() >= 3, "{files:?}");
    let flip = |path: &Path, at: usize| {
        let mut bytes = fs::read(path).unwrap();
        bytes[at] ^= 0x20;
        fs::write(path, bytes).unwrap();
    };

    // In the newest segment, the first record damaged and a valid one after.
    let newest = files.last().unwrap();
    assert!(fs::metadata(newest).unwrap().len() > 80);
    flip(newest, 25);
    let error = Journal::open(config.clone()).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error}");
    flip(newest, 25);

    // The tail of an older segment (a torn write there was never possible).
    let older = &files[0];
    let len = fs::metadata(older).unwrap().len() as usize;
    flip(older, len - 1);
    let error = Journal::open(config.clone()).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error}");
    flip(older, len - 1);

    // A missing segment in the middle.
    let saved = fs::read(&files[1]).unwrap();
    fs::remove_file(&files[1]).unwrap();
    let error = Journal::open(config.clone()).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error}");
    fs::write(&files[1], saved).unwrap();

    // A damaged checkpoint.
    let (journal, _) = Journal::open(config.clone()).unwrap();
    journal.mark_flushed(2).unwrap();
    drop(journal);
    flip(&dir.0.join("checkpoint"), 6);
    let error = Journal::open(config.clone()).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error}");
    flip(&dir.0.join("checkpoint"), 6);
    let (_journal, replay) = Journal::open(config).unwrap();
    assert_eq!(seqs(&replay), (3..=12).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------
// Flushing and restarts.

#[tokio::test]
async fn mark_flushed_then_reopen_replays_only_the_unflushed() {
    let dir = TempDir::new("flushed");
    let config = JournalConfig {
        segment_bytes: 100,
        ..config(&dir.0)
    };
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 1..=20 {
        assert_eq!(journal.append(Write::put(format!("k{i}"), "v")).await.unwrap(), i);
    }
    let before = segment_files(&dir.0).len();
    journal.mark_flushed(12).unwrap();
    journal.mark_flushed(7).unwrap(); // already covered: a no-op
    assert_eq!(journal.flushed_seq(), 12);
    assert_eq!(journal.unflushed_entries(), 8);
    assert_eq!(seqs(&journal.pending(0, 100)), (13..=20).collect::<Vec<_>>());
    assert_eq!(seqs(&journal.pending(15, 2)), [16, 17]);
    let after: Vec<u64> = segment_files(&dir.0).iter().map(|p| first_seq_of(p)).collect();
    assert!(after.len() < before, "{before} → {after:?}");
    assert!(after[0] <= 13 && after.get(1).is_none_or(|&s| s > 13), "{after:?}");
    let error = journal.mark_flushed(21).unwrap_err();
    assert!(
        matches!(error, JournalError::NotJournaled { seq: 21, last_seq: 20 }),
        "{error}"
    );
    drop(journal);

    let (journal, replay) = Journal::open(config).unwrap();
    assert_eq!(seqs(&replay), (13..=20).collect::<Vec<_>>());
    assert_eq!(replay[0].write, Write::put("k13", "v"));
    assert_eq!(journal.flushed_seq(), 12);
    assert_eq!(journal.unflushed_entries(), 8);
}

#[tokio::test]
async fn seq_continues_after_restart_even_when_all_flushed() {
    let dir = TempDir::new("seq");
    let config = JournalConfig {
        segment_bytes: 64,
        ..config(&dir.0)
    };
    let (journal, replay) = Journal::open(config.clone()).unwrap();
    assert!(replay.is_empty());
    assert_eq!(journal.last_seq(), 0);
    for i in 1..=9 {
        assert_eq!(journal.append(Write::put("k", i.to_string())).await.unwrap(), i);
    }
    journal.mark_flushed(9).unwrap();
    assert_eq!(journal.unflushed_bytes(), 0);
    assert_eq!(segment_files(&dir.0).len(), 1, "only the active segment stays");
    drop(journal);
    for restart in 0..3 {
        let (journal, replay) = Journal::open(config.clone()).unwrap();
        assert!(replay.is_empty());
        assert_eq!(journal.last_seq(), 9 + restart);
        assert_eq!(journal.append(Write::put("k", "again")).await.unwrap(), 10 + restart);
        journal.mark_flushed(10 + restart).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Limits and backpressure (tokio's paused clock: the waits take no time).

#[tokio::test(start_paused = true)]
async fn full_journal_waits_then_fails_and_takes_writes_once_flushed() {
    let dir = TempDir::new("full");
    let full_wait = Duration::from_millis(500);
    // A Put of a 2-byte id and 10-byte value is 41 bytes: two fit in 100.
    let config = JournalConfig {
        limit_bytes: 100,
        full_wait,
        ..config(&dir.0)
    };
    let (journal, _) = Journal::open(config).unwrap();
    let journal = Arc::new(journal);
    journal.append(Write::put("k1", "0123456789")).await.unwrap();
    journal.append(Write::put("k2", "0123456789")).await.unwrap();
    assert_eq!(journal.unflushed_bytes(), 82);

    let started = tokio::time::Instant::now();
    let error = journal.append(Write::put("k3", "0123456789")).await.unwrap_err();
    assert!(started.elapsed() >= full_wait, "failed after {:?}", started.elapsed());
    let JournalError::Full {
        unflushed_bytes,
        limit_bytes,
        ..
    } = error
    else {
        panic!("expected Full, got {error}");
    };
    assert_eq!((unflushed_bytes, limit_bytes), (82, 100));

    // Too large for the whole journal: refused at once, no waiting.
    let started = tokio::time::Instant::now();
    let error = journal.append(Write::put("big", "x".repeat(100))).await.unwrap_err();
    assert!(
        matches!(error, JournalError::TooLarge { limit_bytes: 100, .. }),
        "{error}"
    );
    assert_eq!(started.elapsed(), Duration::ZERO);

    // A blocked append goes through as soon as the flusher makes room.
    let started = tokio::time::Instant::now();
    let waiting = tokio::spawn({
        let journal = Arc::clone(&journal);
        async move { journal.append(Write::put("k3", "0123456789")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "append did not wait for room");
    journal.mark_flushed(1).unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), 3);
    assert!(started.elapsed() < full_wait);
    assert_eq!(journal.unflushed_entries(), 2);

    // The helper resolves when the flusher frees enough.
    let below = tokio::spawn({
        let journal = Arc::clone(&journal);
        async move { journal.wait_unflushed_below(50).await }
    });
    tokio::task::yield_now().await;
    assert!(!below.is_finished());
    journal.mark_flushed(2).unwrap();
    below.await.unwrap();
}

#[tokio::test]
async fn wait_appended_wakes_the_flusher() {
    let dir = TempDir::new("wake");
    let (journal, _) = Journal::open(config(&dir.0)).unwrap();
    let journal = Arc::new(journal);
    let flusher = tokio::spawn({
        let journal = Arc::clone(&journal);
        async move {
            journal.wait_appended(0).await;
            journal.pending(0, 10)
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!flusher.is_finished());
    journal.append(Write::put("k", "v")).await.unwrap();
    let pending = tokio::time::timeout(Duration::from_secs(5), flusher)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seqs(&pending), [1]);
}

#[tokio::test]
async fn a_directory_in_use_is_refused_until_its_journal_is_dropped() {
    let dir = TempDir::new("locked");
    let (journal, _) = Journal::open(config(&dir.0)).unwrap();
    journal.append(Write::put("k", "v")).await.unwrap();
    // flock belongs to the open file, so a second open in this same
    // process is refused as another process's would be.
    let refused = Journal::open(config(&dir.0)).unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(&refused, JournalError::Locked { dir: locked } if *locked == dir.0),
        "{refused:?}"
    );
    assert!(message.contains(&dir.0.display().to_string()), "{message}");
    // The refused open changed nothing.
    assert_eq!(journal.append(Write::put("k", "w")).await.unwrap(), 2);
    drop(journal);
    let (journal, replay) = Journal::open(config(&dir.0)).unwrap();
    assert_eq!(seqs(&replay), [1, 2]);
    drop(journal);
}

// ---------------------------------------------------------------------------
// Model-based: the journal against a Vec.

#[derive(Clone, Debug)]
enum Op {
    /// Appends these writes concurrently.
    Append(Vec<Write>),
    /// Marks flushed a point between the flushed and the last seq, chosen by
    /// this number.
    MarkFlushed(u64),
    /// Marks flushed past the last seq: refused.
    MarkFlushedBeyond,
    Reopen,
}

fn write_strategy() -> impl Strategy<Value = Write> {
    prop_oneof![
        3 => ("[a-c]{0,3}", ".{0,40}").prop_map(|(id, value)| Write::Put { id, value }),
        1 => "[a-c]{0,3}".prop_map(|id| Write::Delete { id }),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(write_strategy(), 1..6).prop_map(Op::Append),
        3 => any::<u64>().prop_map(Op::MarkFlushed),
        1 => Just(Op::MarkFlushedBeyond),
        2 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn journal_matches_a_vec(segment_bytes in 40u64..600, ops in prop::collection::vec(op_strategy(), 1..30)) {
        let dir = TempDir::new("model");
        let config = JournalConfig { segment_bytes, ..config(&dir.0) };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            // The model: every entry ever appended, and the flushed seq.
            let mut model: Vec<Entry> = Vec::new();
            let mut flushed = 0u64;
            let (journal, replay) = Journal::open(config.clone()).unwrap();
            prop_assert!(replay.is_empty());
            let mut journal = Arc::new(journal);
            for op in ops {
                match op {
                    Op::Append(writes) => {
                        let mut tasks = tokio::task::JoinSet::new();
                        for write in writes {
                            let journal = Arc::clone(&journal);
                            tasks.spawn(async move { (journal.append(write.clone()).await.unwrap(), write) });
                        }
                        let mut appended: Vec<Entry> = tasks
                            .join_all()
                            .await
                            .into_iter()
                            .map(|(seq, write)| Entry { seq, write })
                            .collect();
                        appended.sort_by_key(|e| e.seq);
                        let next = model.last().map_or(0, |e| e.seq) + 1;
                        prop_assert_eq!(seqs(&appended), (next..next + appended.len() as u64).collect::<Vec<_>>());
                        model.extend(appended);
                    }
                    Op::MarkFlushed(choice) => {
                        let last = model.last().map_or(0, |e| e.seq);
                        let target = flushed + choice % (last - flushed + 1);
                        journal.mark_flushed(target).unwrap();
                        flushed = flushed.max(target);
                    }
                    Op::MarkFlushedBeyond => {
                        let last = model.last().map_or(0, |e| e.seq);
                        let refused = matches!(journal.mark_flushed(last + 1), Err(JournalError::NotJournaled { .. }));
                        prop_assert!(refused);
                    }
                    Op::Reopen => {
                        drop(journal);
                        let (reopened, replay) = Journal::open(config.clone()).unwrap();
                        let unflushed: Vec<Entry> = model.iter().filter(|e| e.seq > flushed).cloned().collect();
                        prop_assert_eq!(replay, unflushed);
                        journal = Arc::new(reopened);
                    }
                }
                let unflushed: Vec<Entry> = model.iter().filter(|e| e.seq > flushed).cloned().collect();
                prop_assert_eq!(journal.last_seq(), model.last().map_or(0, |e| e.seq));
                prop_assert_eq!(journal.flushed_seq(), flushed);
                prop_assert_eq!(journal.unflushed_entries(), unflushed.len());
                prop_assert_eq!(journal.unflushed_bytes() == 0, unflushed.is_empty());
                prop_assert_eq!(journal.pending(flushed, usize::MAX), unflushed);
                // No segment but the active one holds only flushed entries.
                let firsts: Vec<u64> = segment_files(&dir.0).iter().map(|p| first_seq_of(p)).collect();
                prop_assert!(!firsts.is_empty());
                for pair in firsts.windows(2) {
                    prop_assert!(pair[1] > flushed + 1, "segments {:?} with flushed {}", firsts, flushed);
                }
            }
            Ok(())
        })?;
    }
}

// ---------------------------------------------------------------------------
// Throughput: `cargo test -p strata-node --test journal -- --ignored --nocapture throughput`

#[test]
#[ignore = "a measurement, not a check; run by hand"]
fn throughput() {
    let seconds = 3.0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for appenders in [1usize, 8, 64] {
        let dir = TempDir::new("throughput");
        let config = JournalConfig {
            dir: dir.0.clone(),
            limit_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            full_wait: Duration::from_secs(5),
        };
        let (journal, _) = Journal::open(config).unwrap();
        let journal = Arc::new(journal);
        let value = "v".repeat(100);
        let appended = runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(seconds);
            let mut tasks = tokio::task::JoinSet::new();
            for task in 0..appenders {
                let journal = Arc::clone(&journal);
                let value = value.clone();
                tasks.spawn(async move {
                    let mut count = 0u64;
                    while tokio::time::Instant::now() < deadline {
                        journal
                            .append(Write::put(format!("t{task}-{count}"), &value))
                            .await
                            .unwrap();
                        count += 1;
                    }
                    count
                });
            }
            tasks.join_all().await.into_iter().sum::<u64>()
        });
        let rate = appended as f64 / seconds;
        println!(
            "{appenders:>3} appenders: {rate:>8.0} appends/s, mean latency {:.3} ms, {:.1} appends per fsync \
             ({appended} appends in {seconds} s)",
            appenders as f64 * 1000.0 / rate,
            appended as f64 / journal.group_commits().max(1) as f64,
        );
    }
}
