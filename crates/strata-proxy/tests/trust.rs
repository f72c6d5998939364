//! The proxy you can put in front of a protected cluster: its doors ask
//! their clients for a password (RESP's AUTH, memcached's ASCII auth), it
//! gives its servers theirs, and each door may speak TLS. Raw bytes on the
//! wire, in front of real password-protected strata servers on free
//! loopback ports.

use std::net::SocketAddr;
use std::time::Duration;

use strata_client::{Client, ClientConfig, Failover};
use strata_proxy::{ProxyConfig, RunningProxy};
use strata_ring::{ClusterConfig, Member, Scheme};
use strata_server::{Config, RunningServer, Server};
use strata_session::Secret;
use strata_session::tls::testing::TestCerts;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const SERVER_PASSWORD: &str = "server-s3cret";
const PROXY_PASSWORD: &str = "proxy-s3cret";

/// Two servers that require `SERVER_PASSWORD` and a proxy in front of
/// them, told `server_password`, requiring `PROXY_PASSWORD` of its own
/// clients, with TLS doors over `certs`.
struct Stack {
    servers: Vec<RunningServer>,
    proxy: RunningProxy,
}

async fn stack(certs: &TestCerts, server_password: Option<&str>) -> Stack {
    let mut servers = Vec::new();
    for _ in 0..2 {
        let config = Config {
            requirepass: Some(SERVER_PASSWORD.into()),
            ..Config::default()
        };
        servers.push(Server::start(config.on_free_ports()).await.expect("server starts"));
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
    config.node.password = server_password.map(Secret::from);
    let client = Client::new(config).expect("valid cluster");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let proxy = strata_proxy::start(
        client,
        ProxyConfig {
            max_value_bytes: 4096,
            requirepass: Some(PROXY_PASSWORD.into()),
            tls_resp: Some(loopback),
            tls_memcache: Some(loopback),
            tls: Some(certs.acceptor()),
            ..ProxyConfig::default()
        },
    )
    .await
    .expect("proxy starts");
    Stack { servers, proxy }
}

impl Stack {
    async fn stop(self) {
        self.proxy.shutdown();
        self.proxy.wait().await;
        for server in self.servers {
            server.shutdown();
            server.wait().await;
        }
    }
}

/// Sends `request` and checks that exactly `expected` comes back (reads
/// until that many bytes, at most 5 s).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, request: &[u8], expected: &[u8]) {
    stream.write_all(request).await.expect("write");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < expected.len() {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no complete reply in 5 s; got {:?}", String::from_utf8_lossy(&got)))
            .expect("read");
        assert!(read > 0, "closed; got {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..read]);
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply to {:?}",
        String::from_utf8_lossy(request)
    );
}

/// Reads until the proxy closes the connection (at most 5 s).
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got))
        .await
        .expect("closed within 5 s")
        .expect("read");
    got
}

const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resp_door_asks_for_the_password_before_anything_reaches_a_server() {
    let certs = TestCerts::new();
    let stack = stack(&certs, Some(SERVER_PASSWORD)).await;
    let mut resp = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
    exchange(&mut resp, b"GET k\r\n", NOAUTH).await;
    // A pipeline of GETs and of SETs (which the proxy batches) is refused
    // one by one, and nothing is stored.
    let mut refused = Vec::new();
    for _ in 0..4 {
        refused.extend_from_slice(NOAUTH);
    }
    exchange(&mut resp, b"GET a\r\nGET b\r\nSET a 1\r\nSET b 2\r\n", &refused).await;
    exchange(&mut resp, b"AUTH wrong\r\n", WRONGPASS).await;
    exchange(&mut resp, b"AUTH alice proxy-s3cret\r\n", WRONGPASS).await;
    exchange(&mut resp, b"HELLO 3\r\n", b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n").await;
    // The server's password is not the proxy's.
    exchange(&mut resp, b"AUTH server-s3cret\r\n", WRONGPASS).await;
    // AUTH in a pipeline: what follows it runs (batched, behind the
    // password-protected servers, which the proxy authenticates to).
    exchange(
        &mut resp,
        b"AUTH proxy-s3cret\r\nSET a 1\r\nSET b 2\r\nGET a\r\nGET b\r\n",
        b"+OK\r\n+OK\r\n+OK\r\n$1\r\n1\r\n$1\r\n2\r\n",
    )
    .await;
    // RESET forgets the authentication, as in Redis.
    exchange(
        &mut resp,
        b"RESET\r\nGET a\r\n",
        b"+RESET\r\n-NOAUTH Authentication required.\r\n",
    )
    .await;

    // HELLO … AUTH authenticates and switches protocol at once.
    let mut hello = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
    hello
        .write_all(b"HELLO 3 AUTH default proxy-s3cret\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 4];
    hello.read_exact(&mut head).await.expect("HELLO reply");
    assert_eq!(&head, b"%9\r\n");
    let mut rest = vec![0u8; 4096];
    let _ = hello.read(&mut rest).await.expect("rest of HELLO");
    exchange(&mut hello, b"GET a\r\n", b"$1\r\n1\r\n").await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_oversized_write_deletes_nothing() {
    let certs = TestCerts::new();
    let stack = stack(&certs, Some(SERVER_PASSWORD)).await;
    let mut trusted = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
    exchange(&mut trusted, b"AUTH proxy-s3cret\r\nSET k old\r\n", b"+OK\r\n+OK\r\n").await;
    // A value past max_value_bytes would remove the key's old value (the
    // server's rule): not for a client that has not authenticated.
    let mut stranger = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
    let big = vec![b'x'; 8192];
    let mut request = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", big.len()).into_bytes();
    request.extend_from_slice(&big);
    request.extend_from_slice(b"\r\n");
    exchange(&mut stranger, &request, NOAUTH).await;
    exchange(&mut trusted, b"GET k\r\n", b"$3\r\nold\r\n").await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_wrong_passwords_close_the_connection() {
    let certs = TestCerts::new();
    let stack = stack(&certs, Some(SERVER_PASSWORD)).await;
    let mut resp = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
    resp.write_all(&b"AUTH guess\r\n".repeat(12)).await.expect("write");
    let replies = read_to_close(&mut resp).await;
    assert_eq!(replies, WRONGPASS.repeat(10));

    let mut mc = TcpStream::connect(stack.proxy.memcache_addr).await.expect("connect");
    mc.write_all(&b"set a 0 0 7\r\nu guess\r\n".repeat(12))
        .await
        .expect("write");
    let replies = read_to_close(&mut mc).await;
    assert_eq!(replies, b"CLIENT_ERROR authentication failure\r\n".repeat(10));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memcached_door_asks_for_the_password_the_way_the_server_does() {
    let certs = TestCerts::new();
    let stack = stack(&certs, Some(SERVER_PASSWORD)).await;
    let mut mc = TcpStream::connect(stack.proxy.memcache_addr).await.expect("connect");
    exchange(&mut mc, b"get k\r\n", b"CLIENT_ERROR unauthenticated\r\n").await;
    exchange(&mut mc, b"mg k v\r\n", b"CLIENT_ERROR unauthenticated\r\n").await;
    exchange(&mut mc, b"delete k\r\n", b"CLIENT_ERROR unauthenticated\r\n").await;
    exchange(
        &mut mc,
        b"set auth 0 0 11\r\nuser wrong!\r\n",
        b"CLIENT_ERROR authentication failure\r\n",
    )
    .await;
    // The auth set pipelined with what follows: answered in order.
    exchange(
        &mut mc,
        b"set auth 0 0 17\r\nuser proxy-s3cret\r\nset k 0 0 2\r\nhi\r\nget k\r\n",
        b"STORED\r\nSTORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n",
    )
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_servers_password_the_proxy_cannot_reach_them() {
    // The control for the tests above: servers that require a password
    // refuse a proxy that does not send one.
    let certs = TestCerts::new();
    let stack = stack(&certs, None).await;
    let mut resp = TcpStream::connect(stack.proxy.resp_addr).await.expect("connect");
    exchange(&mut resp, b"AUTH proxy-s3cret\r\n", b"+OK\r\n").await;
    resp.write_all(b"GET k\r\n").await.expect("write");
    let mut reply = vec![0u8; 4096];
    let read = resp.read(&mut reply).await.expect("read");
    let reply = String::from_utf8_lossy(&reply[..read]);
    assert!(
        reply.starts_with("-ERR") && reply.contains("unauthenticated"),
        "{reply}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_doors_speak_tls() {
    let certs = TestCerts::new();
    let stack = stack(&certs, Some(SERVER_PASSWORD)).await;
    let resp_addr = stack.proxy.tls_resp_addr.expect("TLS RESP door");
    let memcache_addr = stack.proxy.tls_memcache_addr.expect("TLS memcached door");
    assert_ne!(resp_addr, stack.proxy.resp_addr);

    let mut resp = certs.connect(resp_addr, false).await.expect("TLS handshake");
    exchange(&mut resp, b"PING\r\n", NOAUTH).await;
    exchange(
        &mut resp,
        b"AUTH proxy-s3cret\r\nSET k v\r\nGET k\r\n",
        b"+OK\r\n+OK\r\n$1\r\nv\r\n",
    )
    .await;

    let mut mc = certs.connect(memcache_addr, false).await.expect("TLS handshake");
    exchange(
        &mut mc,
        b"set auth 0 0 17\r\nuser proxy-s3cret\r\nget k\r\n",
        b"STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n",
    )
    .await;

    // Plain text on the TLS door gets no RESP reply; the door still works.
    let mut plain = TcpStream::connect(resp_addr).await.expect("connect");
    plain.write_all(b"PING\r\n").await.expect("write");
    let answer = read_to_close(&mut plain).await;
    assert!(
        !answer.starts_with(b"-NOAUTH") && !answer.starts_with(b"+PONG"),
        "{answer:?}"
    );
    exchange(&mut resp, b"GET k\r\n", b"$1\r\nv\r\n").await;
    stack.stop().await;
}

#[tokio::test]
async fn a_tls_door_without_a_certificate_is_refused() {
    let cluster = ClusterConfig::from_nodes(&["127.0.0.1:1".to_owned()]).expect("cluster");
    let client = Client::new(ClientConfig::new(cluster)).expect("client");
    let config = ProxyConfig {
        tls_resp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ProxyConfig::default()
    };
    assert!(strata_proxy::start(client, config).await.is_err());
}
