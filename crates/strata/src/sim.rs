//! `strata sim`: PLACEHOLDER until the simulator lands.

use clap::Args;

/// Flags of `strata sim`.
#[derive(Debug, Args)]
pub struct SimArgs {}

/// Runs the simulator.
pub fn run(_args: SimArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet implemented")
}
