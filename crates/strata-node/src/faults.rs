//! Injected trouble, for `strata check`: every fault is off by default and
//! costs one branch when off.
//!
//! Each fault has a probability per operation and a delay where it
//! delays. They model what happens in production without being
//! arranged: a slow origin query, a reader whose fill reaches the cache
//! after a newer write, a delete lost or late on the network.

use std::time::Duration;

use serde::Deserialize;

/// The faults a node injects.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Probability that an origin load is slowed by `origin_delay_ms`.
    pub slow_origin: f64,
    /// The slow load's extra time.
    pub origin_delay_ms: u64,
    /// Probability that a reader's fill waits `fill_delay_ms` after its
    /// origin load (so a write can land in between: the stale-set race).
    pub delayed_fill: f64,
    /// The fill's delay.
    pub fill_delay_ms: u64,
    /// Probability that the cache update after a write (delete or versioned
    /// set) is dropped.
    pub drop_delete: f64,
    /// Probability that it is delayed by `delete_delay_ms`.
    pub delayed_delete: f64,
    /// The delete's delay.
    pub delete_delay_ms: u64,
}

impl Faults {
    /// Checks that probabilities are probabilities.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("slow_origin", self.slow_origin),
            ("delayed_fill", self.delayed_fill),
            ("drop_delete", self.drop_delete),
            ("delayed_delete", self.delayed_delete),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("faults.{name} must be a probability within 0..=1"));
            }
        }
        Ok(())
    }

    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.slow_origin > 0.0 || self.delayed_fill > 0.0 || self.drop_delete > 0.0 || self.delayed_delete > 0.0
    }
}

/// Draws whether a fault of probability `p` happens now.
pub(crate) fn strikes(p: f64) -> bool {
    p > 0.0 && rand::random::<f64>() < p
}

/// Sleeps `ms` if a fault of probability `p` strikes.
pub(crate) async fn maybe_delay(p: f64, ms: u64) {
    if strikes(p) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}
