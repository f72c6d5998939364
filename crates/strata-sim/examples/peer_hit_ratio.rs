//! Hit ratio of strata's local cache (default policy, default sharding) next
//! to moka and quick_cache, on every trace and size of the reference table,
//! each driven the same way: read; on a miss, insert.
//!
//! `cargo run --release -p strata-sim --example peer_hit_ratio [-- --markdown]`

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_sim::reference::{self, ReferenceTable};
use strata_sim::trace::{self, SizeMode, Trace};
use strata_store::LocalCache;

fn replay(trace: &Trace, size: u64) -> [f64; 3] {
    let strata: LocalCache<u64, u8> = LocalCache::builder().max_capacity(size).build();
    let moka: moka::sync::Cache<u64, u8> = moka::sync::Cache::builder().max_capacity(size).build();
    let quick: quick_cache::sync::Cache<u64, u8> = quick_cache::sync::Cache::new(size as usize);
    let mut hits = [0u64; 3];
    for request in &trace.requests {
        let key = request.key;
        if strata.get(&key).is_some() {
            hits[0] += 1;
        } else {
            let _ = strata.insert(&key, &0);
        }
        if moka.get(&key).is_some() {
            hits[1] += 1;
        } else {
            moka.insert(key, 0);
        }
        if quick.get(&key).is_some() {
            hits[2] += 1;
        } else {
            quick.insert(key, 0);
        }
    }
    hits.map(|h| 100.0 * h as f64 / trace.requests.len() as f64)
}

fn main() {
    let markdown = std::env::args().any(|a| a == "--markdown");
    let dir = trace::traces_dir();
    let tables = reference::load(&reference::default_path()).expect("reference tables (set STRATA_TRACES)");
    let jobs: Vec<(usize, u64)> = tables
        .iter()
        .enumerate()
        .flat_map(|(t, table)| table.rows.iter().map(move |row| (t, row.size)))
        .collect();
    let traces: Vec<Trace> = tables
        .iter()
        .map(|table: &ReferenceTable| {
            let path = reference::trace_path(&dir, &table.trace).expect("trace file");
            trace::load(&path, SizeMode::Count).expect("readable trace")
        })
        .collect();
    let results = Mutex::new(vec![[0.0; 3]; jobs.len()]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(t, size)) = jobs.get(i) else { break };
                    let r = replay(&traces[t], size);
                    results.lock().expect("no panics")[i] = r;
                }
            });
        }
    });
    let results = results.into_inner().expect("no panics");
    if markdown {
        println!("| trace | size | strata | moka | quick_cache | best of table (column) |");
        println!("|---|---:|---:|---:|---:|---|");
    }
    let mut sums = [0.0; 3];
    let mut wins = [0usize; 3];
    for (i, &(t, size)) in jobs.iter().enumerate() {
        let r = results[i];
        let best = tables[t].row(size).and_then(|_| tables[t].best_online(size));
        let best = best.map_or(String::new(), |(c, v)| format!("{v:.2} ({c})"));
        if markdown {
            println!(
                "| {} | {size} | {:.2} | {:.2} | {:.2} | {best} |",
                tables[t].trace, r[0], r[1], r[2]
            );
        } else {
            println!(
                "{:<22} {size:>6}  strata {:6.2}  moka {:6.2}  quick_cache {:6.2}  best {best}",
                tables[t].trace, r[0], r[1], r[2]
            );
        }
        for k in 0..3 {
            sums[k] += r[k];
        }
        let top = r.iter().copied().fold(f64::MIN, f64::max);
        for k in 0..3 {
            if r[k] >= top - 1e-9 {
                wins[k] += 1;
            }
        }
    }
    let n = jobs.len() as f64;
    println!(
        "\nmean hit ratio over {} rows: strata {:.2}, moka {:.2}, quick_cache {:.2}; rows where each is (jointly) best: {} / {} / {}",
        jobs.len(),
        sums[0] / n,
        sums[1] / n,
        sums[2] / n,
        wins[0],
        wins[1],
        wins[2]
    );
}
