//! Whether a node is up: mcrouter's TKO ("technical knockout") state
//! machine, with time passed in so it is tested without waiting.
//!
//! - **Up**: requests go to the node. Each failed request (connect error,
//!   timeout, reset, garbled reply) counts; a success resets the count.
//!   `threshold` failures in a row mark the node **down**.
//! - **Down**: no request goes to it; its keys go to the failover target.
//!   After a backoff (doubling from `backoff_min` to `backoff_max`) one
//!   caller is told to **probe** it — a health check, never a real key —
//!   while everyone else keeps failing over. A probe that succeeds brings
//!   the node back (after the caller has replayed the invalidations it
//!   missed, see `recovery.rs`); one that fails doubles the backoff.

use std::time::Duration;

use tokio::time::Instant;

/// TKO settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive failures that mark a node down.
    pub threshold: u32,
    /// First wait before probing a down node.
    pub backoff_min: Duration,
    /// Longest wait between probes.
    pub backoff_max: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            threshold: 3,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// What a caller may do with a node now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Use it.
    Use,
    /// It is down; fail over.
    Skip,
    /// It is down and due a probe, which this caller now owns: probe, then
    /// report with [`Health::probe_succeeded`] or [`Health::failure`].
    Probe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Up {
        failures: u32,
    },
    Down {
        next_probe: Instant,
        backoff: Duration,
        probing: bool,
    },
}

/// One node's health.
#[derive(Debug)]
pub struct Health {
    policy: HealthPolicy,
    state: parking_lot::Mutex<State>,
}

impl Health {
    /// A node believed up.
    pub fn new(policy: HealthPolicy) -> Self {
        Health {
            policy,
            state: parking_lot::Mutex::new(State::Up { failures: 0 }),
        }
    }

    /// May a request use the node at `now`?
    pub fn admit(&self, now: Instant) -> Admit {
        let mut state = self.state.lock();
        match &mut *state {
            State::Up { .. } => Admit::Use,
            State::Down {
                next_probe, probing, ..
            } => {
                if !*probing && now >= *next_probe {
                    *probing = true;
                    Admit::Probe
                } else {
                    Admit::Skip
                }
            }
        }
    }

    /// Whether the node is down.
    pub fn is_down(&self) -> bool {
        matches!(*self.state.lock(), State::Down { .. })
    }

    /// A request succeeded. Does not revive a down node: only a probe does.
    pub fn success(&self) {
        let mut state = self.state.lock();
        if let State::Up { failures } = &mut *state {
            *failures = 0;
        }
    }

    /// A request or probe failed at `now`. True if this marked the node
    /// down (it was up).
    pub fn failure(&self, now: Instant) -> bool {
        let mut state = self.state.lock();
        match *state {
            State::Up { failures } => {
                let failures = failures + 1;
                if failures >= self.policy.threshold.max(1) {
                    *state = State::Down {
                        next_probe: now + self.policy.backoff_min,
                        backoff: self.policy.backoff_min,
                        probing: false,
                    };
                    true
                } else {
                    *state = State::Up { failures };
                    false
                }
            }
            State::Down { backoff, probing, .. } => {
                if probing {
                    let backoff = (backoff * 2).min(self.policy.backoff_max);
                    *state = State::Down {
                        next_probe: now + backoff,
                        backoff,
                        probing: false,
                    };
                }
                false
            }
        }
    }

    /// The probe succeeded (and the missed invalidations were replayed):
    /// the node is up again.
    pub fn probe_succeeded(&self) {
        *self.state.lock() = State::Up { failures: 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            threshold: 3,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_millis(400),
        }
    }

    #[test]
    fn k_failures_in_a_row_mark_down_and_a_success_resets_the_count() {
        let health = Health::new(policy());
        let t = Instant::now();
        assert!(!health.failure(t));
        assert!(!health.failure(t));
        health.success();
        assert!(!health.failure(t));
        assert!(!health.failure(t));
        assert_eq!(health.admit(t), Admit::Use);
        assert!(health.failure(t), "the third failure in a row");
        assert!(health.is_down());
        assert_eq!(health.admit(t), Admit::Skip);
    }

    #[test]
    fn one_probe_at_a_time_with_doubling_backoff() {
        let health = Health::new(policy());
        let t = Instant::now();
        for _ in 0..3 {
            health.failure(t);
        }
        assert_eq!(health.admit(t + Duration::from_millis(99)), Admit::Skip);
        let t1 = t + Duration::from_millis(100);
        assert_eq!(health.admit(t1), Admit::Probe);
        assert_eq!(health.admit(t1), Admit::Skip, "only one prober");
        health.failure(t1);
        assert_eq!(health.admit(t1 + Duration::from_millis(199)), Admit::Skip);
        let t2 = t1 + Duration::from_millis(200);
        assert_eq!(health.admit(t2), Admit::Probe);
        health.failure(t2);
        let t3 = t2 + Duration::from_millis(400);
        assert_eq!(health.admit(t3), Admit::Probe, "capped at backoff_max");
        health.failure(t3);
        assert_eq!(health.admit(t3 + Duration::from_millis(400)), Admit::Probe);
        health.success();
        assert!(health.is_down(), "ordinary successes do not revive a down node");
        health.probe_succeeded();
        assert_eq!(health.admit(t3), Admit::Use);
    }
}
