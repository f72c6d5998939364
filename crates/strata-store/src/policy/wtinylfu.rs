//! W-TinyLFU: a small LRU window in front of a frequency-filtered SLRU.
//!
//! # The algorithm (Einziger, Friedman, Manes, 2017; Caffeine)
//!
//! New items enter the *window*, an LRU. When the window overflows, its
//! least recent item becomes a *candidate* for the *main space*, an SLRU of
//! *probation* (20%) and *protected* (80%) segments. TinyLFU's admission
//! test compares the candidate's recent popularity, estimated by the
//! frequency sketch ([`super::sketch`]), with the probation segment's least
//! recent item, the *victim*; the less popular of the two is evicted. A hit
//! in probation promotes to protected, whose overflow is demoted back to
//! probation. The window serves recency (bursts of new keys hit there); the
//! filter keeps one-hit wonders and scans out of the main space.
//!
//! # Fitting the caller's protocol
//!
//! The caller evicts *before* inserting (see [`EvictionPolicy`]), so the
//! admission decision happens in [`EvictionPolicy::evict`]: if the window
//! is full (at or over its share), the item that the coming insert will push
//! out, its least recent one, is judged now against the victim, and `evict`
//! returns whichever loses. While the cache is still filling (an insert that
//! needed no eviction), window overflow moves to probation unjudged; room
//! that `evict` made is never handed to the overflow, so once the cache is
//! full every item enters the main space through the admission test.
//! Weights are respected throughout: segment sizes are in weight units, and
//! the sketch is sized from the number of resident entries, growing with it.
//!
//! # What strata changed, and why (measured)
//!
//! All numbers are the mean shortfall, in hit-ratio points, against the best
//! classical policy of the reference table over its 108 trace/size rows
//! (`cargo run --release -p strata-sim --example tune_default`; OPT and
//! Belady are not candidates for "best"). The known design
//! ([`WTinyLfuConfig::caffeine`]: 1% initial window, hill climber, strict
//! admission, 8-byte sketch, random admission of warm candidates) scores
//! 1.37, worst 9.5 points (`lirs_loop`@750); strata's default scores 0.14,
//! worst 4.9 (`cloudPhysicsIO`@10000, where LIRS is 5 points ahead of every
//! window size W-TinyLFU can choose).
//!
//! - **Admission margin.** A candidate's count includes the miss that just
//!   brought it in; the victim's next request has not happened yet. On a
//!   loop that one request is the whole difference, so strict `>` admits
//!   the candidate, evicts the item needed next, and starts a cascade (on
//!   `lirs_loop`@750 a fifth of the misses became admissions, each evicting
//!   a key about to be requested). Requiring the candidate to beat the
//!   victim by more than one ([`WTinyLfuConfig::admission_margin`]) lets a
//!   tie go to the resident item, which is what LIRS does with equal reuse
//!   distances: margin 0, 1, 2 give 0.63, 0.14, 0.30 with the marginal
//!   climber, and 1.53 → 1.25 for the fixed window. The loop, scan, `cs`
//!   and `zigzag` traces go from the worst rows to at or above the best.
//! - **Marginal climber** instead of hill climbing ([`super::climber`]):
//!   1.12 → 0.14 with everything else equal.
//! - **Random admission kept.** Caffeine admits a rejected candidate whose
//!   count is at least 6 with probability 1/128, so that nobody can pin a
//!   victim by flooding its counters. Without the margin it is what triggers
//!   the loop cascade (0.15 points); with the margin it costs nothing (0.14
//!   with, 0.15 without), so it stays, and the sketch's counter positions
//!   are keyed by [`WTinyLfuConfig::seed`] as well.
//! - **Window bounds**: from one weight unit to the whole cache, so the
//!   climber can make the policy a plain LRU (`lirs_sprite` at 1000 entries
//!   wants 99%) or a plain filtered SLRU (`lirs_loop`). The initial 1% is
//!   Caffeine's; starting at 5% scores 0.25.
//!
//! # Memory
//!
//! Per slot: the shared 8-byte links and one tag byte (segment in the low
//! bits, tail-region flag above), no copy of hash or weight. Per entry of
//! capacity: the sketch's 8 bytes (8 to 16 after power-of-two rounding),
//! and the two ghost filters, 10 bits per remembered key for 8% of the
//! entries each (about 0.2 bytes per entry).

use super::climber::{Adaptation, ClimberConfig, HillClimber, MarginalClimber, MarginalConfig};
use super::ghost_filter::GhostFilter;
use super::list::{Links, List, SlotVec};
use super::sketch::{FrequencySketch, SketchShape};
use super::tail::TailRegion;
use super::{EvictionPolicy, PolicyKind, PolicyStats, Slot, SlotInfo};

/// Tag values: which list a resident slot is on (0: not resident).
const WINDOW: u8 = 1;
const PROBATION: u8 = 2;
const PROTECTED: u8 = 3;
const LIST_MASK: u8 = 3;
/// Tag bit: the slot is in its list's tail region (marginal climber).
const TAIL: u8 = 4;

/// Settings of the W-TinyLFU family. [`WTinyLfuConfig::fixed`] and
/// [`WTinyLfuConfig::adaptive`] are what [`PolicyKind::WTinyLfu`] and
/// [`PolicyKind::Adaptive`] build; the fields are public so that the
/// simulator can explore variants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WTinyLfuConfig {
    /// The window's initial share of capacity (0..1).
    pub window: f64,
    /// The smallest window the climber may choose, as a share of capacity
    /// (never below one weight unit).
    pub min_window: f64,
    /// The largest window the climber may choose, as a share of capacity.
    pub max_window: f64,
    /// The protected segment's share of the main space (0..1).
    pub protected: f64,
    /// How the window size adapts.
    pub adaptation: Adaptation,
    /// Bytes of sketch counters per entry (a power of two, 1..=16).
    pub sketch_bytes_per_entry: u32,
    /// Sketch increments between halvings, as a multiple of entries.
    pub sketch_sample_factor: u32,
    /// Doorkeeper bits per entry (0: no doorkeeper).
    pub doorkeeper_bits_per_entry: u32,
    /// A candidate is admitted only if its estimated count exceeds the
    /// victim's by more than this (0 is the paper's strict comparison).
    pub admission_margin: u8,
    /// A rejected candidate at least this popular is still admitted with
    /// probability 1/128, so that flooding a victim's counters cannot pin
    /// it (Caffeine: 6); 0 disables it.
    pub hashdos_threshold: u8,
    /// Seeds the admission jitter and keys the sketch's counter positions;
    /// a store exposed to untrusted keys should pass a random one.
    pub seed: u64,
}

impl WTinyLfuConfig {
    /// W-TinyLFU with a fixed 1% window.
    pub const fn fixed() -> Self {
        Self {
            window: 0.01,
            min_window: 0.0,
            max_window: 1.0,
            protected: 0.8,
            adaptation: Adaptation::Fixed,
            sketch_bytes_per_entry: 8,
            sketch_sample_factor: 10,
            doorkeeper_bits_per_entry: 0,
            admission_margin: 1,
            hashdos_threshold: 6,
            seed: 0x5EED_7A11_F00D_CAFE,
        }
    }

    /// strata's default: the window adapts by the marginal climber.
    pub const fn adaptive() -> Self {
        Self {
            adaptation: Adaptation::Marginal(MarginalConfig::DEFAULT),
            ..Self::fixed()
        }
    }

    /// The known design: Caffeine's hill climber and strict admission.
    pub const fn caffeine() -> Self {
        Self {
            adaptation: Adaptation::HillClimber(ClimberConfig::CAFFEINE),
            max_window: 0.8,
            admission_margin: 0,
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

#[derive(Debug)]
enum Climber {
    Fixed,
    Hill(HillClimber),
    Marginal(Box<Shadow>),
}

/// The marginal climber's state besides the tail regions.
#[derive(Debug)]
struct Shadow {
    climber: MarginalClimber,
    /// Candidates rejected at the window's end.
    window_ghost: GhostFilter,
    /// Items evicted from the main space.
    main_ghost: GhostFilter,
    /// Resident entries the ghosts were sized for.
    sized_for: usize,
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
    window_tail: TailRegion,
    probation_tail: TailRegion,
    capacity: u64,
    window_max: u64,
    protected_max: u64,
    sketch: FrequencySketch,
    climber: Climber,
    /// The hill climber's decided but not yet applied change (a fraction
    /// of capacity): it decides on a request, which carries no `SlotInfo`.
    pending_fraction: f64,
    /// The hash of the last miss, so that the insert that follows it is not
    /// counted twice in the sketch.
    last_miss: Option<u64>,
    /// The cache has evicted at least once: it is full.
    full: bool,
    /// `evict` ran since the last insert.
    made_room: bool,
    rng: u64,
    admitted: u64,
    rejected: u64,
}

impl WTinyLfu {
    fn new(config: WTinyLfuConfig) -> Self {
        let shape = SketchShape {
            bytes_per_entry: config.sketch_bytes_per_entry,
            sample_factor: config.sketch_sample_factor,
            doorkeeper_bits_per_entry: config.doorkeeper_bits_per_entry,
            seed: config.seed.rotate_left(32),
        };
        let climber = match config.adaptation {
            Adaptation::Fixed => Climber::Fixed,
            Adaptation::HillClimber(c) => Climber::Hill(HillClimber::new(c)),
            Adaptation::Marginal(c) => Climber::Marginal(Box::new(Shadow {
                climber: MarginalClimber::new(c),
                window_ghost: GhostFilter::default(),
                main_ghost: GhostFilter::default(),
                sized_for: 0,
            })),
        };
        Self {
            config,
            links: Links::default(),
            tags: SlotVec::default(),
            window: List::default(),
            probation: List::default(),
            protected: List::default(),
            window_tail: TailRegion::default(),
            probation_tail: TailRegion::default(),
            capacity: 0,
            window_max: 0,
            protected_max: 0,
            sketch: FrequencySketch::new(shape, 1),
            climber,
            pending_fraction: 0.0,
            last_miss: None,
            full: false,
            made_room: false,
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

    fn resident(&self) -> usize {
        self.window.len() + self.probation.len() + self.protected.len()
    }

    fn main_weight(&self) -> u64 {
        self.probation.weight() + self.protected.weight()
    }

    fn main_max(&self) -> u64 {
        self.capacity - self.window_max
    }

    /// The average resident item's weight (1 when empty or in count mode).
    fn mean_weight(&self) -> f64 {
        let total = self.window.weight() + self.main_weight();
        (total as f64 / self.resident().max(1) as f64).max(1.0)
    }

    /// The depth of the tail regions and ghosts; 0 unless marginal.
    fn depth(&self) -> u64 {
        match &self.climber {
            Climber::Marginal(shadow) => ((shadow.climber.config().depth * self.capacity as f64) as u64).max(1),
            _ => 0,
        }
    }

    /// Sizes the segments for a window of `window_max`, within the bounds.
    fn set_window_max(&mut self, window_max: u64) {
        let cap = self.capacity as f64;
        let lo = ((self.config.min_window * cap) as u64).max(1).min(self.capacity);
        let hi = ((self.config.max_window * cap) as u64).clamp(lo, self.capacity);
        self.window_max = window_max.clamp(lo, hi);
        self.protected_max = (self.config.protected * self.main_max() as f64) as u64;
    }

    fn list_mut(&mut self, tag: u8) -> &mut List {
        match tag & LIST_MASK {
            WINDOW => &mut self.window,
            PROBATION => &mut self.probation,
            _ => &mut self.protected,
        }
    }

    fn unlink(&mut self, slot: Slot, weight: u32) {
        let tag = self.tags.get(slot);
        debug_assert_ne!(tag, 0, "slot {slot} is not resident");
        if tag & TAIL != 0 {
            let tail = if tag & LIST_MASK == WINDOW {
                &mut self.window_tail
            } else {
                &mut self.probation_tail
            };
            tail.leave(&self.links, slot, weight);
        }
        let list = match tag & LIST_MASK {
            WINDOW => &mut self.window,
            PROBATION => &mut self.probation,
            _ => &mut self.protected,
        };
        self.links.unlink(list, slot, weight);
        self.tags.set(slot, 0);
    }

    fn push(&mut self, tag: u8, slot: Slot, weight: u32) {
        let list = match tag & LIST_MASK {
            WINDOW => &mut self.window,
            PROBATION => &mut self.probation,
            _ => &mut self.protected,
        };
        self.links.push_head(list, slot, weight);
        self.tags.set(slot, tag);
    }

    /// Moves `slot` from its list to the head of `tag`'s list.
    fn move_to(&mut self, tag: u8, slot: Slot, weight: u32) {
        self.unlink(slot, weight);
        self.push(tag, slot, weight);
    }

    /// Grows the window's and probation's tail regions back to the depth
    /// (O(1) amortized: see [`super::tail`]).
    fn extend_tails(&mut self, info: &dyn SlotInfo) {
        let depth = self.depth();
        if depth == 0 {
            return;
        }
        let tags = &mut self.tags;
        self.window_tail.extend(&self.links, &self.window, depth, |slot| {
            tags.set(slot, WINDOW | TAIL);
            info.weight(slot)
        });
        self.probation_tail.extend(&self.links, &self.probation, depth, |slot| {
            tags.set(slot, PROBATION | TAIL);
            info.weight(slot)
        });
    }

    fn demote_protected(&mut self, info: &dyn SlotInfo) {
        while self.protected.weight() > self.protected_max {
            let Some(slot) = self.protected.tail() else { break };
            self.move_to(PROBATION, slot, info.weight(slot));
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
            let movable = if force {
                self.window.weight() - u64::from(weight) > self.window_max
            } else {
                self.main_weight() + u64::from(weight) <= self.main_max()
            };
            if !movable {
                break;
            }
            self.move_to(PROBATION, slot, weight);
        }
    }

    /// A request for a resident item: count it and move it up.
    fn access(&mut self, slot: Slot, hash: u64, info: &dyn SlotInfo) {
        self.sketch.increment(hash);
        let tag = self.tags.get(slot);
        match tag & LIST_MASK {
            WINDOW if tag & TAIL == 0 => self.links.move_to_head(&mut self.window, slot),
            WINDOW => self.move_to(WINDOW, slot, info.weight(slot)),
            PROBATION => {
                self.move_to(PROTECTED, slot, info.weight(slot));
                self.demote_protected(info);
            }
            PROTECTED => self.links.move_to_head(&mut self.protected, slot),
            _ => debug_assert!(false, "access to slot {slot} that is not resident"),
        }
        self.extend_tails(info);
    }

    /// Feeds the hill climber one request.
    fn record_hill(&mut self, hit: bool) {
        let entries = self.resident();
        if let (true, Climber::Hill(climber)) = (self.full, &mut self.climber)
            && let Some(fraction) = climber.record(hit, entries)
        {
            self.pending_fraction += fraction;
        }
    }

    /// Applies the climbers' accumulated window change.
    fn apply_adjustment(&mut self, info: &dyn SlotInfo) {
        let mut delta = (self.pending_fraction * self.capacity as f64) as i64;
        self.pending_fraction = 0.0;
        if let Climber::Marginal(shadow) = &mut self.climber {
            delta += shadow.climber.take();
        }
        if delta == 0 {
            return;
        }
        self.set_window_max(self.window_max.saturating_add_signed(delta));
        self.demote_protected(info);
        self.drain_window(info, true);
        self.extend_tails(info);
    }

    /// Sizes the ghosts for the entries the cache holds (count mode: once,
    /// at the first eviction; byte mode: again whenever that doubles).
    fn size_ghosts(&mut self) {
        let resident = self.resident();
        let depth = self.depth();
        if let Climber::Marginal(shadow) = &mut self.climber
            && resident > shadow.sized_for * 2
        {
            shadow.sized_for = resident;
            let keys = (shadow.climber.config().depth * resident as f64).ceil() as usize;
            shadow.window_ghost.resize(depth, keys);
            shadow.main_ghost.resize(depth, keys);
        }
    }

    fn remember_eviction(&mut self, from_window: bool, hash: u64, weight: u32) {
        if let Climber::Marginal(shadow) = &mut self.climber {
            let ghost = if from_window {
                &mut shadow.window_ghost
            } else {
                &mut shadow.main_ghost
            };
            ghost.insert(hash, weight);
        }
    }

    fn ghost_bytes(&self) -> usize {
        match &self.climber {
            Climber::Marginal(shadow) => shadow.window_ghost.heap_bytes() + shadow.main_ghost.heap_bytes(),
            _ => 0,
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
        if candidate_freq > victim_freq.saturating_add(self.config.admission_margin) {
            return true;
        }
        let threshold = self.config.hashdos_threshold;
        threshold > 0 && candidate_freq >= threshold && self.next_random() & 127 == 0
    }
}

impl EvictionPolicy for WTinyLfu {
    fn kind(&self) -> PolicyKind {
        match self.config.adaptation {
            Adaptation::Fixed => PolicyKind::WTinyLfu,
            _ => PolicyKind::Adaptive,
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
        self.set_window_max(capacity - main.min(capacity));
        if let Climber::Marginal(shadow) = &mut self.climber {
            // Resize the ghosts at the next eviction, for the new depth.
            shadow.sized_for = 0;
        }
    }

    fn on_miss(&mut self, hash: u64) {
        self.sketch.increment(hash);
        self.last_miss = Some(hash);
        self.record_hill(false);
        let mean_weight = self.mean_weight();
        if let Climber::Marginal(shadow) = &mut self.climber {
            let in_window = shadow.window_ghost.contains(hash);
            let in_main = shadow.main_ghost.contains(hash);
            // A key in both ghosts is ambiguous (filters cannot forget).
            if in_window != in_main {
                shadow.climber.evidence(in_window, mean_weight);
            }
        }
    }

    fn on_hit(&mut self, slot: Slot, hash: u64, info: &dyn SlotInfo) {
        let tag = self.tags.get(slot);
        if tag & TAIL != 0 && self.full {
            let mean_weight = self.mean_weight();
            if let Climber::Marginal(shadow) = &mut self.climber {
                // A hit the segment would lose if it were Δ smaller.
                shadow.climber.evidence(tag & LIST_MASK == WINDOW, mean_weight);
            }
        }
        self.access(slot, hash, info);
        self.record_hill(true);
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
        self.extend_tails(info);
    }

    fn on_update(&mut self, slot: Slot, hash: u64, old_weight: u32, new_weight: u32, info: &dyn SlotInfo) {
        let tag = self.tags.get(slot);
        self.list_mut(tag).reweigh(old_weight, new_weight);
        if tag & TAIL != 0 {
            let tail = if tag & LIST_MASK == WINDOW {
                &mut self.window_tail
            } else {
                &mut self.probation_tail
            };
            tail.reweigh(old_weight, new_weight);
        }
        self.access(slot, hash, info);
    }

    fn on_remove(&mut self, slot: Slot, _hash: u64, weight: u32) {
        // The tail regions regrow at the next call that carries SlotInfo.
        self.unlink(slot, weight);
    }

    fn evict(&mut self, info: &dyn SlotInfo) -> Option<Slot> {
        self.full = true;
        self.made_room = true;
        self.size_ghosts();
        self.apply_adjustment(info);
        if self.window.weight() >= self.window_max
            && let Some(candidate) = self.window.tail()
        {
            let candidate_weight = info.weight(candidate);
            let Some(victim) = self.probation.tail().or(self.protected.tail()) else {
                self.unlink(candidate, candidate_weight);
                return Some(candidate);
            };
            let (candidate_hash, victim_hash) = (info.hash(candidate), info.hash(victim));
            let loser = if self.admit(candidate_hash, victim_hash) {
                self.admitted += 1;
                let victim_weight = info.weight(victim);
                self.remember_eviction(false, victim_hash, victim_weight);
                self.unlink(victim, victim_weight);
                self.move_to(PROBATION, candidate, candidate_weight);
                victim
            } else {
                self.rejected += 1;
                self.remember_eviction(true, candidate_hash, candidate_weight);
                self.unlink(candidate, candidate_weight);
                candidate
            };
            self.extend_tails(info);
            return Some(loser);
        }
        // The window has room: the main space is over its share (the window
        // grew, or the cache was filled by inserts that skipped the window).
        let victim = self.probation.tail().or(self.protected.tail()).or(self.window.tail())?;
        let weight = info.weight(victim);
        if self.tags.get(victim) & LIST_MASK != WINDOW {
            self.remember_eviction(false, info.hash(victim), weight);
        }
        self.unlink(victim, weight);
        self.extend_tails(info);
        Some(victim)
    }

    fn frequency(&self, _slot: Slot, hash: u64) -> Option<u32> {
        Some(u32::from(self.sketch.frequency(hash)))
    }

    fn clear(&mut self) {
        let capacity = self.capacity;
        *self = Self::new(self.config);
        self.set_capacity(capacity);
    }

    fn stats(&self) -> PolicyStats {
        let (for_window, for_main) = match &self.climber {
            Climber::Marginal(shadow) => shadow.climber.counts(),
            _ => (0, 0),
        };
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
                ("ghost_bytes", self.ghost_bytes() as u64),
                ("evidence_for_window", for_window),
                ("evidence_for_main", for_main),
            ],
        }
    }

    fn heap_bytes(&self) -> usize {
        self.links.heap_bytes() + self.tags.heap_bytes() + self.sketch.heap_bytes() + self.ghost_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Replayer;

    fn key(i: u64) -> u64 {
        (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn window_share(replay: &Replayer, capacity: u64) -> f64 {
        replay.policy().stats().get("window_max").unwrap_or(0) as f64 / capacity as f64
    }

    #[test]
    fn both_kinds_keep_a_hot_set_through_scans() {
        // The conformance scenario, run here for the two kinds alone.
        for kind in [PolicyKind::WTinyLfu, PolicyKind::Adaptive] {
            let mut replay = Replayer::new(kind, 100);
            let mut scan = 1_000_000u64;
            let mut hot_hits = 0;
            for round in 0..200 {
                for hot in 0..50 {
                    if replay.access(key(hot), 1) && round >= 100 {
                        hot_hits += 1;
                    }
                }
                for _ in 0..120 {
                    scan += 1;
                    replay.access(key(scan), 1);
                }
            }
            let ratio = f64::from(hot_hits) / 5000.0;
            assert!(ratio > 0.95, "{kind}: hot-set hit ratio {ratio:.2}");
        }
    }

    #[test]
    fn fixed_window_is_one_percent() {
        let replay = Replayer::new(PolicyKind::WTinyLfu, 1000);
        assert_eq!(replay.policy().stats().get("window_max"), Some(10));
        let tiny = Replayer::new(PolicyKind::WTinyLfu, 1);
        assert_eq!(tiny.policy().stats().get("window_max"), Some(1));
    }

    #[test]
    fn a_loop_keeps_a_stable_set_and_a_minimal_window() {
        // 1200 keys in a loop through 1000 entries: LRU gets nothing, the
        // best a policy can do is keep 1000 of them (83%).
        for kind in [PolicyKind::WTinyLfu, PolicyKind::Adaptive] {
            let mut replay = Replayer::new(kind, 1000);
            for _ in 0..30 {
                for i in 0..1200 {
                    replay.access(key(i), 1);
                }
            }
            let ratio = replay.hit_ratio();
            assert!(ratio > 0.75, "{kind}: loop hit ratio {ratio:.3}");
            assert!(window_share(&replay, 1000) <= 0.02, "{kind}: window grew on a loop");
        }
    }

    #[test]
    fn the_window_grows_when_recency_pays() {
        // Every key is read twice, 60 requests (30 inserts) apart, then never
        // again: a 1% window forgets it before the second read, and the
        // filter never admits a key seen once, so only a window of more than
        // 3% catches the second read. That is within the climber's depth of
        // 8%; a cliff further out is invisible to it (as to any local
        // search).
        let mut adaptive = Replayer::new(PolicyKind::Adaptive, 1000);
        let mut fixed = Replayer::new(PolicyKind::WTinyLfu, 1000);
        for i in 0..200_000u64 {
            // Even steps read a new key, odd steps the key read 60 earlier.
            let k = if i % 2 == 0 { i / 2 + 30 } else { i / 2 };
            adaptive.access(key(k), 1);
            fixed.access(key(k), 1);
        }
        let share = window_share(&adaptive, 1000);
        assert!(share > 0.03, "window only {share:.3} of the cache");
        assert!(
            adaptive.hit_ratio() > 0.45,
            "adaptive hit ratio {:.3}",
            adaptive.hit_ratio()
        );
        assert!(fixed.hit_ratio() < 0.05, "fixed hit ratio {:.3}", fixed.hit_ratio());
    }

    #[test]
    fn byte_mode_sizes_the_sketch_from_resident_entries() {
        // 1 MB of 100-byte items: about 10000 entries, far fewer than the
        // capacity's million weight units.
        let mut replay = Replayer::new(PolicyKind::Adaptive, 1_000_000);
        for i in 0..50_000 {
            replay.access(key(i % 20_000), 100);
        }
        let stats = replay.policy().stats();
        let entries = stats.get("sketch_entries").unwrap_or(0);
        assert!(
            (10_000..=32_768).contains(&entries),
            "sketch sized for {entries} entries"
        );
        assert!(replay.used() <= 1_000_000);
    }

    #[test]
    fn metadata_stays_small() {
        // Count mode, full cache: 9 bytes per slot (links and tag), the
        // sketch (8 bytes per entry, rounded up to a power of two: 10000
        // entries get 16384) and the ghosts (10 bits per remembered key).
        let capacity = 10_000u64;
        let mut replay = Replayer::new(PolicyKind::Adaptive, capacity);
        for i in 0..100_000 {
            replay.access(key(i % 30_000), 1);
        }
        let stats = replay.policy().stats();
        let sketch = stats.get("sketch_bytes").unwrap_or(u64::MAX);
        let ghosts = stats.get("ghost_bytes").unwrap_or(u64::MAX);
        assert_eq!(sketch, 16_384 * 8);
        assert!(ghosts * 4 < capacity, "ghosts take {ghosts} bytes");
        let slots = replay.policy().heap_bytes() as u64 - sketch - ghosts;
        // The slot arrays over-allocate when they grow; allow for that.
        assert!(slots <= 9 * capacity * 2, "{slots} bytes of per-slot metadata");
    }
}
