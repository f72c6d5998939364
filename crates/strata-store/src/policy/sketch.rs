//! A count-min sketch of 4-bit counters: TinyLFU's popularity estimate.
//!
//! TinyLFU (Einziger, Friedman, Manes, 2017) admits a new item only if it has
//! been requested more often, recently, than the item it would displace. It
//! needs the recent frequency of keys that are *not* resident, so it cannot
//! keep a counter per item; it keeps a small count-min sketch instead, and
//! ages it by halving every counter after a fixed number of increments (the
//! *sample*). The design follows Caffeine's `FrequencySketch`:
//!
//! - **4-bit counters**, saturating at 15. After halving, a key can never
//!   look more popular than 15 recent requests, and TinyLFU only ever asks
//!   "which of two keys is more popular", so 4 bits are enough.
//! - **Depth 4, one 64-byte block per key.** The table is a power-of-two
//!   number of `u64` words (16 counters each), grouped into blocks of 8 words.
//!   A key's hash picks one block, and each of its 4 counters lives in a
//!   different word pair of that block, so an estimate touches one cache line.
//! - **Reset** after `sample` increments that changed a counter: every
//!   counter is halved (a shift and a mask per word), and the increment count
//!   is halved too, less a correction for the odd counters that lost a half.
//! - **Doorkeeper** (optional, off by default): a one-hash bit set that
//!   absorbs a key's first request since the last reset, so keys seen once do
//!   not pollute the counters. See below for why it is off.
//! - **Keyed positions**: the caller's hash is mixed with a seed before it
//!   picks counters, so keys cannot be crafted to share a victim's counters
//!   without knowing the seed.
//!
//! # Sizing and growth
//!
//! The sketch is sized from the number of entries the cache actually holds,
//! not from its capacity, because in byte mode the capacity says nothing
//! about the entry count. [`FrequencySketch::ensure_entries`] grows it by
//! doubling. A key's block is `hash & block_mask`, so after doubling a key
//! maps either to its old block or to the same block in the new upper half;
//! copying the old table into both halves therefore keeps every estimate
//! exactly, and the cache does not forget its history when it grows.
//!
//! # Size and shape: measured, not copied
//!
//! Numbers are the adaptive policy's mean shortfall against the best
//! classical policy over the 108 reference trace/size rows (hit-ratio
//! points; `cargo run --release -p strata-sim --example tune_default`).
//! Counters are the scarce resource: the table is sized for the resident
//! entries, but a sample of ten times that many requests carries many more
//! distinct keys, and every collision blurs the comparison TinyLFU makes.
//!
//! | counters per entry | bytes per entry | mean shortfall |
//! |---|---|---:|
//! | 8 | 4 | 0.40 |
//! | 8 + 16-bit doorkeeper | 6 | 0.30 |
//! | **16 (Caffeine)** | **8** | **0.14** |
//! | 16 + 8-bit doorkeeper | 9 | 0.22 |
//! | 32 | 16 | 0.05 |
//!
//! strata keeps Caffeine's 8 bytes (before power-of-two rounding, so 8 to
//! 16 in practice): half of it costs a quarter point everywhere, and the
//! doorkeeper recovers only part of that. Also tried and dropped (measured
//! during tuning, against a then-current baseline): conservative update
//! (incrementing only the minimal counters) doubled the shortfall, all of it
//! on the loop and scan traces; spreading a key's counters over the whole
//! table instead of one block was within noise and touches four cache lines
//! instead of one. A reset every 10 entries' worth of increments is as good
//! as every 5 and better than every 20 (0.14, 0.14, 0.20).

/// Every nibble's low three bits: the mask applied after halving.
const RESET_MASK: u64 = 0x7777_7777_7777_7777;
/// Every nibble's lowest bit: counts the odd counters a reset rounds down.
const ONE_MASK: u64 = 0x1111_1111_1111_1111;
/// Words per block: one 64-byte cache line.
const BLOCK_WORDS: usize = 8;
/// The largest value a counter holds.
pub(crate) const MAX_COUNT: u8 = 15;

/// Sizing and aging of a [`FrequencySketch`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SketchShape {
    /// Bytes of counters per entry the sketch is sized for (a power of two
    /// from 1 to 16; Caffeine uses 8).
    pub(crate) bytes_per_entry: u32,
    /// Increments between resets, as a multiple of the entries sized for
    /// (Caffeine: 10).
    pub(crate) sample_factor: u32,
    /// Doorkeeper bits per entry; 0 disables it.
    pub(crate) doorkeeper_bits_per_entry: u32,
    /// Keys the counters' positions, so that nobody who does not know it
    /// can craft keys that share counters with a chosen victim.
    pub(crate) seed: u64,
}

impl Default for SketchShape {
    fn default() -> Self {
        Self {
            bytes_per_entry: 8,
            sample_factor: 10,
            doorkeeper_bits_per_entry: 0,
            seed: 0,
        }
    }
}

/// One 64-byte block of counters, aligned to a cache line so that a key's
/// four counters really cost one cache miss (a plain `Vec<u64>` is only
/// 16-byte aligned, and its blocks would straddle two lines).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Block([u64; BLOCK_WORDS]);

/// A table of counter words, allocated in cache-line-aligned blocks and used
/// as a plain `[u64]`.
#[derive(Clone, Debug, Default)]
struct Words(Vec<Block>);

impl Words {
    /// `words` zeroed words; a multiple of [`BLOCK_WORDS`].
    fn zeroed(words: usize) -> Self {
        Words(vec![Block::default(); words.div_ceil(BLOCK_WORDS)])
    }

    /// Appends a copy of the whole table after itself.
    fn duplicate(&mut self) {
        self.0.extend_from_within(..);
    }

    fn capacity_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Block>()
    }
}

impl std::ops::Deref for Words {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        // SAFETY: Block is repr(C) around [u64; BLOCK_WORDS], so a slice of
        // blocks is a contiguous, initialised, suitably aligned slice of u64
        // of BLOCK_WORDS times its length.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u64>(), self.0.len() * BLOCK_WORDS) }
    }
}

impl std::ops::DerefMut for Words {
    fn deref_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in `deref`, with exclusive access through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u64>(), self.0.len() * BLOCK_WORDS) }
    }
}

/// A count-min sketch with 4-bit counters, periodic halving and an optional
/// doorkeeper. All operations but [`Self::ensure_entries`] (amortized) and
/// the periodic reset (O(table) every O(table) increments) are O(1).
#[derive(Debug, Clone)]
pub(crate) struct FrequencySketch {
    shape: SketchShape,
    table: Words,
    /// Number of blocks minus one; blocks are a power of two.
    block_mask: u64,
    /// Entries the table is sized for.
    entries: usize,
    /// Increments between resets.
    sample: u64,
    /// Increments since the last reset (halved by each reset).
    additions: u64,
    /// Bits of the doorkeeper; empty when disabled.
    doorkeeper: Vec<u64>,
    resets: u64,
}

impl FrequencySketch {
    /// An empty sketch sized for at least `entries` entries.
    pub(crate) fn new(shape: SketchShape, entries: usize) -> Self {
        let shape = SketchShape {
            bytes_per_entry: shape.bytes_per_entry.clamp(1, 16).next_power_of_two(),
            sample_factor: shape.sample_factor.max(1),
            doorkeeper_bits_per_entry: shape.doorkeeper_bits_per_entry,
            ..shape
        };
        let mut sketch = Self {
            shape,
            table: Words::default(),
            block_mask: 0,
            entries: 0,
            sample: 0,
            additions: 0,
            doorkeeper: Vec::new(),
            resets: 0,
        };
        sketch.allocate(entries);
        sketch
    }

    fn words_for(&self, entries: usize) -> usize {
        let bytes = entries.max(1).saturating_mul(self.shape.bytes_per_entry as usize);
        (bytes / 8).max(BLOCK_WORDS).next_power_of_two()
    }

    fn allocate(&mut self, entries: usize) {
        let words = self.words_for(entries);
        self.table = Words::zeroed(words);
        self.block_mask = (words / BLOCK_WORDS) as u64 - 1;
        self.entries = words * 8 / self.shape.bytes_per_entry as usize;
        self.sample = self.entries as u64 * u64::from(self.shape.sample_factor);
        self.additions = 0;
        let bits = self.entries as u64 * u64::from(self.shape.doorkeeper_bits_per_entry);
        self.doorkeeper = if bits == 0 {
            Vec::new()
        } else {
            vec![0; bits.div_ceil(64).next_power_of_two() as usize]
        };
    }

    /// Entries the sketch is currently sized for.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Increments between resets.
    #[cfg(test)]
    pub(crate) fn sample(&self) -> u64 {
        self.sample
    }

    /// Resets done so far.
    pub(crate) fn resets(&self) -> u64 {
        self.resets
    }

    /// Grows the sketch (by doubling, keeping every estimate) until it is
    /// sized for at least `entries`. Never shrinks.
    pub(crate) fn ensure_entries(&mut self, entries: usize) {
        while self.entries < entries {
            let words = self.table.len();
            self.table.duplicate();
            self.block_mask = (words * 2 / BLOCK_WORDS) as u64 - 1;
            self.entries *= 2;
            self.sample *= 2;
            if !self.doorkeeper.is_empty() {
                // The doorkeeper indexes with the same low bits, so the same
                // duplication keeps its members.
                self.doorkeeper.extend_from_within(..);
            }
        }
    }

    /// The estimated number of recent requests for `hash`, at most 15
    /// (16 with a doorkeeper, which adds its own bit).
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        let mixed = mix(hash ^ self.shape.seed);
        let block = (mixed & self.block_mask) as usize * BLOCK_WORDS;
        let counter_hash = (mixed >> 32) as u32;
        let mut min = MAX_COUNT;
        for i in 0..4 {
            let (word, shift) = locate(block, counter_hash, i);
            min = min.min(((self.table[word] >> shift) & 0xF) as u8);
        }
        if self.doorkeeper.is_empty() {
            min
        } else {
            // The doorkeeper holds each key's first request since the reset.
            min + u8::from(self.in_doorkeeper(mixed))
        }
    }

    /// Records one request for `hash`.
    pub(crate) fn increment(&mut self, hash: u64) {
        let mixed = mix(hash ^ self.shape.seed);
        if !self.doorkeeper.is_empty() && self.enter_doorkeeper(mixed) {
            self.count_addition();
            return;
        }
        let block = (mixed & self.block_mask) as usize * BLOCK_WORDS;
        let counter_hash = (mixed >> 32) as u32;
        let mut added = false;
        for i in 0..4 {
            let (word, shift) = locate(block, counter_hash, i);
            if (self.table[word] >> shift) & 0xF < u64::from(MAX_COUNT) {
                self.table[word] += 1 << shift;
                added = true;
            }
        }
        if added {
            self.count_addition();
        }
    }

    fn count_addition(&mut self) {
        self.additions += 1;
        if self.additions >= self.sample {
            self.reset();
        }
    }

    fn doorkeeper_bit(&self, mixed: u64) -> (usize, u64) {
        // Low bits pick the word (so growth by duplication keeps members),
        // bits 26..32 pick the bit; the table uses bits 32.. for counters.
        let words = self.doorkeeper.len() as u64;
        let word = (mixed & (words - 1)) as usize;
        (word, 1 << ((mixed >> 26) & 63))
    }

    fn in_doorkeeper(&self, mixed: u64) -> bool {
        let (word, bit) = self.doorkeeper_bit(mixed);
        self.doorkeeper[word] & bit != 0
    }

    /// Sets the key's doorkeeper bit; true if it was not set before (the
    /// request is absorbed by the doorkeeper).
    fn enter_doorkeeper(&mut self, mixed: u64) -> bool {
        let (word, bit) = self.doorkeeper_bit(mixed);
        let absent = self.doorkeeper[word] & bit == 0;
        self.doorkeeper[word] |= bit;
        absent
    }

    /// Halves every counter and the increment count; clears the doorkeeper.
    pub(crate) fn reset(&mut self) {
        let mut odd = 0u64;
        for word in self.table.iter_mut() {
            odd += u64::from((*word & ONE_MASK).count_ones());
            *word = (*word >> 1) & RESET_MASK;
        }
        // Each key has 4 counters; the halves lost to rounding are spread
        // over them.
        self.additions = self.additions.saturating_sub(odd / 4) / 2;
        self.doorkeeper.fill(0);
        self.resets += 1;
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.table.capacity_bytes() + self.doorkeeper.capacity() * std::mem::size_of::<u64>()
    }
}

/// The word and bit shift of counter `i` (0..4) of a key in `block`: one of
/// two words in the `i`-th word pair, and one of its 16 nibbles.
#[inline]
fn locate(block: usize, counter_hash: u32, i: u32) -> (usize, u32) {
    let h = counter_hash >> (i * 8);
    let nibble = (h >> 1) & 15;
    let word = block + (h & 1) as usize + (i as usize) * 2;
    (word, nibble * 4)
}

/// A strong 64-bit finalizer (splitmix64's), so that callers' hashes with
/// weak low bits still spread over blocks and counters.
#[inline]
fn mix(hash: u64) -> u64 {
    let mut z = hash.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn shape(bytes_per_entry: u32, doorkeeper_bits_per_entry: u32) -> SketchShape {
        SketchShape {
            bytes_per_entry,
            sample_factor: 10,
            doorkeeper_bits_per_entry,
            seed: 0x1234,
        }
    }

    proptest! {
        #[test]
        fn never_undercounts_before_a_reset(
            keys in proptest::collection::vec(0u64..300, 1..2000),
            bytes in prop_oneof![Just(1u32), Just(4), Just(8)],
            doorkeeper in prop_oneof![Just(0u32), Just(8)],
        ) {
            // Sized for many entries so no reset happens within the run.
            let mut sketch = FrequencySketch::new(shape(bytes, doorkeeper), 1000);
            let mut truth: HashMap<u64, u32> = HashMap::new();
            for &key in &keys {
                let hash = key.wrapping_mul(0x2545_F491_4F6C_DD1D);
                sketch.increment(hash);
                *truth.entry(hash).or_default() += 1;
            }
            prop_assert_eq!(sketch.resets(), 0);
            for (&hash, &count) in &truth {
                let cap = u32::from(MAX_COUNT) + u32::from(doorkeeper > 0);
                prop_assert!(u32::from(sketch.frequency(hash)) >= count.min(cap));
            }
        }
    }

    #[test]
    fn counts_saturate_at_fifteen() {
        let mut sketch = FrequencySketch::new(SketchShape::default(), 512);
        for _ in 0..40 {
            sketch.increment(7);
        }
        assert_eq!(sketch.frequency(7), MAX_COUNT);
    }

    #[test]
    fn reset_halves_every_counter() {
        let mut sketch = FrequencySketch::new(SketchShape::default(), 4096);
        let counts: Vec<(u64, u8)> = (0..64u64).map(|k| (k * 0x9E37, (k % 16) as u8)).collect();
        for &(hash, count) in &counts {
            for _ in 0..count {
                sketch.increment(hash);
            }
        }
        let before: Vec<u8> = counts.iter().map(|&(h, _)| sketch.frequency(h)).collect();
        let table_before = sketch.table.clone();
        sketch.reset();
        for (word, old) in sketch.table.iter().zip(table_before.iter()) {
            for nibble in 0..16 {
                let shift = nibble * 4;
                assert_eq!((word >> shift) & 0xF, ((old >> shift) & 0xF) / 2);
            }
        }
        for (&(hash, _), old) in counts.iter().zip(before) {
            assert_eq!(sketch.frequency(hash), old / 2);
        }
        assert_eq!(sketch.resets(), 1);
    }

    #[test]
    fn resets_after_the_sample_and_ages_old_keys() {
        let mut sketch = FrequencySketch::new(SketchShape::default(), 64);
        let sample = sketch.sample();
        for _ in 0..15 {
            sketch.increment(1);
        }
        assert_eq!(sketch.frequency(1), 15);
        // Many distinct keys push the sketch through a few resets.
        for key in 0..sample * 3 {
            sketch.increment(1_000_000 + key);
        }
        assert!(sketch.resets() >= 2, "{} resets", sketch.resets());
        assert!(sketch.frequency(1) <= 3, "old key still at {}", sketch.frequency(1));
    }

    #[test]
    fn growing_keeps_every_estimate() {
        for doorkeeper in [0, 8] {
            let mut sketch = FrequencySketch::new(shape(4, doorkeeper), 16);
            let keys: Vec<u64> = (0..100u64).map(|k| k.wrapping_mul(0x9E37_79B9)).collect();
            for (i, &key) in keys.iter().enumerate() {
                for _ in 0..(i % 5) {
                    sketch.increment(key);
                }
            }
            let before: Vec<u8> = keys.iter().map(|&k| sketch.frequency(k)).collect();
            let entries = sketch.entries();
            sketch.ensure_entries(entries * 8 + 1);
            assert!(sketch.entries() > entries * 8);
            let after: Vec<u8> = keys.iter().map(|&k| sketch.frequency(k)).collect();
            assert_eq!(before, after);
        }
    }

    #[test]
    fn doorkeeper_absorbs_first_request() {
        let mut sketch = FrequencySketch::new(shape(4, 8), 1024);
        assert_eq!(sketch.frequency(42), 0);
        sketch.increment(42);
        assert_eq!(sketch.frequency(42), 1);
        sketch.increment(42);
        assert_eq!(sketch.frequency(42), 2);
        sketch.reset();
        // The doorkeeper is cleared; the table's count of 1 halves to 0.
        assert_eq!(sketch.frequency(42), 0);
    }

    #[test]
    fn sizes_follow_bytes_per_entry() {
        let sketch = FrequencySketch::new(shape(4, 0), 1000);
        assert_eq!(sketch.table.len(), 512);
        assert_eq!(sketch.entries(), 1024);
        assert_eq!(sketch.heap_bytes(), 4096);
        let tiny = FrequencySketch::new(shape(4, 0), 1);
        assert_eq!(tiny.table.len(), BLOCK_WORDS);
    }
}
