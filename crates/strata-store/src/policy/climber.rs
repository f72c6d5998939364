//! Sizing W-TinyLFU's window while the cache runs.
//!
//! The window (an LRU in front of the frequency filter) is what lets
//! W-TinyLFU serve recency: a burst of new keys hits there before the
//! filter has seen them twice. How large it should be depends on the
//! workload: a loop or a scan wants it as small as possible (every slot
//! belongs to the filtered main space), a recency-heavy trace such as
//! `lirs_sprite` wants nearly all of the cache. Two ways to choose are
//! implemented; [`Adaptation`] picks one.
//!
//! # Caffeine's hill climber ([`Adaptation::HillClimber`])
//!
//! Every sample of about ten times the entry count, compare the hit rate
//! with the previous sample's; keep moving the window in the same direction
//! if it improved, reverse if it got worse. Steps start at 6.25% of the
//! capacity and decay by 2% a sample; a hit-rate jump of 5 points restarts
//! them. Its weakness on the reference traces: a change in hit rate between
//! two samples is mostly the *workload* changing, not the step, and samples
//! of ten times the capacity are few on short traces (`lirs_cs` at 700
//! entries never completes one). Shorter samples only add noise: 1.44 mean
//! shortfall at 10 × entries, 1.69 at 3 ×, 2.95 at 1 × (measured with the
//! then-current policy). With everything else as in strata's default it
//! scores 1.12 (worst 8.4 points, `lirs_sprite`@600).
//!
//! # The marginal climber ([`Adaptation::Marginal`]), strata's default
//!
//! Instead of watching the hit rate move, estimate its derivative with
//! respect to the window size directly, from four kinds of request, all
//! counted in the same unit and at the same depth `Δ` (8% of capacity):
//!
//! - *window + Δ would have hit*: a miss on a key that the window's end
//!   rejected recently (it is in the window ghost, [`super::ghost`]);
//! - *main + Δ would have hit*: a miss on a key that the main space evicted
//!   recently (the main ghost);
//! - *window − Δ would have missed*: a hit on an item in the window's last
//!   `Δ` units (its tail region);
//! - *main − Δ would have missed*: a hit in the probation segment's tail
//!   region.
//!
//! The first and third are evidence for a larger window, the second and
//! fourth for a smaller one; each moves the window by a quarter of an average
//! item's weight. Ghosts alone are ARC's rule, and they fail the way ARC
//! does on loops: on `lirs_loop`@1000 a rejected key comes back after only
//! eleven others, so the window ghost keeps voting for growth, while the
//! main space, which evicts nothing, never shows its value in a ghost. The
//! tail regions supply exactly that missing half (measured during tuning
//! at a gain of 1: ghosts only 0.97 mean shortfall, with `lirs_loop`
//! collapsing; ghosts and tail regions 0.38). Evidence arrives with every
//! miss and tail hit, so the window moves as soon as the workload changes,
//! with no sample length to choose.
//!
//! Sensitivity (mean shortfall over the 108 reference rows): depth 3%, 5%,
//! 8%, 12% give 0.21, 0.17, 0.14, 0.20; gain 0.15, 0.25, 0.5 give 0.17,
//! 0.14, 0.16; five sketch seeds move the mean by ±0.02. A local estimate
//! cannot see a cliff further away than `Δ` (a window that only pays once it
//! exceeds 30% of the cache, say); neither can a hill climber with 6% steps.

/// How the window size is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Adaptation {
    /// The window keeps its initial share.
    Fixed,
    /// Caffeine's hill climbing on the sampled hit rate.
    HillClimber(ClimberConfig),
    /// Marginal-hit estimation from ghosts and tail regions (the default).
    Marginal(MarginalConfig),
}

/// Settings of Caffeine's hill climber.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClimberConfig {
    /// Requests per sample, as a multiple of the entries the cache holds.
    pub sample_factor: f64,
    /// First step, as a fraction of capacity; its sign is the direction of
    /// the first move (negative: shrink the window first).
    pub initial_step: f64,
    /// Step size after a restart, as a fraction of capacity.
    pub restart_step: f64,
    /// Each sample multiplies the step by this.
    pub step_decay: f64,
    /// A hit-rate change at least this large (absolute, 0..1) restarts the
    /// step at `restart_step`.
    pub restart_threshold: f64,
}

impl ClimberConfig {
    /// Caffeine's settings: samples of 10 × entries, steps of 6.25%
    /// decaying by 2% a sample, restart on a 5-point change.
    pub const CAFFEINE: ClimberConfig = ClimberConfig {
        sample_factor: 10.0,
        initial_step: -0.0625,
        restart_step: 0.0625,
        step_decay: 0.98,
        restart_threshold: 0.05,
    };
}

/// Settings of the marginal climber.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MarginalConfig {
    /// `Δ`: the depth of the ghosts and tail regions, as a fraction of
    /// capacity.
    pub depth: f64,
    /// Window change per piece of evidence, in average item weights.
    pub gain: f64,
}

impl MarginalConfig {
    /// strata's settings, chosen on the reference traces (see the module
    /// documentation).
    pub const DEFAULT: MarginalConfig = MarginalConfig {
        depth: 0.08,
        gain: 0.25,
    };
}

/// Caffeine's hill climbing on the sampled hit rate.
#[derive(Clone, Debug)]
pub(crate) struct HillClimber {
    config: ClimberConfig,
    hits: u64,
    misses: u64,
    previous_hit_rate: f64,
    /// Signed step in fractions of capacity.
    step: f64,
}

impl HillClimber {
    pub(crate) fn new(config: ClimberConfig) -> Self {
        Self {
            config,
            hits: 0,
            misses: 0,
            previous_hit_rate: 0.0,
            step: config.initial_step,
        }
    }

    /// Records one request while the cache is full. When a sample of
    /// `sample_factor × entries` requests is complete, returns the signed
    /// change of the window as a fraction of capacity.
    pub(crate) fn record(&mut self, hit: bool, entries: usize) -> Option<f64> {
        if hit {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        let requests = self.hits + self.misses;
        let sample = (self.config.sample_factor * entries as f64).max(1.0) as u64;
        if requests < sample {
            return None;
        }
        let hit_rate = self.hits as f64 / requests as f64;
        let change = hit_rate - self.previous_hit_rate;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= self.config.restart_threshold {
            self.config.restart_step.copysign(amount)
        } else {
            self.config.step_decay * amount
        };
        self.previous_hit_rate = hit_rate;
        self.hits = 0;
        self.misses = 0;
        Some(amount)
    }
}

/// Accumulates the marginal climber's evidence into window moves.
#[derive(Clone, Debug)]
pub(crate) struct MarginalClimber {
    config: MarginalConfig,
    /// Evidence not yet turned into whole weight units (positive: grow).
    pending: f64,
    /// Pieces of evidence seen for each side, for statistics.
    for_window: u64,
    for_main: u64,
}

impl MarginalClimber {
    pub(crate) fn new(config: MarginalConfig) -> Self {
        Self {
            config,
            pending: 0.0,
            for_window: 0,
            for_main: 0,
        }
    }

    pub(crate) fn config(&self) -> &MarginalConfig {
        &self.config
    }

    /// One request that a larger (`grow`) or smaller window would have
    /// served better; `mean_weight` is the average resident item's weight.
    pub(crate) fn evidence(&mut self, grow: bool, mean_weight: f64) {
        let step = self.config.gain * mean_weight;
        if grow {
            self.for_window += 1;
            self.pending += step;
        } else {
            self.for_main += 1;
            self.pending -= step;
        }
    }

    /// The whole weight units of window change accumulated so far.
    pub(crate) fn take(&mut self) -> i64 {
        let whole = self.pending.trunc();
        self.pending -= whole;
        whole as i64
    }

    /// `(for window, for main)` evidence counts.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.for_window, self.for_main)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hill_climber_reverses_when_the_hit_rate_drops() {
        let mut climber = HillClimber::new(ClimberConfig::CAFFEINE);
        let sample = |climber: &mut HillClimber, hits: u32| {
            let mut out = None;
            for i in 0..100 {
                out = climber.record(i < hits, 10).or(out);
            }
            out
        };
        // First sample: better than nothing, keep the initial direction.
        assert_eq!(sample(&mut climber, 50), Some(-0.0625));
        // Slightly better again: keep going (the step decays after this).
        assert_eq!(sample(&mut climber, 52), Some(-0.0625));
        // Worse: reverse, with the decayed step.
        let step = sample(&mut climber, 51).unwrap_or_default();
        assert!(step > 0.0 && step < 0.0625, "{step}");
    }

    #[test]
    fn marginal_climber_moves_by_whole_units() {
        let mut climber = MarginalClimber::new(MarginalConfig::DEFAULT);
        for _ in 0..3 {
            climber.evidence(true, 1.0);
        }
        assert_eq!(climber.take(), 0);
        climber.evidence(true, 1.0);
        assert_eq!(climber.take(), 1);
        for _ in 0..8 {
            climber.evidence(false, 2.0);
        }
        assert_eq!(climber.take(), -4);
        assert_eq!(climber.counts(), (4, 8));
    }
}
