//! The tracking subscriber against a real strata server in process: keys
//! changed over RESP and over memcached arrive as invalidations, and a
//! server restart on the same port is reported as a loss (`All`), then the
//! subscriber is healthy again.

use std::net::SocketAddr;
use std::time::Duration;

use strata_client::tracking::{Invalidation, Tracker, TrackingConfig};
use strata_server::{Config, RunningServer, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(5);

async fn server_on(resp_port: u16) -> RunningServer {
    let config = Config {
        resp_port,
        ..Config::default().on_free_ports()
    };
    Server::start(config).await.expect("server starts")
}

/// A tracker of `prefixes` on `addr` whose invalidations arrive on a
/// channel.
fn track(addr: SocketAddr, prefixes: &[&str]) -> (Tracker, mpsc::UnboundedReceiver<Invalidation>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let tracker = Tracker::spawn(
        TrackingConfig {
            addrs: vec![addr.to_string()],
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            reconnect_delay: Duration::from_millis(20),
            password: None,
        },
        move |invalidation| {
            let _ = tx.send(invalidation);
        },
    );
    (tracker, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Invalidation>) -> Invalidation {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("an invalidation in time")
        .expect("the tracker is running")
}

fn keys(keys: &[&str]) -> Invalidation {
    Invalidation::Keys(keys.iter().map(|k| k.as_bytes().to_vec()).collect())
}

/// Waits (bounded) for the tracker's connections to report `healthy`.
async fn wait_healthy(tracker: &Tracker, healthy: bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tracker.is_healthy() != healthy {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tracker never became healthy={healthy}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends `request` and reads until the reply ends with `expect`.
async fn roundtrip(addr: SocketAddr, request: &[u8], expect: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut got = Vec::new();
    while !got.ends_with(expect) {
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(read > 0, "closed; got {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..read]);
    }
}

async fn resp_set(server: &RunningServer, key: &str, value: &str) {
    let request = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
        key.len(),
        value.len()
    );
    roundtrip(server.resp_addr, request.as_bytes(), b"+OK\r\n").await;
}

#[tokio::test]
async fn writes_over_either_protocol_invalidate() {
    let server = server_on(0).await;
    let (tracker, mut rx) = track(server.resp_addr, &["row:"]);
    assert_eq!(
        next(&mut rx).await,
        Invalidation::All,
        "every subscription starts with All"
    );
    wait_healthy(&tracker, true).await;
    resp_set(&server, "row:1", "a").await;
    assert_eq!(next(&mut rx).await, keys(&["row:1"]));
    roundtrip(server.memcache_addr, b"ms row:2 1\r\nx\r\n", b"HD\r\n").await;
    assert_eq!(next(&mut rx).await, keys(&["row:2"]));
    // Other prefixes are not sent; order is kept, so the next message is
    // the next matching write.
    resp_set(&server, "other", "a").await;
    roundtrip(server.memcache_addr, b"delete row:1\r\n", b"DELETED\r\n").await;
    assert_eq!(next(&mut rx).await, keys(&["row:1"]));
    roundtrip(server.memcache_addr, b"flush_all\r\n", b"OK\r\n").await;
    assert_eq!(next(&mut rx).await, Invalidation::All);
    assert_eq!(tracker.received(), 3);
    assert!(tracker.is_healthy());
    tracker.shutdown();
    assert!(!tracker.is_healthy());
    // The task ends and its connection closes: the server stops tracking it.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut stream = TcpStream::connect(server.resp_addr).await.unwrap();
        stream.write_all(b"INFO clients\r\n").await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if String::from_utf8_lossy(&buf[..n]).contains("tracking_clients:0") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tracking connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ended = tokio::time::timeout(DEADLINE, rx.recv()).await.expect("the task ends");
    assert!(ended.is_none(), "no more callbacks after shutdown: {ended:?}");
}

#[tokio::test]
async fn a_server_restart_is_a_loss_then_a_resubscription() {
    let server = server_on(0).await;
    let addr = server.resp_addr;
    let (tracker, mut rx) = track(addr, &[]);
    assert_eq!(next(&mut rx).await, Invalidation::All);
    wait_healthy(&tracker, true).await;
    resp_set(&server, "k", "1").await;
    assert_eq!(next(&mut rx).await, keys(&["k"]));

    server.shutdown();
    server.wait().await;
    assert_eq!(next(&mut rx).await, Invalidation::All, "the loss");
    assert!(!tracker.is_healthy());

    let server = server_on(addr.port()).await;
    assert_eq!(next(&mut rx).await, Invalidation::All, "resubscribed");
    wait_healthy(&tracker, true).await;
    resp_set(&server, "k", "2").await;
    assert_eq!(next(&mut rx).await, keys(&["k"]));
    assert_eq!(tracker.received(), 2);
    drop(tracker);
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn an_unreachable_server_keeps_the_tracker_unhealthy() {
    // A port nothing listens on (bound, then released).
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (tracker, mut rx) = track(addr, &[]);
    assert!(!tracker.is_healthy());
    // The server comes up: subscribed, All, healthy.
    let server = server_on(addr.port()).await;
    assert_eq!(next(&mut rx).await, Invalidation::All);
    wait_healthy(&tracker, true).await;
    tracker.shutdown();
    server.shutdown();
    server.wait().await;
}
