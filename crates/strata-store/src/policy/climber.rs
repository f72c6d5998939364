//! The hill climber that sizes W-TinyLFU's window.
//!
//! PLACEHOLDER doc, rewritten after tuning.

/// Settings of the window's hill climber.
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
    /// Smallest window, as a fraction of capacity.
    pub min_window: f64,
    /// Largest window, as a fraction of capacity.
    pub max_window: f64,
}

impl ClimberConfig {
    /// Caffeine's simple climber: samples of 10 × entries, steps of 6.25%
    /// decaying by 2% a sample, restart on a 5-point change.
    pub const CAFFEINE: ClimberConfig = ClimberConfig {
        sample_factor: 10.0,
        initial_step: -0.0625,
        restart_step: 0.0625,
        step_decay: 0.98,
        restart_threshold: 0.05,
        min_window: 0.0,
        max_window: 0.8,
    };
}

/// Hill climbing on the sampled hit rate.
#[derive(Clone, Debug)]
pub(crate) struct HillClimber {
    config: ClimberConfig,
    hits: u64,
    misses: u64,
    previous_hit_rate: f64,
    /// Signed step in fractions of capacity.
    step: f64,
    samples: u64,
}

impl HillClimber {
    pub(crate) fn new(config: ClimberConfig) -> Self {
        Self {
            config,
            hits: 0,
            misses: 0,
            previous_hit_rate: 0.0,
            step: config.initial_step,
            samples: 0,
        }
    }

    pub(crate) fn config(&self) -> &ClimberConfig {
        &self.config
    }

    /// Forgets the current sample (e.g. while the cache is still filling).
    pub(crate) fn restart_sample(&mut self) {
        self.hits = 0;
        self.misses = 0;
    }

    /// Records one request. When a sample of `sample` requests is complete,
    /// returns the signed change of the window as a fraction of capacity.
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
        self.samples += 1;
        self.restart_sample();
        Some(amount)
    }

    pub(crate) fn samples(&self) -> u64 {
        self.samples
    }
}
