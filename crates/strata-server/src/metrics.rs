//! Counters and the latency histogram, and their Prometheus exposition.
//!
//! The hot path never touches a shared counter per request: each connection
//! counts into a [`LocalStats`] and adds it to the shared atomics once per
//! batch of requests (one read from the socket). Store-side numbers (hits,
//! misses, evictions, expirations, bytes) are read from the engine at scrape
//! time. The exposition is a `prometheus-client` collector, so the text
//! format is the library's, not ours.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
pub use strata_session::process::resident_bytes;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use strata_store::Store;

/// Latency buckets: request service time up to 2^i microseconds.
pub(crate) const LATENCY_BUCKETS: usize = 25;

/// Which wire protocol a command came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Resp = 0,
    Memcache = 1,
}

/// Server-wide counters.
#[derive(Debug)]
pub struct Metrics {
    names: [&'static [&'static str]; 2],
    calls: [Box<[AtomicU64]>; 2],
    nanos: [Box<[AtomicU64]>; 2],
    latency: [AtomicU64; LATENCY_BUCKETS + 1],
    latency_sum_ns: AtomicU64,
    /// Connections open now.
    pub(crate) connections: AtomicU64,
    /// Connections accepted since start.
    pub(crate) connections_total: AtomicU64,
    /// Connections refused (over `max-connections`).
    pub(crate) rejected_connections: AtomicU64,
    /// Requests refused as malformed or too large.
    pub(crate) protocol_errors: AtomicU64,
    /// Failed password checks, both protocols.
    pub(crate) auth_failures: AtomicU64,
    /// TLS handshakes that failed or timed out (shared with the TLS
    /// ports' acceptor, which counts them).
    pub(crate) tls_handshake_failures: Arc<AtomicU64>,
    /// Connections closed because one reply passed `reply-buffer-limit`.
    pub(crate) reply_limit_disconnects: AtomicU64,
    /// Keys in client-tracking invalidations written to clients (a flush
    /// message counts one).
    pub(crate) invalidations: AtomicU64,
    /// Connections closed because they did not read their pushes (shared
    /// with the connection registry, which does the closing).
    pub(crate) push_disconnects: Arc<AtomicU64>,
    /// What every connection's buffers hold: counted against `maxmemory`
    /// (the store holds that much back, see `expire_loop`).
    pub(crate) client_memory: strata_session::ClientMemory,
    started: Instant,
    store: Arc<Store>,
}

impl Metrics {
    /// Counters for the given command tables (RESP's, memcached's).
    pub(crate) fn new(
        resp_commands: &'static [&'static str],
        memcache_commands: &'static [&'static str],
        store: Arc<Store>,
    ) -> Self {
        let table = |names: &[&str]| names.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            names: [resp_commands, memcache_commands],
            calls: [table(resp_commands), table(memcache_commands)],
            nanos: [table(resp_commands), table(memcache_commands)],
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_sum_ns: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            client_memory: strata_session::ClientMemory::default(),
            connections_total: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            tls_handshake_failures: Arc::new(AtomicU64::new(0)),
            reply_limit_disconnects: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            push_disconnects: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
            store,
        }
    }

    /// Seconds since the server started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Total calls of every command of `protocol`.
    pub(crate) fn calls(&self, protocol: Protocol) -> u64 {
        self.calls[protocol as usize]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Calls per command of `protocol` (name, count), non-zero only.
    pub(crate) fn command_calls(&self, protocol: Protocol) -> Vec<(&'static str, u64)> {
        self.names[protocol as usize]
            .iter()
            .zip(self.calls[protocol as usize].iter())
            .map(|(&name, count)| (name, count.load(Ordering::Relaxed)))
            .filter(|&(_, count)| count > 0)
            .collect()
    }

    /// Calls and total service time per command of `protocol` (name,
    /// calls, nanoseconds), non-zero only.
    pub(crate) fn command_times(&self, protocol: Protocol) -> Vec<(&'static str, u64, u64)> {
        let p = protocol as usize;
        self.names[p]
            .iter()
            .zip(self.calls[p].iter().zip(self.nanos[p].iter()))
            .map(|(&name, (calls, nanos))| (name, calls.load(Ordering::Relaxed), nanos.load(Ordering::Relaxed)))
            .filter(|&(_, calls, _)| calls > 0)
            .collect()
    }

    /// A fresh per-connection accumulator.
    pub(crate) fn local(&self, protocol: Protocol) -> LocalStats {
        LocalStats {
            protocol,
            calls: vec![0; self.names[protocol as usize].len()],
            nanos: vec![0; self.names[protocol as usize].len()],
            touched: Vec::new(),
            latency: [0; LATENCY_BUCKETS + 1],
            latency_sum_ns: 0,
            dirty: false,
        }
    }

    /// Adds a connection's counts to the totals and zeroes them.
    pub(crate) fn flush(&self, local: &mut LocalStats) {
        if !local.dirty {
            return;
        }
        let calls = &self.calls[local.protocol as usize];
        let nanos = &self.nanos[local.protocol as usize];
        for &index in &local.touched {
            let index = usize::from(index);
            let count = std::mem::take(&mut local.calls[index]);
            calls[index].fetch_add(u64::from(count), Ordering::Relaxed);
            nanos[index].fetch_add(std::mem::take(&mut local.nanos[index]), Ordering::Relaxed);
        }
        local.touched.clear();
        for (bucket, count) in local.latency.iter_mut().enumerate() {
            if *count > 0 {
                self.latency[bucket].fetch_add(u64::from(std::mem::take(count)), Ordering::Relaxed);
            }
        }
        self.latency_sum_ns
            .fetch_add(std::mem::take(&mut local.latency_sum_ns), Ordering::Relaxed);
        local.dirty = false;
    }

    /// Latency percentile estimate in microseconds (bucket upper bound).
    pub(crate) fn latency_percentile_us(&self, quantile: f64) -> u64 {
        let counts: Vec<u64> = self.latency.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let target = (quantile * total as f64).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= target {
                return 1 << bucket.min(LATENCY_BUCKETS);
            }
        }
        1 << LATENCY_BUCKETS
    }
}

/// One connection's counts since its last flush.
#[derive(Debug)]
pub(crate) struct LocalStats {
    protocol: Protocol,
    calls: Vec<u32>,
    nanos: Vec<u64>,
    touched: Vec<u16>,
    latency: [u32; LATENCY_BUCKETS + 1],
    latency_sum_ns: u64,
    dirty: bool,
}

impl LocalStats {
    /// Counts one call of command `index` that took `nanos`.
    pub(crate) fn record(&mut self, index: usize, nanos: u64) {
        let slot = &mut self.calls[index];
        if *slot == 0 {
            self.touched.push(index as u16);
        }
        *slot += 1;
        self.nanos[index] += nanos;
        let micros = nanos.div_ceil(1000).max(1);
        let bucket = (64 - (micros - 1).leading_zeros()) as usize;
        self.latency[bucket.min(LATENCY_BUCKETS)] += 1;
        self.latency_sum_ns += nanos;
        self.dirty = true;
    }
}

/// The Prometheus view of [`Metrics`] and the store.
#[derive(Debug)]
pub(crate) struct PrometheusCollector(pub(crate) Arc<Metrics>);

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for PrometheusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = &self.0;
        {
            let mut family = encoder.encode_descriptor(
                "strata_commands",
                "Commands executed, by protocol and command",
                None,
                MetricType::Counter,
            )?;
            for (protocol, label) in [(Protocol::Resp, "resp"), (Protocol::Memcache, "memcache")] {
                for (name, count) in metrics.command_calls(protocol) {
                    let labels = [("protocol", label), ("command", name)];
                    ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let counts: Vec<u64> = metrics.latency.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            // prometheus-client takes per-bucket counts and accumulates
            // them itself into the cumulative `le` buckets Prometheus wants.
            let total: u64 = counts.iter().sum();
            let mut buckets = Vec::with_capacity(counts.len());
            for (bucket, &count) in counts.iter().enumerate() {
                let upper = if bucket == LATENCY_BUCKETS {
                    f64::INFINITY
                } else {
                    (1u64 << bucket) as f64 / 1e6
                };
                buckets.push((upper, count));
            }
            let sum = metrics.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let mut metric = encoder.encode_descriptor(
                "strata_command_duration_seconds",
                "Time from parsing a request to its reply being ready",
                None,
                MetricType::Histogram,
            )?;
            metric.encode_histogram::<[(&str, &str); 0]>(sum, total, &buckets, None)?;
        }
        let stats = metrics.store.stats();
        counter(
            &mut encoder,
            "strata_keyspace_hits",
            "Reads that found a live item",
            stats.hits,
        )?;
        counter(
            &mut encoder,
            "strata_keyspace_misses",
            "Reads that found nothing",
            stats.misses,
        )?;
        counter(
            &mut encoder,
            "strata_evictions",
            "Items evicted to make room",
            stats.evictions,
        )?;
        counter(
            &mut encoder,
            "strata_expirations",
            "Items removed because their TTL passed",
            stats.expirations(),
        )?;
        gauge(&mut encoder, "strata_items", "Items stored", stats.items as i64)?;
        gauge(
            &mut encoder,
            "strata_memory_used_bytes",
            "Bytes charged against maxmemory",
            stats.used as i64,
        )?;
        gauge(
            &mut encoder,
            "strata_memory_held_bytes",
            "Bytes the store really holds: records' pages, large records and its structures",
            (stats.record_bytes + stats.overhead_bytes) as i64,
        )?;
        gauge(
            &mut encoder,
            "strata_client_buffer_bytes",
            "Bytes held by connections' read and write buffers (counted against maxmemory)",
            metrics.client_memory.bytes() as i64,
        )?;
        counter(
            &mut encoder,
            "strata_compactions",
            "Pages freed by moving their records into other pages of their size class",
            stats.compactions,
        )?;
        gauge(
            &mut encoder,
            "strata_memory_limit_bytes",
            "maxmemory",
            stats.capacity as i64,
        )?;
        gauge(
            &mut encoder,
            "strata_process_resident_bytes",
            "Resident set size of the process",
            resident_bytes() as i64,
        )?;
        gauge(
            &mut encoder,
            "strata_connections",
            "Client connections open now",
            metrics.connections.load(Ordering::Relaxed) as i64,
        )?;
        counter(
            &mut encoder,
            "strata_connections_accepted",
            "Client connections accepted",
            metrics.connections_total.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "strata_connections_rejected",
            "Client connections refused over max-connections",
            metrics.rejected_connections.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "strata_protocol_errors",
            "Requests refused as malformed or too large",
            metrics.protocol_errors.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "strata_auth_failures",
            "Failed password checks (AUTH, HELLO AUTH, memcached ASCII auth)",
            metrics.auth_failures.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "strata_tls_handshake_failures",
            "TLS handshakes that failed or timed out (plain text on a TLS port, an untrusted client certificate)",
            metrics.tls_handshake_failures.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "strata_reply_limit_disconnects",
            "Connections closed because one reply passed reply-buffer-limit",
            metrics.reply_limit_disconnects.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "strata_tracking_invalidations",
            "Keys in client-tracking invalidation messages sent (a flush counts one)",
            metrics.invalidations.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "strata_push_disconnects",
            "Connections closed for not reading their pushes (invalidations, pub/sub messages)",
            metrics.push_disconnects.load(Ordering::Relaxed),
        )?;
        gauge(
            &mut encoder,
            "strata_uptime_seconds",
            "Seconds since start",
            metrics.uptime_secs() as i64,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::Capacity;

    #[test]
    fn local_counts_flush_into_totals_and_buckets() {
        let store = Arc::new(Store::builder(Capacity::Bytes(1 << 20)).build());
        let metrics = Metrics::new(&["get", "set"], &["get"], store);
        let mut local = metrics.local(Protocol::Resp);
        local.record(0, 500);
        local.record(0, 1_500);
        local.record(1, 3_000_000);
        metrics.flush(&mut local);
        metrics.flush(&mut local);
        assert_eq!(metrics.command_calls(Protocol::Resp), vec![("get", 2), ("set", 1)]);
        assert_eq!(metrics.calls(Protocol::Memcache), 0);
        assert_eq!(metrics.latency_percentile_us(0.5), 2);
        assert_eq!(metrics.latency_percentile_us(1.0), 4096);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(PrometheusCollector(Arc::new(metrics))));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("strata_commands_total{protocol=\"resp\",command=\"get\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("strata_command_duration_seconds_bucket{le=\"0.000002\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("strata_command_duration_seconds_bucket{le=\"+Inf\"} 3"),
            "{text}"
        );
        assert!(text.contains("strata_keyspace_hits_total 0"), "{text}");
    }
}
