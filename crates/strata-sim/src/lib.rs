//! # strata-sim
//!
//! The trace simulator behind `strata sim`: strata's eviction policies
//! against Belady's offline bounds, on trace files or synthetic workloads,
//! with reports and plots. (The load generator behind `strata bench` is
//! `strata-load`; the consistency checker behind `strata check` is
//! `strata-check`.)
//!
//! A simulation replays workloads (trace files, or generated ones) through
//! every chosen algorithm at every chosen capacity, each run a cold cache,
//! and counts hits and misses. Online policies are strata's own, driven by
//! `strata_store::Replayer`, so the simulator measures exactly the code the
//! store runs; `opt` and `belady` are offline algorithms that read the
//! future of the trace.
//!
//! ```
//! use strata_sim::{Algorithm, CapacitySpec, Plan, SizeMode, SyntheticSpec, simulate};
//!
//! let spec: SyntheticSpec = "zipf:0.9,keys=1000,requests=20000,seed=7".parse()?;
//! let trace = spec.generate(SizeMode::Count);
//! let plan = Plan {
//!     algorithms: Algorithm::parse_list("lru,opt")?,
//!     capacities: CapacitySpec::parse_list("100,10%", SizeMode::Count)?,
//!     mode: SizeMode::Count,
//!     threads: 0,
//! };
//! let report = simulate(&[trace], &plan, &())?;
//! let opt = report.workloads[0].get(Algorithm::Opt, 100).unwrap();
//! assert!(opt.hit_ratio > 0.3);
//! # Ok::<(), strata_sim::Error>(())
//! ```
//!
//! # Layout
//!
//! - [`trace`]: reading traces (plain or gzip, count or byte mode);
//! - [`reference`]: the reference hit-ratio tables shipped with the traces,
//!   for comparing a policy with the best classical policy and with OPT;
//! - [`synthetic`]: the `--synthetic` grammar and its seeded generator;
//! - [`capacity`]: capacities as written (`1000`, `128M`, `5%`);
//! - [`algorithm`]: the names `--policy` accepts;
//! - [`oracle`]: next-use annotation, and the offline `opt` and `belady`;
//! - [`engine`]: the plan, its parallel run, and the report it yields;
//! - [`report`]: table, CSV and JSON output;
//! - [`plot`]: hit ratio against capacity as SVG;
//! - [`progress`]: the terminal progress bar;
//! - [`error`]: the crate's error type.

pub mod algorithm;
pub mod capacity;
pub mod engine;
pub mod error;
pub mod oracle;
pub mod plot;
pub mod progress;
pub mod reference;
pub mod report;
pub mod synthetic;
pub mod trace;

pub use algorithm::Algorithm;
pub use capacity::CapacitySpec;
pub use engine::{Measurement, Plan, Progress, Report, WorkloadReport, simulate};
pub use error::Error;
pub use report::Format;
pub use synthetic::SyntheticSpec;
pub use trace::{SizeMode, Trace};
