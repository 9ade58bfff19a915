use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A routed prefix and the AS (or ASes) that originate it, as in CAIDA's prefix2as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutedPrefix {
    /// The prefix, e.g. `203.0.113.0/24`; host bits are always zero.
    pub prefix: IpNet,
    /// Who originates it.
    pub origin: Origin,
}

/// The origin of a routed prefix.
///
/// CAIDA writes one origin as `64500`, several origins seen for the same prefix (multi-origin,
/// MOAS) joined by `_` as `64500_64501`, and an AS set as `64500,64501`; the two can combine
/// (`64500_64501,64502`). Each `_`-separated part is one origin; each origin is one AS or a set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Each element is one origin; an element with more than one ASN is an AS set.
    pub origins: Vec<Vec<u32>>,
}

impl Origin {
    /// A single-AS origin.
    pub fn single(asn: u32) -> Self {
        Origin { origins: vec![vec![asn]] }
    }

    /// Every ASN named anywhere in the origin, in order, without repeats.
    pub fn asns(&self) -> Vec<u32> {
        let mut all: Vec<u32> = Vec::new();
        for asn in self.origins.iter().flatten() {
            if !all.contains(asn) {
                all.push(*asn);
            }
        }
        all
    }
}

/// Why an origin field could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid AS origin {text:?}: {reason}")]
pub struct OriginParseError {
    text: String,
    reason: &'static str,
}

impl FromStr for Origin {
    type Err = OriginParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| OriginParseError { text: text.chars().take(64).collect(), reason };
        if text.is_empty() {
            return Err(fail("empty"));
        }
        let mut origins = Vec::new();
        for part in text.split('_') {
            let mut set = Vec::new();
            for asn in part.split(',') {
                // Plain decimal only: "+1" or " 1" would parse in other readers and hide a broken file.
                if asn.is_empty() || !asn.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(fail("expected decimal AS numbers joined by '_' or ','"));
                }
                set.push(asn.parse().map_err(|_| fail("AS number above 4294967295"))?);
            }
            origins.push(set);
        }
        Ok(Origin { origins })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, set) in self.origins.iter().enumerate() {
            if i > 0 {
                f.write_str("_")?;
            }
            for (j, asn) in set.iter().enumerate() {
                if j > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{asn}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_single_multi_origin_and_as_sets() {
        assert_eq!("64500".parse::<Origin>().unwrap(), Origin::single(64500));
        let moas: Origin = "64500_64501".parse().unwrap();
        assert_eq!(moas.origins, vec![vec![64500], vec![64501]]);
        let set: Origin = "64500,64501".parse().unwrap();
        assert_eq!(set.origins, vec![vec![64500, 64501]]);
        let both: Origin = "1_2,3_2".parse().unwrap();
        assert_eq!(both.origins, vec![vec![1], vec![2, 3], vec![2]]);
        assert_eq!(both.asns(), vec![1, 2, 3]);
    }

    #[test]
    fn rejects_empty_parts_signs_and_overflow() {
        for bad in ["", "_", "1_", ",1", "1,,2", "+1", " 1", "4294967296", "AS1", "1.2"] {
            assert!(bad.parse::<Origin>().is_err(), "{bad:?} should be rejected");
        }
        assert_eq!("4294967295".parse::<Origin>().unwrap(), Origin::single(u32::MAX));
    }

    proptest! {
        #[test]
        fn display_round_trips(origins in prop::collection::vec(prop::collection::vec(any::<u32>(), 1..4), 1..4)) {
            let origin = Origin { origins };
            prop_assert_eq!(origin.to_string().parse::<Origin>().unwrap(), origin);
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,40}") {
            let _ = text.parse::<Origin>();
        }
    }
}
