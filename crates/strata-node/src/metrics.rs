//! The node's counters and their Prometheus exposition.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What the node did.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Reads answered by L1.
    pub l1_hits: Counter,
    /// Reads L1 could not answer.
    pub l1_misses: Counter,
    /// Loads L2 answered.
    pub l2_hits: Counter,
    /// Loads L2 could not answer.
    pub l2_misses: Counter,
    /// L2 failures the node read around.
    pub l2_errors: Counter,
    /// Origin reads.
    pub origin_loads: Counter,
    /// Origin failures (reads and writes).
    pub origin_errors: Counter,
    /// Writes (puts and deletes) accepted.
    pub writes: Counter,
    /// Write-behind entries applied to the origin.
    pub flushed: Counter,
    /// Keys invalidated in L1 by server pushes.
    pub invalidations: Counter,
    /// Times L1 was flushed (a tracking connection lost, or a server flush).
    pub l1_flushes: Counter,
    /// Cache updates after writes that failed.
    pub cache_update_errors: Counter,
    /// Cache updates dropped by an injected fault.
    pub cache_updates_dropped: Counter,
    /// Cached reads re-checked against the origin.
    pub verified: Counter,
    /// Of those, how many were older than the origin.
    pub verified_stale: Counter,
}

impl NodeMetrics {
    /// The Prometheus text exposition, with the gauges given.
    pub fn render(&self, pending_writes: i64, l1_usable: bool) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::with_prefix("strata_node");
        let counters: [(&str, &str, &Counter); 15] = [
            ("l1_hits", "Reads answered by L1", &self.l1_hits),
            ("l1_misses", "Reads L1 could not answer", &self.l1_misses),
            ("l2_hits", "Loads answered by L2", &self.l2_hits),
            ("l2_misses", "Loads L2 could not answer", &self.l2_misses),
            ("l2_errors", "L2 failures read around", &self.l2_errors),
            ("origin_loads", "Origin reads", &self.origin_loads),
            ("origin_errors", "Origin failures", &self.origin_errors),
            ("writes", "Writes accepted", &self.writes),
            ("flushed", "Write-behind entries applied to the origin", &self.flushed),
            (
                "invalidations",
                "L1 keys invalidated by server pushes",
                &self.invalidations,
            ),
            (
                "l1_flushes",
                "L1 flushes (tracking lost, or server flush)",
                &self.l1_flushes,
            ),
            (
                "cache_update_errors",
                "Cache updates after writes that failed",
                &self.cache_update_errors,
            ),
            (
                "cache_updates_dropped",
                "Cache updates dropped by an injected fault",
                &self.cache_updates_dropped,
            ),
            ("verified", "Cached reads re-checked against the origin", &self.verified),
            (
                "verified_stale",
                "Re-checked reads that were stale",
                &self.verified_stale,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let pending = Gauge::<i64>::default();
        pending.set(pending_writes);
        registry.register("pending_writes", "Write-behind entries not yet in the origin", pending);
        let usable = Gauge::<i64>::default();
        usable.set(i64::from(l1_usable));
        registry.register("l1_usable", "1 while L1 is in use (tracking up)", usable);
        strata_session::admin::encode(&registry)
    }
}
