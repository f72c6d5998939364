//! W-TinyLFU: a small LRU window in front of a frequency-filtered SLRU.
//!
//! PLACEHOLDER doc, rewritten after tuning.

use super::climber::{ClimberConfig, HillClimber};
use super::list::{Links, List, SlotVec};
use super::sketch::{FrequencySketch, SketchShape};
use super::{EvictionPolicy, PolicyKind, PolicyStats, Slot, SlotInfo};

const NONE: u8 = 0;
const WINDOW: u8 = 1;
const PROBATION: u8 = 2;
const PROTECTED: u8 = 3;

/// Settings of the W-TinyLFU family. [`WTinyLfuConfig::fixed`] and
/// [`WTinyLfuConfig::adaptive`] are what [`PolicyKind::WTinyLfu`] and
/// [`PolicyKind::Adaptive`] build; the fields are public so that the
/// simulator can explore variants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WTinyLfuConfig {
    /// The window's initial share of capacity (0..1).
    pub window: f64,
    /// The protected segment's share of the main space (0..1).
    pub protected: f64,
    /// Hill climbing of the window size; `None` keeps it fixed.
    pub climber: Option<ClimberConfig>,
    /// Bytes of sketch counters per entry (power of two, 1..=16).
    pub sketch_bytes_per_entry: u32,
    /// Sketch increments between resets, as a multiple of entries.
    pub sketch_sample_factor: u32,
    /// Doorkeeper bits per entry (0: no doorkeeper).
    pub doorkeeper_bits_per_entry: u32,
    /// A rejected candidate at least this popular is still admitted with
    /// probability 1/128, so an attacker cannot pin the probation victim by
    /// flooding its hash (Caffeine: 6); 0 disables it.
    pub hashdos_threshold: u8,
    /// Seed of the admission jitter's random generator.
    pub seed: u64,
}

impl WTinyLfuConfig {
    /// W-TinyLFU with a fixed 1% window, as in the paper.
    pub const fn fixed() -> Self {
        Self {
            window: 0.01,
            protected: 0.8,
            climber: None,
            sketch_bytes_per_entry: 4,
            sketch_sample_factor: 10,
            doorkeeper_bits_per_entry: 0,
            hashdos_threshold: 6,
            seed: 0x5EED_7A11_F00D_CAFE,
        }
    }

    /// strata's default: the window adapts by hill climbing.
    pub const fn adaptive() -> Self {
        Self {
            climber: Some(ClimberConfig::CAFFEINE),
            ..Self::fixed()
        }
    }

    /// Builds an empty policy with these settings for `capacity` units.
    pub fn build(&self, capacity: u64) -> Box<dyn EvictionPolicy> {
        let mut policy = WTinyLfu::new(*self);
        policy.set_capacity(capacity);
        Box::new(policy)
    }
}

/// Window TinyLFU, fixed or adaptive.
#[derive(Debug)]
pub(crate) struct WTinyLfu {
    config: WTinyLfuConfig,
    links: Links,
    tags: SlotVec<u8>,
    window: List,
    probation: List,
    protected: List,
    capacity: u64,
    window_max: u64,
    protected_max: u64,
    sketch: FrequencySketch,
    climber: Option<HillClimber>,
    /// The hash of the last miss, so that the insert that follows it is not
    /// counted twice in the sketch.
    last_miss: Option<u64>,
    /// The cache has evicted: it is full, and the climber may sample.
    full: bool,
    /// `evict` ran since the last insert.
    made_room: bool,
    /// Window change (fraction of capacity) decided but not yet applied.
    pending_adjustment: f64,
    rng: u64,
    admitted: u64,
    rejected: u64,
}

impl WTinyLfu {
    fn new(config: WTinyLfuConfig) -> Self {
        Self {
            config,
            links: Links::default(),
            tags: SlotVec::default(),
            window: List::default(),
            probation: List::default(),
            protected: List::default(),
            capacity: 0,
            window_max: 0,
            protected_max: 0,
            sketch: FrequencySketch::new(Self::sketch_shape(&config), 1),
            climber: config.climber.map(HillClimber::new),
            last_miss: None,
            full: false,
            made_room: false,
            pending_adjustment: 0.0,
            rng: config.seed | 1,
            admitted: 0,
            rejected: 0,
        }
    }

    pub(crate) fn fixed() -> Self {
        Self::new(WTinyLfuConfig::fixed())
    }

    pub(crate) fn adaptive() -> Self {
        Self::new(WTinyLfuConfig::adaptive())
    }

    fn sketch_shape(config: &WTinyLfuConfig) -> SketchShape {
        SketchShape {
            bytes_per_entry: config.sketch_bytes_per_entry,
            sample_factor: config.sketch_sample_factor,
            doorkeeper_bits_per_entry: config.doorkeeper_bits_per_entry,
        }
    }

    fn resident(&self) -> usize {
        self.window.len() + self.probation.len() + self.protected.len()
    }

    fn main_max(&self) -> u64 {
        self.capacity - self.window_max
    }

    fn list_mut(&mut self, tag: u8) -> &mut List {
        match tag {
            WINDOW => &mut self.window,
            PROBATION => &mut self.probation,
            _ => &mut self.protected,
        }
    }

    /// Sizes the segments for `window_max`, clamped to the climber's limits.
    fn set_window_max(&mut self, window_max: u64) {
        let (lo, hi) = match &self.climber {
            Some(c) => (c.config().min_window, c.config().max_window),
            None => (0.0, 1.0),
        };
        let lo = ((lo * self.capacity as f64) as u64).max(1).min(self.capacity);
        let hi = ((hi * self.capacity as f64) as u64).max(lo).min(self.capacity);
        self.window_max = window_max.clamp(lo, hi);
        self.protected_max = (self.config.protected * self.main_max() as f64) as u64;
    }

    fn unlink(&mut self, slot: Slot, weight: u32) {
        let tag = self.tags.get(slot);
        debug_assert_ne!(tag, NONE, "slot {slot} is not resident");
        let list = match tag {
            WINDOW => &mut self.window,
            PROBATION => &mut self.probation,
            _ => &mut self.protected,
        };
        self.links.unlink(list, slot, weight);
        self.tags.set(slot, NONE);
    }

    fn push(&mut self, tag: u8, slot: Slot, weight: u32) {
        let list = match tag {
            WINDOW => &mut self.window,
            PROBATION => &mut self.probation,
            _ => &mut self.protected,
        };
        self.links.push_head(list, slot, weight);
        self.tags.set(slot, tag);
    }

    fn demote_protected(&mut self, info: &dyn SlotInfo) {
        while self.protected.weight() > self.protected_max {
            let Some(slot) = self.protected.tail() else { break };
            let weight = info.weight(slot);
            self.unlink(slot, weight);
            self.push(PROBATION, slot, weight);
        }
    }

    /// Moves window overflow to probation while the main space has room
    /// (the cache is filling, or the window just shrank).
    fn drain_window(&mut self, info: &dyn SlotInfo, force: bool) {
        while self.window.weight() > self.window_max {
            let Some(slot) = self.window.tail() else { break };
            let weight = info.weight(slot);
            let main = self.probation.weight() + self.protected.weight();
            if !force && main + u64::from(weight) > self.main_max() {
                break;
            }
            self.unlink(slot, weight);
            self.push(PROBATION, slot, weight);
        }
    }

    fn access(&mut self, slot: Slot, hash: u64, info: &dyn SlotInfo) {
        self.sketch.increment(hash);
        match self.tags.get(slot) {
            WINDOW => self.links.move_to_head(&mut self.window, slot),
            PROBATION => {
                let weight = info.weight(slot);
                self.unlink(slot, weight);
                self.push(PROTECTED, slot, weight);
                self.demote_protected(info);
            }
            PROTECTED => self.links.move_to_head(&mut self.protected, slot),
            _ => debug_assert!(false, "access to slot {slot} that is not resident"),
        }
    }

    /// Feeds the climber; a finished sample leaves a window change pending
    /// until a call that can ask for weights applies it.
    fn record(&mut self, hit: bool) {
        if !self.full {
            return;
        }
        let entries = self.resident();
        let Some(climber) = self.climber.as_mut() else { return };
        if let Some(amount) = climber.record(hit, entries) {
            self.pending_adjustment += amount;
        }
    }

    fn apply_adjustment(&mut self, info: &dyn SlotInfo) {
        if self.pending_adjustment == 0.0 {
            return;
        }
        let delta = (self.pending_adjustment * self.capacity as f64) as i64;
        self.pending_adjustment = 0.0;
        let target = self.window_max.saturating_add_signed(delta);
        self.set_window_max(target);
        self.demote_protected(info);
        self.drain_window(info, true);
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic, seeded per policy.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// TinyLFU's admission test: should `candidate` replace `victim`?
    fn admit(&mut self, candidate: u64, victim: u64) -> bool {
        let candidate_freq = self.sketch.frequency(candidate);
        let victim_freq = self.sketch.frequency(victim);
        if candidate_freq > victim_freq {
            return true;
        }
        let threshold = self.config.hashdos_threshold;
        threshold > 0 && candidate_freq >= threshold && self.next_random() & 127 == 0
    }
}

impl EvictionPolicy for WTinyLfu {
    fn kind(&self) -> PolicyKind {
        if self.config.climber.is_some() {
            PolicyKind::Adaptive
        } else {
            PolicyKind::WTinyLfu
        }
    }

    fn set_capacity(&mut self, capacity: u64) {
        let fraction = if self.capacity > 0 {
            self.window_max as f64 / self.capacity as f64
        } else {
            self.config.window
        };
        self.capacity = capacity;
        // As Caffeine: the main space is the rounded-down share, so even a
        // one-entry cache has a one-entry window.
        let main = ((1.0 - fraction) * capacity as f64) as u64;
        self.set_window_max(capacity - main);
    }

    fn on_miss(&mut self, hash: u64) {
        self.sketch.increment(hash);
        self.last_miss = Some(hash);
        self.record(false);
    }

    fn on_hit(&mut self, slot: Slot, hash: u64, info: &dyn SlotInfo) {
        self.access(slot, hash, info);
        self.record(true);
        self.apply_adjustment(info);
    }

    fn on_insert(&mut self, slot: Slot, hash: u64, weight: u32, info: &dyn SlotInfo) {
        if self.last_miss.take() != Some(hash) {
            // Not counted by on_miss (an insert without a lookup).
            self.sketch.increment(hash);
        }
        self.apply_adjustment(info);
        self.push(WINDOW, slot, weight);
        self.sketch.ensure_entries(self.resident());
        if !std::mem::take(&mut self.made_room) {
            // Nothing was evicted for this item: the cache has room, so the
            // window's overflow moves to the main space unjudged. Room made
            // by `evict` is not given away: the overflow waits in the window
            // to be judged against the probation victim by the next `evict`.
            self.drain_window(info, false);
        }
    }

    fn on_update(&mut self, slot: Slot, hash: u64, old_weight: u32, new_weight: u32, info: &dyn SlotInfo) {
        let tag = self.tags.get(slot);
        self.list_mut(tag).reweigh(old_weight, new_weight);
        self.access(slot, hash, info);
    }

    fn on_remove(&mut self, slot: Slot, _hash: u64, weight: u32) {
        self.unlink(slot, weight);
    }

    fn evict(&mut self, info: &dyn SlotInfo) -> Option<Slot> {
        self.full = true;
        self.made_room = true;
        self.apply_adjustment(info);
        if self.window.weight() > self.window_max
            && let Some(candidate) = self.window.tail()
        {
            let victim = self.probation.tail().or(self.protected.tail());
            let Some(victim) = victim else {
                self.unlink(candidate, info.weight(candidate));
                return Some(candidate);
            };
            if self.admit(info.hash(candidate), info.hash(victim)) {
                self.admitted += 1;
                self.unlink(victim, info.weight(victim));
                let weight = info.weight(candidate);
                self.unlink(candidate, weight);
                self.push(PROBATION, candidate, weight);
                return Some(victim);
            }
            self.rejected += 1;
            self.unlink(candidate, info.weight(candidate));
            return Some(candidate);
        }
        let victim = self.probation.tail().or(self.protected.tail()).or(self.window.tail())?;
        self.unlink(victim, info.weight(victim));
        Some(victim)
    }

    fn clear(&mut self) {
        let capacity = self.capacity;
        *self = Self::new(self.config);
        self.set_capacity(capacity);
    }

    fn stats(&self) -> PolicyStats {
        PolicyStats {
            values: vec![
                ("window_max", self.window_max),
                ("window_weight", self.window.weight()),
                ("probation_weight", self.probation.weight()),
                ("protected_weight", self.protected.weight()),
                ("protected_max", self.protected_max),
                ("admitted", self.admitted),
                ("rejected", self.rejected),
                ("sketch_entries", self.sketch.entries() as u64),
                ("sketch_bytes", self.sketch.heap_bytes() as u64),
                ("sketch_resets", self.sketch.resets()),
                ("climber_samples", self.climber.as_ref().map_or(0, HillClimber::samples)),
            ],
        }
    }

    fn heap_bytes(&self) -> usize {
        self.links.heap_bytes() + self.tags.heap_bytes() + self.sketch.heap_bytes()
    }
}
