//! The miss wave on adding a node, with and without warm-up.
//!
//! Four real strata servers on loopback; 50,000 keys written to a ring of
//! three; 16 readers doing cache-aside (read; on a miss count a database
//! load and write the value back) over the keys uniformly, for 2 s, then a
//! fourth node joins and they go on for 4 s more. Misses per second are
//! counted in 100 ms buckets, once with warm-up (a miss on a key's new owner
//! reads its previous owner) and once without, on fresh servers each time.
//!
//! `cargo run --release -p strata-client --example miss_wave -- [OUT.svg]`
//! prints the buckets as CSV and draws both curves to OUT.svg (default
//! `docs/miss-wave.svg`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plotters::prelude::*;
use strata_client::{Client, ClientConfig};
use strata_ring::{ClusterConfig, Member, Scheme};
use strata_server::{Config, RunningServer, Server};

const KEYS: u64 = 50_000;
const READERS: u64 = 16;
const BEFORE: Duration = Duration::from_secs(2);
const AFTER: Duration = Duration::from_secs(4);
const BUCKET: Duration = Duration::from_millis(100);

fn cluster(servers: &[RunningServer], n: usize) -> ClusterConfig {
    let mut pools = BTreeMap::new();
    pools.insert(
        "main".to_owned(),
        servers[..n]
            .iter()
            .map(|s| Member::new("127.0.0.1", s.memcache_addr.port()))
            .collect(),
    );
    ClusterConfig {
        scheme: Scheme::Ketama,
        pools,
    }
}

/// Misses per bucket over the run; the change happens at `BEFORE`.
async fn run(warmup: bool) -> Vec<u64> {
    let mut servers = Vec::new();
    for _ in 0..4 {
        let config = Config {
            maxmemory: strata_server::ByteSize(256 << 20),
            ..Config::default()
        }
        .on_free_ports();
        servers.push(Server::start(config).await.expect("server starts"));
    }
    let mut config = ClientConfig::new(cluster(&servers, 3));
    config.warmup = if warmup {
        Duration::from_secs(60)
    } else {
        Duration::ZERO
    };
    let client = Client::new(config).expect("client");
    let keys: Vec<(Vec<u8>, Vec<u8>)> = (0..KEYS)
        .map(|i| (format!("key:{i}").into_bytes(), format!("value-{i}").into_bytes()))
        .collect();
    for chunk in keys.chunks(1000) {
        client.set_many(chunk, None).await.expect("fill");
    }
    let buckets: Arc<Vec<AtomicU64>> = Arc::new(
        (0..((BEFORE + AFTER).as_millis() / BUCKET.as_millis()) as usize)
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let start = Instant::now();
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..READERS {
        let (client, buckets) = (client.clone(), Arc::clone(&buckets));
        readers.spawn(async move {
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (reader + 1);
            let mut reads = 0u64;
            while start.elapsed() < BEFORE + AFTER && reads < 5_000_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let key = format!("key:{}", state % KEYS).into_bytes();
                reads += 1;
                if client.get(&key).await.expect("get").is_none() {
                    let bucket = (start.elapsed().as_millis() / BUCKET.as_millis()) as usize;
                    if let Some(count) = buckets.get(bucket) {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    // Cache-aside: the database load, then the fill.
                    client.set(&key, b"reloaded", None).await.expect("set");
                }
            }
        });
    }
    tokio::time::sleep(BEFORE).await;
    client.update(cluster(&servers, 4)).expect("add the fourth node");
    while readers.join_next().await.is_some() {}
    for server in &servers {
        server.shutdown();
    }
    let per_second = 1000 / BUCKET.as_millis() as u64;
    buckets.iter().map(|b| b.load(Ordering::Relaxed) * per_second).collect()
}

#[tokio::main]
async fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "docs/miss-wave.svg".to_owned());
    let cold = run(false).await;
    let warm = run(true).await;
    println!("t_ms,misses_per_s_without_warmup,misses_per_s_with_warmup");
    for (i, (c, w)) in cold.iter().zip(&warm).enumerate() {
        println!("{},{c},{w}", i as u128 * BUCKET.as_millis());
    }
    let change_bucket = (BEFORE.as_millis() / BUCKET.as_millis()) as usize;
    let total = |v: &[u64]| v[change_bucket..].iter().sum::<u64>() / (1000 / BUCKET.as_millis() as u64);
    eprintln!(
        "misses after the change: {} without warm-up, {} with ({} keys, about 1/4 of them moved)",
        total(&cold),
        total(&warm),
        KEYS
    );
    let peak = cold.iter().chain(&warm).copied().max().unwrap_or(1).max(1);
    let root = SVGBackend::new(&out, (800, 450)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let seconds = (BEFORE + AFTER).as_secs_f64();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Misses per second when a 4th node joins (at t = 2 s)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..seconds, 0u64..peak + peak / 10)?;
        chart.configure_mesh().x_desc("seconds").y_desc("misses / s").draw()?;
        let at = |i: usize| i as f64 * BUCKET.as_secs_f64();
        chart
            .draw_series(LineSeries::new(
                cold.iter().enumerate().map(|(i, &m)| (at(i), m)),
                RED.stroke_width(2),
            ))?
            .label("without warm-up")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(
                warm.iter().enumerate().map(|(i, &m)| (at(i), m)),
                BLUE.stroke_width(2),
            ))?
            .label("with warm-up")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
        root.present()?;
        Ok(())
    };
    if let Err(error) = draw() {
        eprintln!("miss_wave: cannot draw {out}: {error}");
        std::process::exit(1);
    }
    eprintln!("plot written to {out}");
}
