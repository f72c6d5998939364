//! The one error type of `strata-sim`.
//!
//! Every message is a single line that names what was wrong with which input
//! (a file and line, a flag's token, a workload spec), because `strata sim`
//! prints it as is.

use crate::trace::TraceError;

/// Why a simulation could not be set up, run or reported.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trace file could not be read or parsed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// A `--capacity` token is not a capacity.
    #[error("invalid capacity {token:?}: {reason}")]
    Capacity {
        /// The token as given.
        token: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--policy` token names no policy or offline algorithm.
    #[error("unknown policy {0:?} (known: {known}, opt, belady, all)", known = crate::algorithm::policy_names())]
    UnknownAlgorithm(String),
    /// A `--synthetic` spec does not follow the grammar.
    #[error("invalid synthetic workload {spec:?}: {reason}")]
    Synthetic {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A workload has more requests than the offline algorithms can index.
    #[error("{trace}: {requests} requests is more than the simulator supports ({max})")]
    TooLong {
        /// The workload's name.
        trace: String,
        /// Its length.
        requests: usize,
        /// The largest supported length.
        max: usize,
    },
    /// The plan has nothing to run (no workload, policy or capacity).
    #[error("nothing to simulate: {0}")]
    EmptyPlan(&'static str),
    /// Drawing the plot failed.
    #[error("plot: {0}")]
    Plot(String),
}
