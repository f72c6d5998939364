//! Black-box tests of client tracking (Redis's client-side caching) and
//! pub/sub: raw RESP over loopback for the exact frames, the `redis` crate
//! for a real client's view of RESP3 pushes.
//!
//! "No push arrived" is checked without sleeping: pushes queued before a
//! command runs are written right after its reply, so two PING round trips
//! after the write that would have caused one are enough to have read it.

mod support;

use std::collections::VecDeque;
use std::time::Duration;

use redis::AsyncCommands;
use strata_proto::resp::{Reply, ReplyLimits, encode_command, parse_reply};
use strata_server::{ByteSize, Config, RunningServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const DEADLINE: Duration = Duration::from_secs(5);

/// A RESP connection that keeps pushes apart from replies.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    pushes: VecDeque<Reply>,
}

impl Raw {
    async fn connect(server: &RunningServer) -> Raw {
        Raw::over(TcpStream::connect(server.resp_addr).await.expect("connect")).await
    }

    async fn over(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buf: Vec::new(),
            pushes: VecDeque::new(),
        }
    }

    /// A RESP3 connection.
    async fn resp3(server: &RunningServer) -> Raw {
        let mut raw = Raw::connect(server).await;
        assert!(matches!(raw.call(&["HELLO", "3"]).await, Reply::Map(_)));
        raw
    }

    async fn send(&mut self, args: &[&str]) {
        let mut out = Vec::new();
        encode_command(&mut out, args);
        self.stream.write_all(&out).await.expect("write");
    }

    /// The next frame of any kind.
    async fn frame(&mut self) -> Reply {
        loop {
            if let Some((reply, used)) = parse_reply(&self.buf, &ReplyLimits::default()).expect("valid RESP") {
                self.buf.drain(..used);
                return reply;
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no frame within {DEADLINE:?}; pushes so far {:?}", self.pushes))
                .expect("read");
            assert!(read > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    /// The next reply, queueing pushes read on the way.
    async fn reply(&mut self) -> Reply {
        loop {
            match self.frame().await {
                Reply::Push(push) => self.pushes.push_back(Reply::Push(push)),
                reply => return reply,
            }
        }
    }

    async fn call(&mut self, args: &[&str]) -> Reply {
        self.send(args).await;
        self.reply().await
    }

    /// The next push.
    async fn push(&mut self) -> Reply {
        if let Some(push) = self.pushes.pop_front() {
            return push;
        }
        loop {
            if let Reply::Push(push) = self.frame().await {
                return Reply::Push(push);
            }
        }
    }

    /// Reads everything queued for this connection so far (see the module
    /// docs) and returns the pushes among it.
    async fn settle(&mut self) -> Vec<Reply> {
        for _ in 0..2 {
            assert_eq!(self.call(&["PING"]).await, Reply::Simple(b"PONG".to_vec()));
        }
        self.pushes.drain(..).collect()
    }
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

fn ok() -> Reply {
    Reply::Simple(b"OK".to_vec())
}

/// A RESP3 invalidation push of `keys`.
fn invalidate(keys: &[&str]) -> Reply {
    Reply::Push(vec![
        bulk("invalidate"),
        Reply::Array(keys.iter().map(|k| bulk(k)).collect()),
    ])
}

fn flush_push() -> Reply {
    Reply::Push(vec![bulk("invalidate"), Reply::Null])
}

/// The keys of invalidation pushes, in order.
fn keys_of(pushes: &[Reply]) -> Vec<String> {
    let mut keys = Vec::new();
    for push in pushes {
        let Reply::Push(items) = push else {
            panic!("not a push: {push:?}");
        };
        assert_eq!(items[0], bulk("invalidate"), "{push:?}");
        let Reply::Array(batch) = &items[1] else {
            panic!("not a key list: {push:?}");
        };
        for key in batch {
            let Reply::Bulk(key) = key else {
                panic!("not a key: {key:?}");
            };
            keys.push(String::from_utf8(key.clone()).unwrap());
        }
    }
    keys
}

fn error_text(reply: &Reply) -> String {
    match reply {
        Reply::Error(text) => String::from_utf8_lossy(text).into_owned(),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn integer(reply: &Reply) -> i64 {
    match reply {
        Reply::Integer(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

async fn info_field(raw: &mut Raw, field: &str) -> String {
    let text = match raw.call(&["INFO", "everything"]).await {
        Reply::Verbatim { text, .. } | Reply::Bulk(text) => String::from_utf8(text).unwrap(),
        other => panic!("INFO answered {other:?}"),
    };
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO"))
        .to_owned()
}

#[tokio::test]
async fn default_mode_tells_a_reader_once_per_read() {
    let server = support::start().await;
    let mut reader = Raw::resp3(&server).await;
    let mut writer = Raw::connect(&server).await;
    assert_eq!(reader.call(&["CLIENT", "TRACKING", "ON"]).await, ok());
    assert_eq!(reader.call(&["GET", "k"]).await, Reply::Null, "a miss is tracked too");
    assert_eq!(
        reader.call(&["MGET", "a", "b"]).await,
        Reply::Array(vec![Reply::Null, Reply::Null])
    );
    assert_eq!(info_field(&mut writer, "tracking_clients").await, "1");
    assert_eq!(info_field(&mut writer, "tracking_total_keys").await, "3");
    assert_eq!(writer.call(&["SET", "k", "v1"]).await, ok());
    assert_eq!(reader.push().await, invalidate(&["k"]));
    // Forgotten until read again.
    assert_eq!(writer.call(&["SET", "k", "v2"]).await, ok());
    assert_eq!(reader.settle().await, vec![]);
    assert_eq!(reader.call(&["GET", "k"]).await, bulk("v2"));
    assert_eq!(writer.call(&["APPEND", "k", "x"]).await, Reply::Integer(3));
    assert_eq!(reader.push().await, invalidate(&["k"]));
    // Other write commands and other reads.
    assert_eq!(reader.call(&["STRLEN", "a"]).await, Reply::Integer(0));
    assert_eq!(reader.call(&["EXISTS", "b"]).await, Reply::Integer(0));
    assert_eq!(writer.call(&["MSET", "a", "1", "b", "2"]).await, ok());
    let mut keys = keys_of(&[reader.push().await]);
    if keys.len() < 2 {
        keys.extend(keys_of(&[reader.push().await]));
    }
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(reader.call(&["TTL", "a"]).await, Reply::Integer(-1));
    assert_eq!(writer.call(&["EXPIRE", "a", "100"]).await, Reply::Integer(1));
    assert_eq!(reader.push().await, invalidate(&["a"]));
    assert_eq!(reader.call(&["GET", "b"]).await, bulk("2"));
    assert_eq!(writer.call(&["DEL", "b", "nope"]).await, Reply::Integer(1));
    assert_eq!(reader.push().await, invalidate(&["b"]));
    // A write that changes nothing sends nothing.
    assert_eq!(reader.call(&["GET", "b"]).await, Reply::Null);
    assert_eq!(writer.call(&["SET", "b", "x", "XX"]).await, Reply::Null);
    assert_eq!(reader.settle().await, vec![]);
    // Off: nothing more.
    assert_eq!(reader.call(&["CLIENT", "TRACKING", "OFF"]).await, ok());
    assert_eq!(writer.call(&["SET", "b", "y"]).await, ok());
    assert_eq!(reader.settle().await, vec![]);
    assert_eq!(info_field(&mut writer, "tracking_clients").await, "0");
    let metrics = support::http_get(server.admin_addr, "/metrics").await;
    assert!(metrics.contains("strata_tracking_invalidations_total 6"), "{metrics}");
}

#[tokio::test]
async fn an_own_write_is_sent_after_its_reply_and_noloop_spares_it() {
    let server = support::start().await;
    let mut client = Raw::resp3(&server).await;
    assert_eq!(client.call(&["CLIENT", "TRACKING", "ON"]).await, ok());
    // One pipeline: the read, then the client's own write of the key.
    client.send(&["GET", "k"]).await;
    client.send(&["SET", "k", "v"]).await;
    assert_eq!(client.frame().await, Reply::Null);
    assert_eq!(client.frame().await, ok());
    assert_eq!(client.frame().await, invalidate(&["k"]), "after both replies");
    // NOLOOP: its own writes are not sent back; others' are.
    assert_eq!(client.call(&["CLIENT", "TRACKING", "ON", "NOLOOP"]).await, ok());
    assert_eq!(client.call(&["GET", "k"]).await, bulk("v"));
    assert_eq!(client.call(&["SET", "k", "mine"]).await, ok());
    assert_eq!(client.settle().await, vec![]);
    let mut other = Raw::connect(&server).await;
    assert_eq!(client.call(&["GET", "n"]).await, Reply::Null);
    assert_eq!(other.call(&["INCR", "n"]).await, Reply::Integer(1));
    assert_eq!(client.push().await, invalidate(&["n"]));
    // Broadcast with NOLOOP too.
    let mut bcast = Raw::resp3(&server).await;
    assert_eq!(bcast.call(&["CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP"]).await, ok());
    assert_eq!(bcast.call(&["SET", "mine", "1"]).await, ok());
    assert_eq!(other.call(&["SET", "theirs", "1"]).await, ok());
    assert_eq!(keys_of(&bcast.settle().await), ["theirs"]);
}

#[tokio::test]
async fn broadcast_sends_every_write_under_a_prefix() {
    let server = support::start().await;
    let mut tracker = Raw::resp3(&server).await;
    let mut writer = Raw::connect(&server).await;
    let reply = tracker
        .call(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "job:"])
        .await;
    assert_eq!(reply, ok());
    assert_eq!(writer.call(&["SET", "user:1", "a"]).await, ok());
    assert_eq!(writer.call(&["SET", "other", "a"]).await, ok());
    assert_eq!(
        writer.call(&["MSET", "job:1", "x", "job:2", "y", "zz", "z"]).await,
        ok()
    );
    assert_eq!(writer.call(&["RENAME", "job:2", "user:2"]).await, ok());
    let lease = writer.call(&["LGET", "user:3"]).await;
    assert!(
        matches!(&lease, Reply::Array(items) if items[0] == bulk("lease")),
        "{lease:?}"
    );
    assert_eq!(
        keys_of(&tracker.settle().await),
        ["user:1", "job:1", "job:2", "job:2", "user:2", "user:3"],
        "not `other` nor `zz`; RENAME changes both keys; the lease placeholder counts"
    );
    assert_eq!(info_field(&mut writer, "tracking_total_prefixes").await, "2");
    // Reads are not recorded in broadcast mode.
    assert_eq!(tracker.call(&["GET", "zz"]).await, bulk("z"));
    assert_eq!(info_field(&mut writer, "tracking_total_keys").await, "0");
    // Broadcast with no prefix: every key.
    let mut all = Raw::resp3(&server).await;
    assert_eq!(all.call(&["CLIENT", "TRACKING", "ON", "BCAST"]).await, ok());
    assert_eq!(writer.call(&["DEL", "zz"]).await, Reply::Integer(1));
    assert_eq!(all.push().await, invalidate(&["zz"]));
    // FLUSHALL: everyone drops everything.
    assert_eq!(writer.call(&["FLUSHALL"]).await, ok());
    assert_eq!(all.push().await, flush_push());
    assert_eq!(tracker.push().await, flush_push());
}

#[tokio::test]
async fn optin_and_optout_follow_client_caching() {
    let server = support::start().await;
    let mut writer = Raw::connect(&server).await;
    let mut optin = Raw::resp3(&server).await;
    let reply = optin.call(&["CLIENT", "CACHING", "YES"]).await;
    assert!(
        error_text(&reply).contains("only when the client is in tracking mode"),
        "{reply:?}"
    );
    assert_eq!(optin.call(&["CLIENT", "TRACKING", "ON", "OPTIN"]).await, ok());
    let reply = optin.call(&["CLIENT", "CACHING", "NO"]).await;
    assert_eq!(
        error_text(&reply),
        "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
    );
    assert_eq!(optin.call(&["GET", "not-cached"]).await, Reply::Null);
    assert_eq!(optin.call(&["CLIENT", "CACHING", "YES"]).await, ok());
    assert_eq!(optin.call(&["GET", "cached"]).await, Reply::Null);
    assert_eq!(optin.call(&["GET", "only-the-next-command"]).await, Reply::Null);
    let mut optout = Raw::resp3(&server).await;
    assert_eq!(optout.call(&["CLIENT", "TRACKING", "ON", "OPTOUT"]).await, ok());
    assert_eq!(optout.call(&["CLIENT", "CACHING", "NO"]).await, ok());
    let Reply::Map(info) = optout.call(&["CLIENT", "TRACKINGINFO"]).await else {
        panic!("TRACKINGINFO is a map");
    };
    assert_eq!(
        info[0].1,
        Reply::Set(vec![bulk("on"), bulk("optout"), bulk("caching-no")])
    );
    assert_eq!(optout.call(&["GET", "not-cached"]).await, Reply::Null);
    assert_eq!(optout.call(&["GET", "cached"]).await, Reply::Null);
    for key in ["not-cached", "cached", "only-the-next-command"] {
        assert_eq!(writer.call(&["SET", key, "v"]).await, ok());
    }
    assert_eq!(keys_of(&optin.settle().await), ["cached"]);
    assert_eq!(keys_of(&optout.settle().await), ["cached"]);
}

#[tokio::test]
async fn resp2_redirect_to_a_subscribed_connection() {
    let server = support::start().await;
    let mut listener = Raw::connect(&server).await;
    let id = integer(&listener.call(&["CLIENT", "ID"]).await);
    listener.send(&["SUBSCRIBE", "__redis__:invalidate"]).await;
    assert_eq!(
        listener.frame().await,
        Reply::Array(vec![bulk("subscribe"), bulk("__redis__:invalidate"), Reply::Integer(1)])
    );
    // RESP2 pub/sub mode: only the pub/sub commands, PING, QUIT, RESET.
    listener.send(&["GET", "k"]).await;
    assert_eq!(
        error_text(&listener.frame().await),
        "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in \
         this context"
    );
    listener.send(&["PING"]).await;
    assert_eq!(listener.frame().await, Reply::Array(vec![bulk("pong"), bulk("")]));

    let mut tracker = Raw::connect(&server).await;
    let redirect = id.to_string();
    assert_eq!(
        tracker.call(&["CLIENT", "TRACKING", "ON", "REDIRECT", &redirect]).await,
        ok()
    );
    assert_eq!(integer(&tracker.call(&["CLIENT", "GETREDIR"]).await), id);
    assert_eq!(tracker.call(&["GET", "k"]).await, Reply::Null);
    let mut writer = Raw::connect(&server).await;
    assert_eq!(writer.call(&["SET", "k", "v"]).await, ok());
    let message = |payload: Reply| Reply::Array(vec![bulk("message"), bulk("__redis__:invalidate"), payload]);
    assert_eq!(listener.frame().await, message(Reply::Array(vec![bulk("k")])));
    // A flush: the null Redis sends a RESP2 tracker ($-1).
    assert_eq!(writer.call(&["FLUSHDB"]).await, ok());
    assert_eq!(listener.frame().await, message(Reply::Null));
    // Nothing reached the tracker itself.
    assert_eq!(tracker.call(&["PING"]).await, Reply::Simple(b"PONG".to_vec()));

    // The redirect target leaves: a RESP3 tracker is told, at once.
    let mut target = Raw::connect(&server).await;
    let target_id = integer(&target.call(&["CLIENT", "ID"]).await).to_string();
    let mut tracker3 = Raw::resp3(&server).await;
    assert_eq!(
        tracker3
            .call(&["CLIENT", "TRACKING", "ON", "REDIRECT", &target_id])
            .await,
        ok()
    );
    drop(target);
    let broken = Reply::Push(vec![
        bulk("tracking-redir-broken"),
        Reply::Integer(target_id.parse().unwrap()),
    ]);
    assert_eq!(tracker3.push().await, broken);
    let Reply::Map(info) = tracker3.call(&["CLIENT", "TRACKINGINFO"]).await else {
        panic!("TRACKINGINFO is a map");
    };
    assert_eq!(info[0].1, Reply::Set(vec![bulk("on"), bulk("broken_redirect")]));
    // And again at each message it misses, as Redis does.
    assert_eq!(tracker3.call(&["GET", "k2"]).await, Reply::Null);
    assert_eq!(writer.call(&["SET", "k2", "v"]).await, ok());
    assert_eq!(tracker3.push().await, broken);

    // Unsubscribing leaves pub/sub mode.
    listener.send(&["UNSUBSCRIBE"]).await;
    assert_eq!(
        listener.frame().await,
        Reply::Array(vec![
            bulk("unsubscribe"),
            bulk("__redis__:invalidate"),
            Reply::Integer(0)
        ])
    );
    assert_eq!(listener.call(&["GET", "k"]).await, Reply::Null);
}

#[tokio::test]
async fn memcached_writes_invalidate_resp_trackers() {
    let (server, clock) = support::start_with_clock().await;
    let mut tracker = Raw::resp3(&server).await;
    assert_eq!(tracker.call(&["CLIENT", "TRACKING", "ON"]).await, ok());
    let mut mc = TcpStream::connect(server.memcache_addr).await.unwrap();
    let mut exchange = async |request: &str, expect: &str| {
        let got = support::exchange(&mut mc, request.as_bytes(), expect.len()).await;
        assert_eq!(String::from_utf8_lossy(&got), expect, "{request:?}");
    };
    let cases: [(&str, &str); 9] = [
        ("set k 0 0 1\r\nx\r\n", "STORED\r\n"),
        ("append k 0 0 1\r\ny\r\n", "STORED\r\n"),
        ("ms k 1\r\nz\r\n", "HD\r\n"),
        ("touch k 100\r\n", "TOUCHED\r\n"),
        ("md k I\r\n", "HD\r\n"),
        ("delete k\r\n", "DELETED\r\n"),
        ("mg k N30 v\r\n", "VA 0 W\r\n\r\n"),
        ("ms k 1 I\r\n5\r\n", "HD\r\n"),
        ("incr k 1\r\n", "6\r\n"),
    ];
    for (request, reply) in cases {
        // Read (and so track) the key before each write.
        tracker.call(&["GET", "k"]).await;
        exchange(request, reply).await;
        assert_eq!(tracker.push().await, invalidate(&["k"]), "{request:?}");
    }
    // Reads over memcached change nothing.
    assert_eq!(tracker.call(&["GET", "k"]).await, bulk("6"));
    exchange("get k\r\n", "VALUE k 0 1\r\n6\r\nEND\r\n").await;
    exchange("mg k v\r\n", "VA 1\r\n6\r\n").await;
    assert_eq!(tracker.settle().await, vec![]);
    // flush_all now, and a delayed one when its time comes.
    exchange("flush_all\r\n", "OK\r\n").await;
    assert_eq!(tracker.push().await, flush_push());
    exchange("flush_all 10\r\n", "OK\r\n").await;
    assert_eq!(tracker.settle().await, vec![]);
    clock.advance(Duration::from_secs(11));
    exchange("mn\r\n", "MN\r\n").await;
    assert_eq!(tracker.push().await, flush_push());
}

#[tokio::test]
async fn a_tracker_that_stops_reading_is_cut_off_alone() {
    let config = Config {
        push_buffer_limit: ByteSize(64 * 1024),
        ..Config::default()
    };
    let server = support::start_with(config).await;
    // The stalled tracker: a small receive window, so the server's side
    // fills after a few MiB, and then it never reads again.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    let mut stalled = Raw::over(socket.connect(server.resp_addr).await.unwrap()).await;
    assert!(matches!(stalled.call(&["HELLO", "3"]).await, Reply::Map(_)));
    assert_eq!(
        stalled
            .call(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "big:"])
            .await,
        ok()
    );
    // A healthy tracker of another key.
    let mut healthy = Raw::resp3(&server).await;
    assert_eq!(healthy.call(&["CLIENT", "TRACKING", "ON"]).await, ok());
    assert_eq!(healthy.call(&["GET", "probe"]).await, Reply::Null);

    let mut writer = Raw::connect(&server).await;
    let key_body = "k".repeat(32 * 1024);
    let mut cut_off = false;
    for round in 0..200 {
        for i in 0..16 {
            writer.send(&["SET", &format!("big:{round}:{i}:{key_body}"), "v"]).await;
        }
        for _ in 0..16 {
            assert_eq!(writer.reply().await, ok(), "the writer is never blocked");
        }
        if info_field(&mut writer, "push_disconnects").await == "1" {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "the stalled tracker was never cut off");
    // Everyone else carries on.
    assert_eq!(writer.call(&["SET", "probe", "1"]).await, ok());
    assert_eq!(healthy.push().await, invalidate(&["probe"]));
    assert_eq!(info_field(&mut writer, "tracking_clients").await, "1");
    // The stalled client finds its connection closed once it reads.
    let mut sink = vec![0u8; 1 << 20];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stalled.stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stalled connection was not closed");
    let metrics = support::http_get(server.admin_addr, "/metrics").await;
    assert!(metrics.contains("strata_push_disconnects_total 1"), "{metrics}");
}

#[tokio::test]
async fn a_full_tracking_table_forgets_a_key_and_says_so() {
    let server = support::start().await;
    let mut tracker = Raw::resp3(&server).await;
    let mut admin = Raw::connect(&server).await;
    assert_eq!(
        admin.call(&["CONFIG", "SET", "tracking-table-max-keys", "2"]).await,
        ok()
    );
    assert_eq!(tracker.call(&["CLIENT", "TRACKING", "ON"]).await, ok());
    for key in ["a", "b", "c"] {
        assert_eq!(tracker.call(&["GET", key]).await, Reply::Null);
    }
    let evicted = keys_of(&tracker.settle().await);
    assert!(evicted == ["a"] || evicted == ["b"], "{evicted:?}");
    assert_eq!(info_field(&mut admin, "tracking_total_keys").await, "2");
    let reply = admin.call(&["CONFIG", "SET", "tracking-table-max-keys", "0"]).await;
    assert!(error_text(&reply).contains("at least 1"));
}

#[tokio::test]
async fn bad_tracking_arguments_get_redis_errors() {
    let server = support::start().await;
    let mut client = Raw::resp3(&server).await;
    let cases: [(&[&str], &str); 8] = [
        (
            &["ON", "PREFIX", "a"],
            "ERR PREFIX option requires BCAST mode to be enabled",
        ),
        (&["ON", "OPTIN", "OPTOUT"], "ERR You can't use both OPTIN and OPTOUT"),
        (
            &["ON", "BCAST", "OPTIN"],
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ),
        (
            &["ON", "REDIRECT", "99999"],
            "ERR The client ID you want redirect to does not exist",
        ),
        (&["ON", "REDIRECT", "x"], "ERR value is not an integer or out of range"),
        (&["ON", "BCAST", "BOGUS"], "ERR syntax error"),
        (&["MAYBE"], "ERR syntax error"),
        (
            &["ON", "BCAST", "PREFIX", "ab", "PREFIX", "abc"],
            "ERR Prefix 'ab' overlaps with another provided prefix 'abc'. Prefixes for a single client must not \
             overlap.",
        ),
    ];
    for (args, expected) in cases {
        let mut command = vec!["CLIENT", "TRACKING"];
        command.extend_from_slice(args);
        assert_eq!(error_text(&client.call(&command).await), expected, "{args:?}");
    }
    let id = integer(&client.call(&["CLIENT", "ID"]).await).to_string();
    let reply = client
        .call(&["CLIENT", "TRACKING", "ON", "REDIRECT", &id, "REDIRECT", &id])
        .await;
    assert_eq!(
        error_text(&reply),
        "ERR A client can only redirect to a single other client"
    );
    assert_eq!(integer(&client.call(&["CLIENT", "GETREDIR"]).await), -1);
    assert_eq!(
        client
            .call(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:"])
            .await,
        ok()
    );
    assert_eq!(integer(&client.call(&["CLIENT", "GETREDIR"]).await), 0);
    assert_eq!(
        error_text(&client.call(&["CLIENT", "TRACKING", "ON", "PREFIX", "x"]).await),
        "ERR PREFIX option requires BCAST mode to be enabled"
    );
    assert!(
        error_text(&client.call(&["CLIENT", "TRACKING", "ON"]).await).starts_with("ERR You can't switch BCAST mode"),
    );
    assert_eq!(
        error_text(
            &client
                .call(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:42"])
                .await
        ),
        "ERR Prefix 'user:42' overlaps with an existing prefix 'user:'. Prefixes for a single client must not \
         overlap."
    );
    assert_eq!(
        client
            .call(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "job:"])
            .await,
        ok()
    );
    let Reply::Map(info) = client.call(&["CLIENT", "TRACKINGINFO"]).await else {
        panic!("TRACKINGINFO is a map");
    };
    assert_eq!(
        info,
        vec![
            (bulk("flags"), Reply::Set(vec![bulk("on"), bulk("bcast")])),
            (bulk("redirect"), Reply::Integer(0)),
            (bulk("prefixes"), Reply::Array(vec![bulk("user:"), bulk("job:")])),
        ]
    );
    assert_eq!(client.call(&["CLIENT", "TRACKING", "OFF"]).await, ok());
    let Reply::Map(info) = client.call(&["CLIENT", "TRACKINGINFO"]).await else {
        panic!("TRACKINGINFO is a map");
    };
    assert_eq!(info[0].1, Reply::Set(vec![bulk("off")]));
    assert_eq!(info[1].1, Reply::Integer(-1));
    // RESET turns tracking off too.
    assert_eq!(client.call(&["CLIENT", "TRACKING", "ON"]).await, ok());
    assert_eq!(client.call(&["RESET"]).await, Reply::Simple(b"RESET".to_vec()));
    assert_eq!(integer(&client.call(&["CLIENT", "GETREDIR"]).await), -1);
}

#[tokio::test]
async fn pubsub_delivers_messages_in_both_protocols() {
    let server = support::start().await;
    let mut resp3 = Raw::resp3(&server).await;
    resp3.send(&["SUBSCRIBE", "news", "sport"]).await;
    assert_eq!(
        resp3.push().await,
        Reply::Push(vec![bulk("subscribe"), bulk("news"), Reply::Integer(1)])
    );
    assert_eq!(
        resp3.push().await,
        Reply::Push(vec![bulk("subscribe"), bulk("sport"), Reply::Integer(2)])
    );
    // RESP3 may run any command while subscribed.
    assert_eq!(resp3.call(&["GET", "x"]).await, Reply::Null);
    let mut resp2 = Raw::connect(&server).await;
    resp2.send(&["PSUBSCRIBE", "n*"]).await;
    assert_eq!(
        resp2.frame().await,
        Reply::Array(vec![bulk("psubscribe"), bulk("n*"), Reply::Integer(1)])
    );
    let mut publisher = Raw::connect(&server).await;
    assert_eq!(publisher.call(&["PUBLISH", "news", "hello"]).await, Reply::Integer(2));
    assert_eq!(
        resp3.push().await,
        Reply::Push(vec![bulk("message"), bulk("news"), bulk("hello")])
    );
    assert_eq!(
        resp2.frame().await,
        Reply::Array(vec![bulk("pmessage"), bulk("n*"), bulk("news"), bulk("hello")])
    );
    assert_eq!(
        publisher.call(&["PUBSUB", "NUMSUB", "news", "none"]).await,
        Reply::Array(vec![bulk("news"), Reply::Integer(1), bulk("none"), Reply::Integer(0)])
    );
    assert_eq!(publisher.call(&["PUBSUB", "NUMPAT"]).await, Reply::Integer(1));
    drop(resp3);
    // A closed subscriber is gone from the index (its session ended).
    let mut gone = false;
    for _ in 0..100 {
        if publisher.call(&["PUBLISH", "sport", "x"]).await == Reply::Integer(0) {
            gone = true;
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the closed subscriber still receives");
}

#[tokio::test]
async fn the_redis_crate_receives_invalidation_pushes() {
    let server = support::start().await;
    let url = format!("redis://{}/?protocol=resp3", server.resp_addr);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut tracker = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    let mut writer = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .query_async(&mut tracker)
        .await
        .unwrap();
    let value: Option<String> = tracker.get("greeting").await.unwrap();
    assert_eq!(value, None);
    let () = writer.set("greeting", "hello").await.unwrap();
    let push = tokio::time::timeout(DEADLINE, rx.recv()).await.unwrap().unwrap();
    assert_eq!(push.kind, redis::PushKind::Invalidate);
    assert_eq!(
        push.data,
        vec![redis::Value::Array(vec![redis::Value::BulkString(
            b"greeting".to_vec()
        )])]
    );
    let value: Option<String> = tracker.get("greeting").await.unwrap();
    assert_eq!(value.as_deref(), Some("hello"));
    let () = redis::cmd("FLUSHALL").query_async(&mut writer).await.unwrap();
    let push = tokio::time::timeout(DEADLINE, rx.recv()).await.unwrap().unwrap();
    assert_eq!(push.kind, redis::PushKind::Invalidate);
    assert_eq!(push.data, vec![redis::Value::Nil]);
}
