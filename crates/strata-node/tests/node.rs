//! Black-box tests of the request node over the embedded SQLite origin:
//! a real strata server on free loopback ports, the node's HTTP API spoken
//! over real sockets.

use std::net::SocketAddr;
use std::time::Duration;

use strata_node::invalidator::{Invalidator, InvalidatorConfig, Source};
use strata_node::{Node, NodeConfig, Strategy};
use strata_server::{Config, RunningServer, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Stack {
    server: RunningServer,
    node: Node,
    http: SocketAddr,
    dir: std::path::PathBuf,
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-node-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn stack(name: &str, strategy: Strategy) -> Stack {
    let server = Server::start(Config::default().on_free_ports()).await.unwrap();
    let dir = scratch(name);
    let mut config = NodeConfig {
        origin: dir.join("origin.db").display().to_string(),
        strategy,
        l2: vec![server.memcache_addr.to_string()],
        tracking: vec![server.resp_addr.to_string()],
        ..NodeConfig::default()
    };
    config.write_behind.dir = dir.join("journal");
    let node = Node::start(config).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    tokio::spawn(strata_node::http::serve(node.clone(), listener, std::future::pending()));
    Stack {
        server,
        node,
        http,
        dir,
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|error| panic!("not JSON ({error}): {body:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_aside_reads_through_and_invalidates_on_write() {
    let stack = stack("aside", Strategy::CacheAside).await;
    let (status, body) = http(stack.http, "PUT", "/items/42", Some(r#"{"value":"hello"}"#)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["version"], 1);

    let (status, body) = http(stack.http, "GET", "/items/42", None).await;
    assert_eq!(status, 200);
    let item = json(&body);
    assert_eq!(item["value"], "hello");
    assert_eq!(item["source"], "origin");
    let (_, body) = http(stack.http, "GET", "/items/42", None).await;
    let source = json(&body)["source"].as_str().unwrap().to_owned();
    assert!(source == "l1" || source == "l2", "second read from {source}");

    let (status, body) = http(stack.http, "PUT", "/items/42", Some(r#"{"value":"world"}"#)).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["version"], 2);
    let (_, body) = http(stack.http, "GET", "/items/42", None).await;
    let item = json(&body);
    assert_eq!(item["value"], "world");
    assert_eq!(item["version"], 2);

    let (status, body) = http(stack.http, "DELETE", "/items/42", None).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["existed"], true);
    let (status, _) = http(stack.http, "GET", "/items/42", None).await;
    assert_eq!(status, 404);

    let (status, metrics) = http(stack.http, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("strata_node_origin_loads_total"), "{metrics}");
    eventually("tracking up", async || stack.node.l1_usable()).await;
    let (status, body) = http(stack.http, "GET", "/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // A dead tracking connection makes the node unhealthy (L1 bypassed).
    stack.server.shutdown();
    eventually("the node to notice", async || {
        http(stack.http, "GET", "/healthz", None).await.0 == 503
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_serves_the_new_version_from_l2() {
    let stack = stack("through", Strategy::WriteThrough).await;
    let (status, _) = http(stack.http, "PUT", "/items/k", Some(r#"{"value":"a"}"#)).await;
    assert_eq!(status, 200);
    // Not cached yet: the first read fills L2 (a versioned set never
    // creates a key; see Client::set_versioned).
    let (_, body) = http(stack.http, "GET", "/items/k", None).await;
    assert_eq!(json(&body)["source"], "origin");
    for (value, version) in [("b", 2), ("c", 3)] {
        let (status, body) = http(
            stack.http,
            "PUT",
            "/items/k",
            Some(&format!(r#"{{"value":"{value}"}}"#)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body)["version"], version);
    }
    let loads = stack.node.metrics().origin_loads.get();
    let (_, body) = http(stack.http, "GET", "/items/k", None).await;
    let item = json(&body);
    assert_eq!(item["value"], "c");
    assert_eq!(item["version"], 3);
    assert_ne!(item["source"], "origin");
    assert_eq!(
        stack.node.metrics().origin_loads.get(),
        loads,
        "the versioned sets updated L2 in place"
    );

    // An older version can never replace a newer one.
    let key = b"item:k";
    let older = strata_node::item::encode(&strata_node::origin::Row {
        id: "k".into(),
        value: "old".into(),
        version: 2,
        updated_at_ms: 0,
    });
    let outcome = stack.node.client().set_versioned(key, &older, 2, None).await.unwrap();
    assert_eq!(outcome, strata_client::Versioned::NewerCached);
    let (_, body) = http(stack.http, "GET", "/items/k", None).await;
    assert_eq!(json(&body)["value"], "c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_behind_acknowledges_from_the_journal_and_flushes_in_order() {
    let stack = stack("behind", Strategy::WriteBehind).await;
    for round in 0..50 {
        let (status, body) = http(
            stack.http,
            "PUT",
            "/items/w",
            Some(&format!(r#"{{"value":"v{round}"}}"#)),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(json(&body)["status"], "journaled");
    }
    // Bounded wait for the flusher (real time: it is a background task).
    for _ in 0..500 {
        if stack.node.pending_writes() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stack.node.pending_writes(), 0, "flushed");
    let row = stack.node.origin().get("w").await.unwrap().unwrap();
    assert_eq!(row.value, "v49");
    assert_eq!(row.version, 50, "every write applied once, in order");
    let (_, body) = http(stack.http, "GET", "/items/w", None).await;
    assert_eq!(json(&body)["value"], "v49");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let stack = stack("bad", Strategy::CacheAside).await;
    let long = "x".repeat(300);
    for (method, path, body, want) in [
        ("PUT", "/items/a", Some("not json"), 400),
        ("PUT", "/items/a", Some(r#"{"val":"x"}"#), 400),
        ("PUT", "/items/a", Some(r#"{"value":5}"#), 400),
        ("GET", &format!("/items/{long}") as &str, None, 400),
        ("GET", "/items/a%20b", None, 400),
        ("GET", "/nope", None, 404),
    ] {
        let (status, body) = http(stack.http, method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {body}");
        if want == 400 {
            assert!(json(&body)["error"].is_string(), "{body}");
        }
    }
    let huge = format!(r#"{{"value":"{}"}}"#, "v".repeat((1 << 20) + 10));
    let (status, _) = http(stack.http, "PUT", "/items/a", Some(&huge)).await;
    assert_eq!(status, 413);
    assert!(stack.node.origin().get("a").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invalidator_repairs_writes_made_behind_the_nodes_back() {
    let stack = stack("outbox", Strategy::CacheAside).await;
    let origin = stack.dir.join("origin.db").display().to_string();
    let (status, _) = http(stack.http, "PUT", "/items/7", Some(r#"{"value":"first"}"#)).await;
    assert_eq!(status, 200);
    let (_, body) = http(stack.http, "GET", "/items/7", None).await;
    assert_eq!(json(&body)["value"], "first");
    // Fill L2, then change the row with another program (no cache delete).
    let path = origin.clone();
    tokio::task::spawn_blocking(move || {
        let connection = rusqlite::Connection::open(path).unwrap();
        connection
            .execute(
                "UPDATE items SET value = 'second', version = version + 1 WHERE id = '7'",
                [],
            )
            .unwrap();
    })
    .await
    .unwrap();
    let cached = stack.node.client().get(b"item:7").await.unwrap();
    assert!(cached.is_some(), "L2 still holds the old row");

    let source = Source::open(&origin, "unused").await.unwrap();
    let invalidator = Invalidator::new(source, stack.node.client().clone(), InvalidatorConfig::default());
    let applied = invalidator.drain().await.unwrap();
    assert!(applied >= 1);
    assert_eq!(stack.node.client().get(b"item:7").await.unwrap(), None);
    let (_, body) = http(stack.http, "GET", "/items/7", None).await;
    assert_eq!(json(&body)["value"], "second");
    assert_eq!(invalidator.drain().await.unwrap(), 0, "the outbox was consumed");
    assert!(invalidator.stats().measured() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_no_cache_can_hold_are_skipped_and_counted_not_retried_forever() {
    let stack = stack("bad-keys", Strategy::CacheAside).await;
    let origin = stack.dir.join("origin.db").display().to_string();
    let source = Source::open(&origin, "unused").await.unwrap();
    let invalidator = Invalidator::new(source, stack.node.client().clone(), InvalidatorConfig::default());
    stack.node.put("7", "first").await.unwrap();
    invalidator.drain().await.unwrap();
    assert_eq!(stack.node.get("7").await.unwrap().unwrap().value, "first");
    assert!(stack.node.client().get(b"item:7").await.unwrap().is_some(), "cached");
    // A key of bytes that are not UTF-8 but short enough to travel
    // base64-encoded is a valid cache key: it must be deleted, not skipped.
    let odd_key = b"\xff\xfe odd".to_vec();
    stack.node.client().set(&odd_key, b"x", None).await.unwrap();

    // Another program writes the database: keys no cache can hold (empty,
    // 300 bytes, 200 bytes with spaces, not UTF-8 and too long for base64,
    // a BLOB), a row whose id makes one, then a valid change.
    let path = origin.clone();
    tokio::task::spawn_blocking(move || {
        let connection = rusqlite::Connection::open(path).unwrap();
        connection
            .execute_batch(
                "INSERT INTO strata_outbox (key, committed_at_ms) VALUES ('', 0);
                 INSERT INTO strata_outbox (key, committed_at_ms)
                     VALUES (replace(hex(zeroblob(300)), '00', 'k'), 0);
                 INSERT INTO strata_outbox (key, committed_at_ms)
                     VALUES (replace(hex(zeroblob(200)), '00', ' '), 0);
                 INSERT INTO strata_outbox (key, committed_at_ms)
                     VALUES (CAST(X'FF' AS TEXT) || replace(hex(zeroblob(199)), '00', char(9)), 0);
                 INSERT INTO strata_outbox (key, committed_at_ms) VALUES (zeroblob(260), 'not a time');
                 INSERT INTO items VALUES (replace(hex(zeroblob(300)), '00', 'i'), 'v', 1, 0);
                 INSERT INTO strata_outbox (key, committed_at_ms) VALUES (CAST(X'FFFE206F6464' AS TEXT), 0);
                 UPDATE items SET value = 'second', version = version + 1 WHERE id = '7';",
            )
            .unwrap();
    })
    .await
    .unwrap();

    // Before, the first batch failed on the first bad key, forever.
    invalidator.drain().await.expect("bad keys are skipped, not errors");
    let stats = invalidator.stats();
    assert_eq!(stats.invalid_keys.load(std::sync::atomic::Ordering::Relaxed), 6);
    assert_eq!(
        stack.node.client().get(b"item:7").await.unwrap(),
        None,
        "the later change applied"
    );
    assert_eq!(
        stack.node.client().get(&odd_key).await.unwrap(),
        None,
        "a valid odd key deleted"
    );
    assert_eq!(stack.node.get("7").await.unwrap().unwrap().value, "second");
    assert_eq!(invalidator.drain().await.unwrap(), 0, "the outbox was consumed");
    let metrics = stats.render().unwrap();
    assert!(metrics.contains("strata_invalidator_invalid_keys_total 6"), "{metrics}");
}

/// Waits (bounded, polling real sockets) until `check` holds.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_drops_the_key_from_another_nodes_l1() {
    let first = stack("l1-a", Strategy::CacheAside).await;
    // A second node over the same origin and server.
    let mut config = first.node.config().clone();
    config.write_behind.dir = first.dir.join("journal-b");
    let second = Node::start(config).await.unwrap();
    eventually("tracking up", async || first.node.l1_usable() && second.l1_usable()).await;

    first.node.put("x", "one").await.unwrap();
    assert_eq!(second.get("x").await.unwrap().unwrap().value, "one");
    // The fill into L2 is itself a write, whose push drops the L1 copy just
    // made; the next read refills L1 from L2, and the one after is local.
    eventually("a read from L1", async || {
        second.get("x").await.unwrap().unwrap().source == strata_node::ReadSource::L1
    })
    .await;

    first.node.put("x", "two").await.unwrap();
    eventually("the push to reach the second node", async || {
        second.peek_l1("x").is_none()
    })
    .await;
    let fresh = second.get("x").await.unwrap().unwrap();
    assert_eq!(fresh.value, "two");
    assert!(second.metrics().invalidations.get() >= 1);
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_protected_cluster_is_used_with_its_password() {
    let server = Server::start(Config {
        requirepass: Some("s3cret".into()),
        ..Config::default().on_free_ports()
    })
    .await
    .unwrap();
    let dir = scratch("auth");
    let config = |password: Option<&str>| NodeConfig {
        origin: dir.join("origin.db").display().to_string(),
        l2: vec![server.memcache_addr.to_string()],
        tracking: vec![server.resp_addr.to_string()],
        l2_password: password.map(strata_node::config::Secret::from),
        ..NodeConfig::default()
    };
    let node = Node::start(config(Some("s3cret"))).await.unwrap();
    eventually("tracking authenticated and up", async || node.l1_usable()).await;
    node.put("p", "v").await.unwrap();
    assert_eq!(
        node.get("p").await.unwrap().unwrap().source,
        strata_node::ReadSource::Origin
    );
    assert!(node.client().get(b"item:p").await.unwrap().is_some(), "filled into L2");

    // Without the password the cluster refuses; reads still answer, from
    // the origin, and L1 stays off (no tracking).
    let refused = Node::start(config(None)).await.unwrap();
    assert!(refused.client().get(b"item:p").await.is_err());
    assert_eq!(refused.get("p").await.unwrap().unwrap().value, "v");
    assert!(!refused.l1_usable());
    refused.shutdown().await;
    node.shutdown().await;
    server.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

/// An origin failure reaches the reader as the origin's own error — here
/// SQLite's "no such table" after the table is dropped behind the node's
/// back — through every read path: L1's coalesced load, the lease-get's
/// loader (cache-aside) and the naive plain get; over HTTP it is a 503
/// naming the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_error_reaches_the_reader_with_its_cause() {
    for (name, strategy) in [
        ("origin-error-aside", Strategy::CacheAside),
        ("origin-error-naive", Strategy::Naive),
    ] {
        let stack = stack(name, strategy).await;
        eventually("L1 usable", async || stack.node.l1_usable()).await;
        let no_l1 = Node::start(NodeConfig {
            l1: strata_node::config::L1Settings {
                max_bytes: 0,
                ..stack.node.config().l1.clone()
            },
            ..stack.node.config().clone()
        })
        .await
        .unwrap();
        let raw = rusqlite::Connection::open(stack.dir.join("origin.db")).unwrap();
        raw.execute_batch("DROP TABLE items").unwrap();

        for (which, node) in [("with L1", &stack.node), ("without L1", &no_l1)] {
            let failed = node.get("gone").await.unwrap_err();
            let message = failed.to_string();
            assert!(
                matches!(failed, strata_node::NodeError::Origin(_)) && failed.is_unavailable(),
                "{strategy:?} {which}: {message}"
            );
            assert!(message.contains("no such table"), "{strategy:?} {which}: {message}");
            assert!(
                !message.contains("origin task failed"),
                "{strategy:?} {which}: {message}"
            );
        }
        let (status, body) = http(stack.http, "GET", "/items/gone", None).await;
        assert_eq!(status, 503, "{body}");
        assert!(
            json(&body)["error"].as_str().unwrap().contains("no such table"),
            "{body}"
        );
        no_l1.shutdown().await;
    }
}
