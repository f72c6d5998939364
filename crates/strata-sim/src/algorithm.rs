//! What the simulator can run: every eviction policy, and two offline
//! algorithms.

use std::fmt;
use std::str::FromStr;

use strata_store::PolicyKind;

use crate::Error;

/// An online eviction policy or an offline algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// One of strata's policies, driven through `strata_store::Replayer`.
    Policy(PolicyKind),
    /// Belady's MIN allowed to bypass: the offline optimum in count mode.
    /// See [`crate::oracle::Opt`].
    Opt,
    /// Belady always admitting, as libCacheSim's `Belady`.
    /// See [`crate::oracle::Belady`].
    Belady,
}

impl Algorithm {
    /// Every policy, then `opt` and `belady`: what `all` means.
    pub fn all() -> Vec<Algorithm> {
        PolicyKind::ALL
            .into_iter()
            .map(Algorithm::Policy)
            .chain([Algorithm::Opt, Algorithm::Belady])
            .collect()
    }

    /// The name used in flags and reports.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Policy(kind) => kind.name(),
            Algorithm::Opt => "opt",
            Algorithm::Belady => "belady",
        }
    }

    /// True for the offline algorithms, which need the trace's future.
    pub fn is_offline(self) -> bool {
        !matches!(self, Algorithm::Policy(_))
    }

    /// Parses a comma-separated list such as `lru,arc,opt` or `all`;
    /// duplicates are dropped, the first occurrence keeps its place.
    pub fn parse_list(text: &str) -> Result<Vec<Algorithm>, Error> {
        let mut list = Vec::new();
        for token in text.split(',') {
            let token = token.trim();
            if token.is_empty() {
                return Err(Error::UnknownAlgorithm(text.to_owned()));
            }
            let parsed = if token.eq_ignore_ascii_case("all") {
                Algorithm::all()
            } else {
                vec![token.parse()?]
            };
            for algorithm in parsed {
                if !list.contains(&algorithm) {
                    list.push(algorithm);
                }
            }
        }
        Ok(list)
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "opt" | "min" => Ok(Algorithm::Opt),
            "belady" => Ok(Algorithm::Belady),
            _ => s
                .parse::<PolicyKind>()
                .map(Algorithm::Policy)
                .map_err(|_| Error::UnknownAlgorithm(s.trim().to_owned())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The policy names, comma-separated, for messages.
pub(crate) fn policy_names() -> String {
    PolicyKind::ALL.map(PolicyKind::name).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_dedupe_and_expand_all() {
        let list = Algorithm::parse_list("lru, opt,LRU,belady").unwrap();
        assert_eq!(
            list,
            [Algorithm::Policy(PolicyKind::Lru), Algorithm::Opt, Algorithm::Belady]
        );
        let all = Algorithm::parse_list("all").unwrap();
        assert_eq!(all.len(), PolicyKind::ALL.len() + 2);
        assert_eq!(Algorithm::parse_list("opt,all").unwrap()[0], Algorithm::Opt);
        for algorithm in all {
            assert_eq!(algorithm.name().parse::<Algorithm>().unwrap(), algorithm);
        }
    }

    #[test]
    fn unknown_names_are_reported_with_the_known_ones() {
        let err = Algorithm::parse_list("lru,mru").unwrap_err().to_string();
        assert!(err.contains("\"mru\""), "{err}");
        assert!(err.contains("sieve") && err.contains("belady"), "{err}");
        assert!(Algorithm::parse_list("lru,").is_err());
    }
}
