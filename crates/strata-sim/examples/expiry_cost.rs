//! Active expiry: how fast the timer wheel reclaims expired items nobody
//! reads again, and how much work one call does.
//!
//! `cargo run --release -p strata-sim --example expiry_cost [-- ITEMS]`
//!
//! Inserts ITEMS (default 1,000,000) items of 16-byte keys and 32-byte values
//! with TTLs spread uniformly over 1..=60 s, on a manual clock; then moves
//! the clock forward one second at a time and calls `run_pending_expiry`
//! with a budget of 256 items per shard until everything is gone. Reports
//! the cost per reclaimed item and the longest single call.

use std::time::{Duration, Instant};

use strata_store::{Capacity, ManualClock, SetOptions, Store};

fn main() {
    let items: u64 = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let clock = ManualClock::new(1_700_000_000_000);
    let store = Store::builder(Capacity::Bytes(items * 200))
        .clock(clock.clone())
        .build();
    let mut key = [0u8; 16];
    for i in 0..items {
        key[..8].copy_from_slice(&i.to_le_bytes());
        let ttl = Duration::from_millis(1_000 + (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 59_000));
        store.set(&key, &[7u8; 32], SetOptions::ttl(ttl)).expect("fits");
    }
    let used_before = store.used();
    let (mut reclaimed, mut calls, mut longest, mut total) = (0usize, 0u64, Duration::ZERO, Duration::ZERO);
    for _second in 0..61 {
        clock.advance(Duration::from_secs(1));
        loop {
            let start = Instant::now();
            let n = store.run_pending_expiry(256);
            let took = start.elapsed();
            calls += 1;
            total += took;
            longest = longest.max(took);
            reclaimed += n;
            if n == 0 {
                break;
            }
        }
    }
    let stats = store.stats();
    println!(
        "{items} items with TTLs 1..60 s over {} shards: reclaimed {reclaimed} ({} by active expiry) in {calls} calls",
        store.shard_count(),
        stats.expired_active
    );
    println!(
        "{:.0} ns per reclaimed item; longest call {:.2} ms (budget 256 items per shard); bytes charged {} -> {}",
        total.as_nanos() as f64 / reclaimed.max(1) as f64,
        longest.as_secs_f64() * 1e3,
        used_before,
        store.used()
    );
}
