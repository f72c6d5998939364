//! Cache capacities as users write them.
//!
//! A capacity is a whole number of weight units (entries in count mode,
//! bytes in byte mode), optionally with a suffix, or a percentage of the
//! workload's footprint (its distinct keys, or the bytes of its distinct
//! objects), which is resolved per workload:
//!
//! | written | count mode | byte mode |
//! |---|---|---|
//! | `1000` | 1,000 entries | 1,000 bytes |
//! | `10k`, `2M`, `1G` | ×1,000, ×1,000,000, ×10⁹ | ×2¹⁰, ×2²⁰, ×2³⁰ (also `KiB`, `MB`, …) |
//! | `1.5G` | 1,500,000,000 | 1,610,612,736 |
//! | `5%` | 5% of distinct keys | 5% of distinct objects' bytes |
//!
//! Entries are counted in decimal, bytes in binary multiples, as cache
//! servers size memory (`128M` is libCacheSim's 128 MiB).

use std::fmt;

use crate::Error;
use crate::trace::SizeMode;

/// One capacity: absolute, or relative to a workload's footprint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CapacitySpec {
    /// A number of weight units.
    Units(u64),
    /// A percentage (above 0) of the footprint.
    Percent(f64),
}

impl CapacitySpec {
    /// Parses one token in `mode`.
    pub fn parse(token: &str, mode: SizeMode) -> Result<CapacitySpec, Error> {
        let err = |reason: &str| Error::Capacity {
            token: token.to_owned(),
            reason: reason.to_owned(),
        };
        let text = token.trim();
        if text.is_empty() {
            return Err(err("empty"));
        }
        if let Some(number) = text.strip_suffix('%') {
            let percent: f64 = number
                .trim()
                .parse()
                .map_err(|_| err("expected a percentage such as 5%"))?;
            if !(percent.is_finite() && percent > 0.0) {
                return Err(err("a percentage must be above 0"));
            }
            return Ok(CapacitySpec::Percent(percent));
        }
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let number = number.replace('_', "");
        let multiplier = multiplier(suffix.trim(), mode).ok_or_else(|| {
            err(match mode {
                SizeMode::Count => "expected entries such as 1000, 10k or 2M, or a percentage such as 5%",
                SizeMode::Bytes => "expected bytes such as 65536, 64k, 128M or 1.5G, or a percentage such as 5%",
            })
        })?;
        let units = if multiplier == 1 {
            number.parse::<u64>().map_err(|_| err("not a whole number"))?
        } else {
            let value: f64 = number.parse().map_err(|_| err("not a number"))?;
            let units = (value * multiplier as f64).round();
            if !(units.is_finite() && units < u64::MAX as f64) {
                return Err(err("too large"));
            }
            units as u64
        };
        if units == 0 {
            return Err(err("a capacity must be at least 1"));
        }
        Ok(CapacitySpec::Units(units))
    }

    /// Parses a comma-separated list of tokens.
    pub fn parse_list(text: &str, mode: SizeMode) -> Result<Vec<CapacitySpec>, Error> {
        text.split(',').map(|token| CapacitySpec::parse(token, mode)).collect()
    }

    /// The capacity in weight units for a workload whose footprint is
    /// `footprint` units; a percentage rounds to the nearest unit, at least 1.
    pub fn resolve(self, footprint: u64) -> u64 {
        match self {
            CapacitySpec::Units(units) => units,
            CapacitySpec::Percent(percent) => ((footprint as f64 * percent / 100.0).round() as u64).max(1),
        }
    }
}

impl fmt::Display for CapacitySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapacitySpec::Units(units) => write!(f, "{units}"),
            CapacitySpec::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

fn multiplier(suffix: &str, mode: SizeMode) -> Option<u64> {
    let suffix = suffix.to_ascii_lowercase();
    match mode {
        SizeMode::Count => match suffix.as_str() {
            "" => Some(1),
            "k" => Some(1_000),
            "m" => Some(1_000_000),
            "g" => Some(1_000_000_000),
            _ => None,
        },
        SizeMode::Bytes => match suffix.as_str() {
            "" | "b" => Some(1),
            "k" | "kb" | "kib" => Some(1 << 10),
            "m" | "mb" | "mib" => Some(1 << 20),
            "g" | "gb" | "gib" => Some(1 << 30),
            "t" | "tb" | "tib" => Some(1 << 40),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(token: &str, mode: SizeMode) -> u64 {
        match CapacitySpec::parse(token, mode).unwrap() {
            CapacitySpec::Units(units) => units,
            other => panic!("{token}: {other:?}"),
        }
    }

    #[test]
    fn suffixes_are_decimal_for_entries_and_binary_for_bytes() {
        assert_eq!(units("1000", SizeMode::Count), 1000);
        assert_eq!(units("10k", SizeMode::Count), 10_000);
        assert_eq!(units("1_000_000", SizeMode::Count), 1_000_000);
        assert_eq!(units("128M", SizeMode::Bytes), 128 << 20);
        assert_eq!(units("128MiB", SizeMode::Bytes), 128 << 20);
        assert_eq!(units("1.5G", SizeMode::Bytes), 3 << 29);
        assert_eq!(units("64 kB", SizeMode::Bytes), 65536);
    }

    #[test]
    fn percentages_resolve_against_the_footprint() {
        let five = CapacitySpec::parse("5%", SizeMode::Count).unwrap();
        assert_eq!(five, CapacitySpec::Percent(5.0));
        assert_eq!(five.resolve(1000), 50);
        assert_eq!(CapacitySpec::parse("0.01%", SizeMode::Count).unwrap().resolve(10), 1);
        assert_eq!(CapacitySpec::parse_list("1%,2000", SizeMode::Count).unwrap().len(), 2);
    }

    #[test]
    fn rejects_zero_garbage_and_byte_suffixes_on_entries() {
        for token in ["0", "", "-5", "abc", "0%", "-1%", "1.5", "10MB", "0.0001k", "nan%"] {
            let err = CapacitySpec::parse(token, SizeMode::Count);
            assert!(err.is_err(), "{token:?} accepted");
        }
        let message = CapacitySpec::parse("0", SizeMode::Bytes).unwrap_err().to_string();
        assert_eq!(message, "invalid capacity \"0\": a capacity must be at least 1");
        assert!(CapacitySpec::parse("12X", SizeMode::Bytes).is_err());
    }
}
