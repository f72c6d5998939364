//! The load generator against a real strata server on free loopback ports,
//! over both protocols: every request is answered and counted, prefilled
//! keys hit, and the server's CPU and memory are read.

use std::time::Duration;

use indicatif::ProgressBar;
use strata_load::{self as load, Error, LoadSpec, ValueSize, Wire};
use strata_server::{Config, Server};

async fn server() -> strata_server::RunningServer {
    Server::start(Config::default().on_free_ports())
        .await
        .expect("server starts")
}

fn small(addr: std::net::SocketAddr, wire: Wire) -> LoadSpec {
    LoadSpec {
        connections: 4,
        pipeline: 8,
        keys: 500,
        requests: 20_000,
        duration: Duration::from_secs(60),
        server_pid: Some(std::process::id()),
        ..LoadSpec::standard(addr, wire)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_protocols_are_driven_to_the_exact_budget() {
    let server = server().await;
    for (addr, wire) in [(server.resp_addr, Wire::Resp), (server.memcache_addr, Wire::Memcache)] {
        let report = load::run(small(addr, wire), ProgressBar::hidden())
            .await
            .expect("load runs");
        assert_eq!(report.requests, 20_000, "{wire}");
        assert_eq!(
            report.hits + report.misses + report.stored + report.errors,
            20_000,
            "{wire}"
        );
        assert_eq!(report.errors, 0, "{wire}");
        assert_eq!(report.misses, 0, "{wire}: every key was prefilled");
        // 10:1 GET:SET over 20,000 requests: about 1,818 SETs.
        assert!(
            (1_500..2_200).contains(&report.stored),
            "{wire}: {} sets",
            report.stored
        );
        assert!(report.latency.p50_us <= report.latency.p99_us);
        let usage = report.server.expect("server usage read");
        assert!(usage.rss_max_bytes > 0);
    }
    assert_eq!(server.store().len(), 500, "both protocols share one keyspace");
    server.shutdown();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prefill_reads_miss_until_written() {
    let server = server().await;
    let spec = LoadSpec {
        prefill: false,
        gets: 1,
        sets: 0,
        ..small(server.resp_addr, Wire::Resp)
    };
    let report = load::run(spec, ProgressBar::hidden()).await.expect("load runs");
    assert_eq!(report.misses, 20_000);
    assert_eq!(report.hit_ratio, 0.0);
    server.shutdown();
    server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_larger_than_the_server_allows_are_counted_as_errors() {
    let config = Config {
        max_item_size: strata_server::ByteSize(4096),
        ..Config::default()
    }
    .on_free_ports();
    let server = Server::start(config).await.expect("server starts");
    let spec = LoadSpec {
        prefill: false,
        gets: 0,
        sets: 1,
        requests: 200,
        value_size: ValueSize { min: 8192, max: 8192 },
        ..small(server.resp_addr, Wire::Resp)
    };
    let report = load::run(spec, ProgressBar::hidden()).await.expect("load runs");
    assert_eq!(report.errors, 200);
    server.shutdown();
    server.wait().await;
}

#[tokio::test]
async fn a_dead_server_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = load::run(small(addr, Wire::Resp), ProgressBar::hidden())
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, Error::Connect { .. }), "{error}");
}
