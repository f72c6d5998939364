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
const LIST_MASK: u8 = 3;
/// Tag bit: the slot is in its list's tail region.
const REGION: u8 = 4;

/// EXPERIMENT: the last `Δ` weight units at a list's tail.
#[derive(Debug, Default, Clone, Copy)]
struct Region {
    /// The head-most member, if any.
    boundary: Option<Slot>,
    weight: u64,
}

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
    /// EXPERIMENT: ghost depth as a fraction of capacity (0: hill climbing).
    pub ghost: f64,
    /// EXPERIMENT: window change per ghost hit, in units of the item weight.
    pub ghost_gain: f64,
    /// EXPERIMENT: weight of tail-region hits relative to ghost hits.
    pub region_gain: f64,
    /// EXPERIMENT: a growing window takes main items instead of evicting.
    pub transfer: bool,
    /// EXPERIMENT: the candidate must beat the victim by more than this.
    pub admit_margin: u8,
    /// EXPERIMENT: evidence events per batch (0: apply each at once).
    pub batch: u32,
    /// EXPERIMENT: batches with |net| < this × sqrt(events) do not move.
    pub batch_threshold: f64,
    /// EXPERIMENT: the step scale stays within [1/this, this].
    pub scale_max: f64,
    /// EXPERIMENT: sketch counters spread over the table.
    pub sketch_spread: bool,
    /// EXPERIMENT: conservative update.
    pub sketch_conservative: bool,
    /// EXPERIMENT: random admission only when the victim is more popular.
    pub hashdos_strict: bool,
    /// EXPERIMENT: ... by more than this.
    pub hashdos_gap: u8,
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
            ghost: 0.0,
            ghost_gain: 1.0,
            region_gain: 1.0,
            transfer: false,
            admit_margin: 0,
            batch: 0,
            batch_threshold: 0.0,
            scale_max: 8.0,
            sketch_spread: false,
            sketch_conservative: false,
            hashdos_strict: false,
            hashdos_gap: 0,
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
    window_ghost: Ghost,
    window_region: Region,
    probation_region: Region,
    main_ghost: Ghost,
    ghost_moves: f64,
    batch_net: f64,
    batch_count: u32,
    scale: f64,
    last_dir: f64,
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
            window_ghost: Ghost::default(),
            window_region: Region::default(),
            probation_region: Region::default(),
            main_ghost: Ghost::default(),
            ghost_moves: 0.0,
            batch_net: 0.0,
            batch_count: 0,
            scale: 1.0,
            last_dir: 0.0,
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
            spread: config.sketch_spread,
            conservative: config.sketch_conservative,
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
        if tag & REGION != 0 {
            let next = self.links.next(slot);
            let region = if tag & LIST_MASK == WINDOW {
                &mut self.window_region
            } else {
                &mut self.probation_region
            };
            region.weight -= u64::from(weight);
            if region.boundary == Some(slot) {
                region.boundary = next;
            }
        }
        let list = match tag & LIST_MASK {
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

    /// Grows the tail regions of the window and probation back to `Δ`.
    fn extend_regions(&mut self, info: &dyn SlotInfo) {
        let depth = self.ghost_cap();
        if depth == 0 {
            return;
        }
        for id in [WINDOW, PROBATION] {
            loop {
                let (region, list) = if id == WINDOW {
                    (self.window_region, &self.window)
                } else {
                    (self.probation_region, &self.probation)
                };
                if region.weight >= depth {
                    break;
                }
                let next = match region.boundary {
                    None => list.tail(),
                    Some(b) => self.links.prev(b),
                };
                let Some(slot) = next else { break };
                let weight = u64::from(info.weight(slot));
                self.tags.set(slot, id | REGION);
                let region = if id == WINDOW {
                    &mut self.window_region
                } else {
                    &mut self.probation_region
                };
                region.boundary = Some(slot);
                region.weight += weight;
            }
        }
    }

    fn demote_protected(&mut self, info: &dyn SlotInfo) {
        while self.protected.weight() > self.protected_max {
            let Some(slot) = self.protected.tail() else { break };
            let weight = info.weight(slot);
            self.unlink(slot, weight);
            self.push(PROBATION, slot, weight);
        }
    }

    /// Moves window overflow to probation unjudged: while the main space
    /// has room (`force` false: the cache is filling), or, after the window
    /// shrank (`force` true), until at most one item of overflow is left for
    /// `evict` to judge.
    fn drain_window(&mut self, info: &dyn SlotInfo, force: bool) {
        while self.window.weight() > self.window_max {
            let Some(slot) = self.window.tail() else { break };
            let weight = info.weight(slot);
            let main = self.probation.weight() + self.protected.weight();
            let room = main + u64::from(weight) <= self.main_max();
            let excess = self.window.weight() - u64::from(weight) > self.window_max;
            if !(if force { excess } else { room }) {
                break;
            }
            self.unlink(slot, weight);
            self.push(PROBATION, slot, weight);
        }
    }

    fn access(&mut self, slot: Slot, hash: u64, info: &dyn SlotInfo) {
        self.sketch.increment(hash);
        let tag = self.tags.get(slot);
        match tag & LIST_MASK {
            WINDOW if tag & REGION == 0 => self.links.move_to_head(&mut self.window, slot),
            WINDOW => {
                let weight = info.weight(slot);
                self.unlink(slot, weight);
                self.push(WINDOW, slot, weight);
            }
            PROBATION => {
                let weight = info.weight(slot);
                self.unlink(slot, weight);
                self.push(PROTECTED, slot, weight);
                self.demote_protected(info);
            }
            PROTECTED => self.links.move_to_head(&mut self.protected, slot),
            _ => debug_assert!(false, "access to slot {slot} that is not resident"),
        }
        self.extend_regions(info);
    }

    /// Feeds the climber; a finished sample leaves a window change pending
    /// until a call that can ask for weights applies it.
    fn record(&mut self, hit: bool) {
        if !self.full || self.config.ghost > 0.0 {
            return;
        }
        let entries = self.resident();
        let Some(climber) = self.climber.as_mut() else { return };
        if let Some(amount) = climber.record(hit, entries) {
            self.pending_adjustment += amount;
        }
    }

    fn apply_adjustment(&mut self, info: &dyn SlotInfo) {
        let mut units = self.pending_adjustment * self.capacity as f64;
        self.pending_adjustment = 0.0;
        if self.ghost_moves.abs() >= 1.0 {
            let delta = self.ghost_moves.trunc();
            self.ghost_moves -= delta;
            units += delta;
        }
        let delta = units as i64;
        if delta == 0 {
            return;
        }
        let old = self.window_max;
        self.set_window_max(old.saturating_add_signed(delta));
        if self.config.transfer && self.window_max > old {
            // As Caffeine: the main space's coldest items move to the
            // window instead of being evicted unjudged.
            let grown = self.window_max - old;
            let mut moved = 0;
            while self.probation.weight() + self.protected.weight() > self.main_max() {
                let Some(slot) = self.probation.tail().or(self.protected.tail()) else { break };
                let weight = info.weight(slot);
                if moved + u64::from(weight) > grown {
                    break;
                }
                moved += u64::from(weight);
                self.unlink(slot, weight);
                self.push(WINDOW, slot, weight);
            }
        }
        self.demote_protected(info);
        self.drain_window(info, true);
        self.extend_regions(info);
    }

    /// EXPERIMENT: one piece of evidence for a larger (positive) or smaller
    /// window, batched with Rprop-style step adaptation.
    fn evidence(&mut self, amount: f64) {
        if self.config.batch == 0 {
            self.ghost_moves += self.config.ghost_gain * amount;
            return;
        }
        self.batch_net += amount;
        self.batch_count += 1;
        if self.batch_count < self.config.batch {
            return;
        }
        let dir = self.batch_net.signum();
        if self.batch_net.abs() < self.config.batch_threshold * f64::from(self.batch_count).sqrt() {
            self.scale = (self.scale / 2.0).max(1.0 / self.config.scale_max);
        } else {
            if dir == self.last_dir {
                self.scale = (self.scale * 2.0).min(self.config.scale_max);
            } else {
                self.scale = (self.scale / 2.0).max(1.0 / self.config.scale_max);
            }
            self.last_dir = dir;
            self.ghost_moves += self.config.ghost_gain * self.scale * self.batch_net;
        }
        self.batch_net = 0.0;
        self.batch_count = 0;
    }

    fn ghost_cap(&self) -> u64 {
        if self.config.ghost > 0.0 {
            ((self.config.ghost * self.capacity as f64) as u64).max(1)
        } else {
            0
        }
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
        if candidate_freq > victim_freq.saturating_add(self.config.admit_margin) {
            return true;
        }
        let threshold = self.config.hashdos_threshold;
        if self.config.hashdos_strict && victim_freq <= candidate_freq.saturating_add(self.config.hashdos_gap) {
            return false;
        }
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
        if self.config.ghost > 0.0 {
            if let Some(w) = self.window_ghost.take(hash) {
                self.evidence(f64::from(w));
            } else if let Some(w) = self.main_ghost.take(hash) {
                self.evidence(-f64::from(w));
            }
        } else {
            self.record(false);
        }
    }

    fn on_hit(&mut self, slot: Slot, hash: u64, info: &dyn SlotInfo) {
        let tag = self.tags.get(slot);
        if tag & REGION != 0 && self.config.ghost > 0.0 && self.full {
            let w = self.config.region_gain * f64::from(info.weight(slot));
            if tag & LIST_MASK == WINDOW {
                self.evidence(w);
            } else {
                self.evidence(-w);
            }
        }
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
        self.extend_regions(info);
    }

    fn on_update(&mut self, slot: Slot, hash: u64, old_weight: u32, new_weight: u32, info: &dyn SlotInfo) {
        let tag = self.tags.get(slot);
        self.list_mut(tag & LIST_MASK).reweigh(old_weight, new_weight);
        if tag & REGION != 0 {
            let region = if tag & LIST_MASK == WINDOW {
                &mut self.window_region
            } else {
                &mut self.probation_region
            };
            region.weight = region.weight + u64::from(new_weight) - u64::from(old_weight);
        }
        self.access(slot, hash, info);
    }

    fn on_remove(&mut self, slot: Slot, _hash: u64, weight: u32) {
        self.unlink(slot, weight);
    }

    fn evict(&mut self, info: &dyn SlotInfo) -> Option<Slot> {
        self.full = true;
        self.made_room = true;
        self.apply_adjustment(info);
        if self.window.weight() >= self.window_max
            && let Some(candidate) = self.window.tail()
        {
            let victim = self.probation.tail().or(self.protected.tail());
            let Some(victim) = victim else {
                self.unlink(candidate, info.weight(candidate));
                return Some(candidate);
            };
            if self.admit(info.hash(candidate), info.hash(victim)) {
                self.admitted += 1;
                self.main_ghost.push(info.hash(victim), info.weight(victim), self.ghost_cap());
                self.unlink(victim, info.weight(victim));
                let weight = info.weight(candidate);
                self.unlink(candidate, weight);
                self.push(PROBATION, candidate, weight);
                self.extend_regions(info);
                return Some(victim);
            }
            self.rejected += 1;
            self.window_ghost.push(info.hash(candidate), info.weight(candidate), self.ghost_cap());
            self.unlink(candidate, info.weight(candidate));
            self.extend_regions(info);
            return Some(candidate);
        }
        let victim = self.probation.tail().or(self.protected.tail()).or(self.window.tail())?;
        if self.tags.get(victim) & LIST_MASK != WINDOW {
            self.main_ghost.push(info.hash(victim), info.weight(victim), self.ghost_cap());
        }
        self.unlink(victim, info.weight(victim));
        self.extend_regions(info);
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

/// EXPERIMENT: an exact ghost list of recently evicted hashes.
#[derive(Debug, Default)]
struct Ghost {
    ring: std::collections::VecDeque<(u64, u32, u64)>,
    set: std::collections::HashMap<u64, u64>,
    weight: u64,
    seq: u64,
}

impl Ghost {
    fn push(&mut self, hash: u64, weight: u32, cap: u64) {
        if cap == 0 {
            return;
        }
        self.seq += 1;
        self.ring.push_back((hash, weight, self.seq));
        self.set.insert(hash, self.seq);
        self.weight += u64::from(weight);
        while self.weight > cap {
            let Some((h, w, seq)) = self.ring.pop_front() else { break };
            self.weight -= u64::from(w);
            if self.set.get(&h) == Some(&seq) {
                self.set.remove(&h);
            }
        }
    }

    fn take(&mut self, hash: u64) -> Option<u32> {
        self.set.remove(&hash).map(|_| 1)
    }
}
