//! The simulation engine: every (workload, algorithm, capacity) cell of a
//! plan, replayed cold and counted.
//!
//! Each cell is an independent job: a fresh cache of one capacity run by one
//! algorithm over one whole workload. Jobs share only read-only data (the
//! requests, and the next-use annotation the offline algorithms need), so
//! they run on a small pool of scoped threads that take the next job from an
//! atomic counter; results are stored by job index, so the report does not
//! depend on the number of threads or on scheduling. The longest workloads
//! are started first, so that two cores finish at about the same time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_store::Replayer;

use crate::Error;
use crate::algorithm::Algorithm;
use crate::capacity::CapacitySpec;
use crate::oracle::{Belady, NextUse, Opt};
use crate::trace::{Request, SizeMode, Trace};

/// Requests replayed between two progress reports.
const PROGRESS_STEP: usize = 1 << 16;

/// What to run on every workload.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Policies and offline algorithms, in report order.
    pub algorithms: Vec<Algorithm>,
    /// Capacities; percentages resolve per workload.
    pub capacities: Vec<CapacitySpec>,
    /// Whether capacities count entries or bytes.
    pub mode: SizeMode,
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
}

/// Receives progress, in requests replayed, from every worker thread.
pub trait Progress: Sync {
    /// `requests` more requests were replayed.
    fn advance(&self, requests: u64);
}

/// No progress reporting.
impl Progress for () {
    fn advance(&self, _requests: u64) {}
}

/// The outcome of one plan.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Count or byte mode.
    pub mode: SizeMode,
    /// One entry per workload, in the order given.
    pub workloads: Vec<WorkloadReport>,
}

/// The outcome for one workload.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WorkloadReport {
    /// The workload's name (trace file stem, or synthetic spec).
    pub name: String,
    /// Requests in the workload.
    pub requests: u64,
    /// Sum of the requests' sizes (equal to `requests` in count mode).
    pub requested_bytes: u64,
    /// Distinct keys.
    pub unique_keys: u64,
    /// Bytes of the distinct objects (equal to `unique_keys` in count mode).
    pub unique_bytes: u64,
    /// The capacities run, resolved to weight units, ascending.
    pub capacities: Vec<u64>,
    /// For each of `capacities`, the capacity as given (`5%`, `1000`); the
    /// first one given when several resolve to the same number.
    pub capacities_given: Vec<String>,
    /// The algorithms run, in report order.
    #[serde(rename = "policies")]
    pub algorithms: Vec<Algorithm>,
    /// One measurement per algorithm and capacity, algorithm-major.
    pub results: Vec<Measurement>,
}

impl WorkloadReport {
    /// The measurement of `algorithm` at `capacity`, if it was run.
    pub fn get(&self, algorithm: Algorithm, capacity: u64) -> Option<&Measurement> {
        self.results
            .iter()
            .find(|m| m.algorithm == algorithm && m.capacity == capacity)
    }
}

/// Hits and misses of one algorithm at one capacity on one workload.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Measurement {
    /// The algorithm (`policy` in CSV and JSON, as in `--policy`).
    #[serde(rename = "policy")]
    pub algorithm: Algorithm,
    /// The capacity in weight units.
    pub capacity: u64,
    /// Requests that hit.
    pub hits: u64,
    /// Requests that missed.
    pub misses: u64,
    /// Hits as a fraction of requests.
    pub hit_ratio: f64,
    /// Sum of the sizes of requests that hit.
    pub hit_bytes: u64,
    /// Sum of the sizes of requests that missed.
    pub miss_bytes: u64,
}

impl Measurement {
    /// Hit bytes as a fraction of requested bytes.
    pub fn byte_hit_ratio(&self) -> f64 {
        ratio(self.hit_bytes, self.hit_bytes + self.miss_bytes)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// One cell of the plan.
#[derive(Clone, Copy, Debug)]
struct Job {
    workload: usize,
    algorithm: Algorithm,
    capacity: u64,
}

/// Runs `plan` on every workload in `traces`.
pub fn simulate(traces: &[Trace], plan: &Plan, progress: &dyn Progress) -> Result<Report, Error> {
    if traces.is_empty() {
        return Err(Error::EmptyPlan("no workload"));
    }
    if plan.algorithms.is_empty() {
        return Err(Error::EmptyPlan("no policy"));
    }
    if plan.capacities.is_empty() {
        return Err(Error::EmptyPlan("no capacity"));
    }
    let needs_future = plan.algorithms.iter().any(|a| a.is_offline());
    let mut workloads = Vec::with_capacity(traces.len());
    let mut next_uses = Vec::with_capacity(traces.len());
    let mut jobs = Vec::new();
    for (index, trace) in traces.iter().enumerate() {
        let footprint = trace.footprint();
        let (capacities, capacities_given) = resolve(&plan.capacities, footprint.units(plan.mode));
        for &algorithm in &plan.algorithms {
            for &capacity in &capacities {
                jobs.push(Job {
                    workload: index,
                    algorithm,
                    capacity,
                });
            }
        }
        next_uses.push(if needs_future {
            Some(NextUse::new(&trace.name, &trace.requests)?)
        } else {
            None
        });
        workloads.push(WorkloadReport {
            name: trace.name.clone(),
            requests: trace.requests.len() as u64,
            requested_bytes: trace.requested_bytes(),
            unique_keys: footprint.keys,
            unique_bytes: footprint.bytes,
            capacities,
            capacities_given,
            algorithms: plan.algorithms.clone(),
            results: Vec::new(),
        });
    }

    // Longest workloads first; the sort is stable, so ties keep plan order.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(traces[jobs[j].workload].requests.len()));
    let threads = match plan.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(jobs.len());
    let results: Mutex<Vec<Option<Measurement>>> = Mutex::new(vec![None; jobs.len()]);
    let taken = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while let Some(&j) = order.get(taken.fetch_add(1, Ordering::Relaxed)) {
                    let job = jobs[j];
                    let trace = &traces[job.workload];
                    let next_use = next_uses[job.workload].as_ref();
                    let measurement = run(trace, next_use, job.algorithm, job.capacity, plan.mode, progress);
                    // A poisoned lock means another worker panicked; the
                    // scope re-raises that panic, so the value is moot.
                    if let Ok(mut results) = results.lock() {
                        results[j] = Some(measurement);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    for (job, measurement) in jobs.iter().zip(results) {
        let measurement = measurement.expect("every job ran");
        workloads[job.workload].results.push(measurement);
    }
    Ok(Report {
        mode: plan.mode,
        workloads,
    })
}

/// Replays `trace` once through `algorithm` at `capacity`. `next_use` must
/// be the trace's annotation when the algorithm is offline.
fn run(
    trace: &Trace,
    next_use: Option<&NextUse>,
    algorithm: Algorithm,
    capacity: u64,
    mode: SizeMode,
    progress: &dyn Progress,
) -> Measurement {
    // Count mode weighs every object 1, whatever sizes the trace carries.
    let weight = |request: Request| match mode {
        SizeMode::Count => 1,
        SizeMode::Bytes => request.size,
    };
    let counts = match algorithm {
        Algorithm::Policy(kind) => {
            let mut cache = Replayer::new(kind, capacity);
            replay(&trace.requests, progress, |_, request| {
                cache.access(request.key, weight(request))
            })
        }
        Algorithm::Opt => {
            let mut cache = Opt::new(next_use.expect("offline algorithms get the annotation"), capacity);
            replay(&trace.requests, progress, |index, request| {
                cache.access(index, weight(request))
            })
        }
        Algorithm::Belady => {
            let mut cache = Belady::new(next_use.expect("offline algorithms get the annotation"), capacity);
            replay(&trace.requests, progress, |index, request| {
                cache.access(index, weight(request))
            })
        }
    };
    Measurement {
        algorithm,
        capacity,
        hits: counts.hits,
        misses: counts.misses,
        hit_ratio: ratio(counts.hits, counts.hits + counts.misses),
        hit_bytes: counts.hit_bytes,
        miss_bytes: counts.miss_bytes,
    }
}

#[derive(Default)]
struct Counts {
    hits: u64,
    misses: u64,
    hit_bytes: u64,
    miss_bytes: u64,
}

/// Feeds every request to `access` (which answers hit or miss) and counts.
fn replay(requests: &[Request], progress: &dyn Progress, mut access: impl FnMut(usize, Request) -> bool) -> Counts {
    let mut counts = Counts::default();
    for (chunk_index, chunk) in requests.chunks(PROGRESS_STEP).enumerate() {
        let base = chunk_index * PROGRESS_STEP;
        for (offset, &request) in chunk.iter().enumerate() {
            if access(base + offset, request) {
                counts.hits += 1;
                counts.hit_bytes += u64::from(request.size);
            } else {
                counts.misses += 1;
                counts.miss_bytes += u64::from(request.size);
            }
        }
        progress.advance(chunk.len() as u64);
    }
    counts
}

/// Resolves `capacities` against a footprint: the distinct capacities in
/// weight units, ascending, each with the first capacity as given that
/// resolved to it.
fn resolve(capacities: &[CapacitySpec], footprint: u64) -> (Vec<u64>, Vec<String>) {
    let mut resolved: Vec<(u64, usize)> = capacities
        .iter()
        .enumerate()
        .map(|(given, capacity)| (capacity.resolve(footprint), given))
        .collect();
    resolved.sort_unstable();
    resolved.dedup_by_key(|&mut (units, _)| units);
    resolved
        .into_iter()
        .map(|(units, given)| (units, capacities[given].to_string()))
        .unzip()
}

/// The number of requests `plan` will replay over `traces`, for sizing a
/// progress bar. Capacities that resolve to the same value count once.
pub fn total_work(traces: &[Trace], plan: &Plan) -> u64 {
    traces
        .iter()
        .map(|trace| {
            let (capacities, _) = resolve(&plan.capacities, trace.footprint().units(plan.mode));
            (trace.requests.len() * capacities.len() * plan.algorithms.len()) as u64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_store::PolicyKind;

    fn trace(name: &str, keys: &[u64]) -> Trace {
        Trace {
            name: name.into(),
            requests: keys.iter().map(|&key| Request { key, size: 1 }).collect(),
        }
    }

    #[test]
    fn reports_every_cell_in_plan_order_whatever_the_threads() {
        let traces = [
            trace("short", &[1, 2, 3, 1, 2, 3, 4, 1]),
            trace("long", &(0..1000).map(|i| i % 7 + (i % 3) * 10).collect::<Vec<_>>()),
        ];
        let plan = |threads| Plan {
            algorithms: vec![Algorithm::Policy(PolicyKind::Lru), Algorithm::Opt, Algorithm::Belady],
            capacities: vec![
                CapacitySpec::Units(2),
                CapacitySpec::Percent(50.0),
                CapacitySpec::Units(2),
            ],
            mode: SizeMode::Count,
            threads,
        };
        let one = simulate(&traces, &plan(1), &()).unwrap();
        let many = simulate(&traces, &plan(4), &()).unwrap();
        assert_eq!(
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(&many).unwrap()
        );
        let short = &one.workloads[0];
        assert_eq!(short.capacities, [2]); // 50% of 4 keys is 2 too
        assert_eq!(short.capacities_given, ["2"]);
        assert_eq!(one.workloads[1].capacities, [2, 11]);
        assert_eq!(one.workloads[1].capacities_given, ["2", "50%"]);
        assert_eq!(short.results.len(), 3);
        let lru = short.get(Algorithm::Policy(PolicyKind::Lru), 2).unwrap();
        assert_eq!((lru.hits, lru.misses), (0, 8));
        let opt = short.get(Algorithm::Opt, 2).unwrap();
        assert_eq!(opt.hits, 3); // keep 1 and 2 throughout, then 1 again
        assert_eq!(total_work(&traces, &plan(1)), 8 * 3 + 1000 * 3 * 2);
    }

    #[test]
    fn opt_is_never_below_belady_or_lru_in_count_mode() {
        let keys: Vec<u64> = (0..5000u64).map(|i| (i * 7919) % 613 % ((i % 50) + 1)).collect();
        let traces = [trace("mix", &keys)];
        let plan = Plan {
            algorithms: Algorithm::parse_list("lru,fifo,opt,belady").unwrap(),
            capacities: vec![
                CapacitySpec::Units(1),
                CapacitySpec::Units(5),
                CapacitySpec::Units(20),
                CapacitySpec::Units(100),
            ],
            mode: SizeMode::Count,
            threads: 2,
        };
        let report = simulate(&traces, &plan, &()).unwrap();
        let workload = &report.workloads[0];
        for &capacity in &workload.capacities {
            let opt = workload.get(Algorithm::Opt, capacity).unwrap().hits;
            for other in ["lru", "fifo", "belady"] {
                let hits = workload.get(other.parse().unwrap(), capacity).unwrap().hits;
                assert!(opt >= hits, "{other} beats opt at {capacity}: {hits} > {opt}");
            }
        }
    }

    #[test]
    fn empty_plans_are_errors() {
        let plan = Plan {
            algorithms: vec![],
            capacities: vec![CapacitySpec::Units(1)],
            mode: SizeMode::Count,
            threads: 1,
        };
        assert!(simulate(&[trace("t", &[1])], &plan, &()).is_err());
        assert!(simulate(&[], &plan, &()).is_err());
    }
}
