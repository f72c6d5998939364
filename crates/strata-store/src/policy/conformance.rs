//! Conformance tests every policy must pass.
//!
//! Random sequences of accesses, overwrites and deletes with random weights
//! run through [`Replayer`] (which asserts that evicted slots are resident)
//! while a simple model tracks what must be resident. After each sequence the
//! policy is drained with `evict` and must give back every resident slot
//! exactly once, then report empty.

use proptest::prelude::*;

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Access(u8, u32),
    Update(u8, u32),
    Remove(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), 1u32..40).prop_map(|(k, w)| Op::Access(k, w)),
        2 => (any::<u8>(), 1u32..40).prop_map(|(k, w)| Op::Update(k, w)),
        1 => any::<u8>().prop_map(Op::Remove),
    ]
}

fn key_hash(key: u8) -> u64 {
    // Spread small keys over the whole hash space, as a real hash would.
    (u64::from(key) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn run(kind: PolicyKind, capacity: u64, weighted: bool, ops: &[Op]) {
    let mut replay = Replayer::new(kind, capacity);
    let mut resident = std::collections::BTreeSet::new();
    for op in ops {
        match *op {
            Op::Access(key, weight) => {
                let weight = if weighted { weight } else { 1 };
                let hit = replay.access(key_hash(key), weight);
                assert_eq!(
                    hit,
                    resident.contains(&key),
                    "{kind}: hit disagrees with model for {op:?}"
                );
            }
            Op::Update(key, weight) => {
                let weight = if weighted { weight } else { 1 };
                let was = replay.update(key_hash(key), weight);
                assert_eq!(was, resident.contains(&key), "{kind}: update disagrees with model");
            }
            Op::Remove(key) => {
                let was = replay.remove(key_hash(key));
                assert_eq!(was, resident.contains(&key), "{kind}: remove disagrees with model");
            }
        }
        assert!(
            replay.used() <= capacity,
            "{kind}: {} used over capacity {capacity}",
            replay.used()
        );
        // Refresh the model from the replayer: evictions are the policy's choice.
        resident.retain(|&k| replay.contains(key_hash(k)));
        for key in 0..=u8::MAX {
            if replay.contains(key_hash(key)) {
                resident.insert(key);
            }
        }
    }
    replay.drain_and_check();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_policy_conforms_unweighted(ops in proptest::collection::vec(op(), 1..600), capacity in 1u64..64) {
        for kind in PolicyKind::ALL {
            run(kind, capacity, false, &ops);
        }
    }

    #[test]
    fn every_policy_conforms_weighted(ops in proptest::collection::vec(op(), 1..600), capacity in 40u64..1500) {
        for kind in PolicyKind::ALL {
            run(kind, capacity, true, &ops);
        }
    }
}

#[test]
fn policies_prefer_a_hot_set_to_a_scan() {
    // Each round reads 50 hot keys twice, 40 scan keys apart (so every
    // policy can see them reused within a cache of 100), then a scan of 200
    // never-repeated keys that flushes a recency-only cache. Scan-resistant
    // policies keep the hot set through the long scan.
    let hot_key = |k: u64| k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for kind in PolicyKind::ALL {
        let mut replay = Replayer::new(kind, 100);
        let mut scan_key = 1_000_000u64;
        let mut scan = |replay: &mut Replayer, n: usize| {
            for _ in 0..n {
                scan_key += 1;
                replay.access(hot_key(scan_key), 1);
            }
        };
        let (mut hot_hits, mut hot_reads) = (0u32, 0u32);
        for round in 0..200 {
            for pass in 0..2 {
                for hot in 0..50u64 {
                    let hit = replay.access(hot_key(hot), 1);
                    if round >= 100 && pass == 0 {
                        hot_reads += 1;
                        hot_hits += u32::from(hit);
                    }
                }
                scan(&mut replay, if pass == 0 { 40 } else { 200 });
            }
        }
        let ratio = f64::from(hot_hits) / f64::from(hot_reads);
        let recency_only = matches!(kind, PolicyKind::Lru | PolicyKind::Fifo | PolicyKind::Clock);
        if recency_only {
            assert!(
                ratio < 0.2,
                "{kind}: a recency-only policy should lose the hot set ({ratio:.2})"
            );
        } else {
            assert!(ratio > 0.8, "{kind}: hot-set hit ratio {ratio:.2} after long scans");
        }
    }
}
