//! # strata-bench
//!
//! Measuring strata: the trace simulator behind `strata sim`, with Belady's
//! offline bounds, synthetic workloads, reports and plots.
//!
//! # Layout
//!
//! - [`trace`]: reading traces (plain or gzip, count or byte mode).
//! - [`reference`]: the reference hit-ratio tables shipped with the traces,
//!   for comparing a policy with the best classical policy and with OPT.

pub mod reference;
pub mod trace;
