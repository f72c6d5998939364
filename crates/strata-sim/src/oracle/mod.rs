//! Offline algorithms: they know the future of the trace.
//!
//! Both need, for every request, when the same key is requested next.
//! [`NextUse`] computes that once per trace in one backward pass (O(n)) and
//! also renames keys to dense ids, so the algorithms index plain vectors
//! instead of hashing. Each algorithm then costs O(log n) per request.
//!
//! - [`Belady`] always admits the requested object and evicts the resident
//!   whose next use is farthest. It reproduces libCacheSim's `Belady`
//!   exactly, in count and byte mode, down to which of several never-again
//!   objects leaves first.
//! - [`Opt`] is Belady's MIN allowed to bypass: an object whose next use is
//!   farther than every resident's is not admitted. In count mode this is the
//!   optimum, the upper bound no policy can beat.
//!
//! # Layout
//!
//! - this file: [`NextUse`], shared by both;
//! - `belady.rs`: [`Belady`], the always-admit variant, with libCacheSim's heap;
//! - `opt.rs`: [`Opt`], the bypassing variant, with its size-aware rule for byte mode.

mod belady;
mod opt;

pub use belady::Belady;
pub use opt::Opt;

use hashbrown::HashMap;

use crate::Error;
use crate::trace::Request;

/// The request index standing for "never requested again".
///
/// It orders after every real index, which is all the algorithms need
/// (libCacheSim uses `INT64_MAX` the same way).
pub const NEVER: u32 = u32::MAX;

/// Per request: the key's dense id and the index of the key's next request.
#[derive(Clone, Debug)]
pub struct NextUse {
    ids: Vec<u32>,
    next: Vec<u32>,
    keys: usize,
}

impl NextUse {
    /// Annotates `requests`. Fails when there are `NEVER` or more of them,
    /// since indices are stored in 32 bits to halve the memory.
    pub fn new(trace_name: &str, requests: &[Request]) -> Result<Self, Error> {
        let max = NEVER as usize - 1;
        if requests.len() > max {
            return Err(Error::TooLong {
                trace: trace_name.to_owned(),
                requests: requests.len(),
                max,
            });
        }
        let mut dense: HashMap<u64, u32, foldhash::fast::FixedState> =
            HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x6f72_6163));
        let ids: Vec<u32> = requests
            .iter()
            .map(|request| {
                let fresh = dense.len() as u32; // fits: at most requests.len() keys
                *dense.entry(request.key).or_insert(fresh)
            })
            .collect();
        let keys = dense.len();
        let mut last_seen = vec![NEVER; keys];
        let mut next = vec![NEVER; requests.len()];
        for index in (0..requests.len()).rev() {
            let id = ids[index] as usize;
            next[index] = last_seen[id];
            last_seen[id] = index as u32;
        }
        Ok(Self { ids, next, keys })
    }

    /// Number of requests annotated.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no requests.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of distinct keys; ids run from 0 to this, exclusive.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// The dense id of request `index`'s key.
    pub fn id(&self, index: usize) -> u32 {
        self.ids[index]
    }

    /// The index of the next request for the same key as request `index`,
    /// or [`NEVER`].
    pub fn next(&self, index: usize) -> u32 {
        self.next[index]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    pub(crate) fn requests(keys: &[u64]) -> Vec<Request> {
        keys.iter().map(|&key| Request { key, size: 1 }).collect()
    }

    #[test]
    fn next_use_points_at_the_following_request_of_the_same_key() {
        let annotated = NextUse::new("t", &requests(&[7, 8, 7, 9, 8, 7])).unwrap();
        let next: Vec<u32> = (0..6).map(|i| annotated.next(i)).collect();
        assert_eq!(next, [2, 4, 5, NEVER, NEVER, NEVER]);
        assert_eq!(annotated.keys(), 3);
        assert_eq!(annotated.id(0), annotated.id(5));
        assert_ne!(annotated.id(0), annotated.id(1));
    }

    /// A resident of the reference models: key, size, next use.
    type Resident = (u64, u32, u32);

    /// Belady (always admit), naively: a list of residents, scanned.
    fn belady_model(requests: &[Request], capacity: u64) -> u64 {
        let annotated = NextUse::new("t", requests).unwrap();
        let mut residents: Vec<Resident> = Vec::new();
        let mut hits = 0;
        for (i, request) in requests.iter().enumerate() {
            let next = annotated.next(i);
            if let Some(resident) = residents.iter_mut().find(|r| r.0 == request.key) {
                resident.2 = next;
                hits += 1;
                continue;
            }
            if u64::from(request.size) > capacity {
                continue;
            }
            while residents.iter().map(|r| u64::from(r.1)).sum::<u64>() + u64::from(request.size) > capacity {
                let farthest = (0..residents.len()).max_by_key(|&j| residents[j].2).unwrap();
                residents.swap_remove(farthest);
            }
            residents.push((request.key, request.size, next));
        }
        hits
    }

    /// OPT's rule, naively: admit only if residents needed later than the
    /// newcomer weigh enough, then evict the farthest until it fits.
    fn opt_model(requests: &[Request], capacity: u64) -> u64 {
        let annotated = NextUse::new("t", requests).unwrap();
        let mut residents: Vec<Resident> = Vec::new();
        let mut hits = 0;
        for (i, request) in requests.iter().enumerate() {
            let next = annotated.next(i);
            if let Some(resident) = residents.iter_mut().find(|r| r.0 == request.key) {
                resident.2 = next;
                hits += 1;
                continue;
            }
            let used: u64 = residents.iter().map(|r| u64::from(r.1)).sum();
            let size = u64::from(request.size);
            let farther: u64 = residents.iter().filter(|r| r.2 > next).map(|r| u64::from(r.1)).sum();
            if size > capacity || next == NEVER || used + size > capacity + farther {
                continue;
            }
            while residents.iter().map(|r| u64::from(r.1)).sum::<u64>() + size > capacity {
                let farthest = (0..residents.len()).max_by_key(|&j| residents[j].2).unwrap();
                residents.swap_remove(farthest);
            }
            residents.push((request.key, request.size, next));
        }
        hits
    }

    /// The true optimum with unit sizes and bypass, by exhaustive search
    /// over every admit/bypass/victim choice (memoised on the resident set).
    fn optimum(keys: &[u64], capacity: usize) -> u64 {
        fn best(keys: &[u64], i: usize, set: u32, capacity: usize, memo: &mut HashMap<(usize, u32), u64>) -> u64 {
            if i == keys.len() {
                return 0;
            }
            if let Some(&known) = memo.get(&(i, set)) {
                return known;
            }
            let bit = 1 << keys[i];
            let result = if set & bit != 0 {
                1 + best(keys, i + 1, set, capacity, memo)
            } else {
                let mut result = best(keys, i + 1, set, capacity, memo); // bypass
                if (set.count_ones() as usize) < capacity {
                    result = result.max(best(keys, i + 1, set | bit, capacity, memo));
                } else {
                    for victim in (0..32).filter(|v| set & (1 << v) != 0) {
                        let next = (set & !(1 << victim)) | bit;
                        result = result.max(best(keys, i + 1, next, capacity, memo));
                    }
                }
                result
            };
            memo.insert((i, set), result);
            result
        }
        best(keys, 0, 0, capacity, &mut HashMap::new())
    }

    fn run_hits(requests: &[Request], capacity: u64, offline: fn(&NextUse, &[Request], u64) -> u64) -> u64 {
        let annotated = NextUse::new("t", requests).unwrap();
        offline(&annotated, requests, capacity)
    }

    fn belady_hits(annotated: &NextUse, requests: &[Request], capacity: u64) -> u64 {
        let mut cache = Belady::new(annotated, capacity);
        let hits = requests
            .iter()
            .enumerate()
            .filter(|(i, r)| cache.access(*i, r.size))
            .count();
        assert!(cache.used() <= capacity);
        hits as u64
    }

    fn opt_hits(annotated: &NextUse, requests: &[Request], capacity: u64) -> u64 {
        let mut cache = Opt::new(annotated, capacity);
        let hits = requests
            .iter()
            .enumerate()
            .filter(|(i, r)| cache.access(*i, r.size))
            .count();
        assert!(cache.used() <= capacity);
        hits as u64
    }

    /// Traces of up to `len` requests over `keys` keys, each key with a
    /// fixed size in `1..=max_size`.
    fn sized_trace(keys: u64, len: usize, max_size: u32) -> impl Strategy<Value = Vec<Request>> {
        (
            proptest::collection::vec(1..=max_size, keys as usize),
            proptest::collection::vec(0..keys, 1..=len),
        )
            .prop_map(|(sizes, keys)| {
                keys.iter()
                    .map(|&key| Request {
                        key,
                        size: sizes[key as usize],
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn belady_and_opt_match_naive_models_in_byte_mode(
            requests in sized_trace(12, 300, 9),
            capacity in 1u64..40,
        ) {
            prop_assert_eq!(run_hits(&requests, capacity, belady_hits), belady_model(&requests, capacity));
            prop_assert_eq!(run_hits(&requests, capacity, opt_hits), opt_model(&requests, capacity));
        }

        #[test]
        fn opt_is_the_optimum_in_count_mode(
            keys in proptest::collection::vec(0u64..6, 1..=14),
            capacity in 1usize..5,
        ) {
            let requests = requests(&keys);
            let opt = run_hits(&requests, capacity as u64, opt_hits);
            prop_assert_eq!(opt, optimum(&keys, capacity));
            prop_assert!(run_hits(&requests, capacity as u64, belady_hits) <= opt);
        }
    }
}
