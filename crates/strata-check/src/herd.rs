//! The thundering-herd benchmark: one hot row read by many concurrent
//! clients spread over several nodes, invalidated again and again; how
//! many origin loads does each invalidation cost?
//!
//! Each round writes the row through one node (the write deletes it in
//! L2 and, by push, in every L1), then every client reads it at once. The
//! origin load is slowed (`origin_delay_ms`) as a loaded database is, so
//! the herd has time to form. With leases (one loader per key across the
//! cluster) and single-flight (one per key per node) the answer must be 1;
//! the naive mode (no leases, no single-flight) shows what they prevent.

use std::sync::Arc;
use std::time::Duration;

use strata_node::Strategy;
use strata_node::faults::Faults;
use tokio::sync::Barrier;

use super::{System, SystemConfig};

/// What to run.
#[derive(Clone, Debug)]
pub struct HerdConfig {
    /// The origin (SQLite path or postgres URL).
    pub origin: String,
    /// Request nodes.
    pub nodes: usize,
    /// Cache servers.
    pub servers: usize,
    /// Concurrent clients (spread round-robin over the nodes).
    pub clients: usize,
    /// Invalidations.
    pub rounds: usize,
    /// Extra time every origin load takes.
    pub origin_delay_ms: u64,
    /// Scratch directory.
    pub scratch: std::path::PathBuf,
}

/// One mode's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HerdReport {
    /// `leases+single-flight` or `naive`.
    pub mode: String,
    /// Invalidations.
    pub rounds: usize,
    /// Reads (clients × rounds).
    pub reads: u64,
    /// Origin loads per invalidation: mean.
    pub loads_mean: f64,
    /// Most in any round.
    pub loads_max: u64,
    /// Fewest in any round.
    pub loads_min: u64,
    /// Reads that failed.
    pub errors: u64,
}

/// Runs the benchmark in one mode: `guarded` (cache-aside with leases and
/// L1 single-flight) or naive (no leases, no L1).
pub async fn run_herd(config: &HerdConfig, guarded: bool) -> Result<HerdReport, String> {
    let system = System::start(&SystemConfig {
        origin: config.origin.clone(),
        strategy: if guarded { Strategy::CacheAside } else { Strategy::Naive },
        servers: config.servers,
        nodes: config.nodes,
        faults: Faults {
            slow_origin: 1.0,
            origin_delay_ms: config.origin_delay_ms,
            ..Faults::default()
        },
        l1_bytes: if guarded { 16 << 20 } else { 0 },
        lease_wait: Duration::from_secs(5),
        scratch: config.scratch.clone(),
        slot: "strata_herd".into(),
        invalidator: false,
    })
    .await?;
    let nodes = Arc::new(system.nodes.clone());
    let id = "hot";
    nodes[0].put(id, "0").await.map_err(|error| error.to_string())?;
    let loads_now = || nodes.iter().map(|node| node.metrics().origin_loads.get()).sum::<u64>();
    let mut per_round = Vec::with_capacity(config.rounds);
    let mut errors = 0;
    for round in 0..config.rounds {
        nodes[round % nodes.len()]
            .put(id, &(round + 1).to_string())
            .await
            .map_err(|error| error.to_string())?;
        // Let the invalidation pushes reach every L1 first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let before = loads_now();
        let barrier = Arc::new(Barrier::new(config.clients));
        let tasks: Vec<_> = (0..config.clients)
            .map(|client| {
                let nodes = Arc::clone(&nodes);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    nodes[client % nodes.len()].get(id).await.is_ok()
                })
            })
            .collect();
        for task in tasks {
            if !matches!(task.await, Ok(true)) {
                errors += 1;
            }
        }
        per_round.push(loads_now() - before);
    }
    system.stop().await;
    let total: u64 = per_round.iter().sum();
    Ok(HerdReport {
        mode: if guarded { "leases+single-flight" } else { "naive" }.into(),
        rounds: config.rounds,
        reads: (config.clients * config.rounds) as u64,
        loads_mean: total as f64 / config.rounds.max(1) as f64,
        loads_max: per_round.iter().copied().max().unwrap_or(0),
        loads_min: per_round.iter().copied().min().unwrap_or(0),
        errors,
    })
}
