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
    // 50 hot keys re-read between long scans of never-repeated keys: every
    // policy except FIFO and LRU should keep most of the hot set in a
    // cache of 100.
    for kind in PolicyKind::ALL {
        let mut replay = Replayer::new(kind, 100);
        let mut scan_key = 1_000_000u64;
        let mut hot_hits = 0;
        for round in 0..200 {
            for hot in 0..50u64 {
                let hit = replay.access(hot.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1);
                if round >= 100 && hit {
                    hot_hits += 1;
                }
            }
            for _ in 0..120 {
                scan_key += 1;
                replay.access(scan_key.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1);
            }
        }
        let ratio = f64::from(hot_hits) / 5000.0;
        let expect_resistant = !matches!(kind, PolicyKind::Lru | PolicyKind::Fifo | PolicyKind::Clock);
        if expect_resistant {
            assert!(ratio > 0.8, "{kind}: hot-set hit ratio {ratio:.2} under scans");
        }
    }
}
