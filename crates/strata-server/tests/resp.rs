//! Black-box tests of the RESP listener: the `redis` client crate for the
//! command families, raw bytes for protocol edge cases.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use strata_server::Config;
use support::{exchange, read_at_least, read_to_close};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn client(server: &strata_server::RunningServer) -> redis::aio::MultiplexedConnection {
    let url = format!("redis://{}/", server.resp_addr);
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

#[tokio::test]
async fn strings_with_the_redis_crate() {
    let server = support::start().await;
    let mut con = client(&server).await;
    let _: () = con.set("greeting", "hello").await.unwrap();
    let value: String = con.get("greeting").await.unwrap();
    assert_eq!(value, "hello");
    let missing: Option<String> = con.get("missing").await.unwrap();
    assert_eq!(missing, None);
    let _: () = con.mset(&[("a", "1"), ("b", "2")]).await.unwrap();
    let values: Vec<Option<String>> = con.mget(&["a", "b", "c"]).await.unwrap();
    assert_eq!(values, vec![Some("1".into()), Some("2".into()), None]);
    assert_eq!(con.incr::<_, _, i64>("counter", 5).await.unwrap(), 5);
    assert_eq!(con.decr::<_, _, i64>("counter", 2).await.unwrap(), 3);
    let float: f64 = redis::cmd("INCRBYFLOAT")
        .arg("counter")
        .arg("0.5")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(float, 3.5);
    assert_eq!(con.append::<_, _, usize>("greeting", " world").await.unwrap(), 11);
    assert_eq!(con.strlen::<_, usize>("greeting").await.unwrap(), 11);
    let range: String = con.getrange("greeting", 0, 4).await.unwrap();
    assert_eq!(range, "hello");
    assert_eq!(con.setrange::<_, _, usize>("greeting", 6, "rusty").await.unwrap(), 11);
    let value: String = con.get("greeting").await.unwrap();
    assert_eq!(value, "hello rusty");
    // SET options.
    let set_nx: Option<String> = redis::cmd("SET")
        .arg("greeting")
        .arg("x")
        .arg("NX")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(set_nx, None);
    let old: Option<String> = redis::cmd("SET")
        .arg("greeting")
        .arg("new")
        .arg("GET")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(old.as_deref(), Some("hello rusty"));
    let _: () = redis::cmd("SET")
        .arg("t")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query_async(&mut con)
        .await
        .unwrap();
    let ttl: i64 = con.ttl("t").await.unwrap();
    assert!((99..=100).contains(&ttl));
    let _: () = redis::cmd("SET")
        .arg("t")
        .arg("w")
        .arg("KEEPTTL")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(con.ttl::<_, i64>("t").await.unwrap() > 0);
    let getdel: Option<String> = redis::cmd("GETDEL").arg("t").query_async(&mut con).await.unwrap();
    assert_eq!(getdel.as_deref(), Some("w"));
    assert!(!con.exists::<_, bool>("t").await.unwrap());
    let lcs: String = redis::cmd("LCS").arg("a").arg("b").query_async(&mut con).await.unwrap();
    assert_eq!(lcs, "");
    let _: () = con.mset(&[("k1", "ohmytext"), ("k2", "mynewtext")]).await.unwrap();
    let lcs: String = redis::cmd("LCS")
        .arg("k1")
        .arg("k2")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(lcs, "mytext");
    let len: i64 = redis::cmd("LCS")
        .arg("k1")
        .arg("k2")
        .arg("LEN")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(len, 6);
    let err = con.incr::<_, _, i64>("greeting", 1).await.unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
}

#[tokio::test]
async fn keyspace_with_the_redis_crate() {
    let server = support::start().await;
    let mut con = client(&server).await;
    for i in 0..50 {
        let _: () = con.set(format!("user:{i}"), i).await.unwrap();
    }
    let _: () = con.set("other", 1).await.unwrap();
    assert_eq!(con.exists::<_, usize>(&["user:1", "user:2", "nope"]).await.unwrap(), 2);
    let mut keys: Vec<String> = con.keys("user:1*").await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 11);
    // SCAN visits every key once.
    let mut seen: Vec<String> = Vec::new();
    let mut iter: redis::AsyncIter<String> = con.scan_match("user:*").await.unwrap();
    while let Some(key) = iter.next_item().await {
        seen.push(key.unwrap());
    }
    drop(iter);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 50);
    assert!(con.expire::<_, bool>("user:1", 100).await.unwrap());
    assert!(!con.expire::<_, bool>("nope", 100).await.unwrap());
    let gt: i64 = redis::cmd("EXPIRE")
        .arg("user:1")
        .arg(50)
        .arg("GT")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(gt, 0, "GT refuses a shorter TTL");
    let pttl: i64 = con.pttl("user:1").await.unwrap();
    assert!(pttl > 99_000);
    assert!(con.persist::<_, bool>("user:1").await.unwrap());
    assert_eq!(con.ttl::<_, i64>("user:1").await.unwrap(), -1);
    assert_eq!(con.ttl::<_, i64>("nope").await.unwrap(), -2);
    let _: () = con.rename("user:2", "renamed").await.unwrap();
    assert!(!con.exists::<_, bool>("user:2").await.unwrap());
    assert!(!con.rename_nx::<_, _, bool>("renamed", "other").await.unwrap());
    let copied: bool = redis::cmd("COPY")
        .arg("renamed")
        .arg("copy")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(copied);
    let kind: String = redis::cmd("TYPE").arg("copy").query_async(&mut con).await.unwrap();
    assert_eq!(kind, "string");
    assert_eq!(con.del::<_, usize>(&["copy", "renamed", "nope"]).await.unwrap(), 2);
    let size: usize = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(size, 50, "49 users left and \"other\"");
    let random: Option<String> = redis::cmd("RANDOMKEY").query_async(&mut con).await.unwrap();
    assert!(random.is_some());
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("other")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(usage > 0);
    let freq: i64 = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("other")
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(freq >= 0);
    let _: () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
    assert_eq!(redis::cmd("DBSIZE").query_async::<usize>(&mut con).await.unwrap(), 0);
}

#[tokio::test]
async fn server_commands_and_resp3() {
    let server = support::start().await;
    let url = format!("redis://{}/?protocol=resp3", server.resp_addr);
    let mut con = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    let info: String = redis::cmd("INFO").arg("server").query_async(&mut con).await.unwrap();
    assert!(
        info.contains("redis_version:") && info.contains("strata_version:"),
        "{info}"
    );
    let config: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory*")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(config.get("maxmemory-policy").map(String::as_str), Some("adaptive"));
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("32mb")
        .query_async(&mut con)
        .await
        .unwrap();
    let config: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(config.get("maxmemory").map(String::as_str), Some("33554432"));
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("tester")
        .query_async(&mut con)
        .await
        .unwrap();
    let name: String = redis::cmd("CLIENT").arg("GETNAME").query_async(&mut con).await.unwrap();
    assert_eq!(name, "tester");
    let time: (String, String) = redis::cmd("TIME").query_async(&mut con).await.unwrap();
    assert!(time.0.parse::<u64>().unwrap() > 1_600_000_000);
    let count: i64 = redis::cmd("COMMAND").arg("COUNT").query_async(&mut con).await.unwrap();
    assert!(count > 50);
    let err = redis::cmd("SELECT")
        .arg(1)
        .query_async::<()>(&mut con)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}

#[tokio::test]
async fn ttl_follows_the_injected_clock() {
    let (server, clock) = support::start_with_clock().await;
    let mut con = client(&server).await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(10)
        .query_async(&mut con)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(9));
    assert_eq!(con.get::<_, Option<String>>("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(con.ttl::<_, i64>("k").await.unwrap(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(con.get::<_, Option<String>>("k").await.unwrap(), None);
    // EXPIREAT in the past deletes at once.
    let _: () = con.set("gone", 1).await.unwrap();
    let set: bool = redis::cmd("EXPIREAT")
        .arg("gone")
        .arg(1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(set);
    assert!(!con.exists::<_, bool>("gone").await.unwrap());
}

#[tokio::test]
async fn leases_over_resp() {
    let (server, clock) = support::start_with_clock().await;
    let mut first = client(&server).await;
    let mut second = client(&server).await;
    let won: (String, i64) = redis::cmd("LGET").arg("row:1").query_async(&mut first).await.unwrap();
    assert_eq!(won.0, "lease");
    let wait: Vec<String> = redis::cmd("LGET").arg("row:1").query_async(&mut second).await.unwrap();
    assert_eq!(wait, vec!["wait".to_string()]);
    // A plain GET does not see the placeholder.
    assert_eq!(second.get::<_, Option<String>>("row:1").await.unwrap(), None);
    let filled: String = redis::cmd("LSET")
        .arg("row:1")
        .arg(won.1)
        .arg("v1")
        .query_async(&mut first)
        .await
        .unwrap();
    assert_eq!(filled, "OK");
    let hit: (String, String) = redis::cmd("LGET").arg("row:1").query_async(&mut second).await.unwrap();
    assert_eq!(hit, ("hit".into(), "v1".into()));
    // A delete between grant and fill voids the token: the late fill is refused.
    let _: () = second.del("row:1").await.unwrap();
    let won: (String, i64) = redis::cmd("LGET").arg("row:1").query_async(&mut first).await.unwrap();
    let _: () = second.del("row:1").await.unwrap();
    let late: Option<String> = redis::cmd("LSET")
        .arg("row:1")
        .arg(won.1)
        .arg("old")
        .query_async(&mut first)
        .await
        .unwrap();
    assert_eq!(late, None);
    // Stale-while-revalidate.
    let _: () = first.set("row:2", "v2").await.unwrap();
    let marked: i64 = redis::cmd("LINVALIDATE")
        .arg("row:2")
        .query_async(&mut first)
        .await
        .unwrap();
    assert_eq!(marked, 1);
    let stale: (String, String, i64) = redis::cmd("LGET").arg("row:2").query_async(&mut first).await.unwrap();
    assert_eq!((stale.0.as_str(), stale.1.as_str()), ("stale", "v2"));
    let other: (String, String) = redis::cmd("LGET").arg("row:2").query_async(&mut second).await.unwrap();
    assert_eq!(other, ("stale".into(), "v2".into()));
    // A lease holder that never fills: after the lease period another wins.
    let _: () = first.del("row:3").await.unwrap();
    let _: (String, i64) = redis::cmd("LGET").arg("row:3").query_async(&mut first).await.unwrap();
    clock.advance(Duration::from_secs(10));
    let again: (String, i64) = redis::cmd("LGET").arg("row:3").query_async(&mut second).await.unwrap();
    assert_eq!(again.0, "lease");
}

#[tokio::test]
async fn auth_is_required_when_configured() {
    let server = support::start_with(Config {
        requirepass: Some("s3cret".into()),
        ..Config::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.resp_addr).await.unwrap();
    let reply = exchange(&mut stream, b"GET k\r\n", 10).await;
    assert!(reply.starts_with(b"-NOAUTH"), "{}", String::from_utf8_lossy(&reply));
    let reply = exchange(&mut stream, b"AUTH wrong\r\n", 10).await;
    assert!(reply.starts_with(b"-WRONGPASS"), "{}", String::from_utf8_lossy(&reply));
    let reply = exchange(&mut stream, b"AUTH s3cret\r\n", 5).await;
    assert_eq!(reply, b"+OK\r\n");
    let reply = exchange(&mut stream, b"GET k\r\n", 5).await;
    assert_eq!(reply, b"$-1\r\n");
    // The redis crate authenticates from the URL.
    let url = format!("redis://:s3cret@{}/", server.resp_addr);
    let mut con = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = con.set("k", "v").await.unwrap();
}

/// The replies a pipeline gets when sent in one write.
async fn replies_whole(addr: std::net::SocketAddr, pipeline: &[u8], expect: usize) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    exchange(&mut stream, pipeline, expect).await
}

#[tokio::test]
async fn pipelines_split_at_every_byte_boundary_give_the_same_replies() {
    let server = support::start().await;
    let pipeline: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\nGET k\r\n*3\r\n$6\r\nAPPEND\r\n$1\r\nk\r\n\
        $1\r\nk\r\n*1\r\n$4\r\nPING\r\nINCR n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    let expected = b"+OK\r\n$5\r\nvalue\r\n:6\r\n+PONG\r\n:1\r\n$6\r\nvaluek\r\n";
    let whole = replies_whole(server.resp_addr, pipeline, expected.len()).await;
    assert_eq!(whole, expected, "{}", String::from_utf8_lossy(&whole));
    for split in 1..pipeline.len() {
        let _: () = {
            let mut con = client(&server).await;
            let _: () = redis::cmd("DEL").arg("k").arg("n").query_async(&mut con).await.unwrap();
        };
        let mut stream = TcpStream::connect(server.resp_addr).await.unwrap();
        stream.write_all(&pipeline[..split]).await.unwrap();
        stream.flush().await.unwrap();
        tokio::task::yield_now().await;
        stream.write_all(&pipeline[split..]).await.unwrap();
        let got = read_at_least(&mut stream, expected.len()).await;
        assert_eq!(got, expected, "split at {split}: {}", String::from_utf8_lossy(&got));
    }
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let server = support::start().await;
    let mut good = TcpStream::connect(server.resp_addr).await.unwrap();
    assert_eq!(exchange(&mut good, b"SET k v\r\n", 5).await, b"+OK\r\n");
    let cases: [(&[u8], &str); 5] = [
        (b"*abc\r\n", "-ERR Protocol error: invalid multibulk length"),
        (
            b"*2\r\n$3\r\nGET\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'",
        ),
        (b"*1\r\n$99999999999\r\n", "-ERR Protocol error: invalid bulk length"),
        (b"*99999999\r\n", "-ERR Protocol error: invalid multibulk length"),
        (
            b"SET \"unbalanced k\r\n",
            "-ERR Protocol error: unbalanced quotes in request",
        ),
    ];
    for (frame, error) in cases {
        let mut bad = TcpStream::connect(server.resp_addr).await.unwrap();
        bad.write_all(frame).await.unwrap();
        let reply = read_to_close(&mut bad).await;
        assert!(
            reply.starts_with(error.as_bytes()),
            "{:?} → {}",
            String::from_utf8_lossy(frame),
            String::from_utf8_lossy(&reply)
        );
    }
    // An oversized bulk is refused as soon as its header arrives, before
    // the data: the server answers and closes without waiting for it.
    let mut huge = TcpStream::connect(server.resp_addr).await.unwrap();
    huge.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000000\r\n")
        .await
        .unwrap();
    let reply = read_to_close(&mut huge).await;
    assert!(
        reply.starts_with(b"-ERR Protocol error"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // The good connection is untouched.
    assert_eq!(exchange(&mut good, b"GET k\r\n", 7).await, b"$1\r\nv\r\n");
    // Unknown commands and wrong arity keep the connection.
    let reply = exchange(&mut good, b"NOSUCH a\r\nGET\r\nGET k\r\n", 90).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.starts_with("-ERR unknown command 'NOSUCH', with args beginning with: 'a'"),
        "{text}"
    );
    assert!(
        text.contains("-ERR wrong number of arguments for 'get' command\r\n$1\r\nv\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn connection_limit_refuses_with_an_error() {
    let server = support::start_with(Config {
        max_connections: 2,
        ..Config::default()
    })
    .await;
    let mut a = TcpStream::connect(server.resp_addr).await.unwrap();
    let mut b = TcpStream::connect(server.resp_addr).await.unwrap();
    assert_eq!(exchange(&mut a, b"PING\r\n", 7).await, b"+PONG\r\n");
    assert_eq!(exchange(&mut b, b"PING\r\n", 7).await, b"+PONG\r\n");
    let mut c = TcpStream::connect(server.resp_addr).await.unwrap();
    let reply = read_to_close(&mut c).await;
    assert_eq!(reply, b"-ERR max number of clients reached\r\n");
    drop(a);
    // The freed slot is usable again (the server notices the close).
    let mut d = None;
    for _ in 0..100 {
        let mut s = TcpStream::connect(server.resp_addr).await.unwrap();
        let reply = exchange(&mut s, b"PING\r\n", 7).await;
        if reply == b"+PONG\r\n" {
            d = Some(s);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(d.is_some(), "a slot freed by a closed connection is reused");
}

#[tokio::test]
async fn metrics_endpoint_reports_commands_and_store() {
    let server = support::start().await;
    let mut con = client(&server).await;
    let _: () = con.set("k", "v").await.unwrap();
    let _: Option<String> = con.get("k").await.unwrap();
    let _: Option<String> = con.get("missing").await.unwrap();
    drop(con);
    let mut text = String::new();
    // Counters are flushed per batch; poll briefly.
    for _ in 0..50 {
        text = support::http_get(server.admin_addr, "/metrics").await;
        if text.contains("command=\"get\"} 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        text.contains("strata_commands_total{protocol=\"resp\",command=\"get\"} 2"),
        "{text}"
    );
    assert!(text.contains("strata_keyspace_hits_total 1"), "{text}");
    assert!(text.contains("strata_keyspace_misses_total 1"), "{text}");
    assert!(text.contains("strata_command_duration_seconds_bucket"), "{text}");
    assert!(text.contains("strata_memory_used_bytes"), "{text}");
    let health = support::http_get(server.admin_addr, "/healthz").await;
    assert!(health.ends_with("ok\n"), "{health}");
}

#[tokio::test]
async fn shutdown_finishes_replies_in_flight() {
    let server = support::start().await;
    let mut stream = TcpStream::connect(server.resp_addr).await.unwrap();
    let mut pipeline = Vec::new();
    for i in 0..1000 {
        pipeline.extend_from_slice(format!("SET key:{i} {i}\r\n").as_bytes());
    }
    stream.write_all(&pipeline).await.unwrap();
    // Wait for the first reply so the batch has been read.
    let first = read_at_least(&mut stream, 5).await;
    server.shutdown();
    let rest = read_to_close(&mut stream).await;
    let total = first.len() + rest.len();
    assert_eq!(total % 5, 0);
    assert!(total >= 5, "in-flight replies are written before closing");
    let store = server.store().clone();
    tokio::time::timeout(Duration::from_secs(5), server.wait())
        .await
        .expect("server stops");
    // Every reply sent corresponds to a stored key.
    assert!(store.len() >= total / 5);
}
