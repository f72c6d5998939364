//! `strata ring`: how a pool's keys spread over its nodes, and what a
//! proposed change would move, before anyone touches a live cluster.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use strata_ring::analysis::{imbalance, movement, shares};
use strata_ring::{ClusterConfig, Member, Scheme, Snapshot};

/// Flags of `strata ring`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Places --keys sample keys (key:0, key:1, ...) with the pool's scheme and prints each node's
share. With --add and/or --remove, also the fraction of keys that would change owner and the
flows between nodes (which node's keys go where), so the cost of a change is known up front.

The cluster file (TOML):

    scheme = \"ketama\"     # ketama (libmemcached) | ketama-spy | ketama-exact | jump | rendezvous | bounded[:EPSILON]
    [pools.main]
    nodes = [\"10.0.0.1:7311\", \"10.0.0.2:7311*2\"]   # host:port[*weight]
    [pools.gutter]
    nodes = [\"10.0.0.9:7311\"]

Examples:
  strata ring --nodes 10.0.0.1:7311,10.0.0.2:7311,10.0.0.3:7311
  strata ring --config cluster.toml --add 10.0.0.4:7311
  strata ring --config cluster.toml --remove 10.0.0.2:7311 --scheme rendezvous --keys 1000000")]
pub struct RingArgs {
    /// The cluster file.
    #[arg(long, value_name = "FILE", required_unless_present = "nodes")]
    config: Option<PathBuf>,
    /// Nodes instead of a file: host:port[*weight], comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "NODES", conflicts_with = "config")]
    nodes: Vec<Member>,
    /// Which pool of the file.
    #[arg(long, default_value = "main", value_name = "NAME")]
    pool: String,
    /// Override the placement scheme.
    #[arg(long, value_name = "SCHEME")]
    scheme: Option<Scheme>,
    /// Propose adding these nodes.
    #[arg(long, value_name = "HOST:PORT[*W]")]
    add: Vec<Member>,
    /// Propose removing these nodes.
    #[arg(long, value_name = "HOST:PORT")]
    remove: Vec<String>,
    /// Sample keys to place.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    keys: u64,
}

fn print_shares(snapshot: &Snapshot, keys: u64) {
    let counts = shares(snapshot, keys);
    let width = snapshot
        .members()
        .iter()
        .map(|m| m.to_string().len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<width$}  {:>10}  {:>7}", "node", "keys", "share");
    for (member, count) in snapshot.members().iter().zip(&counts) {
        println!(
            "{:<width$}  {:>10}  {:>6.2}%",
            member.to_string(),
            count,
            100.0 * *count as f64 / keys.max(1) as f64
        );
    }
    println!("balance: max/mean {:.3}", imbalance(&counts));
}

/// Prints the shares, and the movement of a proposed change.
pub fn run(args: RingArgs) -> anyhow::Result<()> {
    let (mut scheme, members) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let config = ClusterConfig::from_toml(&text).with_context(|| path.display().to_string())?;
            let members = config
                .pools
                .get(&args.pool)
                .with_context(|| format!("{}: no pool {:?}", path.display(), args.pool))?
                .clone();
            (config.scheme, members)
        }
        None => (Scheme::default(), args.nodes.clone()),
    };
    if let Some(chosen) = args.scheme {
        scheme = chosen;
    }
    if args.keys == 0 {
        anyhow::bail!("--keys must be at least 1");
    }
    let before = Snapshot::new(1, scheme, members.clone())?;
    println!("scheme {scheme}, {} nodes, {} sample keys", members.len(), args.keys);
    print_shares(&before, args.keys);
    if args.add.is_empty() && args.remove.is_empty() {
        return Ok(());
    }
    let mut proposed = members;
    for address in &args.remove {
        let before_len = proposed.len();
        proposed.retain(|m| m.address() != *address);
        if proposed.len() == before_len {
            anyhow::bail!("--remove {address}: no such node in the pool");
        }
    }
    proposed.extend(args.add.iter().cloned());
    let after = Snapshot::new(2, scheme, proposed)?;
    println!();
    println!("after the change ({} nodes):", after.members().len());
    print_shares(&after, args.keys);
    let moves = movement(&before, &after, args.keys);
    let ideal = ideal_fraction(before.members().len(), &args);
    println!();
    println!(
        "keys that would move: {} of {} ({:.2}%; a perfect scheme moves {:.2}%)",
        moves.moved,
        moves.keys,
        100.0 * moves.fraction(),
        100.0 * ideal
    );
    for ((from, to), count) in &moves.flows {
        println!(
            "  {from} -> {to}: {count} ({:.2}%)",
            100.0 * *count as f64 / moves.keys as f64
        );
    }
    Ok(())
}

/// What an ideal scheme would move for a change of equal-weight nodes:
/// the removed nodes' share, then the added nodes' share of the new pool.
fn ideal_fraction(before: usize, args: &RingArgs) -> f64 {
    let removed = args.remove.len() as f64;
    let after_removal = before as f64 - removed;
    let added = args.add.len() as f64;
    let lost = if before == 0 { 0.0 } else { removed / before as f64 };
    let gained = if after_removal + added <= 0.0 {
        0.0
    } else {
        added / (after_removal + added)
    };
    lost + (1.0 - lost) * gained
}
