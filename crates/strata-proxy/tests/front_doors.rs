//! The proxy's front doors byte for byte, in front of real strata servers
//! on free loopback ports: the RESP3 handshake and replies after `HELLO 3`
//! (what redis-py 8 sends first), and the memcached commands routed to the
//! key's node (gets/cas, incr/decr, the conditional stores, gat, the meta
//! commands relayed as the node answers them, quiet mode, noreply).

use std::net::SocketAddr;
use std::time::Duration;

use strata_client::{Client, ClientConfig, Failover};
use strata_proxy::{ProxyConfig, RunningProxy};
use strata_ring::{ClusterConfig, Member, Scheme};
use strata_server::{Config, RunningServer, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Two servers and a proxy in front of them, all on free ports.
struct Stack {
    servers: Vec<RunningServer>,
    client: Client,
    proxy: RunningProxy,
}

async fn stack() -> Stack {
    let mut servers = Vec::new();
    for _ in 0..2 {
        servers.push(
            Server::start(Config::default().on_free_ports())
                .await
                .expect("server starts"),
        );
    }
    let member = |addr: SocketAddr| Member::new(addr.ip().to_string(), addr.port());
    let mut pools = std::collections::BTreeMap::new();
    pools.insert(
        "main".to_owned(),
        servers.iter().map(|s| member(s.memcache_addr)).collect(),
    );
    let mut config = ClientConfig::new(ClusterConfig {
        scheme: Scheme::Ketama,
        pools,
    });
    config.failover = Failover::NextOnRing;
    let client = Client::new(config).expect("valid cluster");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let proxy = strata_proxy::start(
        client.clone(),
        ProxyConfig {
            resp: loopback,
            memcache: loopback,
            max_connections: 64,
            max_value_bytes: 1024 * 1024,
            idle_timeout: None,
            ..ProxyConfig::default()
        },
    )
    .await
    .expect("proxy starts");
    Stack { servers, client, proxy }
}

impl Stack {
    /// The index of the server that owns `key`.
    fn owner(&self, key: &[u8]) -> usize {
        let ring = self.client.ring();
        let (_, member) = ring.owner(key).expect("an owner");
        self.servers
            .iter()
            .position(|s| s.memcache_addr.to_string() == member.address())
            .expect("a server of the ring")
    }
}

/// Reads until `done` says the reply is complete (at most 5 s).
async fn read_until(stream: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done(&got) {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no complete reply in 5 s; got {:?}", String::from_utf8_lossy(&got)))
            .expect("read");
        assert!(read > 0, "closed; got {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..read]);
    }
    got
}

/// Sends `request` and checks that exactly `expected` comes back.
async fn exchange(stream: &mut TcpStream, request: &[u8], expected: &[u8]) {
    stream.write_all(request).await.expect("write");
    let got = read_until(stream, |got| got.len() >= expected.len()).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply to {:?}",
        String::from_utf8_lossy(request)
    );
}

/// Sends `request`; the reply, up to and including `end`.
async fn reply_ending(stream: &mut TcpStream, request: &[u8], end: &[u8]) -> String {
    stream.write_all(request).await.expect("write");
    let got = read_until(stream, |got| got.ends_with(end)).await;
    String::from_utf8(got).expect("text")
}

fn hello_map(proto: u8, id: u64) -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:{proto}\r\n\
         $2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
         $7\r\nmodules\r\n*0\r\n$14\r\nstrata_version\r\n${}\r\n{version}\r\n$11\r\nstrata_role\r\n$5\r\nproxy\r\n",
        version.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_3_switches_the_connection_to_resp3() {
    let stack = stack().await;
    let mut conn = TcpStream::connect(stack.proxy.resp_addr).await.unwrap();
    // RESP2 until asked: a miss is a null bulk.
    exchange(&mut conn, b"GET missing\r\n", b"$-1\r\n").await;
    // What redis-py 8 sends on connect, in one write.
    let mut expected = format!("%9\r\n{}", hello_map(3, 1)).into_bytes();
    expected.extend_from_slice(b"+OK\r\n+OK\r\n");
    exchange(
        &mut conn,
        b"HELLO 3\r\nCLIENT SETINFO LIB-NAME redis-py\r\nCLIENT SETINFO LIB-VER 8.1.0\r\n",
        &expected,
    )
    .await;
    // Every reply after it is RESP3: nulls are `_`, in arrays too.
    exchange(&mut conn, b"GET missing\r\n", b"_\r\n").await;
    exchange(
        &mut conn,
        b"SET k v\r\nGET k\r\nMGET k nope\r\nSET k x NX\r\nGET a\r\nGET b\r\n",
        b"+OK\r\n$1\r\nv\r\n*2\r\n$1\r\nv\r\n_\r\n_\r\n_\r\n_\r\n",
    )
    .await;
    exchange(&mut conn, b"TYPE k\r\nTYPE nope\r\n", b"+string\r\n+none\r\n").await;
    exchange(
        &mut conn,
        b"TTL k\r\nTTL nope\r\nPERSIST k\r\n",
        b":-1\r\n:-2\r\n:0\r\n",
    )
    .await;
    exchange(&mut conn, b"EXPIRE k 100\r\nEXPIRE k 50 NX\r\n", b":1\r\n:0\r\n").await;
    let ttl = reply_ending(&mut conn, b"TTL k\r\n", b"\r\n").await;
    let ttl: i64 = ttl.trim_start_matches(':').trim_end().parse().expect("an integer");
    assert!((98..=100).contains(&ttl), "TTL {ttl}");
    exchange(&mut conn, b"PERSIST k\r\nTTL k\r\n", b":1\r\n:-1\r\n").await;
    exchange(
        &mut conn,
        b"PING\r\nECHO hi\r\nSELECT 0\r\n",
        b"+PONG\r\n$2\r\nhi\r\n+OK\r\n",
    )
    .await;
    exchange(&mut conn, b"CLIENT ID\r\nCLIENT GETNAME\r\n", b":1\r\n_\r\n").await;
    // INFO is a verbatim string in RESP3, as Redis 7 sends it.
    let info = reply_ending(&mut conn, b"INFO\r\n", b"warmup_hits:0\r\n\r\n").await;
    assert!(info.starts_with('=') && info.contains("\r\ntxt:# Server"), "{info}");
    // What needs every server is refused, saying so.
    exchange(
        &mut conn,
        b"DBSIZE\r\n",
        b"-ERR 'DBSIZE' is not supported by strata proxy: it needs every server of the cluster (ask the servers themselves)\r\n",
    )
    .await;
    // Back to RESP2 with HELLO 2, in RESP2's flat array.
    let expected = format!("*18\r\n{}$-1\r\n", hello_map(2, 1));
    exchange(&mut conn, b"HELLO 2\r\nGET missing\r\n", expected.as_bytes()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_takes_auth_and_setname_and_refuses_bad_versions() {
    let stack = stack().await;
    let mut first = TcpStream::connect(stack.proxy.resp_addr).await.unwrap();
    exchange(&mut first, b"CLIENT ID\r\n", b":1\r\n").await;
    let mut conn = TcpStream::connect(stack.proxy.resp_addr).await.unwrap();
    exchange(&mut conn, b"HELLO 4\r\n", b"-NOPROTO unsupported protocol version\r\n").await;
    exchange(
        &mut conn,
        b"HELLO three\r\n",
        b"-ERR Protocol version is not an integer or out of range\r\n",
    )
    .await;
    exchange(
        &mut conn,
        b"HELLO 3 AUTH alice secret\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    exchange(
        &mut conn,
        b"HELLO 3 FOO\r\n",
        b"-ERR Syntax error in HELLO option 'FOO'\r\n",
    )
    .await;
    // Refused HELLOs changed nothing: still RESP2.
    exchange(&mut conn, b"GET missing\r\n", b"$-1\r\n").await;
    // The second connection's id is 2.
    let expected = format!("%9\r\n{}$3\r\napp\r\n", hello_map(3, 2));
    exchange(
        &mut conn,
        b"HELLO 3 AUTH default anything SETNAME app\r\nCLIENT GETNAME\r\n",
        expected.as_bytes(),
    )
    .await;
    // HELLO without a version answers in the current protocol.
    let expected = format!("%9\r\n{}", hello_map(3, 2));
    exchange(&mut conn, b"HELLO\r\n", expected.as_bytes()).await;
    let list = reply_ending(&mut conn, b"CLIENT INFO\r\n", b"\n\r\n").await;
    assert!(
        list.starts_with('=') && list.contains("id=2 name=app db=0 resp=3"),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_commands_go_to_the_keys_node() {
    let stack = stack().await;
    let mut conn = TcpStream::connect(stack.proxy.memcache_addr).await.unwrap();

    // gets then cas: the unique is the node's own, and so is the check.
    let got = reply_ending(&mut conn, b"set k 0 0 2\r\nhi\r\ngets k\r\n", b"END\r\n").await;
    let header = got
        .strip_prefix("STORED\r\nVALUE k 0 2 ")
        .unwrap_or_else(|| panic!("{got}"));
    let cas: u64 = header[..header.find('\r').unwrap()].parse().expect("a CAS unique");
    exchange(
        &mut conn,
        format!("cas k 0 0 2 {cas}\r\nho\r\ncas k 0 0 2 {cas}\r\nxx\r\ncas nokey 0 0 1 1\r\nx\r\n").as_bytes(),
        b"STORED\r\nEXISTS\r\nNOT_FOUND\r\n",
    )
    .await;
    assert!(stack.servers[stack.owner(b"k")].store().contains(b"k"), "on its owner");

    exchange(
        &mut conn,
        b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr nokey 1\r\nincr k 1\r\n",
        b"STORED\r\n15\r\n0\r\nNOT_FOUND\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    )
    .await;
    exchange(
        &mut conn,
        b"append k 0 0 1\r\n!\r\nprepend k 0 0 1\r\n<\r\nappend nokey 0 0 1\r\n!\r\nget k\r\n",
        b"STORED\r\nSTORED\r\nNOT_STORED\r\nVALUE k 0 4\r\n<ho!\r\nEND\r\n",
    )
    .await;
    exchange(
        &mut conn,
        b"replace nokey 0 0 1\r\nx\r\nreplace k 5 0 1\r\ny\r\nadd k 0 0 1\r\nz\r\nget k\r\n",
        b"NOT_STORED\r\nSTORED\r\nNOT_STORED\r\nVALUE k 5 1\r\ny\r\nEND\r\n",
    )
    .await;

    // gat touches every key it finds; gats adds the unique.
    exchange(&mut conn, b"gat 100 k nokey\r\n", b"VALUE k 5 1\r\ny\r\nEND\r\n").await;
    let ttl = reply_ending(&mut conn, b"mg k t\r\n", b"\r\n").await;
    let ttl: i64 = ttl.trim_start_matches("HD t").trim_end().parse().expect("t");
    assert!((98..=100).contains(&ttl), "TTL after gat: {ttl}");
    let got = reply_ending(&mut conn, b"gats 0 k\r\n", b"END\r\n").await;
    assert!(
        got.starts_with("VALUE k 5 1 ") && got.ends_with("\r\ny\r\nEND\r\n"),
        "{got}"
    );
    exchange(&mut conn, b"mg k t\r\n", b"HD t-1\r\n").await;

    // Meta commands, relayed as the node answers: flags in request order,
    // opaque and key echoed; `q` hides the nominal replies; mn answered
    // in order.
    exchange(
        &mut conn,
        b"ms m 2 T0 F3 q\r\nhi\r\nmg m v f k Oxy\r\nmg nokey v q\r\nmn\r\n",
        b"VA 2 f3 km Oxy\r\nhi\r\nMN\r\n",
    )
    .await;
    exchange(
        &mut conn,
        b"ma m\r\nma n D7 v\r\nma nokey q\r\nmn\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\nVA 1\r\n7\r\nNF\r\nMN\r\n",
    )
    .await;
    exchange(&mut conn, b"md m q\r\nmd m\r\nmn\r\n", b"NF\r\nMN\r\n").await;
    // A binary key (base64, `b`) is routed by its bytes, as the client's
    // own calls route it.
    exchange(
        &mut conn,
        b"ms YSBi 1 b\r\nx\r\nmg YSBi b v k\r\n",
        b"HD\r\nVA 1 kYSBi b\r\nx\r\n",
    )
    .await;
    assert!(stack.servers[stack.owner(b"a b")].store().contains(b"a b"));
    assert_eq!(stack.client.get(b"a b").await.unwrap().as_deref(), Some(&b"x"[..]));

    // noreply sends nothing, not even the refusal of an incr.
    exchange(
        &mut conn,
        b"incr k 1 noreply\r\nset q 0 0 1 noreply\r\nz\r\nget q\r\n",
        b"VALUE q 0 1\r\nz\r\nEND\r\n",
    )
    .await;
    exchange(
        &mut conn,
        b"flush_all\r\nget q\r\n",
        b"SERVER_ERROR flush_all is not supported by strata proxy\r\nVALUE q 0 1\r\nz\r\nEND\r\n",
    )
    .await;
}

/// Reads until the proxy closes the connection (at most 5 s).
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got))
        .await
        .expect("the proxy closes the connection")
        .expect("read");
    got
}

/// A value past the item limit, through the proxy as through a server:
/// an error reply on a connection that stays usable (the value is
/// discarded as it arrives, never buffered), and the old values of the
/// keys the write would have replaced are gone — for a SET and for an MSET
/// whose long value sits between its keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_past_the_item_limit_is_refused_and_the_old_ones_removed() {
    let stack = stack().await;
    let mut resp = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
    exchange(
        &mut resp,
        b"SET k old\r\nSET a 1\r\nSET b 2\r\n",
        b"+OK\r\n+OK\r\n+OK\r\n",
    )
    .await;
    let big = vec![b'x'; 4 << 20];
    let mut request = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", big.len()).into_bytes();
    request.extend_from_slice(&big);
    request.extend_from_slice(b"\r\n*5\r\n$4\r\nMSET\r\n$1\r\na\r\n");
    request.extend_from_slice(format!("${}\r\n", big.len()).as_bytes());
    request.extend_from_slice(&big);
    request.extend_from_slice(b"\r\n$1\r\nb\r\n$1\r\n3\r\n");
    let refused = b"-ERR string exceeds maximum allowed size (max-item-size 1048576)\r\n";
    let both = [&refused[..], refused].concat();
    exchange(&mut resp, &request, &both).await;
    exchange(&mut resp, b"MGET k a b\r\n", b"*3\r\n$-1\r\n$-1\r\n$-1\r\n").await;
    exchange(&mut resp, b"PING\r\n", b"+PONG\r\n").await;

    // Past proto-max-bulk-len: a protocol error, and the connection closes.
    let mut raw = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
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

/// A web page made to post to either front door is hung up on without a
/// word and nothing it sent runs, as the server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_on_either_front_door_is_hung_up_on() {
    let stack = stack().await;
    for request in [
        &b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\nSET pwned 1\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let mut resp = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
        resp.write_all(request).await.expect("write");
        assert_eq!(
            read_to_close(&mut resp).await,
            b"",
            "{}",
            String::from_utf8_lossy(request)
        );
        let mut mc = TcpStream::connect(stack.proxy.memcache_addr).await.expect("connect");
        mc.write_all(request).await.expect("write");
        assert_eq!(
            read_to_close(&mut mc).await,
            b"",
            "{}",
            String::from_utf8_lossy(request)
        );
    }
    let mut resp = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
    exchange(&mut resp, b"EXISTS pwned\r\n", b":0\r\n").await;
}
