//! Ring lookup cost per scheme: owner of a 16-byte key, at 3, 10 and 100
//! members. `cargo bench -p strata-ring --bench lookup`.

#![expect(missing_docs, reason = "criterion's macros generate undocumented functions")]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use strata_ring::{Member, Scheme, Snapshot};

fn lookups(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..1024u32).map(|i| format!("key:{i:012}").into_bytes()).collect();
    let mut group = c.benchmark_group("owner");
    for n in [3u16, 10, 100] {
        let members: Vec<Member> = (0..n).map(|i| Member::new("10.0.0.1", 7000 + i)).collect();
        for scheme in [Scheme::Ketama, Scheme::Jump, Scheme::Rendezvous] {
            let snapshot = Snapshot::new(1, scheme, members.clone()).expect("valid members");
            let mut next = 0;
            group.bench_with_input(BenchmarkId::new(scheme.to_string(), n), &snapshot, |b, snapshot| {
                b.iter(|| {
                    next = (next + 1) % keys.len();
                    snapshot
                        .owner(std::hint::black_box(&keys[next]))
                        .map(|(index, _)| index)
                })
            });
        }
        // Bounded loads keep an assignment: measure a lookup of keys it
        // has already placed (the steady state).
        let snapshot = Snapshot::new(1, Scheme::BoundedKetama { epsilon: 0.25 }, members).expect("valid members");
        for key in &keys {
            snapshot.owner(key);
        }
        let mut next = 0;
        group.bench_with_input(BenchmarkId::new("bounded-ketama", n), &snapshot, |b, snapshot| {
            b.iter(|| {
                next = (next + 1) % keys.len();
                snapshot
                    .owner(std::hint::black_box(&keys[next]))
                    .map(|(index, _)| index)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
