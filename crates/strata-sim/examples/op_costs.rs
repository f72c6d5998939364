//! Cost per operation of the store's main paths, single thread.
//!
//! `cargo run --release -p strata-sim --example op_costs [POLICY [PHASE [N]]]`
//! prints ns per op for each phase (hit, miss, overwrite, insert with
//! eviction). With a PHASE (`setup`, `hit`, `miss`, `overwrite`, `insert`),
//! runs only the setup and that phase: run it under
//! `valgrind --tool=cachegrind --cache-sim=yes` and subtract the `setup`
//! run to count instructions and cache misses per operation, which unlike
//! time do not depend on what else the machine is doing.
use std::time::Instant;
use strata_store::{Capacity, PolicyKind, SetOptions, Store};

fn key(i: u64) -> [u8; 8] {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let only: Option<PolicyKind> = args.next().map(|p| p.parse().expect("a policy name"));
    let phase = args.next();
    let n: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let wants = |p: &str| phase.as_deref().is_none_or(|q| q == p);
    for policy in [
        PolicyKind::Lru,
        PolicyKind::Sieve,
        PolicyKind::S3Fifo,
        PolicyKind::Adaptive,
    ] {
        if only.is_some_and(|o| o != policy) {
            continue;
        }
        let s = Store::builder(Capacity::Entries(n)).policy(policy).build();
        for i in 0..n {
            s.set(&key(i), &i.to_le_bytes(), SetOptions::default()).expect("fits");
        }
        let mut x = 0u64;
        let mut line = format!("{policy:>9}:");
        if wants("hit") {
            let t = Instant::now();
            for r in 0..10 {
                for i in 0..n {
                    x += s.get(&key((i * 7 + r) % n), |it| u64::from(it.value()[0])).unwrap_or(0);
                }
            }
            line += &format!(" hit {:.0} ns", t.elapsed().as_nanos() as f64 / (10 * n) as f64);
        }
        if wants("miss") {
            let t = Instant::now();
            for i in 0..n {
                x += s.get(&key(n + i), |it| u64::from(it.value()[0])).unwrap_or(0);
            }
            line += &format!(", miss {:.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
        }
        if wants("overwrite") {
            let t = Instant::now();
            for i in 0..n {
                s.set(&key(i), &(i + 1).to_le_bytes(), SetOptions::default())
                    .expect("fits");
            }
            line += &format!(", overwrite {:.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
        }
        if wants("insert") {
            let t = Instant::now();
            for i in 0..(2 * n) {
                s.set(&key(10 * n + i), &i.to_le_bytes(), SetOptions::default())
                    .expect("fits");
            }
            line += &format!(
                ", insert+evict {:.0} ns",
                t.elapsed().as_nanos() as f64 / (2 * n) as f64
            );
        }
        println!("{line} ({x})");
    }
}
