//! The client against real strata servers on loopback, through
//! fault-injecting relays: routing, multi-key splits, gutter failover, a
//! returning node that must not serve stale values, warm-up after adding a
//! node, and leases.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::{Cluster, Mode, key};

const TTL: Option<Duration> = Some(Duration::from_secs(600));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_on_their_ring_owner_and_multi_key_calls_keep_order() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    for i in 0..300 {
        client.set(&key(i), format!("v{i}").as_bytes(), TTL).await.unwrap();
    }
    let ring = client.ring();
    for i in 0..300 {
        let (_, owner) = ring.owner(&key(i)).unwrap();
        let owner = cluster.index_of(&owner.address());
        for (index, server) in cluster.servers.iter().enumerate() {
            assert_eq!(
                server.store().contains(&key(i)),
                index == owner,
                "key {i} on server {index}"
            );
        }
    }
    let keys: Vec<Vec<u8>> = (0..310).rev().map(key).collect();
    let values = client.get_many(&keys).await.unwrap();
    for (k, v) in keys.iter().zip(&values) {
        let i: usize = std::str::from_utf8(&k[4..]).unwrap().parse().unwrap();
        let expected = (i < 300).then(|| format!("v{i}").into_bytes());
        assert_eq!(v, &expected, "key {i}");
    }
    let items: Vec<(Vec<u8>, Vec<u8>)> = (0..50).map(|i| (key(i), b"new".to_vec())).collect();
    client.set_many(&items, TTL).await.unwrap();
    assert_eq!(client.get(&key(7)).await.unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(client.delete_many(&[key(1), key(2), key(999)]).await.unwrap(), 2);
    assert_eq!(client.get(&key(1)).await.unwrap(), None);
    assert!(client.touch(&key(3), Duration::from_secs(5)).await.unwrap());
    assert!(!client.add(&key(3), b"x", TTL).await.unwrap(), "add does not overwrite");
    // Keys of any bytes travel base64-encoded.
    client.set(b"with space\r\n", b"ok", TTL).await.unwrap();
    assert_eq!(
        client.get(b"with space\r\n").await.unwrap().as_deref(),
        Some(&b"ok"[..])
    );
    assert!(client.get(&[b'k'; 300]).await.is_err(), "an over-long key is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gutter_absorbs_a_dead_nodes_keys_with_no_errors() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    for i in 0..200 {
        client.set(&key(i), b"before", TTL).await.unwrap();
    }
    let ring = client.ring();
    let dead = cluster.index_of(&ring.owner(&key(0)).unwrap().1.address());
    let dead_keys: Vec<usize> = (0..200)
        .filter(|&i| cluster.index_of(&ring.owner(&key(i)).unwrap().1.address()) == dead)
        .collect();
    assert!(dead_keys.len() > 20);
    cluster.relays[dead].set(Mode::Reset);

    // Every call succeeds: a failure at the owner fails over at once.
    for &i in &dead_keys {
        assert_eq!(client.get(&key(i)).await.unwrap(), None, "the gutter starts empty");
        client.set(&key(i), b"during", TTL).await.unwrap();
        assert_eq!(client.get(&key(i)).await.unwrap().as_deref(), Some(&b"during"[..]));
    }
    assert_eq!(client.down_nodes(), [cluster.relays[dead].addr.to_string()]);
    let stats = client.stats();
    assert_eq!(stats.marked_down, 1);
    assert!(stats.node_errors >= 2 && stats.node_errors <= 3, "{stats:?}");
    // Gutter writes carry the short TTL, not the caller's 600 s.
    let expire = cluster
        .gutter
        .store()
        .peek(&key(dead_keys[0]), |item| item.expire_at_ms())
        .flatten()
        .expect("a TTL on the gutter copy");
    let now = cluster.gutter.store().clock().now_ms();
    assert!(expire - now <= 60_000, "gutter TTL {} ms", expire - now);
    // Keys of live nodes are untouched by the failure.
    for i in (0..200).filter(|i| !dead_keys.contains(i)) {
        assert_eq!(client.get(&key(i)).await.unwrap().as_deref(), Some(&b"before"[..]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_node_never_serves_values_changed_while_it_was_away() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    for i in 0..200 {
        client.set(&key(i), b"old", TTL).await.unwrap();
    }
    let ring = client.ring();
    let down = cluster.index_of(&ring.owner(&key(0)).unwrap().1.address());
    let its_keys: Vec<usize> = (0..200)
        .filter(|&i| cluster.index_of(&ring.owner(&key(i)).unwrap().1.address()) == down)
        .collect();
    // Cut off, not restarted: the server keeps its old values.
    cluster.relays[down].set(Mode::Stall);
    let (changed, deleted, untouched) = (its_keys[0], its_keys[1], its_keys[2]);
    client.set(&key(changed), b"new", TTL).await.unwrap();
    client.delete(&key(deleted)).await.unwrap();
    assert!(
        cluster.servers[down].store().contains(&key(changed)),
        "the node still has the old value"
    );
    assert_eq!(client.down_nodes().len(), 1);

    cluster.relays[down].set(Mode::Pass);
    assert_eq!(client.probe_down_nodes().await, [cluster.relays[down].addr.to_string()]);
    assert!(client.down_nodes().is_empty());
    assert_eq!(client.stats().recovered, 1);
    // The changed and deleted keys were deleted on the node before it
    // served again; the rest of its data is still there.
    assert!(!cluster.servers[down].store().contains(&key(changed)));
    assert!(!cluster.servers[down].store().contains(&key(deleted)));
    assert_eq!(
        client.get(&key(changed)).await.unwrap(),
        None,
        "a miss, never the old value"
    );
    assert_eq!(client.get(&key(deleted)).await.unwrap(), None);
    assert_eq!(client.get(&key(untouched)).await.unwrap().as_deref(), Some(&b"old"[..]));
}

/// A copy written to the stand-in during one outage must not be served in
/// the next: the returning owner's recovery deletes it on the stand-in too
/// (found by scripts/soak: after the owner came back, writes changed the
/// key on the owner only, and its second outage served the stand-in's copy
/// from the first over newer acknowledged writes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_outage_never_serves_the_first_outages_stand_in_copy() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    let ring = client.ring();
    let owner = cluster.index_of(&ring.owner(&key(0)).unwrap().1.address());
    cluster.relays[owner].set(Mode::Stall);
    // Two writes, as in the test above: the second finds it marked down.
    client.set(&key(0), b"first outage", TTL).await.unwrap();
    client.set(&key(0), b"first outage", TTL).await.unwrap();
    assert_eq!(client.down_nodes().len(), 1);
    assert!(cluster.gutter.store().contains(&key(0)), "written to the gutter");

    cluster.relays[owner].set(Mode::Pass);
    assert_eq!(client.probe_down_nodes().await.len(), 1);
    assert!(
        !cluster.gutter.store().contains(&key(0)),
        "the recovery deleted the stand-in's copy"
    );
    client.set(&key(0), b"after", TTL).await.unwrap();
    assert!(cluster.servers[owner].store().contains(&key(0)));

    cluster.relays[owner].set(Mode::Stall);
    let seen = client.get(&key(0)).await.unwrap();
    assert_ne!(
        seen.as_deref(),
        Some(&b"first outage"[..]),
        "an older value than one acknowledged"
    );
    assert_eq!(seen, None, "a miss on the stand-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_times_out_into_the_gutter() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    let ring = client.ring();
    let stalled = cluster.index_of(&ring.owner(&key(0)).unwrap().1.address());
    cluster.relays[stalled].set(Mode::Stall);
    for _ in 0..5 {
        client.set(&key(0), b"v", TTL).await.unwrap();
        assert_eq!(client.get(&key(0)).await.unwrap().as_deref(), Some(&b"v"[..]));
    }
    assert_eq!(client.stats().marked_down, 1);
    assert!(cluster.gutter.store().contains(&key(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_node_with_warm_up_sends_no_miss_wave() {
    let cluster = Cluster::start(4).await;
    let keys = 2_000;
    let client = cluster.client(3);
    for i in 0..keys {
        client.set(&key(i), b"value", TTL).await.unwrap();
    }
    let before = client.ring();
    let epoch = client.update(cluster.config(4)).unwrap();
    assert_eq!(epoch, 2);
    let after = client.ring();
    let moved: Vec<usize> = (0..keys)
        .filter(|&i| before.owner(&key(i)).unwrap().1 != after.owner(&key(i)).unwrap().1)
        .collect();
    let fraction = moved.len() as f64 / keys as f64;
    assert!((0.15..0.35).contains(&fraction), "moved {fraction}");

    // A second client that learns of the new node without warm-up misses
    // every moved key. Measure it first, on a copy of nothing: it reads only.
    let mut cold_config = strata_client::ClientConfig::new(cluster.config(4));
    cold_config.warmup = Duration::ZERO;
    let cold = strata_client::Client::new(cold_config).unwrap();
    let cold_misses = {
        let values = cold
            .get_many(&moved.iter().map(|&i| key(i)).collect::<Vec<_>>())
            .await
            .unwrap();
        values.iter().filter(|v| v.is_none()).count()
    };
    assert_eq!(cold_misses, moved.len(), "without warm-up, every moved key misses");

    // With warm-up: every key hits, moved ones read from their old owner
    // and copied to the new one.
    let deleted = moved[0];
    client.delete(&key(deleted)).await.unwrap();
    let values = client.get_many(&(0..keys).map(key).collect::<Vec<_>>()).await.unwrap();
    let misses: Vec<usize> = (0..keys).filter(|&i| values[i].is_none()).collect();
    assert_eq!(
        misses,
        [deleted],
        "only the deleted key misses: warm-up never resurrects it"
    );
    assert_eq!(client.stats().warmup_hits as usize, moved.len() - 1);
    let new_node = &cluster.servers[3];
    assert!(new_node.store().contains(&key(moved[1])), "copied to the new owner");
    // Now even the cold client hits.
    assert_eq!(cold.get(&key(moved[1])).await.unwrap().as_deref(), Some(&b"value"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_loader_per_key_across_concurrent_callers() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    let loads = Arc::new(AtomicUsize::new(0));
    let (release, wait) = tokio::sync::watch::channel(false);
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (client, loads, mut wait) = (client.clone(), Arc::clone(&loads), wait.clone());
        callers.spawn(async move {
            client
                .get_or_fill(b"hot", TTL, || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    // Hold the lease until every caller has asked.
                    let _ = wait.wait_for(|go| *go).await;
                    Ok::<_, std::io::Error>(b"from the database".to_vec())
                })
                .await
        });
    }
    // Let the callers reach the server, then let the winner finish.
    while client.stats().gets < 50 {
        tokio::task::yield_now().await;
    }
    release.send(true).unwrap();
    while let Some(result) = callers.join_next().await {
        assert_eq!(result.unwrap().unwrap(), b"from the database");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "the lease let one caller load");
    let stats = client.stats();
    assert_eq!(stats.lease_wins, 1);
    assert_eq!(
        client.get(b"hot").await.unwrap().as_deref(),
        Some(&b"from the database"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_after_a_delete_is_refused_and_loader_errors_cache_nothing() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client(3);
    // The winner loads an old value; a write deletes the key meanwhile.
    let writer = client.clone();
    let value = client
        .get_or_fill(b"raced", TTL, || async move {
            writer.delete(b"raced").await.unwrap();
            Ok::<_, std::io::Error>(b"old".to_vec())
        })
        .await
        .unwrap();
    assert_eq!(value, b"old", "the caller gets what it loaded");
    assert_eq!(
        client.get(b"raced").await.unwrap(),
        None,
        "but the stale fill never landed"
    );

    let failed = client
        .get_or_fill(b"broken", TTL, || async { Err::<Vec<u8>, _>("database down") })
        .await;
    assert!(matches!(failed, Err(strata_client::ClientError::Loader(ref m)) if m.to_string() == "database down"));
    // The placeholder was removed, so the next caller may try at once.
    let value = client
        .get_or_fill(b"broken", TTL, || async { Ok::<_, std::io::Error>(b"ok".to_vec()) })
        .await
        .unwrap();
    assert_eq!(value, b"ok");
}
