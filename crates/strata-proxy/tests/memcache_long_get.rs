//! Black-box test of the proxy's memcached door with get lines past the
//! line limit: real servers behind it, raw bytes in front. Such a line is
//! streamed as on the server (`GetStream`), answered batch by batch.

use std::time::Duration;

use strata_client::{Client, ClientConfig};
use strata_proxy::ProxyConfig;
use strata_ring::ClusterConfig;
use strata_server::{Config, RunningServer, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

/// Reads exactly `n` bytes (or what came before a close), within 10 s.
async fn read_exactly(read: &mut OwnedReadHalf, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    let mut filled = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while filled < n {
        match tokio::time::timeout_at(deadline, read.read(&mut got[filled..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(k)) => filled += k,
            Err(_) => panic!("timed out after {filled} of {n} bytes"),
        }
    }
    got.truncate(filled);
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_lines_past_the_line_limit_are_streamed() {
    let mut servers: Vec<RunningServer> = Vec::new();
    for _ in 0..2 {
        servers.push(
            Server::start(Config::default().on_free_ports())
                .await
                .expect("server starts"),
        );
    }
    let nodes: Vec<String> = servers.iter().map(|server| server.memcache_addr.to_string()).collect();
    let cluster = ClusterConfig::from_nodes(&nodes).expect("cluster");
    let client = Client::new(ClientConfig::new(cluster)).expect("client");
    let proxy = strata_proxy::start(
        client,
        ProxyConfig {
            resp: "127.0.0.1:0".parse().unwrap(),
            memcache: "127.0.0.1:0".parse().unwrap(),
            max_connections: 16,
            max_value_bytes: 1024 * 1024,
            idle_timeout: None,
            ..ProxyConfig::default()
        },
    )
    .await
    .expect("proxy starts");
    let stream = TcpStream::connect(proxy.memcache_addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();

    // 12,000 keys (a 190 KiB line), every third one stored.
    let keys: Vec<String> = (0..12_000).map(|i| format!("proxy-key:{i:05}")).collect();
    let mut stores = Vec::new();
    let mut expected = Vec::new();
    for (i, key) in keys.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let value = format!("v{i}");
        stores.extend_from_slice(format!("set {key} {i} 0 {} noreply\r\n{value}\r\n", value.len()).as_bytes());
        expected.extend_from_slice(format!("VALUE {key} {i} {}\r\n{value}\r\n", value.len()).as_bytes());
    }
    expected.extend_from_slice(b"END\r\n");
    stores.extend_from_slice(b"get proxy-key:00000\r\n");
    write.write_all(&stores).await.unwrap();
    let synced = b"VALUE proxy-key:00000 0 2\r\nv0\r\nEND\r\n";
    assert_eq!(read_exactly(&mut read, synced.len()).await, synced);

    let line = format!("get {}\r\n", keys.join(" "));
    assert!(line.len() > 128 * 1024);
    let writer = tokio::spawn(async move {
        for chunk in line.as_bytes().chunks(50_001) {
            write.write_all(chunk).await.unwrap();
            write.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        write
    });
    let reply = read_exactly(&mut read, expected.len()).await;
    let mut write = writer.await.unwrap();
    assert!(
        reply == expected,
        "got {} bytes, not the expected values in order",
        reply.len()
    );

    // gat is not served by the proxy: one refusal for the whole long line,
    // then the connection carries on.
    let gat = format!("gat 10 {}\r\nget proxy-key:00003\r\n", keys.join(" "));
    write.write_all(gat.as_bytes()).await.unwrap();
    let refusal = b"SERVER_ERROR gat is not supported by strata proxy\r\nVALUE proxy-key:00003 3 2\r\nv3\r\nEND\r\n";
    assert_eq!(
        String::from_utf8_lossy(&read_exactly(&mut read, refusal.len()).await),
        String::from_utf8_lossy(refusal)
    );
    proxy.shutdown();
}
