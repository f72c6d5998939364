//! Starting a real server on free loopback ports for the black-box tests.

#![allow(dead_code, reason = "each test file uses a different part of the support module")]

use std::sync::Arc;
use std::time::Duration;

use strata_server::{Config, RunningServer, Server};
use strata_store::{Capacity, ManualClock, Store};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server on free ports with default settings.
pub async fn start() -> RunningServer {
    start_with(Config::default()).await
}

/// A server on free ports with `config` (its ports are overridden).
pub async fn start_with(config: Config) -> RunningServer {
    Server::start(config.on_free_ports()).await.expect("server starts")
}

/// A server whose engine reads a manual clock, for TTL and lease tests.
pub async fn start_with_clock() -> (RunningServer, Arc<ManualClock>) {
    let clock = ManualClock::new(1_700_000_000_000);
    let store = Arc::new(Store::builder(Capacity::Bytes(64 << 20)).clock(clock.clone()).build());
    (
        Server::start_with_store(Config::default().on_free_ports(), store)
            .await
            .expect("server starts"),
        clock,
    )
}

/// Sends `request` and reads until `expect` bytes arrived or the server
/// closed the connection (with a deadline so a hang fails the test).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, request: &[u8], expect: usize) -> Vec<u8> {
    stream.write_all(request).await.expect("write");
    read_at_least(stream, expect).await
}

/// Reads until at least `n` bytes or EOF, within 5 s.
pub async fn read_at_least<S: AsyncRead + Unpin>(stream: &mut S, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < n {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(k)) => got.extend_from_slice(&buf[..k]),
            Err(_) => panic!(
                "timed out waiting for {n} bytes; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    got
}

/// Reads until the server closes the connection (within 5 s).
pub async fn read_to_close<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await;
    assert!(
        read.is_ok(),
        "server did not close; got {:?}",
        String::from_utf8_lossy(&got)
    );
    got
}

/// A plain HTTP GET against the admin endpoint.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect admin");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    String::from_utf8_lossy(&read_to_close(&mut stream).await).into_owned()
}
