//! The cluster file: pools of members and the placement scheme, in TOML.
//!
//! ```toml
//! scheme = "ketama"              # ketama | ketama-spy | ketama-exact | jump | rendezvous | bounded[:EPSILON]
//!
//! [pools.main]
//! nodes = ["10.0.0.1:7311", "10.0.0.2:7311*2", { addr = "10.0.0.3:7311", weight = 1 }]
//!
//! [pools.gutter]                 # spares that take a down node's keys, briefly
//! nodes = ["10.0.0.9:7311"]
//! ```
//!
//! A node is `host:port`, optionally `*weight`, or a table with `addr` and
//! `weight`. The `main` pool is required; other pools are optional. Parsing
//! only: reading the file and watching it for changes is the caller's.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::RingError;
use crate::member::{Member, validate};
use crate::ring::Scheme;

/// Why a cluster file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Not TOML, or not this shape.
    #[error("cluster config: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A node or the scheme is wrong.
    #[error("cluster config: {0}")]
    Ring(#[from] RingError),
    /// There is no `[pools.main]`.
    #[error("cluster config: no [pools.main] with nodes")]
    NoMainPool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    #[serde(default)]
    scheme: Option<String>,
    #[serde(default)]
    pools: BTreeMap<String, RawPool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    nodes: Vec<RawNode>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawNode {
    Text(String),
    Table { addr: String, weight: Option<u32> },
}

/// A parsed cluster file.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// How keys are placed in every pool.
    pub scheme: Scheme,
    /// Pools by name; `main` is always present.
    pub pools: BTreeMap<String, Vec<Member>>,
}

impl ClusterConfig {
    /// Parses the TOML text of a cluster file.
    pub fn from_toml(text: &str) -> Result<Self, ClusterError> {
        let raw: RawCluster = toml::from_str(text)?;
        let scheme = match raw.scheme {
            Some(name) => name.parse()?,
            None => Scheme::default(),
        };
        let mut pools = BTreeMap::new();
        for (name, pool) in raw.pools {
            let mut members = Vec::with_capacity(pool.nodes.len());
            for node in pool.nodes {
                let member = match node {
                    RawNode::Text(text) => text.parse::<Member>()?,
                    RawNode::Table { addr, weight } => {
                        let member = addr.parse::<Member>()?;
                        match weight {
                            Some(weight) => member.with_weight(weight),
                            None => member,
                        }
                    }
                };
                members.push(member);
            }
            validate(&members)?;
            pools.insert(name, members);
        }
        if pools.get("main").is_none_or(|main| main.is_empty()) {
            return Err(ClusterError::NoMainPool);
        }
        Ok(ClusterConfig { scheme, pools })
    }

    /// A main pool of `nodes` (`host:port[:weight]`), the default scheme
    /// and no gutter.
    pub fn from_nodes<S: AsRef<str>>(nodes: &[S]) -> Result<Self, ClusterError> {
        let members = nodes
            .iter()
            .map(|node| node.as_ref().parse::<Member>())
            .collect::<Result<Vec<_>, _>>()?;
        if members.is_empty() {
            return Err(ClusterError::NoMainPool);
        }
        Ok(ClusterConfig {
            scheme: Scheme::default(),
            pools: BTreeMap::from([("main".to_owned(), members)]),
        })
    }

    /// The main pool.
    pub fn main(&self) -> &[Member] {
        self.pools.get("main").map_or(&[], Vec::as_slice)
    }

    /// The gutter pool (empty if none).
    pub fn gutter(&self) -> &[Member] {
        self.pools.get("gutter").map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_parse_in_both_node_forms() {
        let config = ClusterConfig::from_toml(
            r#"
            scheme = "rendezvous"
            [pools.main]
            nodes = ["127.0.0.1:7311", "127.0.0.1:7312*2", { addr = "127.0.0.1:7313", weight = 3 }]
            [pools.gutter]
            nodes = ["127.0.0.1:7320"]
            "#,
        )
        .unwrap();
        assert_eq!(config.scheme, Scheme::Rendezvous);
        let weights: Vec<u32> = config.main().iter().map(|m| m.weight).collect();
        assert_eq!(weights, [1, 2, 3]);
        assert_eq!(config.gutter(), [Member::new("127.0.0.1", 7320)]);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        for (text, needle) in [
            ("[pools.gutter]\nnodes = [\"a:1\"]", "no [pools.main]"),
            ("[pools.main]\nnodes = [\"a:1\", \"a:1\"]", "listed twice"),
            ("[pools.main]\nnodes = [\"a\"]", "host:port"),
            (
                "scheme = \"modulo\"\n[pools.main]\nnodes = [\"a:1\"]",
                "unknown placement scheme",
            ),
            ("[pools.main]\nnodez = []", "unknown field"),
        ] {
            let error = ClusterConfig::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }
}
