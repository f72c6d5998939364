//! The balance and moved-fraction table of BENCHMARKS.md: for each scheme
//! at N = 3, 10 and 100 equal-weight members, the largest share over the
//! mean (1.00 is perfect), and the fraction of keys that move when one
//! member is added or one removed, beside the ideal.
//!
//! `cargo run --release -p strata-ring --example balance [KEYS]`

use strata_ring::analysis::{imbalance, movement, shares};
use strata_ring::{Member, Scheme, Snapshot};

fn members(n: u16) -> Vec<Member> {
    (0..n)
        .map(|i| Member::new(format!("10.0.{}.{}", i / 250, i % 250), 7311))
        .collect()
}

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|k| k.parse().ok())
        .unwrap_or(1_000_000);
    println!("{keys} sample keys per cell");
    println!();
    println!("| scheme | N | max/mean | moved on add | ideal 1/(N+1) | moved on remove | ideal 1/N |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for scheme in Scheme::ALL {
        for n in [3u16, 10, 100] {
            let base = Snapshot::new(1, scheme, members(n)).expect("valid");
            let balance = imbalance(&shares(&base, keys));
            let base = Snapshot::new(1, scheme, members(n)).expect("valid");
            let added = Snapshot::new(2, scheme, members(n + 1)).expect("valid");
            let on_add = movement(&base, &added, keys).fraction();
            // Jump can only lose its last member without reshuffling; the
            // others lose one from the middle.
            let mut fewer = members(n);
            if scheme == Scheme::Jump {
                fewer.pop();
            } else {
                fewer.remove(usize::from(n / 2));
            }
            let base = Snapshot::new(1, scheme, members(n)).expect("valid");
            let removed = Snapshot::new(2, scheme, fewer).expect("valid");
            let on_remove = movement(&base, &removed, keys).fraction();
            println!(
                "| {scheme} | {n} | {balance:.3} | {on_add:.4} | {:.4} | {on_remove:.4} | {:.4} |",
                1.0 / f64::from(n + 1),
                1.0 / f64::from(n)
            );
        }
    }
}
