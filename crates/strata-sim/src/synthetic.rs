//! Seeded synthetic workloads, for users without a trace.
//!
//! # Grammar
//!
//! ```text
//! SPEC  = DIST ["," PARAM]...
//! DIST  = "zipf:" ALPHA | "uniform"
//! PARAM = "keys=" N            distinct keys drawn from DIST (default 100000)
//!       | "requests=" N        total requests (default 10 × keys)
//!       | "scan=" SHARE ["/" LEN]
//!       | "loop=" SHARE ["/" LEN]
//!       | "size=" BYTES | "size=" MIN "-" MAX
//!       | "seed=" N            (default 1)
//! SHARE = a fraction such as 0.1, or a percentage such as 10%
//! ```
//!
//! - `zipf:ALPHA`: key of popularity rank `r` drawn with probability
//!   ∝ 1/r^ALPHA (ALPHA ≥ 0; 0 is uniform, ~0.6–1.0 is typical of caches).
//! - `scan=SHARE/LEN`: SHARE of all requests belong to scans, runs of LEN
//!   requests to keys never seen before nor after (a backup, a batch job).
//!   LEN defaults to keys/10.
//! - `loop=SHARE/LEN`: SHARE of all requests belong to loops, each a pass in
//!   order over one fixed set of LEN keys, distinct from the Zipf keys (a
//!   periodic job re-reading its working set). LEN defaults to keys/10.
//! - `size=`: object sizes, used in byte mode only: one size for all, or
//!   each key's size drawn log-uniformly from MIN..=MAX once (sizes do not
//!   change between requests). Defaults to 1.
//!
//! Scan and loop runs are placed at uniformly random points of the Zipf
//! stream. Everything is drawn from one RNG seeded with `seed`, so a spec
//! always generates the same workload.

use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

use crate::Error;
use crate::trace::{Request, SizeMode, Trace, key_hash};

/// The most requests a synthetic workload may have (16 bytes each in memory).
pub const MAX_REQUESTS: u64 = 1_000_000_000;

/// The workload `strata sim` runs when given no trace and no spec.
pub const DEFAULT_SPEC: &str = "zipf:0.8,keys=100000,requests=1000000,scan=0.1/20000,loop=0.1/5000";

/// A parsed synthetic workload spec.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// The spec as written; it names the workload in reports.
    pub text: String,
    /// Zipf exponent; 0 for uniform.
    pub alpha: f64,
    /// Distinct keys in the popularity distribution.
    pub keys: u64,
    /// Total requests.
    pub requests: u64,
    /// Scans mixed in, if any.
    pub scan: Option<Runs>,
    /// Loops mixed in, if any.
    pub loops: Option<Runs>,
    /// Object sizes in byte mode.
    pub size: ObjectSize,
    /// RNG seed.
    pub seed: u64,
}

/// Runs of a pattern (scan or loop) mixed into the stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Runs {
    /// Fraction of all requests that belong to such runs, in `0..=1`.
    pub share: f64,
    /// Requests per run (for a loop: the size of its key set).
    pub len: u64,
}

/// How big synthetic objects are in byte mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectSize {
    /// Every object has this size.
    Fixed(u32),
    /// Each key's size is drawn log-uniformly from `min..=max`, once.
    LogUniform {
        /// Smallest size.
        min: u32,
        /// Largest size.
        max: u32,
    },
}

impl FromStr for SyntheticSpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let err = |reason: String| Error::Synthetic {
            spec: text.to_owned(),
            reason,
        };
        let mut parts = text.trim().split(',').map(str::trim);
        let head = parts.next().unwrap_or_default();
        let alpha = match head.split_once(':') {
            Some((dist, alpha)) if dist.eq_ignore_ascii_case("zipf") => {
                let alpha: f64 = alpha
                    .parse()
                    .map_err(|_| err(format!("zipf exponent {alpha:?} is not a number")))?;
                if !(alpha.is_finite() && alpha >= 0.0) {
                    return Err(err(format!("zipf exponent {alpha} must be 0 or more")));
                }
                alpha
            }
            None if head.eq_ignore_ascii_case("uniform") => 0.0,
            None if head.eq_ignore_ascii_case("zipf") => {
                return Err(err("zipf needs an exponent, as in zipf:0.8".into()));
            }
            _ => {
                return Err(err(format!(
                    "unknown distribution {head:?} (known: zipf:ALPHA, uniform)"
                )));
            }
        };
        let mut keys = None;
        let mut requests = None;
        let mut scan = None;
        let mut loops = None;
        let mut size = None;
        let mut seed = None;
        for part in parts {
            let Some((name, value)) = part.split_once('=') else {
                return Err(err(format!("expected NAME=VALUE, found {part:?}")));
            };
            let (name, value) = (name.trim(), value.trim());
            let duplicate = || err(format!("{name} given twice"));
            match name.to_ascii_lowercase().as_str() {
                "keys" => set_once(&mut keys, positive(name, value).map_err(&err)?).ok_or_else(duplicate)?,
                "requests" => set_once(&mut requests, positive(name, value).map_err(&err)?).ok_or_else(duplicate)?,
                "scan" => set_once(&mut scan, runs(name, value).map_err(&err)?).ok_or_else(duplicate)?,
                "loop" => set_once(&mut loops, runs(name, value).map_err(&err)?).ok_or_else(duplicate)?,
                "size" => set_once(&mut size, object_size(value).map_err(&err)?).ok_or_else(duplicate)?,
                "seed" => set_once(
                    &mut seed,
                    value
                        .parse::<u64>()
                        .map_err(|_| err(format!("seed {value:?} is not a whole number")))?,
                )
                .ok_or_else(duplicate)?,
                _ => {
                    return Err(err(format!(
                        "unknown parameter {name:?} (known: keys, requests, scan, loop, size, seed)"
                    )));
                }
            }
        }
        let keys = keys.unwrap_or(100_000);
        let requests = requests.unwrap_or(keys.saturating_mul(10));
        if requests > MAX_REQUESTS {
            return Err(err(format!(
                "{requests} requests is more than the {MAX_REQUESTS} supported"
            )));
        }
        let default_len = (keys / 10).max(1);
        let with_len = |runs: Option<(f64, Option<u64>)>| {
            runs.map(|(share, len)| Runs {
                share,
                len: len.unwrap_or(default_len),
            })
        };
        let (scan, loops) = (with_len(scan), with_len(loops));
        let shares = scan.map_or(0.0, |r| r.share) + loops.map_or(0.0, |r| r.share);
        if shares > 1.0 {
            return Err(err(format!("scan and loop shares add up to {shares}, more than 1")));
        }
        Ok(SyntheticSpec {
            text: text.trim().to_owned(),
            alpha,
            keys,
            requests,
            scan,
            loops,
            size: size.unwrap_or(ObjectSize::Fixed(1)),
            seed: seed.unwrap_or(1),
        })
    }
}

/// Stores `value` unless `slot` already holds one; `None` on a duplicate.
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

fn positive(name: &str, value: &str) -> Result<u64, String> {
    match value.replace('_', "").parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name} must be a whole number above 0, found {value:?}")),
    }
}

fn runs(name: &str, value: &str) -> Result<(f64, Option<u64>), String> {
    let (share, len) = match value.split_once('/') {
        Some((share, len)) => (share.trim(), Some(positive(&format!("{name} length"), len.trim())?)),
        None => (value, None),
    };
    let parsed = match share.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => share.parse::<f64>(),
    };
    match parsed {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok((share, len)),
        _ => Err(format!(
            "{name} share {share:?} must be a fraction in 0..=1 or a percentage, as in {name}=0.1/1000"
        )),
    }
}

fn object_size(value: &str) -> Result<ObjectSize, String> {
    let parse = |text: &str| match text.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "size {text:?} must be a whole number of bytes in 1..=4294967295"
        )),
    };
    match value.split_once('-') {
        Some((min, max)) => {
            let (min, max) = (parse(min)?, parse(max)?);
            if min > max {
                return Err(format!("size range {min}-{max} is empty"));
            }
            Ok(ObjectSize::LogUniform { min, max })
        }
        None => Ok(ObjectSize::Fixed(parse(value)?)),
    }
}

/// Where a request's key comes from; the tag keeps the key spaces apart.
#[derive(Clone, Copy)]
enum Source {
    Popular = 0,
    Scan = 1,
    Loop = 2,
}

fn key_of(source: Source, n: u64) -> u64 {
    let mut token = [0u8; 9];
    token[0] = source as u8;
    token[1..].copy_from_slice(&n.to_le_bytes());
    key_hash(&token)
}

impl SyntheticSpec {
    /// Generates the workload; sizes are 1 in count mode.
    pub fn generate(&self, mode: SizeMode) -> Trace {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let scan_requests = self.scan.map_or(0, |r| (r.share * self.requests as f64).round() as u64);
        let loop_requests = self
            .loops
            .map_or(0, |r| (r.share * self.requests as f64).round() as u64);
        let loop_requests = loop_requests.min(self.requests - scan_requests);
        let popular_requests = self.requests - scan_requests - loop_requests;

        // Runs, each with the point of the popular stream it comes before.
        let mut runs: Vec<(u64, Source, u64)> = Vec::new();
        for (source, total, pattern) in [
            (Source::Scan, scan_requests, self.scan),
            (Source::Loop, loop_requests, self.loops),
        ] {
            let Some(pattern) = pattern else { continue };
            let mut left = total;
            while left > 0 {
                let len = left.min(pattern.len);
                runs.push((rng.random_range(0..=popular_requests), source, len));
                left -= len;
            }
        }
        runs.sort_by_key(|&(at, source, _)| (at, source as u8));

        let popularity = Popularity::new(self.alpha, self.keys);
        let mut requests = Vec::with_capacity(self.requests as usize);
        let mut next_scan_key = 0u64;
        let mut runs = runs.into_iter().peekable();
        for position in 0..=popular_requests {
            while let Some(&(_, source, len)) = runs.peek().filter(|run| run.0 == position) {
                runs.next();
                for i in 0..len {
                    let key = match source {
                        Source::Scan => {
                            next_scan_key += 1;
                            key_of(Source::Scan, next_scan_key)
                        }
                        _ => key_of(Source::Loop, i),
                    };
                    requests.push(Request {
                        key,
                        size: self.size_of(key, mode),
                    });
                }
            }
            if position < popular_requests {
                let key = key_of(Source::Popular, popularity.sample(&mut rng));
                requests.push(Request {
                    key,
                    size: self.size_of(key, mode),
                });
            }
        }
        Trace {
            name: self.text.clone(),
            requests,
        }
    }

    fn size_of(&self, key: u64, mode: SizeMode) -> u32 {
        match (mode, self.size) {
            (SizeMode::Count, _) => 1,
            (SizeMode::Bytes, ObjectSize::Fixed(size)) => size,
            (SizeMode::Bytes, ObjectSize::LogUniform { min, max }) => {
                // A per-key fraction in [0, 1), fixed by key and seed.
                let fraction = (splitmix64(key ^ self.seed) >> 11) as f64 / (1u64 << 53) as f64;
                let (low, high) = (f64::from(min).ln(), f64::from(max).ln());
                ((low + fraction * (high - low)).exp().round() as u32).clamp(min, max)
            }
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Draws popularity ranks in `1..=keys`.
enum Popularity {
    Uniform(u64),
    Zipf(Zipf<f64>),
}

impl Popularity {
    fn new(alpha: f64, keys: u64) -> Self {
        match Zipf::new(keys as f64, alpha) {
            Ok(zipf) if alpha > 0.0 => Popularity::Zipf(zipf),
            // alpha = 0 is uniform; the parser rules out invalid parameters.
            _ => Popularity::Uniform(keys),
        }
    }

    fn sample(&self, rng: &mut StdRng) -> u64 {
        match self {
            Popularity::Uniform(keys) => rng.random_range(1..=*keys),
            Popularity::Zipf(zipf) => zipf.sample(rng) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SyntheticSpec, String> {
        text.parse::<SyntheticSpec>().map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_full_grammar() {
        let spec = parse("zipf:0.9, keys=1000,requests=5000,scan=10%/200,loop=0.05,size=100-4000,seed=7").unwrap();
        assert_eq!(spec.alpha, 0.9);
        assert_eq!((spec.keys, spec.requests, spec.seed), (1000, 5000, 7));
        assert_eq!(spec.scan, Some(Runs { share: 0.1, len: 200 }));
        assert_eq!(spec.loops, Some(Runs { share: 0.05, len: 100 }));
        assert_eq!(spec.size, ObjectSize::LogUniform { min: 100, max: 4000 });
        let spec = parse("uniform,keys=10").unwrap();
        assert_eq!((spec.alpha, spec.requests, spec.seed), (0.0, 100, 1));
        assert!(parse(DEFAULT_SPEC).is_ok());
    }

    #[test]
    fn reports_what_is_wrong() {
        for (text, expected) in [
            ("zipf", "needs an exponent"),
            ("zipf:x", "\"x\" is not a number"),
            ("zipf:-1", "must be 0 or more"),
            ("pareto:1", "unknown distribution \"pareto:1\""),
            ("zipf:1,keys=0", "keys must be a whole number above 0"),
            ("zipf:1,keys=10,keys=20", "keys given twice"),
            ("zipf:1,colour=red", "unknown parameter \"colour\""),
            ("zipf:1,requests", "expected NAME=VALUE"),
            ("zipf:1,scan=2", "scan share \"2\""),
            ("zipf:1,scan=0.6,loop=0.6", "more than 1"),
            ("zipf:1,loop=0.1/0", "loop length must be"),
            ("zipf:1,size=9-3", "is empty"),
            ("zipf:1,requests=2000000000", "more than the"),
        ] {
            let message = parse(text).unwrap_err();
            assert!(message.contains(expected), "{text}: {message}");
            assert!(
                message.starts_with(&format!("invalid synthetic workload {text:?}")),
                "{message}"
            );
        }
    }

    #[test]
    fn generates_deterministic_workloads_with_the_requested_mix() {
        let spec = parse("zipf:1.0,keys=500,requests=10000,scan=0.2/100,loop=0.1/50,size=10-1000,seed=3").unwrap();
        let a = spec.generate(SizeMode::Bytes);
        assert_eq!(a.requests, spec.generate(SizeMode::Bytes).requests);
        assert_eq!(a.requests.len(), 10_000);
        assert!(a.requests.iter().all(|r| (10..=1000).contains(&r.size)));
        // Scans bring 2000 keys seen once; loops 50 keys; Zipf at most 500.
        let unique = a.unique_keys();
        assert!((2050..=2550).contains(&unique), "{unique}");
        let other_seed = parse("zipf:1.0,keys=500,requests=10000,scan=0.2/100,loop=0.1/50,seed=4").unwrap();
        assert_ne!(other_seed.generate(SizeMode::Count).requests, a.requests);
        assert!(spec.generate(SizeMode::Count).requests.iter().all(|r| r.size == 1));
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let trace = parse("zipf:1.2,keys=1000,requests=20000")
            .unwrap()
            .generate(SizeMode::Count);
        let top = key_of(Source::Popular, 1);
        let last = key_of(Source::Popular, 1000);
        let count = |key| trace.requests.iter().filter(|r| r.key == key).count();
        assert!(
            count(top) > 50 * count(last).max(1),
            "{} vs {}",
            count(top),
            count(last)
        );
    }
}
