//! Cluster members: an address and a weight.

use std::fmt;
use std::str::FromStr;

use crate::RingError;

/// memcached's standard port. libmemcached leaves it out of ketama point
/// labels (`host-i` instead of `host:port-i`), so it matters for placement.
pub const MEMCACHED_DEFAULT_PORT: u16 = 11211;

/// One cache server in a pool.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Host name or IP address, as the operator wrote it (placement hashes
    /// this text, so every client must spell a member the same way).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Relative share of keys (ketama and rendezvous honour it; jump does
    /// not). Must be at least 1.
    pub weight: u32,
}

impl Member {
    /// A member of weight 1.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Member {
            host: host.into(),
            port,
            weight: 1,
        }
    }

    /// The same member with `weight`.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// `host:port`: the member's identity. Two members with the same
    /// address are the same member.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)?;
        if self.weight != 1 {
            write!(f, "*{}", self.weight)?;
        }
        Ok(())
    }
}

impl FromStr for Member {
    type Err = RingError;

    /// `host:port` or `host:port*weight`; IPv6 hosts in brackets
    /// (`[::1]:7379`).
    fn from_str(text: &str) -> Result<Self, RingError> {
        let bad = |why: &str| RingError::BadMember {
            text: text.to_owned(),
            why: why.to_owned(),
        };
        let (address, weight) = match text.rsplit_once('*') {
            Some((address, weight)) => (
                address,
                weight
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| bad("the weight after * must be a whole number"))?,
            ),
            None => (text, 1),
        };
        let (host, port) = address
            .trim()
            .rsplit_once(':')
            .ok_or_else(|| bad("expected host:port"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port = port.parse::<u16>().map_err(|_| bad("the port must be 1-65535"))?;
        if port == 0 {
            return Err(bad("the port must be 1-65535"));
        }
        if weight == 0 {
            return Err(bad("the weight must be at least 1"));
        }
        Ok(Member {
            host: host.to_owned(),
            port,
            weight,
        })
    }
}

/// Checks a member list: not empty is not required (an empty pool places
/// nothing), but addresses must be distinct and weights positive.
pub(crate) fn validate(members: &[Member]) -> Result<(), RingError> {
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    for member in members {
        if member.weight == 0 {
            return Err(RingError::BadMember {
                text: member.address(),
                why: "the weight must be at least 1".into(),
            });
        }
        if member.port == 0 {
            return Err(RingError::BadMember {
                text: member.address(),
                why: "the port must be 1-65535".into(),
            });
        }
        if !seen.insert((member.host.as_str(), member.port)) {
            return Err(RingError::Duplicate(member.address()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse() {
        assert_eq!(
            "10.0.1.1:11211".parse::<Member>().unwrap(),
            Member::new("10.0.1.1", 11211)
        );
        assert_eq!(
            "cache-a:7379*3".parse::<Member>().unwrap(),
            Member::new("cache-a", 7379).with_weight(3)
        );
        assert_eq!("[::1]:7379".parse::<Member>().unwrap(), Member::new("::1", 7379));
        for bad in ["nohost", ":7379", "h:0", "h:99999", "h:1*0", "h:1*x"] {
            assert!(bad.parse::<Member>().is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicates_are_refused() {
        let members = [Member::new("a", 1), Member::new("a", 1).with_weight(2)];
        assert!(matches!(validate(&members), Err(RingError::Duplicate(_))));
    }
}
