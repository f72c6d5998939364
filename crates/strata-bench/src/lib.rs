//! # strata-bench
//!
//! Measuring strata: the trace simulator behind `strata sim`, with Belady's
//! offline bounds, synthetic workloads, reports and plots.
//!
//! # Layout
//!
//! - [`trace`]: reading traces (plain or gzip, count or byte mode).

pub mod trace;
