//! TLS on the server's ports: RESP on `tls-port` and memcached on
//! `memcache-tls-port`, beside the plain ones, with certificates made at
//! test time. Raw protocol bytes over a rustls client, and the real
//! `redis-cli --tls` and `openssl s_client` where they are installed.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;

use strata_server::{Config, RunningServer};
use strata_session::tls::testing::{TestCerts, tool};
use support::{exchange, http_get, read_to_close};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A server on free ports with both TLS ports open, over `certs`.
async fn tls_server(certs: &TestCerts, config: Config) -> RunningServer {
    support::start_with(Config {
        tls_port: Some(0),
        memcache_tls_port: Some(0),
        tls_cert_file: Some(certs.server_cert.clone()),
        tls_key_file: Some(certs.server_key.clone()),
        ..config
    })
    .await
}

fn tls_addr(server: &RunningServer) -> SocketAddr {
    server.tls_addr.expect("tls-port is open")
}

#[tokio::test]
async fn resp_over_tls_is_served_and_plain_text_on_the_tls_port_is_refused() {
    let certs = TestCerts::new();
    let server = tls_server(&certs, Config::default()).await;
    assert_ne!(server.tls_addr, Some(server.resp_addr));

    let mut tls = certs.connect(tls_addr(&server), false).await.expect("TLS handshake");
    assert_eq!(exchange(&mut tls, b"PING\r\n", 7).await, b"+PONG\r\n");
    let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
    assert_eq!(exchange(&mut tls, set, 5).await, b"+OK\r\n");

    // Plain text on the TLS port: the handshake fails and the connection
    // is closed; not one RESP reply comes back.
    let mut plain = TcpStream::connect(tls_addr(&server)).await.expect("connect");
    plain.write_all(b"PING\r\n").await.expect("write");
    let answer = read_to_close(&mut plain).await;
    assert!(!answer.windows(5).any(|w| w == b"+PONG"), "{answer:?}");

    // Nobody else noticed: the TLS client and the plain port carry on, and
    // see the same data.
    assert_eq!(exchange(&mut tls, b"GET k\r\n", 11).await, b"$5\r\nhello\r\n");
    let mut resp = TcpStream::connect(server.resp_addr).await.expect("connect");
    assert_eq!(exchange(&mut resp, b"GET k\r\n", 11).await, b"$5\r\nhello\r\n");

    let metrics = http_get(server.admin_addr, "/metrics").await;
    assert!(metrics.contains("strata_tls_handshake_failures_total 1"), "{metrics}");
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn memcached_over_tls_is_served() {
    let certs = TestCerts::new();
    let server = tls_server(&certs, Config::default()).await;
    let addr = server.memcache_tls_addr.expect("memcache-tls-port is open");
    let mut tls = certs.connect(addr, false).await.expect("TLS handshake");
    assert_eq!(exchange(&mut tls, b"set k 0 0 2\r\nhi\r\n", 8).await, b"STORED\r\n");
    assert_eq!(
        exchange(&mut tls, b"get k\r\n", 22).await,
        b"VALUE k 0 2\r\nhi\r\nEND\r\n"
    );
    assert_eq!(exchange(&mut tls, b"mn\r\n", 4).await, b"MN\r\n");
    // The plain memcached port is still plain.
    let mut plain = TcpStream::connect(server.memcache_addr).await.expect("connect");
    assert_eq!(
        exchange(&mut plain, b"get k\r\n", 22).await,
        b"VALUE k 0 2\r\nhi\r\nEND\r\n"
    );
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn the_password_still_applies_over_tls() {
    let certs = TestCerts::new();
    let config = Config {
        requirepass: Some("s3cret".into()),
        ..Config::default()
    };
    let server = tls_server(&certs, config).await;
    let mut tls = certs.connect(tls_addr(&server), false).await.expect("TLS handshake");
    assert_eq!(
        exchange(&mut tls, b"GET k\r\n", 32).await,
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(exchange(&mut tls, b"AUTH s3cret\r\n", 5).await, b"+OK\r\n");
    assert_eq!(exchange(&mut tls, b"GET k\r\n", 5).await, b"$-1\r\n");

    let addr = server.memcache_tls_addr.expect("memcache-tls-port is open");
    let mut mc = certs.connect(addr, false).await.expect("TLS handshake");
    assert_eq!(
        exchange(&mut mc, b"get k\r\n", 30).await,
        b"CLIENT_ERROR unauthenticated\r\n"
    );
    assert_eq!(
        exchange(&mut mc, b"set a 0 0 13\r\nuser s3cret!!\r\n", 37).await,
        b"CLIENT_ERROR authentication failure\r\n"
    );
    assert_eq!(
        exchange(&mut mc, b"set a 0 0 11\r\nuser s3cret\r\n", 8).await,
        b"STORED\r\n"
    );
    assert_eq!(exchange(&mut mc, b"get k\r\n", 5).await, b"END\r\n");
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn with_a_ca_file_clients_must_present_a_certificate() {
    let certs = TestCerts::new();
    let config = Config {
        tls_ca_cert_file: Some(certs.ca_cert.clone()),
        ..Config::default()
    };
    let server = tls_server(&certs, config).await;
    // Without a certificate the handshake fails (in TLS 1.3 the client
    // learns it on its first read).
    let refused = async {
        let mut tls = certs.connect(tls_addr(&server), false).await?;
        tls.write_all(b"PING\r\n").await?;
        let mut reply = [0u8; 7];
        tokio::io::AsyncReadExt::read_exact(&mut tls, &mut reply).await
    };
    assert!(refused.await.is_err());
    let mut tls = certs.connect(tls_addr(&server), true).await.expect("TLS handshake");
    assert_eq!(exchange(&mut tls, b"PING\r\n", 7).await, b"+PONG\r\n");
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn a_tls_port_without_a_certificate_is_refused_at_start() {
    let config = Config {
        tls_port: Some(0),
        ..Config::default()
    }
    .on_free_ports();
    let error = strata_server::Server::start(config).await.expect_err("no certificate");
    assert!(error.to_string().contains("tls-cert-file"), "{error}");
    let certs = TestCerts::new();
    let missing = Config {
        tls_port: Some(0),
        tls_cert_file: Some(certs.dir().join("missing.pem")),
        tls_key_file: Some(certs.server_key.clone()),
        ..Config::default()
    }
    .on_free_ports();
    let error = strata_server::Server::start(missing).await.expect_err("missing file");
    assert!(error.to_string().contains("missing.pem"), "{error}");
}

/// Runs `program` with `args`, feeding it `stdin`, and returns its
/// standard output (a blocking call, off the runtime's threads).
async fn run(program: std::path::PathBuf, args: Vec<String>, stdin: &'static [u8]) -> String {
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(&program)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        let output = child.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{} {args:?} failed: {stdout}{}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_speaks_to_the_tls_port() {
    let Some(redis_cli) = tool("redis-cli") else {
        return;
    };
    let certs = TestCerts::new();
    let server = tls_server(&certs, Config::default()).await;
    let port = tls_addr(&server).port().to_string();
    let ca = certs.ca_cert.display().to_string();
    let args = |command: &[&str]| {
        let mut args: Vec<String> = ["--tls", "--cacert", &ca, "-h", "127.0.0.1", "-p", &port]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(command.iter().map(|s| s.to_string()));
        args
    };
    assert_eq!(run(redis_cli.clone(), args(&["PING"]), b"").await.trim(), "PONG");
    assert_eq!(run(redis_cli.clone(), args(&["SET", "k", "v"]), b"").await.trim(), "OK");
    assert_eq!(run(redis_cli.clone(), args(&["GET", "k"]), b"").await.trim(), "v");
    // Without --tls, redis-cli on the TLS port gets no reply.
    let plain = tokio::task::spawn_blocking({
        let port = port.clone();
        move || {
            std::process::Command::new(redis_cli)
                .args(["-h", "127.0.0.1", "-p", &port, "PING"])
                .stdin(Stdio::null())
                .output()
                .expect("run")
        }
    })
    .await
    .expect("join");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("PONG"));
    server.shutdown();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_speaks_resp_and_memcached_over_tls() {
    let Some(openssl) = tool("openssl") else {
        return;
    };
    let certs = TestCerts::new();
    let server = tls_server(&certs, Config::default()).await;
    let s_client = |addr: SocketAddr| -> Vec<String> {
        [
            "s_client",
            "-connect",
            &addr.to_string(),
            "-CAfile",
            &certs.ca_cert.display().to_string(),
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            // Implies -ign_eof: reads until the server closes (after QUIT).
            "-quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let resp = run(openssl.clone(), s_client(tls_addr(&server)), b"PING\r\nQUIT\r\n").await;
    assert_eq!(resp, "+PONG\r\n+OK\r\n");
    let memcache_addr = server.memcache_tls_addr.expect("memcache-tls-port is open");
    let memcache = run(
        openssl,
        s_client(memcache_addr),
        b"set k 0 0 2\r\nhi\r\nget k\r\nquit\r\n",
    )
    .await;
    assert_eq!(memcache, "STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
    server.shutdown();
    server.wait().await;
}
