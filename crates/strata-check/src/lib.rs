//! # strata-check
//!
//! `strata check`: a consistency checker in the spirit of Meta's Polaris.
//!
//! It starts a whole system in this process — cache servers, request nodes
//! and the invalidator over a real origin, talking over loopback with the
//! real protocols — drives concurrent readers and writers through the
//! nodes with trouble injected, and reports:
//!
//! - the **stale-read rate** during the run: a read is stale if it returns
//!   an older value of a row than one whose write was acknowledged before
//!   the read began (each row's writes are serialized through one writer
//!   task, whose values carry an increasing sequence number, so "older" is
//!   well defined);
//! - the **inconsistencies left after quiescence**: once the writers stop,
//!   faults are turned off, write-behind journals are flushed and the
//!   invalidator has drained the log, every row's L2 copy and every node's
//!   L1 copy must equal the origin's; and **lost writes**: the origin must
//!   hold every row's last acknowledged value.
//!
//! Trouble injected (see [`strata_node::faults`]): slow origin loads,
//! fills delayed after their origin read (racing writes), cache updates
//! after writes dropped or delayed, the invalidator killed and restarted
//! mid-batch, and a cache server restarted (its contents lost).
//!
//! The naive strategy — plain cache-aside without leases, tracking or the
//! invalidator — runs the same workload to show that the races exist.
//!
//! `herd.rs` is the thundering-herd benchmark.

mod cluster;
pub mod herd;

/// A private PostgreSQL server for `strata check --postgres auto`.
pub use strata_node::pgtest::PgServer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use strata_node::faults::Faults;
use strata_node::item::{cache_key, decode};
use strata_node::{Node, Strategy};

pub use cluster::{System, SystemConfig};

/// What to run.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// The write strategy under check.
    pub strategy: Strategy,
    /// The origin (SQLite path or postgres URL).
    pub origin: String,
    /// Writes in all.
    pub writes: u64,
    /// Distinct rows (fewer rows: more races per row).
    pub keys: usize,
    /// Request nodes.
    pub nodes: usize,
    /// Cache servers.
    pub servers: usize,
    /// Concurrent writer tasks (each owns a disjoint set of rows).
    pub writers: usize,
    /// Concurrent reader tasks.
    pub readers: usize,
    /// Inject faults.
    pub faults: bool,
    /// Restart the invalidator this often (zero: never).
    pub invalidator_restart_every: Duration,
    /// Restart cache server 0 this many times, evenly spaced by writes.
    pub server_restarts: u32,
    /// Give up on the run (not the quiescence) after this long.
    pub max_duration: Duration,
    /// Scratch directory for journals.
    pub scratch: std::path::PathBuf,
    /// Replication slot name (PostgreSQL).
    pub slot: String,
}

/// The faults `strata check` injects by default.
pub fn default_faults() -> Faults {
    Faults {
        slow_origin: 0.05,
        origin_delay_ms: 10,
        delayed_fill: 0.05,
        fill_delay_ms: 15,
        drop_delete: 0.01,
        delayed_delete: 0.02,
        delete_delay_ms: 20,
    }
}

/// What a run found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckReport {
    /// The strategy.
    pub strategy: String,
    /// Writes acknowledged.
    pub writes: u64,
    /// Reads made.
    pub reads: u64,
    /// Reads that returned an older value than one acknowledged before
    /// they began.
    pub stale_reads: u64,
    /// `stale_reads / reads`.
    pub stale_rate: f64,
    /// Rows whose L2 copy disagrees with the origin after quiescence.
    pub l2_inconsistent: u64,
    /// (row, node) pairs whose L1 copy disagrees with the origin after
    /// quiescence.
    pub l1_inconsistent: u64,
    /// Rows whose origin value is not their last acknowledged write.
    pub lost_writes: u64,
    /// Write errors (refused writes, not acknowledged).
    pub write_errors: u64,
    /// Read errors.
    pub read_errors: u64,
    /// Origin loads by all nodes.
    pub origin_loads: u64,
    /// Keys the invalidator deleted.
    pub invalidations: u64,
    /// Commit-to-L2-delete latency, p50 (ms).
    pub invalidation_p50_ms: f64,
    /// p99 (ms).
    pub invalidation_p99_ms: f64,
    /// Invalidator restarts done.
    pub invalidator_restarts: u64,
    /// Cache server restarts done.
    pub server_restarts: u64,
    /// Seconds the load ran.
    pub run_secs: f64,
    /// What the first few L2 and L1 mismatches held: key, the cached
    /// item's value (for L2 also flags, CAS, TTL and owner), and the
    /// origin's value — the evidence for finding where a stale copy came
    /// from.
    pub l2_samples: Vec<String>,
}

impl CheckReport {
    /// Whether nothing was left inconsistent or lost.
    pub fn is_consistent(&self) -> bool {
        self.l2_inconsistent == 0 && self.l1_inconsistent == 0 && self.lost_writes == 0
    }
}

fn value_of(seq: u64) -> String {
    format!("{seq}:strata-check")
}

fn seq_of(value: &str) -> Option<u64> {
    value.split(':').next()?.parse().ok()
}

/// Runs one check; `progress` is called with the writes done so far.
pub async fn run_check(config: &CheckConfig, progress: &(dyn Fn(u64) + Sync)) -> Result<CheckReport, String> {
    let system_config = SystemConfig {
        origin: config.origin.clone(),
        strategy: config.strategy,
        servers: config.servers,
        nodes: config.nodes,
        faults: if config.faults {
            default_faults()
        } else {
            Faults::default()
        },
        l1_bytes: 16 << 20,
        lease_wait: Duration::from_millis(200),
        scratch: config.scratch.clone(),
        slot: config.slot.clone(),
        invalidator: true,
    };
    let mut system = System::start(&system_config).await?;
    let nodes: Arc<Vec<Node>> = Arc::new(system.nodes.clone());
    let keys = config.keys.max(1);
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..keys).map(|_| AtomicU64::new(0)).collect());
    let writes_done = Arc::new(AtomicU64::new(0));
    let write_errors = Arc::new(AtomicU64::new(0));
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let stale = Arc::new(AtomicU64::new(0));
    let read_errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + config.max_duration;
    let write_behind = config.strategy == Strategy::WriteBehind;

    let mut readers = Vec::new();
    for _ in 0..config.readers.max(1) {
        let (nodes, acked, stop, reads, stale, read_errors) = (
            Arc::clone(&nodes),
            Arc::clone(&acked),
            Arc::clone(&stop_reading),
            Arc::clone(&reads),
            Arc::clone(&stale),
            Arc::clone(&read_errors),
        );
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (key, node) = {
                    let mut rng = rand::rng();
                    (rng.random_range(0..acked.len()), rng.random_range(0..nodes.len()))
                };
                let before = acked[key].load(Ordering::SeqCst);
                match nodes[node].get(&key.to_string()).await {
                    Ok(found) => {
                        let seen = found.and_then(|item| seq_of(&item.value)).unwrap_or(0);
                        if seen < before {
                            stale.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        read_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let writers = config.writers.clamp(1, keys);
    let per_writer = config.writes / writers as u64;
    let mut writer_tasks = Vec::new();
    for writer in 0..writers {
        let (nodes, acked, done, errors) = (
            Arc::clone(&nodes),
            Arc::clone(&acked),
            Arc::clone(&writes_done),
            Arc::clone(&write_errors),
        );
        writer_tasks.push(tokio::spawn(async move {
            let owned: Vec<usize> = (writer..acked.len()).step_by(writers).collect();
            let mut next_seq = vec![0u64; owned.len()];
            for _ in 0..per_writer {
                if Instant::now() > deadline {
                    break;
                }
                let (slot, node) = {
                    let mut rng = rand::rng();
                    (rng.random_range(0..owned.len()), rng.random_range(0..nodes.len()))
                };
                let key = owned[slot];
                // Write-behind needs one node per row (journals of
                // different nodes flush in no agreed order).
                let node = if write_behind { key % nodes.len() } else { node };
                let seq = acked[key].load(Ordering::SeqCst).max(next_seq[slot]) + 1;
                next_seq[slot] = seq;
                match nodes[node].put(&key.to_string(), &value_of(seq)).await {
                    Ok(_) => {
                        acked[key].store(seq, Ordering::SeqCst);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    // Trouble on a schedule: invalidator restarts by time, server restarts
    // by progress.
    let mut invalidator_restarts = 0;
    let mut server_restarts = 0u64;
    let mut next_invalidator_restart = Instant::now() + config.invalidator_restart_every;
    let restart_marks: Vec<u64> = (1..=u64::from(config.server_restarts))
        .map(|i| config.writes * i / (u64::from(config.server_restarts) + 1))
        .collect();
    loop {
        let finished = writer_tasks.iter().all(|task| task.is_finished());
        let done = writes_done.load(Ordering::Relaxed);
        progress(done);
        if finished {
            break;
        }
        if !config.invalidator_restart_every.is_zero()
            && Instant::now() >= next_invalidator_restart
            && let Some(invalidator) = system.invalidator.as_mut()
        {
            invalidator.restart().await?;
            invalidator_restarts += 1;
            next_invalidator_restart = Instant::now() + config.invalidator_restart_every;
        }
        if restart_marks
            .get(server_restarts as usize)
            .is_some_and(|&mark| done >= mark)
        {
            system.servers[0].restart().await?;
            server_restarts += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for task in writer_tasks {
        let _ = task.await;
    }
    let run_secs = started.elapsed().as_secs_f64();
    stop_reading.store(true, Ordering::Relaxed);
    for task in readers {
        let _ = task.await;
    }
    progress(writes_done.load(Ordering::Relaxed));

    // Quiescence: no more faults; delayed deletes land; journals flush;
    // the invalidator drains the log; pushes reach every L1.
    for node in nodes.iter() {
        node.set_faults(false);
    }
    tokio::time::sleep(Duration::from_millis(system_config.faults.delete_delay_ms + 50)).await;
    let flush_deadline = Instant::now() + Duration::from_secs(60);
    while nodes.iter().any(|node| node.pending_writes() > 0) && Instant::now() < flush_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(invalidator) = system.invalidator.as_mut() {
        // A server restarted late in the run may still be marked down for
        // a moment: retry (bounded) rather than report a transient error.
        let mut tries = 0;
        while let Err(error) = invalidator.drain().await {
            tries += 1;
            if tries >= 100 {
                return Err(format!("the invalidator cannot drain the log: {error}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let ((l2_inconsistent, l1_inconsistent, lost_writes), l2_samples) = settle(&system, &acked).await?;

    let (invalidations, p50, p99) = match &system.invalidator {
        Some(invalidator) => {
            let stats = invalidator.stats();
            (
                stats.applied.load(Ordering::Relaxed),
                stats.latency_ms(0.5),
                stats.latency_ms(0.99),
            )
        }
        None => (0, 0.0, 0.0),
    };
    let origin_loads = nodes.iter().map(|node| node.metrics().origin_loads.get()).sum();
    let reads = reads.load(Ordering::Relaxed);
    let stale_reads = stale.load(Ordering::Relaxed);
    let report = CheckReport {
        strategy: config.strategy.to_string(),
        writes: writes_done.load(Ordering::Relaxed),
        reads,
        stale_reads,
        stale_rate: if reads == 0 {
            0.0
        } else {
            stale_reads as f64 / reads as f64
        },
        l2_inconsistent,
        l1_inconsistent,
        lost_writes,
        write_errors: write_errors.load(Ordering::Relaxed),
        read_errors: read_errors.load(Ordering::Relaxed),
        origin_loads,
        invalidations,
        invalidation_p50_ms: p50,
        invalidation_p99_ms: p99,
        invalidator_restarts,
        server_restarts,
        run_secs,
        l2_samples,
    };
    system.stop().await;
    Ok(report)
}

/// Compares every row's caches with the origin, giving tracking pushes a
/// bounded time to arrive: (L2 mismatches, L1 mismatches, lost writes),
/// and samples of the mismatches.
async fn settle(system: &System, acked: &[AtomicU64]) -> Result<((u64, u64, u64), Vec<String>), String> {
    // Pushes get 2 s (well inside L1's 5 s TTL, so an L1 copy that no
    // push removed is still there to count); transient errors get 5 s.
    let started = Instant::now();
    let pushes = started + Duration::from_secs(2);
    let deadline = started + Duration::from_secs(5);
    loop {
        match compare(system, acked).await {
            Ok(found) if found.0.1 == 0 || Instant::now() >= pushes => return Ok(found),
            Ok(_) => {}
            Err(error) if Instant::now() >= deadline => return Err(error),
            Err(error) => tracing::debug!(%error, "comparison failed; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn compare(system: &System, acked: &[AtomicU64]) -> Result<((u64, u64, u64), Vec<String>), String> {
    let origin = system.nodes[0].origin();
    let rows = origin.scan().await.map_err(|error| error.to_string())?;
    let by_id: std::collections::HashMap<&str, &strata_node::origin::Row> =
        rows.iter().map(|row| (row.id.as_str(), row)).collect();
    let (mut l2, mut l1, mut lost) = (0, 0, 0);
    let mut samples = Vec::new();
    for (key, acked) in acked.iter().enumerate() {
        let id = key.to_string();
        let row = by_id.get(id.as_str()).copied();
        let origin_value = row.map(|row| row.value.as_str());
        let last = acked.load(Ordering::SeqCst);
        if last > 0 && origin_value.and_then(seq_of) != Some(last) {
            lost += 1;
        }
        let cached = system
            .client
            .get_item(cache_key(&id).as_bytes())
            .await
            .map_err(|error| error.to_string())?;
        // An empty item is a lease placeholder (a reader took the lease
        // and its fill was refused or never came): no reader is served it
        // — lease gets see the lease and go to the origin — and it expires
        // with the lease. Seen after quiescence in write-through runs
        // (flags 0, a TTL of a few seconds); not a copy of the row.
        if let Some(item) = cached.filter(|item| !item.value.is_empty()) {
            let cached = decode(&id, &item.value);
            if cached.as_ref().map(|row| row.value.as_str()) != origin_value {
                l2 += 1;
                if samples.len() < 10 {
                    samples.push(format!(
                        "key {id}: cached {:?} ({} bytes, flags {:#x}, cas {}, ttl {:?}, owner {:?}); origin {origin_value:?}; last acked {last}",
                        String::from_utf8_lossy(&item.value[..item.value.len().min(60)]),
                        item.value.len(),
                        item.flags,
                        item.cas,
                        item.ttl,
                        system
                            .client
                            .ring()
                            .owner(cache_key(&id).as_bytes())
                            .map(|(_, member)| member.port),
                    ));
                }
            }
        }
        for (index, node) in system.nodes.iter().enumerate() {
            if let Some(cached) = node.peek_l1(&id)
                && Some(cached.value.as_str()) != origin_value
            {
                l1 += 1;
                if samples.len() < 10 {
                    samples.push(format!(
                        "key {id}: node {index}'s L1 holds {:?}; origin {origin_value:?}; last acked {last}; L1 usable {}",
                        cached.value,
                        node.l1_usable(),
                    ));
                }
            }
        }
    }
    Ok(((l2, l1, lost), samples))
}
