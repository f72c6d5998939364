//! Offline algorithms: they know the future of the trace.
//!
//! Both need, for every request, when the same key is requested next.
//! [`NextUse`] computes that once per trace in one backward pass (O(n)) and
//! also renames keys to dense ids, so the algorithms index plain vectors
//! instead of hashing. Each algorithm then costs O(log n) per request.
//!
//! - [`Belady`] always admits the requested object and evicts the resident
//!   whose next use is farthest. It reproduces libCacheSim's `Belady`
//!   exactly, including which of several never-again objects leaves first,
//!   which decides byte-mode results.
//! - [`Opt`] is Belady's MIN allowed to bypass: an object whose next use is
//!   farther than every resident's is not admitted. In count mode this is the
//!   optimum, the upper bound no policy can beat.
//!
//! # Layout
//!
//! - this file: [`NextUse`], shared by both;
//! - [`belady`]: the always-admit variant, with libCacheSim's heap;
//! - [`opt`]: the bypassing variant, with its size-aware rule for byte mode.

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
}
