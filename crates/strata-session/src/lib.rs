//! # strata-session
//!
//! The plumbing every strata port and process shares, written once:
//!
//! - [`admin`]: the one way to serve Prometheus `/metrics` (and `/healthz`);
//! - [`process`]: `/proc` readings — CPU time and resident memory, of this
//!   process or another;
//! - [`secret`]: [`Secret`], the one type for every password strata holds.

pub mod admin;
pub mod process;
pub mod secret;

pub use secret::Secret;
