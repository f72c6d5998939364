//! Local cache throughput: strata's `LocalCache` against moka and
//! quick_cache, side by side in one run.
//!
//! Workload: u64 keys drawn from Zipf(0.99) over 1,000,000 keys; every cache
//! holds 100,000 entries. 90% of operations are reads, used as a cache is:
//! on a miss the value is "loaded" and inserted (read-through); 10% are
//! writes (insert or overwrite). Each thread replays its own pre-generated
//! sequence (so the random number generator is not measured). A warm-up
//! sequence from a different seed fills each cache first; the hit ratio is
//! hits over reads in the measured phase only. Each configuration runs `RUNS` times,
//! interleaved across caches so machine noise hits all of them alike; the
//! table reports min and median ops/s, the hit ratio and the ratio of
//! strata's median to each peer's.
//!
//! `cargo bench -p strata-sim --bench local_cache` (add `-- --ops N` or
//! `-- --runs N` to change the size).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand_distr::{Distribution, Zipf};
use strata_store::LocalCache;

const KEYS: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;

trait Bench: Send + Sync {
    fn get(&self, key: u64) -> bool;
    fn insert(&self, key: u64);
}

struct Strata(LocalCache<u64, u64>);
impl Bench for Strata {
    fn get(&self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&self, key: u64) {
        let _ = self.0.insert(&key, &key);
    }
}

struct Moka(moka::sync::Cache<u64, u64>);
impl Bench for Moka {
    fn get(&self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&self, key: u64) {
        self.0.insert(key, key);
    }
}

struct Quick(quick_cache::sync::Cache<u64, u64>);
impl Bench for Quick {
    fn get(&self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&self, key: u64) {
        self.0.insert(key, key);
    }
}

fn make(name: &str, policy: strata_store::PolicyKind) -> Arc<dyn Bench> {
    match name {
        "strata" => Arc::new(Strata(
            LocalCache::builder().max_capacity(CAPACITY).policy(policy).build(),
        )),
        "moka" => Arc::new(Moka(moka::sync::Cache::builder().max_capacity(CAPACITY).build())),
        "quick_cache" => Arc::new(Quick(quick_cache::sync::Cache::new(CAPACITY as usize))),
        _ => unreachable!(),
    }
}

/// Per-thread op list: (key, is_read).
fn workload(seed: u64, ops: usize) -> Vec<(u64, bool)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(KEYS as f64, 0.99).expect("valid Zipf");
    let mut coin = rand::rngs::StdRng::seed_from_u64(seed ^ 0xdead_beef);
    (0..ops)
        .map(|_| {
            let key = zipf.sample(&mut rng) as u64;
            let read = rand::Rng::random_bool(&mut coin, 0.9);
            (key, read)
        })
        .collect()
}

struct Outcome {
    ops_per_sec: f64,
    hit_ratio: f64,
}

fn run(cache: &Arc<dyn Bench>, warmup: &[(u64, bool)], loads: &[Arc<Vec<(u64, bool)>>]) -> Outcome {
    for &(key, read) in warmup {
        if !read || !cache.get(key) {
            cache.insert(key);
        }
    }
    let hits = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    std::thread::scope(|s| {
        for load in loads {
            let (cache, hits, reads) = (cache.clone(), hits.clone(), reads.clone());
            s.spawn(move || {
                let (mut h, mut r) = (0u64, 0u64);
                for &(key, read) in load.iter() {
                    if read {
                        r += 1;
                        if cache.get(key) {
                            h += 1;
                        } else {
                            cache.insert(key);
                        }
                    } else {
                        cache.insert(key);
                    }
                }
                hits.fetch_add(h, Ordering::Relaxed);
                reads.fetch_add(r, Ordering::Relaxed);
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let total: usize = loads.iter().map(|l| l.len()).sum();
    Outcome {
        ops_per_sec: total as f64 / elapsed,
        hit_ratio: hits.load(Ordering::Relaxed) as f64 / reads.load(Ordering::Relaxed).max(1) as f64,
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let ops = arg("--ops", 4_000_000);
    let runs = arg("--runs", 5);
    let all = ["strata", "moka", "quick_cache"];
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let names: Vec<&str> = all
        .into_iter()
        .filter(|n| only.as_deref().is_none_or(|o| o == *n))
        .collect();
    let policy: strata_store::PolicyKind = args
        .iter()
        .position(|a| a == "--policy")
        .and_then(|i| args.get(i + 1))
        .map_or(strata_store::PolicyKind::DEFAULT, |p| p.parse().expect("a policy name"));
    println!(
        "Zipf(0.99) over {KEYS} u64 keys, capacity {CAPACITY} entries, 90% reads (read-through) / 10% writes, {ops} ops per thread, {runs} runs, strata policy {policy}\n"
    );
    println!("| threads | cache | min Mops/s | median Mops/s | hit ratio | strata ÷ this (median) |");
    println!("|---:|---|---:|---:|---:|---:|");
    for threads in [1usize, 2] {
        let loads: Vec<_> = (0..threads).map(|t| Arc::new(workload(42 + t as u64, ops))).collect();
        let warmup = workload(7, ops);
        let mut results: Vec<Vec<Outcome>> = names.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            for (i, name) in names.iter().enumerate() {
                let cache = make(name, policy);
                results[i].push(run(&cache, &warmup, &loads));
            }
        }
        let medians: Vec<f64> = results
            .iter()
            .map(|r| {
                let mut v: Vec<f64> = r.iter().map(|o| o.ops_per_sec).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            })
            .collect();
        for (i, name) in names.iter().enumerate() {
            let mut v: Vec<f64> = results[i].iter().map(|o| o.ops_per_sec).collect();
            v.sort_by(f64::total_cmp);
            let hit = results[i].iter().map(|o| o.hit_ratio).sum::<f64>() / results[i].len() as f64;
            println!(
                "| {threads} | {name} | {:.2} | {:.2} | {:.4} | {:.2} |",
                v[0] / 1e6,
                medians[i] / 1e6,
                hit,
                medians[0] / medians[i]
            );
        }
    }
}
