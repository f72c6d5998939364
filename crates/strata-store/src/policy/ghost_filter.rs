//! A ghost list as two generations of Bloom filters.
//!
//! The adaptive W-TinyLFU asks one question about keys it no longer holds:
//! "was this key among the last `depth` weight units evicted from segment
//! X?" A hit there means a segment larger by `depth` would have kept the key.
//! An exact answer needs the keys' hashes in a FIFO plus an index, about
//! 40 bytes per remembered key. A *generational* Bloom filter answers it
//! approximately in about 10 bits per remembered key: evicted keys are added
//! to the current generation; when it has taken `depth / 2` units it becomes
//! the previous generation and the old previous one is cleared for reuse. A
//! key is a ghost if either generation holds it, so the filter remembers
//! between the last `depth / 2` and `depth` units evicted — a ghost list
//! whose length wobbles by a factor of two, which the adaptation does not
//! mind since it only compares two ghosts built the same way.
//!
//! The filter is *blocked*: all of a key's bits fall in one 64-byte block,
//! so a lookup or insert touches one cache line instead of seven; this costs
//! a slightly higher false-positive rate (about 1.2% instead of 1%).
//!
//! False positives (about 1% at the default sizing) add the same small rate
//! of phantom ghost hits to both ghosts, so they cancel in the comparison.
//! Keys cannot be removed from a Bloom filter, so a key found in both ghosts
//! (evicted from one segment, readmitted, evicted from the other) is
//! ambiguous; the caller credits neither.

/// Bits of filter per remembered key (per generation).
const BITS_PER_KEY: usize = 10;
/// Bit positions per key (k); 10 bits and k = 7 give about 1% false positives.
const PROBES: u32 = 7;

/// A ghost list of recently evicted keys, remembered by hash.
#[derive(Debug, Clone, Default)]
pub(crate) struct GhostFilter {
    generations: [Vec<u64>; 2],
    /// Index of the generation being filled.
    current: usize,
    /// Weight added to the current generation.
    filled: u64,
    /// Weight after which the generations rotate (`depth / 2`).
    generation_weight: u64,
    /// Keys each generation is sized for.
    keys_per_generation: usize,
}

impl GhostFilter {
    /// Sets the depth in weight units and the number of keys that depth
    /// holds (equal in count mode; fewer in byte mode). Resizing clears.
    pub(crate) fn resize(&mut self, depth: u64, keys: usize) {
        let keys_per_generation = keys.div_ceil(2).max(8);
        self.generation_weight = depth.div_ceil(2).max(1);
        if keys_per_generation != self.keys_per_generation {
            self.keys_per_generation = keys_per_generation;
            let words = (keys_per_generation * BITS_PER_KEY)
                .div_ceil(64)
                .next_power_of_two()
                .max(BLOCK_WORDS);
            self.generations = [vec![0; words], vec![0; words]];
            self.filled = 0;
        }
    }

    /// Remembers an evicted key of `weight` units.
    pub(crate) fn insert(&mut self, hash: u64, weight: u32) {
        if self.generations[0].is_empty() {
            return;
        }
        let bits = &mut self.generations[self.current];
        for (word, bit) in probes(hash, bits.len()) {
            bits[word] |= bit;
        }
        self.filled += u64::from(weight);
        if self.filled >= self.generation_weight {
            self.current ^= 1;
            self.generations[self.current].fill(0);
            self.filled = 0;
        }
    }

    /// True if the key was (probably) evicted recently.
    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.generations
            .iter()
            .any(|bits| !bits.is_empty() && probes(hash, bits.len()).all(|(word, bit)| bits[word] & bit != 0))
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.generations.iter().map(|g| g.capacity() * 8).sum()
    }
}

/// Words in one block: a 64-byte cache line.
const BLOCK_WORDS: usize = 8;

/// The `PROBES` (word, bit) positions of a key: a block chosen by the high
/// half of the mixed hash, bits in it by double hashing of the low half.
fn probes(hash: u64, words: usize) -> impl Iterator<Item = (usize, u64)> {
    let mixed = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (hash >> 29);
    let block = ((mixed >> 40) as usize & (words / BLOCK_WORDS - 1)) * BLOCK_WORDS;
    let h1 = mixed as u32;
    let h2 = ((mixed as u32) >> 16 | (mixed >> 24) as u32) | 1;
    (0..PROBES).map(move |i| {
        let bit = h1.wrapping_add(i.wrapping_mul(h2)) as usize % (BLOCK_WORDS * 64);
        (block + bit / 64, 1u64 << (bit % 64))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> u64 {
        i.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x5555
    }

    #[test]
    fn remembers_the_last_half_depth_at_least() {
        let mut ghost = GhostFilter::default();
        ghost.resize(100, 100);
        for i in 0..1000 {
            ghost.insert(key(i), 1);
        }
        for i in 950..1000 {
            assert!(ghost.contains(key(i)), "recent key {i} forgotten");
        }
        let old = (0..800).filter(|&i| ghost.contains(key(i))).count();
        assert!(old < 40, "{old} of 800 old keys still look like ghosts");
    }

    #[test]
    fn false_positives_are_rare() {
        let mut ghost = GhostFilter::default();
        ghost.resize(2000, 2000);
        for i in 0..1000 {
            ghost.insert(key(i), 1);
        }
        let false_hits = (1_000_000..1_100_000).filter(|&i| ghost.contains(key(i))).count();
        assert!(false_hits < 3000, "{false_hits} false positives in 100000");
    }

    #[test]
    fn depth_counts_weight() {
        let mut ghost = GhostFilter::default();
        ghost.resize(1000, 10);
        ghost.insert(key(1), 400);
        ghost.insert(key(2), 400);
        // 800 units passed the half depth: the first generation rotated.
        ghost.insert(key(3), 400);
        assert!(ghost.contains(key(1)) && ghost.contains(key(3)));
        ghost.insert(key(4), 400);
        ghost.insert(key(5), 400);
        assert!(!ghost.contains(key(1)));
    }
}
