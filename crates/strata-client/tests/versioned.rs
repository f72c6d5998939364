//! Model-based test of versioned sets and versioned lease fills against a
//! real strata server: random interleavings of writers' versioned sets
//! (in any order), deletes, lease reads that fill at a version, and lease
//! reads whose fill is overtaken by a write, checked after every step
//! against a model of what the cache may hold.

use std::time::Duration;

use proptest::prelude::*;
use strata_client::{Client, ClientConfig, Fill, VERSION_CAS_BASE, Versioned};
use strata_ring::ClusterConfig;
use strata_server::{Config, Server};

#[derive(Clone, Debug)]
enum Op {
    /// A writer's versioned set of version v (maybe late: any v).
    Set(u64),
    /// A delete (cache-aside, or the invalidator).
    Delete,
    /// A lease read that loads version v from the origin and fills.
    Fill(u64),
    /// A lease read that loads version v, but a versioned set of w and
    /// then a delete happen before its fill.
    RacedFill(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u64..20).prop_map(Op::Set),
        1 => Just(Op::Delete),
        2 => (1u64..20).prop_map(Op::Fill),
        1 => ((1u64..20), (1u64..20)).prop_map(|(v, w)| Op::RacedFill(v, w)),
    ]
}

/// The model: the version cached, if any.
fn apply(model: &mut Option<u64>, op: &Op) {
    match *op {
        // Replace an older cached version; never create.
        Op::Set(v) => {
            if let Some(cached) = *model
                && cached < v
            {
                *model = Some(v);
            }
        }
        Op::Delete => *model = None,
        // A hit returns what is cached; a miss fills.
        Op::Fill(v) => {
            if model.is_none() {
                *model = Some(v);
            }
        }
        // A hit loads nothing; on a miss the racing delete voids the
        // lease and the fill never lands.
        Op::RacedFill(_, _) => {}
    }
}

async fn run(client: &Client, key: &[u8], op: &Op) {
    let value = |v: u64| format!("v{v}").into_bytes();
    match *op {
        Op::Set(v) => {
            let outcome = client.set_versioned(key, &value(v), v, None).await.unwrap();
            assert_ne!(outcome, Versioned::Deleted, "uncontended: never gives up");
        }
        Op::Delete => {
            client.delete(key).await.unwrap();
        }
        Op::Fill(v) => {
            client
                .get_or_fill_versioned(key, None, || async move {
                    Ok::<_, String>(Some(Fill {
                        value: value(v),
                        version: v,
                    }))
                })
                .await
                .unwrap();
        }
        Op::RacedFill(v, w) => {
            let writer = client.clone();
            let key_owned = key.to_vec();
            client
                .get_or_fill_versioned(key, None, || async move {
                    // While this reader holds the lease: a write lands.
                    let _ = writer.set_versioned(&key_owned, &value(w), w, None).await;
                    writer.delete(&key_owned).await.unwrap();
                    Ok::<_, String>(Some(Fill {
                        value: value(v),
                        version: v,
                    }))
                })
                .await
                .unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn versioned_sets_and_fills_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let server = Server::start(Config::default().on_free_ports()).await.unwrap();
            let cluster = ClusterConfig::from_nodes(&[server.memcache_addr.to_string()]).unwrap();
            let mut config = ClientConfig::new(cluster);
            config.lease.max_wait = Duration::from_millis(50);
            let client = Client::new(config).unwrap();
            let key = b"item:model";
            let mut model = None;
            for op in &ops {
                run(&client, key, op).await;
                apply(&mut model, op);
                let cached = client.get_item(key).await.unwrap();
                let seen = cached.map(|item| {
                    assert_eq!(item.value, format!("v{}", item.cas - VERSION_CAS_BASE).into_bytes());
                    item.cas - VERSION_CAS_BASE
                });
                assert_eq!(seen, model, "after {op:?} in {ops:?}");
            }
            server.shutdown();
        });
    }
}
