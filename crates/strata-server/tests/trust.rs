//! Black-box tests for what a new user found by testing strata as they
//! would test memcached or Redis (the "server you can trust" issue): a
//! refused value takes the old one with it, HTTP on a data port is hung up
//! on, the password is never shown and cannot be guessed at pipeline speed,
//! unsupported persistence settings are refused, and client numbers never
//! wrap. Raw bytes on the wire, so each test says exactly what a client sees.

mod support;

use strata_server::Config;
use support::{exchange, read_at_least, read_to_close};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A connection of the `redis` crate, as an application would open it.
async fn redis_client(server: &strata_server::RunningServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{}/", server.resp_addr))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

fn small_items() -> Config {
    Config {
        max_item_size: "4kb".parse().expect("size"),
        ..Config::default()
    }
}

/// memcached's rule: `SERVER_ERROR object too large for cache` removes the
/// key, so no client reads the value the failed write meant to replace —
/// for `set`, `append` and `ms`, and not for `add`, which would not have
/// replaced anything.
#[tokio::test]
async fn a_refused_memcached_value_removes_the_old_one() {
    let server = support::start_with(small_items()).await;
    let mut mc = TcpStream::connect(server.memcache_addr).await.expect("connect");
    let big = vec![b'x'; 5000];

    for (setup, refused) in [
        (&b"set k 0 0 3\r\nMOO\r\n"[..], format!("set k 0 0 {}\r\n", big.len())),
        (b"set k 0 0 3\r\nMOO\r\n", format!("ms k {} T0\r\n", big.len())),
        (b"set k 0 0 3\r\nMOO\r\n", format!("append k 0 0 {}\r\n", big.len())),
    ] {
        assert_eq!(exchange(&mut mc, setup, 8).await, b"STORED\r\n");
        let mut request = refused.into_bytes();
        request.extend_from_slice(&big);
        request.extend_from_slice(b"\r\n");
        let reply = exchange(&mut mc, &request, 41).await;
        assert_eq!(reply, b"SERVER_ERROR object too large for cache\r\n");
        // The connection is still usable and the old value is gone.
        assert_eq!(exchange(&mut mc, b"get k\r\n", 5).await, b"END\r\n");
    }

    // A value that grows past the limit by appending is refused the same way.
    let half = vec![b'y'; 3000];
    let mut request = format!("set g 0 0 {}\r\n", half.len()).into_bytes();
    request.extend_from_slice(&half);
    request.extend_from_slice(b"\r\n");
    assert_eq!(exchange(&mut mc, &request, 8).await, b"STORED\r\n");
    let mut request = format!("append g 0 0 {}\r\n", half.len()).into_bytes();
    request.extend_from_slice(&half);
    request.extend_from_slice(b"\r\n");
    assert_eq!(
        exchange(&mut mc, &request, 41).await,
        b"SERVER_ERROR object too large for cache\r\n"
    );
    assert_eq!(exchange(&mut mc, b"get g\r\n", 5).await, b"END\r\n");

    // `add` would not have replaced the value, so its refusal keeps it.
    assert_eq!(exchange(&mut mc, b"set a 0 0 3\r\nMOO\r\n", 8).await, b"STORED\r\n");
    let mut request = format!("add a 0 0 {}\r\n", big.len()).into_bytes();
    request.extend_from_slice(&big);
    request.extend_from_slice(b"\r\n");
    exchange(&mut mc, &request, 41).await;
    assert_eq!(
        exchange(&mut mc, b"get a\r\n", 23).await,
        b"VALUE a 0 3\r\nMOO\r\nEND\r\n"
    );
}

/// The same over RESP: APPEND or SETRANGE that would grow a value past the
/// item limit gets an error and removes the key; `SET … NX` keeps it.
#[tokio::test]
async fn a_refused_resp_value_removes_the_old_one() {
    let server = support::start_with(small_items()).await;
    let mut resp = TcpStream::connect(server.resp_addr).await.expect("connect");
    let chunk = "y".repeat(3000);
    let set = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000\r\n{chunk}\r\n");
    assert_eq!(exchange(&mut resp, set.as_bytes(), 5).await, b"+OK\r\n");
    let append = format!("*3\r\n$6\r\nAPPEND\r\n$1\r\nk\r\n$3000\r\n{chunk}\r\n");
    let reply = exchange(&mut resp, append.as_bytes(), 4).await;
    assert!(reply.starts_with(b"-ERR"), "{}", String::from_utf8_lossy(&reply));
    assert_eq!(
        exchange(&mut resp, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 5).await,
        b"$-1\r\n"
    );

    assert_eq!(exchange(&mut resp, set.as_bytes(), 5).await, b"+OK\r\n");
    let setrange = "*4\r\n$8\r\nSETRANGE\r\n$1\r\nk\r\n$4\r\n5000\r\n$1\r\nz\r\n";
    let reply = exchange(&mut resp, setrange.as_bytes(), 4).await;
    assert!(reply.starts_with(b"-ERR"), "{}", String::from_utf8_lossy(&reply));
    assert_eq!(
        exchange(&mut resp, b"*2\r\n$6\r\nEXISTS\r\n$1\r\nk\r\n", 4).await,
        b":0\r\n"
    );
}

/// Cross-protocol scripting: a browser made to post to a data port. Redis
/// and memcached hang up without executing or answering anything.
#[tokio::test]
async fn http_on_a_data_port_is_hung_up_on() {
    let server = support::start().await;
    for request in [
        &b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\nSET pwned 1\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"Host: localhost\r\n",
    ] {
        let mut resp = TcpStream::connect(server.resp_addr).await.expect("connect");
        resp.write_all(request).await.expect("write");
        assert_eq!(
            read_to_close(&mut resp).await,
            b"",
            "{}",
            String::from_utf8_lossy(request)
        );
    }
    let mut resp = TcpStream::connect(server.resp_addr).await.expect("connect");
    assert_eq!(
        exchange(&mut resp, b"EXISTS pwned\r\n", 4).await,
        b":0\r\n",
        "nothing the page sent ran"
    );

    let mut mc = TcpStream::connect(server.memcache_addr).await.expect("connect");
    mc.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_to_close(&mut mc).await, b"");
}

/// The password is never shown, a guessing client is cut off, and both
/// protocols count failures.
#[tokio::test]
async fn the_password_is_never_shown_and_guessing_is_cut_off() {
    let server = support::start_with(Config {
        requirepass: Some("s3cret".into()),
        ..Config::default()
    })
    .await;
    let mut resp = TcpStream::connect(server.resp_addr).await.expect("connect");
    assert_eq!(exchange(&mut resp, b"AUTH s3cret\r\n", 5).await, b"+OK\r\n");
    let reply = exchange(&mut resp, b"CONFIG GET requirepass\r\n", 30).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("redacted"), "{text}");

    let mut guesser = TcpStream::connect(server.resp_addr).await.expect("connect");
    let guesses: Vec<u8> = (0..20)
        .flat_map(|i| format!("AUTH guess{i}\r\n").into_bytes())
        .collect();
    guesser.write_all(&guesses).await.expect("write");
    let replies = read_to_close(&mut guesser).await;
    let wrong = String::from_utf8_lossy(&replies).matches("-WRONGPASS").count();
    assert_eq!(wrong, 10, "ten answers, then the connection closes");

    let mut mc = TcpStream::connect(server.memcache_addr).await.expect("connect");
    let guesses: Vec<u8> = (0..20)
        .flat_map(|i| format!("set u 0 0 12\r\nuser guess{i:02}\r\n").into_bytes())
        .collect();
    mc.write_all(&guesses).await.expect("write");
    let replies = read_to_close(&mut mc).await;
    let failed = String::from_utf8_lossy(&replies)
        .matches("CLIENT_ERROR authentication failure")
        .count();
    assert_eq!(failed, 10);
}

/// Persistence settings strata cannot honour are refused, not accepted and
/// ignored.
#[tokio::test]
async fn unsupported_persistence_settings_are_refused() {
    let server = support::start().await;
    let mut resp = TcpStream::connect(server.resp_addr).await.expect("connect");
    let reply = exchange(&mut resp, b"CONFIG SET appendonly yes\r\n", 4).await;
    assert!(
        reply.starts_with(b"-ERR CONFIG SET failed"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let reply = exchange(&mut resp, b"CONFIG SET save \"900 1\"\r\n", 4).await;
    assert!(
        reply.starts_with(b"-ERR CONFIG SET failed"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(
        exchange(&mut resp, b"CONFIG SET appendonly no\r\n", 5).await,
        b"+OK\r\n"
    );
    assert_eq!(exchange(&mut resp, b"CONFIG SET save \"\"\r\n", 5).await, b"+OK\r\n");
}

/// `mg … R<secs>` with a number whose milliseconds overflow 64 bits once
/// wrapped to a small threshold and handed a fresh item's caller a
/// recache token (`W`).
#[tokio::test]
async fn a_huge_recache_threshold_does_not_wrap() {
    let server = support::start().await;
    let mut mc = TcpStream::connect(server.memcache_addr).await.expect("connect");
    assert_eq!(exchange(&mut mc, b"set k 0 3600 1\r\nv\r\n", 8).await, b"STORED\r\n");
    mc.write_all(b"mg k R99999999999999999 v\r\nmn\r\n")
        .await
        .expect("write");
    let reply = read_at_least(&mut mc, 14).await;
    let text = String::from_utf8_lossy(&reply);
    // Every remaining TTL is below an enormous threshold: the first caller
    // wins the recache, exactly once — and the reply is well formed.
    assert!(text.starts_with("VA 1 W\r\nv\r\n"), "{text}");
}

/// A client asking for one reply larger than `reply-buffer-limit` (an MGET
/// of one 1 MB value 2,000 times: 2 GB) gets no reply: its connection is
/// closed before the reply is built in full, the metric counts it, and
/// other clients never notice. A reply under the limit is served whole.
#[tokio::test]
async fn a_reply_past_the_limit_closes_that_connection_only() {
    let server = support::start_with(Config {
        reply_buffer_limit: Some("8mb".parse().expect("size")),
        ..Config::default()
    })
    .await;
    let value = vec![b'v'; 1_000_000];
    let mut setter = TcpStream::connect(server.resp_addr).await.expect("connect");
    let mut set = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(exchange(&mut setter, &set, 5).await, b"+OK\r\n");

    // Under the limit: 5 copies in one reply.
    let mget = |n: usize| {
        let mut request = format!("*{}\r\n$4\r\nMGET\r\n", n + 1).into_bytes();
        for _ in 0..n {
            request.extend_from_slice(b"$3\r\nbig\r\n");
        }
        request
    };
    let expected = 5 * (value.len() + 12) + 4;
    let reply = exchange(&mut setter, &mget(5), expected).await;
    assert_eq!(reply.len(), expected);

    let mut greedy = TcpStream::connect(server.resp_addr).await.expect("connect");
    greedy.write_all(&mget(2000)).await.expect("write");
    assert_eq!(read_to_close(&mut greedy).await, b"", "no partial reply, then closed");

    assert_eq!(exchange(&mut setter, b"PING\r\n", 7).await, b"+PONG\r\n");
    let metrics = support::http_get(server.admin_addr, "/metrics").await;
    assert!(metrics.contains("strata_reply_limit_disconnects_total 1"), "{metrics}");

    // memcached: a multiget whose reply passes the limit, the same way.
    let mut mc = TcpStream::connect(server.memcache_addr).await.expect("connect");
    let mut get = b"get".to_vec();
    for _ in 0..20 {
        get.extend_from_slice(b" big");
    }
    get.extend_from_slice(b"\r\n");
    mc.write_all(&get).await.expect("write");
    assert_eq!(read_to_close(&mut mc).await, b"");
}

/// Redis clients send values up to `proto-max-bulk-len` (512 MB). One the
/// server will not store (past `max-item-size`) gets an error reply on a
/// connection that stays usable — the value is discarded as it arrives,
/// never buffered — and the key's old value is gone; only a frame past the
/// protocol's own bound closes the connection.
#[tokio::test]
async fn a_value_past_the_item_limit_is_refused_and_the_connection_stays_usable() {
    let server = support::start().await;
    let mut con = redis_client(&server).await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("old")
        .query_async(&mut con)
        .await
        .expect("set");
    let big = vec![b'x'; 4 << 20];
    let refused: redis::RedisResult<()> = redis::cmd("SET").arg("k").arg(&big).query_async(&mut con).await;
    let error = refused.expect_err("a 4 MB value is over the 1 MB item limit");
    assert!(error.to_string().contains("exceeds maximum allowed size"), "{error}");
    let now: Option<String> = redis::cmd("GET").arg("k").query_async(&mut con).await.expect("get");
    assert_eq!(now, None, "the old value went with the refused write");
    // MSET: every key whose value was given goes.
    let _: () = redis::cmd("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query_async(&mut con)
        .await
        .expect("mset");
    let refused: redis::RedisResult<()> = redis::cmd("MSET")
        .arg("a")
        .arg(&big)
        .arg("b")
        .arg("3")
        .query_async(&mut con)
        .await;
    assert!(refused.is_err());
    let left: Vec<Option<String>> = redis::cmd("MGET")
        .arg("a")
        .arg("b")
        .query_async(&mut con)
        .await
        .expect("mget");
    assert_eq!(left, vec![None, None]);
    let pong: String = redis::cmd("PING").query_async(&mut con).await.expect("still usable");
    assert_eq!(pong, "PONG");

    // Past proto-max-bulk-len: a protocol error, and the connection closes.
    let mut raw = TcpStream::connect(server.resp_addr).await.expect("connect");
    raw.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$600000000\r\n")
        .await
        .expect("write");
    let reply = read_to_close(&mut raw).await;
    assert!(
        reply.starts_with(b"-ERR Protocol error"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

/// `FLUSHALL ASYNC` replies at once with everything gone; the memory is
/// freed in the background and the server goes on serving.
#[tokio::test]
async fn flushall_async_empties_at_once_and_serving_goes_on() {
    let server = support::start().await;
    let mut resp = TcpStream::connect(server.resp_addr).await.expect("connect");
    let mut sets = Vec::new();
    for i in 0..1000 {
        sets.extend_from_slice(format!("SET key{i} value{i}\r\n").as_bytes());
    }
    assert_eq!(exchange(&mut resp, &sets, 5000).await.len(), 5000);
    assert_eq!(exchange(&mut resp, b"FLUSHALL ASYNC\r\n", 5).await, b"+OK\r\n");
    assert_eq!(exchange(&mut resp, b"DBSIZE\r\n", 4).await, b":0\r\n");
    assert_eq!(exchange(&mut resp, b"SET after 1\r\n", 5).await, b"+OK\r\n");
    assert_eq!(exchange(&mut resp, b"DBSIZE\r\n", 4).await, b":1\r\n");
}

/// SCAN with any COUNT keeps Redis's guarantee (every key present
/// throughout is returned), whether one call visits everything or many
/// calls each visit a few; a huge COUNT is served in slices, never under
/// one long lock.
#[tokio::test]
async fn scan_with_any_count_returns_every_key() {
    let server = support::start().await;
    let mut con = redis_client(&server).await;
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    let _: () = pipe.query_async(&mut con).await.expect("sets");
    for count in [7u64, 100, 1_000_000_000] {
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(count)
                .query_async(&mut con)
                .await
                .expect("scan");
            seen.extend(keys);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 3000, "COUNT {count}");
    }
}

/// One long memcached `get` line (18,000 keys, a large but ordinary
/// multiget) sent by a client that does not read: the server answers the
/// keys only as fast as the client takes the replies, so what it holds is
/// bounded by the socket buffers, not by the line (before, every reply was
/// built at once: 1.8 GiB of RSS for 100 KB values). Read in the end, the
/// reply is whole.
#[tokio::test]
async fn a_long_get_line_is_answered_as_fast_as_it_is_read() {
    let server = support::start().await;
    const KEYS: usize = 18_000;
    let value = vec![b'v'; 4000];
    let mut mc = TcpStream::connect(server.memcache_addr).await.expect("connect");
    let mut set = format!("set big 0 0 {}\r\n", value.len()).into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    assert_eq!(exchange(&mut mc, &set, 8).await, b"STORED\r\n");

    let mut line = b"get".to_vec();
    for _ in 0..KEYS {
        line.extend_from_slice(b" big");
    }
    line.extend_from_slice(b"\r\n");
    mc.write_all(&line).await.expect("write");

    // Wait until the server stops answering (the socket buffers are full).
    let hits = || async {
        let metrics = support::http_get(server.admin_addr, "/metrics").await;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("strata_keyspace_hits_total "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .expect("hits metric")
    };
    let mut last = usize::MAX;
    let mut steady = 0;
    for _ in 0..500 {
        let now = hits().await;
        steady = if now == last && now > 0 { steady + 1 } else { 0 };
        if steady == 5 {
            break;
        }
        last = now;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(steady, 5, "the server kept answering: {last} hits");
    assert!(
        last < KEYS / 2,
        "{last} of {KEYS} keys answered to a client that read nothing"
    );

    let header = format!("VALUE big 0 {}\r\n", value.len());
    let expected = KEYS * (header.len() + value.len() + 2) + 5;
    let reply = read_at_least(&mut mc, expected).await;
    assert_eq!(reply.len(), expected);
    assert!(reply.ends_with(b"\r\nEND\r\n"));
    assert_eq!(hits().await, KEYS);
}

/// Client buffers come out of `maxmemory` too: with the store full, ten
/// clients each holding most of a 1 MB value in their read buffers make
/// the store give up room (Redis counts client memory in `used_memory`
/// and evicts for it as well).
#[tokio::test]
async fn client_buffers_are_counted_against_the_memory_limit() {
    let server = support::start_with(Config {
        maxmemory: "16mb".parse().expect("size"),
        ..Config::default()
    })
    .await;
    let gauge = |metrics: &str, name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    let mut filler = TcpStream::connect(server.resp_addr).await.expect("connect");
    let value = "v".repeat(1000);
    for batch in 0..40 {
        let mut request = Vec::new();
        for i in 0..1000 {
            let key = format!("fill:{batch}:{i}");
            request.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1000\r\n{value}\r\n", key.len()).as_bytes(),
            );
        }
        assert_eq!(exchange(&mut filler, &request, 5000).await.len(), 5000);
    }
    let metrics = support::http_get(server.admin_addr, "/metrics").await;
    let full = gauge(&metrics, "strata_memory_used_bytes");
    assert!(full > 14 << 20, "the store is full: {full}");

    let mut holders = Vec::new();
    for i in 0..10 {
        let mut holder = TcpStream::connect(server.resp_addr).await.expect("connect");
        let key = format!("held:{i}");
        let mut partial = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1000000\r\n", key.len()).into_bytes();
        partial.extend(std::iter::repeat_n(b'x', 900_000));
        holder.write_all(&partial).await.expect("write");
        holders.push(holder);
    }
    let mut last = String::new();
    for _ in 0..500 {
        last = support::http_get(server.admin_addr, "/metrics").await;
        let clients = gauge(&last, "strata_client_buffer_bytes");
        let used = gauge(&last, "strata_memory_used_bytes");
        if clients >= 8 << 20 && used <= (16 << 20) - (8 << 20) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the store did not give room to the clients' buffers:\n{last}");
}

/// Redis's `client-output-buffer-limit`, in its own form: the pub/sub soft
/// limit cuts off a subscriber whose queue stays past it (here for 0
/// seconds: at once), below the hard limit; what strata cannot honour
/// (a soft limit for normal clients, replicas) is refused by name.
#[tokio::test]
async fn client_output_buffer_limit_sets_the_pubsub_soft_limit() {
    let server = support::start().await;
    let mut con = redis_client(&server).await;
    let set = |value: &str| {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg("client-output-buffer-limit").arg(value);
        cmd
    };
    for unsupported in ["normal 0 1mb 10", "replica 256mb 64mb 60", "pubsub 32mb"] {
        let refused: Result<(), _> = set(unsupported).query_async(&mut con).await;
        let error = refused.expect_err(unsupported).to_string();
        assert!(error.contains("CONFIG SET failed"), "{unsupported}: {error}");
    }
    let () = set("pubsub 32mb 64kb 0").query_async(&mut con).await.expect("set");
    let shown: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-output-buffer-limit")
        .query_async(&mut con)
        .await
        .expect("config get");
    assert!(shown[1].contains("pubsub 33554432 65536 0"), "{shown:?}");

    let mut subscriber = TcpStream::connect(server.resp_addr).await.expect("connect");
    let subscribed = exchange(&mut subscriber, b"SUBSCRIBE ch\r\n", 30).await;
    assert!(
        subscribed.ends_with(b":1\r\n"),
        "{}",
        String::from_utf8_lossy(&subscribed)
    );
    // 10 MB published, never read: under the 32 MB hard limit, but the
    // queue passes 64 KiB once the socket is full.
    let payload = "p".repeat(100_000);
    for _ in 0..100 {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("ch")
            .arg(&payload)
            .query_async(&mut con)
            .await
            .expect("publish");
    }
    let mut metrics = String::new();
    for _ in 0..500 {
        metrics = support::http_get(server.admin_addr, "/metrics").await;
        if metrics.contains("strata_push_disconnects_total 1") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the subscriber was not cut off:\n{metrics}");
}
