//! The request node and the invalidator over a real, private PostgreSQL:
//! log-tailing invalidation of writes made behind the node's back, a dead
//! and restarted database, a lost replication slot.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use strata_node::invalidator::{Invalidator, InvalidatorConfig, Source};
use strata_node::pgtest;
use strata_node::{Node, NodeConfig, NodeError, Strategy};
use strata_server::{Config, Server};
use tokio_util::sync::CancellationToken;

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..1000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invalidator_follows_the_log_through_restarts_and_a_lost_slot() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let server = Server::start(Config::default().on_free_ports()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("strata-pg-node-{}", std::process::id()));
    let mut config = NodeConfig {
        origin: pg.url(),
        strategy: Strategy::CacheAside,
        l2: vec![server.memcache_addr.to_string()],
        tracking: vec![server.resp_addr.to_string()],
        ..NodeConfig::default()
    };
    config.write_behind.dir = dir.join("journal");
    let node = Node::start(config).await.unwrap();
    let source = Source::open(&pg.url(), "strata_test").await.unwrap();
    let invalidator = Arc::new(Invalidator::new(
        source,
        node.client().clone(),
        InvalidatorConfig {
            poll_interval: Duration::from_millis(5),
            retry_delay: Duration::from_millis(50),
            ..InvalidatorConfig::default()
        },
    ));
    let stop = CancellationToken::new();
    let running = {
        let (invalidator, stop) = (Arc::clone(&invalidator), stop.clone());
        tokio::spawn(async move { invalidator.run(stop).await })
    };
    let raw = {
        let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    };

    // A write behind the node's back reaches L2 through the slot.
    node.put("1", "one").await.unwrap();
    // The invalidator deletes item:1 for that write too, at some point:
    // read until a fill has outlived it.
    eventually("item:1 cached", async || {
        assert_eq!(node.get("1").await.unwrap().unwrap().value, "one");
        invalidator.stats().applied.load(Ordering::Relaxed) >= 1
            && node.client().get(b"item:1").await.unwrap().is_some()
    })
    .await;
    raw.execute(
        "UPDATE items SET value = 'uno', version = version + 1 WHERE id = '1'",
        &[],
    )
    .await
    .unwrap();
    eventually("the invalidator to delete item:1", async || {
        node.client().get(b"item:1").await.unwrap().is_none()
    })
    .await;
    assert_eq!(node.get("1").await.unwrap().unwrap().value, "uno");

    // An application names an extra key inside its transaction.
    node.client().set(b"item:extra", b"x", None).await.unwrap();
    raw.batch_execute("BEGIN; SELECT pg_logical_emit_message(true, 'strata.invalidate', 'item:extra'); COMMIT;")
        .await
        .unwrap();
    eventually("the message's key to go", async || {
        node.client().get(b"item:extra").await.unwrap().is_none()
    })
    .await;

    // A dead database: reads of uncached rows and writes fail at once with
    // a retryable error; cached rows are still served.
    pg.stop();
    assert!(node.get("1").await.unwrap().is_some(), "served from the cache");
    let failed = node.put("2", "two").await.unwrap_err();
    assert!(
        matches!(failed, NodeError::Origin(_)) && failed.is_unavailable(),
        "{failed}"
    );
    let failed = node.get("never-written").await.unwrap_err();
    assert!(failed.is_unavailable(), "{failed}");
    // The cause itself, not a wrapper's word for it.
    let message = failed.to_string();
    assert!(
        matches!(failed, NodeError::Origin(_)) && message.starts_with("origin: postgres: "),
        "{message}"
    );

    // Back: the node's pool and the invalidator's connection both recover,
    // and nothing committed after the restart is missed.
    pg.restart().unwrap();
    eventually("the node to write again", async || node.put("2", "two").await.is_ok()).await;
    assert_eq!(node.get("1").await.unwrap().unwrap().value, "uno");
    assert!(node.client().get(b"item:1").await.unwrap().is_some());
    let raw = {
        let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    };
    raw.execute("UPDATE items SET value = 'eins' WHERE id = '1'", &[])
        .await
        .unwrap();
    eventually("the restarted invalidator to delete item:1", async || {
        node.client().get(b"item:1").await.unwrap().is_none()
    })
    .await;

    // The slot is lost (dropped while no one reads it): the invalidator
    // cannot know what it missed, so it flushes the cluster and starts over.
    assert_eq!(node.get("1").await.unwrap().unwrap().value, "eins");
    stop.cancel();
    running.await.unwrap();
    raw.execute("SELECT pg_drop_replication_slot('strata_test')", &[])
        .await
        .unwrap();
    assert!(node.client().get(b"item:1").await.unwrap().is_some(), "still cached");
    let stop = CancellationToken::new();
    let running = {
        let (invalidator, stop) = (Arc::clone(&invalidator), stop.clone());
        tokio::spawn(async move { invalidator.run(stop).await })
    };
    // The slot is recreated first, then the flush it queued is applied.
    eventually("the cluster flush", async || {
        invalidator.stats().slot_resets.load(Ordering::Relaxed) == 1
            && node.client().get(b"item:1").await.unwrap().is_none()
    })
    .await;
    raw.execute("UPDATE items SET value = 'one again' WHERE id = '1'", &[])
        .await
        .unwrap();
    assert_eq!(node.get("1").await.unwrap().unwrap().value, "one again");

    // A TRUNCATE names no key: the invalidator flushes the cluster.
    assert!(node.client().get(b"item:1").await.unwrap().is_some(), "cached again");
    raw.execute("TRUNCATE items", &[]).await.unwrap();
    eventually("the TRUNCATE's flush", async || {
        node.client().get(b"item:1").await.unwrap().is_none()
    })
    .await;
    assert_eq!(node.get("1").await.unwrap(), None);

    stop.cancel();
    running.await.unwrap();
    node.shutdown().await;
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_behind_absorbs_an_origin_outage_up_to_its_limit_then_pushes_back() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let server = Server::start(Config::default().on_free_ports()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("strata-pg-wb-{}", std::process::id()));
    let mut config = NodeConfig {
        origin: pg.url(),
        strategy: Strategy::WriteBehind,
        l2: vec![server.memcache_addr.to_string()],
        tracking: vec![server.resp_addr.to_string()],
        ..NodeConfig::default()
    };
    config.write_behind.dir = dir.join("journal");
    config.write_behind.limit_bytes = 8 * 1024;
    config.write_behind.full_wait_ms = 200;
    let node = Node::start(config).await.unwrap();
    node.put("warm", "up").await.unwrap();
    eventually("the first flush", async || node.pending_writes() == 0).await;

    pg.stop();
    let mut acked = std::collections::HashMap::new();
    let mut refused = None;
    for i in 0..10_000 {
        let id = format!("r{}", i % 50);
        match node.put(&id, &format!("value-{i}")).await {
            Ok(_) => {
                acked.insert(id, format!("value-{i}"));
            }
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    let refused = refused.expect("a bounded journal refuses writes once full");
    assert!(
        matches!(refused, NodeError::Journal(_)) && refused.is_unavailable(),
        "{refused}"
    );
    assert!(acked.len() > 10, "the journal absorbed the outage for a while");
    // While the origin is down, this node still reads its own writes.
    let (id, value) = acked.iter().next().unwrap();
    assert_eq!(&node.get(id).await.unwrap().unwrap().value, value);

    pg.restart().unwrap();
    eventually("the backlog to flush", async || node.pending_writes() == 0).await;
    for (id, value) in &acked {
        let row = node.origin().get(id).await.unwrap().expect("flushed");
        assert_eq!(&row.value, value, "{id}");
    }
    node.put("after", "ok").await.unwrap();
    node.shutdown().await;
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_do_not_stall_the_slot_and_a_lost_slot_is_recreated_before_the_flush() {
    let Some(pg) = pgtest::start_or_skip() else { return };
    let server = Server::start(Config::default().on_free_ports()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("strata-pg-order-{}", std::process::id()));
    let mut config = NodeConfig {
        origin: pg.url(),
        strategy: Strategy::CacheAside,
        l2: vec![server.memcache_addr.to_string()],
        tracking: vec![server.resp_addr.to_string()],
        ..NodeConfig::default()
    };
    config.write_behind.dir = dir.join("journal");
    let node = Node::start(config).await.unwrap();
    let client = node.client().clone();
    let settings = InvalidatorConfig {
        poll_interval: Duration::from_millis(5),
        retry_delay: Duration::from_millis(50),
        ..InvalidatorConfig::default()
    };
    let invalidator = Invalidator::new(
        Source::open(&pg.url(), "order").await.unwrap(),
        client.clone(),
        settings.clone(),
    );
    invalidator.drain().await.unwrap();
    let raw = {
        let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    };

    // An application names a key no cache can hold: it is skipped and
    // counted, and the changes after it are applied.
    node.put("1", "one").await.unwrap();
    invalidator.drain().await.unwrap();
    assert_eq!(node.get("1").await.unwrap().unwrap().value, "one");
    assert!(client.get(b"item:1").await.unwrap().is_some(), "cached");
    client.set(b"item:ok", b"x", None).await.unwrap();
    raw.batch_execute(
        "BEGIN;
         SELECT pg_logical_emit_message(true, 'strata.invalidate', repeat('x', 300) || E'\\nitem:ok');
         COMMIT;
         UPDATE items SET value = 'uno', version = version + 1 WHERE id = '1';",
    )
    .await
    .unwrap();
    invalidator
        .drain()
        .await
        .expect("a bad key is skipped, not retried forever");
    assert_eq!(invalidator.stats().invalid_keys.load(Ordering::Relaxed), 1);
    assert_eq!(client.get(b"item:ok").await.unwrap(), None);
    assert_eq!(client.get(b"item:1").await.unwrap(), None);

    // The slot is lost while item:1 is cached, and a change goes by that
    // no slot sees.
    eventually("item:1 cached again", async || {
        node.get("1").await.unwrap().unwrap().value == "uno" && client.get(b"item:1").await.unwrap().is_some()
    })
    .await;
    raw.execute("SELECT pg_drop_replication_slot('order')", &[])
        .await
        .unwrap();
    raw.execute("UPDATE items SET value = 'missed' WHERE id = '1'", &[])
        .await
        .unwrap();
    assert!(invalidator.step().await.is_err(), "the slot is gone");
    invalidator.recover().await.unwrap();
    assert_eq!(invalidator.stats().slot_resets.load(Ordering::Relaxed), 1);
    // The slot is back first; the flush is owed, queued in the new slot.
    let slot = raw
        .query_opt("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'order'", &[])
        .await
        .unwrap();
    assert!(slot.is_some(), "recreated");
    assert!(
        client.get(b"item:1").await.unwrap().is_some(),
        "not flushed before the slot exists"
    );
    // A reader that loaded the row before the missed change fills the
    // cache only now. Had the flush come before the new slot, as it once
    // did, nothing would ever remove this copy.
    client.set(b"item:1", b"stale", None).await.unwrap();
    // And the invalidator restarts before applying anything: the owed
    // flush is in the slot, not in its memory.
    drop(invalidator);
    let invalidator = Invalidator::new(
        Source::open(&pg.url(), "order").await.unwrap(),
        client.clone(),
        settings,
    );
    invalidator.drain().await.unwrap();
    assert_eq!(client.get(b"item:1").await.unwrap(), None, "flushed after the slot");
    eventually("the missed change to be read", async || {
        node.get("1").await.unwrap().unwrap().value == "missed"
    })
    .await;

    node.shutdown().await;
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}
