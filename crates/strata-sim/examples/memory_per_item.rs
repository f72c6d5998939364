//! Bytes of process memory per item: inserts N items of 16-byte keys and
//! 32-byte values into one engine and reports the growth of resident memory
//! (RSS, from /proc/self/statm) divided by N.
//!
//! `cargo run --release -p strata-sim --example memory_per_item -- strata 1000000`
//! Engines: strata, strata-lru, moka, quick_cache. Run each in its own
//! process (scripts/bench-memory does) so one engine's freed memory does not
//! flatter the next.

use std::time::Instant;

fn rss_bytes() -> u64 {
    strata_session::process::Watched::this()
        .resident_bytes()
        .expect("Linux /proc")
}

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_le_bytes());
    k[8..].copy_from_slice(&(!i).to_le_bytes());
    k
}

fn main() {
    let mut args = std::env::args().skip(1);
    let engine = args.next().unwrap_or_else(|| "strata".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let value = [7u8; 32];
    let before = rss_bytes();
    let start = Instant::now();
    let keep: Box<dyn std::any::Any> = match engine.as_str() {
        "strata" | "strata-lru" | "strata-s3fifo" | "strata-sieve" => {
            use strata_store::{Capacity, PolicyKind, SetOptions, Store};
            let policy = match engine.as_str() {
                "strata-lru" => PolicyKind::Lru,
                "strata-s3fifo" => PolicyKind::S3Fifo,
                "strata-sieve" => PolicyKind::Sieve,
                _ => PolicyKind::DEFAULT,
            };
            // Capacity large enough that nothing is evicted.
            let store = Store::builder(Capacity::Bytes(n * 200 + (64 << 20)))
                .policy(policy)
                .build();
            for i in 0..n {
                store.set(&key(i), &value, SetOptions::default()).expect("fits");
            }
            assert_eq!(store.len() as u64, n);
            let stats = store.stats();
            eprintln!(
                "strata: charged {:.1} B/item, engine overhead (index, slots, policy) {:.1} B/item, {} shards",
                stats.used as f64 / n as f64,
                stats.overhead_bytes as f64 / n as f64,
                store.shard_count()
            );
            Box::new(store)
        }
        "moka" => {
            let cache: moka::sync::Cache<[u8; 16], [u8; 32]> = moka::sync::Cache::builder().max_capacity(n * 2).build();
            for i in 0..n {
                cache.insert(key(i), value);
            }
            cache.run_pending_tasks();
            Box::new(cache)
        }
        "quick_cache" => {
            let cache: quick_cache::sync::Cache<[u8; 16], [u8; 32]> = quick_cache::sync::Cache::new(n as usize * 2);
            for i in 0..n {
                cache.insert(key(i), value);
            }
            Box::new(cache)
        }
        other => {
            eprintln!(
                "unknown engine {other}; use strata, strata-lru, strata-s3fifo, strata-sieve, moka or quick_cache"
            );
            std::process::exit(2);
        }
    };
    let after = rss_bytes();
    let elapsed = start.elapsed();
    println!(
        "{engine}\t{n}\t{:.1}\tB/item\t({:.0} ms)",
        (after.saturating_sub(before)) as f64 / n as f64,
        elapsed.as_secs_f64() * 1e3
    );
    drop(keep);
}
