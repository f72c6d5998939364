//! Regression guard: strata's default policy stays close to the best
//! classical policy of the reference table on a few fast traces.
//!
//! The margin is [`MARGIN_POINTS`] hit-ratio points below the best online
//! column (OPT and Belady excluded). When this was written the adaptive
//! W-TinyLFU scored, against the best column:
//!
//! | trace @ size | adaptive | best | best column |
//! |---|---:|---:|---|
//! | lirs_loop @ 500 | 49.15 | 48.86 | lcs-lirs |
//! | lirs_sprite @ 1000 | 89.00 | 90.64 | lru |
//! | lirs_cs @ 700 | 41.82 | 41.14 | lcs-lirs |
//! | cache2k_web07 @ 2000 | 57.43 | 58.27 | s3fifo |
//!
//! Caffeine's design (hill climber, strict admission) misses this margin on
//! `lirs_sprite` (83.41) and `cache2k_web07` (55.11), and the fixed 1%
//! window on `lirs_sprite` (82.31), so the guard catches a regression to
//! either.
//! Each trace is skipped, loudly, when the public traces are not present
//! (see `strata_sim::trace::trace_for_test`).

use strata_sim::reference;
use strata_sim::trace::{self, SizeMode};
use strata_store::{PolicyKind, Replayer};

/// How far below the best classical policy the adaptive policy may fall.
const MARGIN_POINTS: f64 = 2.5;

fn check(file: &str, table_name: &str, size: u64) {
    let Some(path) = trace::trace_for_test(file) else {
        return;
    };
    let readme = trace::traces_dir().join("README.md");
    let tables = reference::load(&readme).unwrap_or_else(|e| panic!("reading {}: {e}", readme.display()));
    let table = tables
        .iter()
        .find(|t| t.trace == table_name)
        .unwrap_or_else(|| panic!("no reference table for {table_name}"));
    let (column, best) = table
        .best_online(size)
        .unwrap_or_else(|| panic!("no reference row for {table_name} at {size}"));

    let trace = trace::load(&path, SizeMode::Count).unwrap_or_else(|e| panic!("{e}"));
    let mut replay = Replayer::new(PolicyKind::Adaptive, size);
    for request in &trace.requests {
        replay.access(request.key, 1);
    }
    let ours = replay.hit_ratio() * 100.0;
    eprintln!("{table_name}@{size}: adaptive {ours:.2}, best {best:.2} ({column})");
    assert!(
        ours >= best - MARGIN_POINTS,
        "{table_name}@{size}: adaptive {ours:.2} is more than {MARGIN_POINTS} points below {column} ({best:.2})"
    );
}

#[test]
fn loop_at_500() {
    check("lirs_loop.txt.gz", "lirs_loop", 500);
}

#[test]
fn sprite_at_1000() {
    check("lirs_sprite.txt.gz", "lirs_sprite", 1000);
}

#[test]
fn cs_at_700() {
    check("lirs_cs.txt.gz", "lirs_cs", 700);
}

#[test]
fn web07_at_2000() {
    check("cache2k_web07.txt.gz", "cache2k_web07", 2000);
}
