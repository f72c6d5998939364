//! The cluster client over TLS: servers whose memcached TLS ports (with a
//! password) are the ring's addresses, certificates made at test time.

use std::net::SocketAddr;

use strata_client::{Client, ClientConfig, Failover};
use strata_ring::{ClusterConfig, Member, Scheme};
use strata_server::{Config, RunningServer, Server};
use strata_session::Secret;
use strata_session::tls::testing::TestCerts;

async fn tls_servers(certs: &TestCerts, n: usize) -> Vec<RunningServer> {
    let mut servers = Vec::new();
    for _ in 0..n {
        let config = Config {
            requirepass: Some("s3cret".into()),
            memcache_tls_port: Some(0),
            tls_cert_file: Some(certs.server_cert.clone()),
            tls_key_file: Some(certs.server_key.clone()),
            ..Config::default()
        };
        servers.push(Server::start(config.on_free_ports()).await.expect("server starts"));
    }
    servers
}

fn client(servers: &[RunningServer], tls: Option<strata_session::TlsConnector>) -> Client {
    let member = |addr: SocketAddr| Member::new(addr.ip().to_string(), addr.port());
    let mut pools = std::collections::BTreeMap::new();
    pools.insert(
        "main".to_owned(),
        servers
            .iter()
            .map(|s| member(s.memcache_tls_addr.expect("TLS port")))
            .collect(),
    );
    let mut config = ClientConfig::new(ClusterConfig {
        scheme: Scheme::Ketama,
        pools,
    });
    config.failover = Failover::NextOnRing;
    config.node.password = Some(Secret::from("s3cret"));
    config.node.tls = tls;
    Client::new(config).expect("valid cluster")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reaches_password_protected_servers_over_tls() {
    let certs = TestCerts::new();
    let servers = tls_servers(&certs, 2).await;
    let client = client(&servers, Some(certs.connector(false)));
    for i in 0..20 {
        let key = format!("key:{i}");
        client.set(key.as_bytes(), b"over tls", None).await.expect("set");
    }
    let keys: Vec<String> = (0..20).map(|i| format!("key:{i}")).collect();
    let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    let values = client.get_many(&keys).await.expect("get_many");
    assert!(values.iter().all(|v| v.as_deref() == Some(&b"over tls"[..])));
    // Both servers hold some: every connection was TLS.
    assert!(servers.iter().all(|s| !s.store().is_empty()));
    for server in servers {
        server.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_the_tls_ports_do_not_answer() {
    // The control: the same cluster without the connector fails.
    let certs = TestCerts::new();
    let servers = tls_servers(&certs, 1).await;
    let client = client(&servers, None);
    assert!(client.set(b"k", b"v", None).await.is_err());
    for server in servers {
        server.shutdown();
    }
}
