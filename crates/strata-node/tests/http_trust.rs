//! The request node's HTTP API behind a bearer token and over TLS: a real
//! strata server and node on free loopback ports, HTTP/1.1 spoken over
//! real sockets (and over rustls, with certificates made at test time).

use std::net::SocketAddr;

use strata_node::config::HttpTls;
use strata_node::{Node, NodeConfig};
use strata_server::{Config, RunningServer, Server};
use strata_session::tls::testing::TestCerts;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "a-long-random-token";

struct Stack {
    server: RunningServer,
    http: SocketAddr,
    dir: std::path::PathBuf,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn stack(name: &str, api_token: Option<&str>, tls: Option<HttpTls>) -> Stack {
    let server = Server::start(Config::default().on_free_ports()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("strata-node-trust-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = NodeConfig {
        origin: dir.join("origin.db").display().to_string(),
        l2: vec![server.memcache_addr.to_string()],
        tracking: vec![server.resp_addr.to_string()],
        api_token: api_token.map(Into::into),
        tls,
        ..NodeConfig::default()
    };
    config.write_behind.dir = dir.join("journal");
    let node = Node::start(config).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let serving = tokio::spawn(strata_node::http::serve(node, listener, std::future::pending()));
    Stack {
        server,
        http,
        dir,
        serving,
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.serving.abort();
        self.server.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The raw response to one HTTP/1.1 request on `stream`.
async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: &str,
) -> String {
    let authorization = authorization
        .map(|value| format!("authorization: {value}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{authorization}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

async fn plain(addr: SocketAddr, method: &str, path: &str, authorization: Option<&str>, body: &str) -> String {
    request(
        TcpStream::connect(addr).await.unwrap(),
        method,
        path,
        authorization,
        body,
    )
    .await
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_items_api_requires_the_bearer_token() {
    let stack = stack("token", Some(TOKEN), None).await;
    let bearer = format!("Bearer {TOKEN}");
    let put = r#"{"value":"hello"}"#;

    let missing = plain(stack.http, "PUT", "/items/1", None, put).await;
    assert_eq!(status(&missing), 401, "{missing}");
    assert!(
        missing
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer realm=\"strata\"\r\n"),
        "{missing}"
    );
    let wrong = plain(stack.http, "PUT", "/items/1", Some("Bearer not-the-token"), put).await;
    assert_eq!(status(&wrong), 401, "{wrong}");
    assert!(wrong.contains("invalid_token"), "{wrong}");
    // The token without its scheme, or under another one, is no token.
    for authorization in [TOKEN.to_owned(), format!("Basic {TOKEN}")] {
        let refused = plain(stack.http, "PUT", "/items/1", Some(&authorization), put).await;
        assert_eq!(status(&refused), 401, "{authorization}: {refused}");
    }
    // Nothing was written by the refused requests.
    let read = plain(stack.http, "GET", "/items/1", Some(&bearer), "").await;
    assert_eq!(status(&read), 404, "{read}");

    let written = plain(stack.http, "PUT", "/items/1", Some(&bearer), put).await;
    assert_eq!(status(&written), 200, "{written}");
    // The scheme is case-insensitive.
    let read = plain(stack.http, "GET", "/items/1", Some(&format!("bearer {TOKEN}")), "").await;
    assert_eq!(status(&read), 200, "{read}");
    assert!(read.contains("hello"), "{read}");
    let read = plain(stack.http, "GET", "/items/1", None, "").await;
    assert_eq!(status(&read), 401, "{read}");
    let deleted = plain(stack.http, "DELETE", "/items/1", None, "").await;
    assert_eq!(status(&deleted), 401, "{deleted}");

    // Health and metrics stay open, for load balancers and scrapers.
    assert_eq!(status(&plain(stack.http, "GET", "/healthz", None, "").await), 200);
    assert_eq!(status(&plain(stack.http, "GET", "/metrics", None, "").await), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_api_is_open() {
    let stack = stack("open", None, None).await;
    let written = plain(stack.http, "PUT", "/items/1", None, r#"{"value":"x"}"#).await;
    assert_eq!(status(&written), 200, "{written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_served_over_tls() {
    let certs = TestCerts::new();
    let tls = HttpTls {
        cert_file: certs.server_cert.clone(),
        key_file: certs.server_key.clone(),
    };
    let stack = stack("tls", Some(TOKEN), Some(tls)).await;
    let bearer = format!("Bearer {TOKEN}");
    let https = || certs.connect(stack.http, false);

    let health = request(https().await.unwrap(), "GET", "/healthz", None, "").await;
    assert_eq!(status(&health), 200, "{health}");
    let refused = request(https().await.unwrap(), "GET", "/items/7", None, "").await;
    assert_eq!(status(&refused), 401, "{refused}");
    let written = request(
        https().await.unwrap(),
        "PUT",
        "/items/7",
        Some(&bearer),
        r#"{"value":"tls"}"#,
    )
    .await;
    assert_eq!(status(&written), 200, "{written}");
    let read = request(https().await.unwrap(), "GET", "/items/7", Some(&bearer), "").await;
    assert_eq!(status(&read), 200, "{read}");
    assert!(read.contains("\"tls\""), "{read}");

    // Plain HTTP on the HTTPS port gets no HTTP answer; HTTPS carries on.
    let refused = plain(stack.http, "GET", "/healthz", None, "").await;
    assert!(!refused.starts_with("HTTP/1.1"), "{refused}");
    let health = request(https().await.unwrap(), "GET", "/healthz", None, "").await;
    assert_eq!(status(&health), 200, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_certificate_files_stop_the_api_at_once() {
    let certs = TestCerts::new();
    let tls = HttpTls {
        cert_file: certs.dir().join("missing.pem"),
        key_file: certs.server_key.clone(),
    };
    let mut stack = stack("badtls", None, Some(tls)).await;
    let served = (&mut stack.serving).await.expect("joined");
    let error = served.expect_err("cannot serve TLS without its certificate");
    assert!(error.to_string().contains("missing.pem"), "{error}");
}

#[test]
fn the_toml_takes_a_token_and_tls_files() {
    let config =
        NodeConfig::from_toml("api_token = \"t0ken\"\n[tls]\ncert_file = \"node.pem\"\nkey_file = \"node.key\"\n")
            .unwrap();
    assert_eq!(config.api_token.as_ref().map(|t| t.expose()), Some("t0ken"));
    assert!(!format!("{config:?}").contains("t0ken"));
    assert_eq!(config.tls.unwrap().key_file, std::path::PathBuf::from("node.key"));
    assert!(NodeConfig::from_toml("api_token = \"\"\n").is_err());
}
