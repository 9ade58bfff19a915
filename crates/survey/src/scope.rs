//! What the survey may touch: the operator's authorised ranges, minus a built-in blocklist of
//! special-purpose ranges, minus the operator's exclusions and opt-outs.
//!
//! A scope is a sorted list of disjoint IPv4 address intervals. The survey enumerates addresses,
//! so it is IPv4 only (as ZMap is); an IPv6 range in a scope is an error, not a silent skip.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;

use crate::SurveyError;

/// Special-purpose ranges the survey never touches whatever the scope says (RFC 6890 and the IANA
/// special-purpose registry), the ranges ZMap's default blocklist names. Loopback is here too: it
/// is only ever allowed in `--lab` mode, which replaces this list (see [`Scope::build`]).
pub const BUILTIN_BLOCKLIST: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\" (RFC 791)"),
    ("10.0.0.0/8", "private use (RFC 1918)"),
    ("100.64.0.0/10", "shared address space, carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122); allowed only with --lab"),
    ("169.254.0.0/16", "link local (RFC 3927)"),
    ("172.16.0.0/12", "private use (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
    ("192.88.99.0/24", "6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private use (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved for future use (RFC 1112)"),
    ("255.255.255.255/32", "limited broadcast (RFC 919)"),
];

/// In `--lab` mode the only addresses allowed at all.
pub const LAB_RANGE: &str = "127.0.0.0/8";

/// A closed interval of IPv4 addresses as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    /// First address.
    pub first: u32,
    /// Last address (inclusive).
    pub last: u32,
}

impl Interval {
    fn of(net: Ipv4Net) -> Interval {
        Interval { first: u32::from(net.network()), last: u32::from(net.broadcast()) }
    }

    /// Number of addresses.
    pub fn len(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// Always false: an interval holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", Ipv4Addr::from(self.first))
        } else {
            write!(f, "{}-{}", Ipv4Addr::from(self.first), Ipv4Addr::from(self.last))
        }
    }
}

/// Sorted, disjoint, non-adjacent intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntervalSet {
    intervals: Vec<Interval>,
    /// Addresses before each interval, for `nth` by binary search (opt-out lists make many).
    before: Vec<u64>,
}

impl IntervalSet {
    /// The set holding exactly these intervals (in any order, overlapping allowed).
    pub fn from_intervals(mut intervals: Vec<Interval>) -> IntervalSet {
        intervals.sort_unstable();
        let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
        for next in intervals {
            match merged.last_mut() {
                Some(last) if u64::from(next.first) <= u64::from(last.last) + 1 => last.last = last.last.max(next.last),
                _ => merged.push(next),
            }
        }
        IntervalSet::indexed(merged)
    }

    fn indexed(intervals: Vec<Interval>) -> IntervalSet {
        let mut before = Vec::with_capacity(intervals.len());
        let mut total = 0;
        for interval in &intervals {
            before.push(total);
            total += interval.len();
        }
        IntervalSet { intervals, before }
    }

    /// The set of these networks.
    pub fn from_nets(nets: &[Ipv4Net]) -> IntervalSet {
        IntervalSet::from_intervals(nets.iter().map(|net| Interval::of(*net)).collect())
    }

    /// The intervals, in order.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// Number of addresses.
    pub fn len(&self) -> u64 {
        self.intervals.iter().map(Interval::len).sum()
    }

    /// Whether the set holds no address.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// Whether `addr` is in the set.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        let value = u32::from(addr);
        let index = self.intervals.partition_point(|interval| interval.last < value);
        self.intervals.get(index).is_some_and(|interval| interval.first <= value)
    }

    /// The addresses of `self` that are in `other`.
    pub fn intersection(&self, other: &IntervalSet) -> IntervalSet {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.intervals.len() && j < other.intervals.len() {
            let (a, b) = (self.intervals[i], other.intervals[j]);
            let first = a.first.max(b.first);
            let last = a.last.min(b.last);
            if first <= last {
                out.push(Interval { first, last });
            }
            if a.last < b.last {
                i += 1;
            } else {
                j += 1;
            }
        }
        IntervalSet::indexed(out)
    }

    /// The addresses of `self` that are not in `other`.
    pub fn difference(&self, other: &IntervalSet) -> IntervalSet {
        let mut out = Vec::new();
        let mut j = 0;
        for &interval in &self.intervals {
            let mut first = u64::from(interval.first);
            let last = u64::from(interval.last);
            while j < other.intervals.len() && u64::from(other.intervals[j].last) < first {
                j += 1;
            }
            let mut k = j;
            while first <= last && k < other.intervals.len() && u64::from(other.intervals[k].first) <= last {
                let cut = other.intervals[k];
                if u64::from(cut.first) > first {
                    out.push(Interval { first: first as u32, last: cut.first - 1 });
                }
                first = first.max(u64::from(cut.last) + 1);
                k += 1;
            }
            if first <= last {
                out.push(Interval { first: first as u32, last: last as u32 });
            }
        }
        IntervalSet::indexed(out)
    }

    /// The `index`-th address of the set, in address order.
    pub fn nth(&self, index: u64) -> Option<Ipv4Addr> {
        let slot = self.before.partition_point(|before| *before <= index).checked_sub(1)?;
        let offset = index - self.before[slot];
        let interval = self.intervals[slot];
        (offset < interval.len()).then(|| Ipv4Addr::from(interval.first + offset as u32))
    }
}

/// One range the survey removed from the operator's scope, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// The addresses removed (only those that were in scope).
    pub removed: IntervalSet,
    /// Why: a blocklist entry's reason, or the exclusion file and line.
    pub reason: String,
}

/// The addresses a survey run may touch, and what was taken out.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Addresses to survey.
    pub targets: IntervalSet,
    /// Addresses the operator asked for before anything was subtracted.
    pub requested: u64,
    /// What was subtracted, with reasons (only exclusions that removed something).
    pub exclusions: Vec<Exclusion>,
}

impl Scope {
    /// Builds the scope from the operator's ranges and exclusions.
    ///
    /// Outside lab mode the built-in blocklist is always subtracted. In lab mode every requested
    /// range must lie inside loopback (127.0.0.0/8): anything else is an error, so a typo cannot
    /// turn a lab run into a real scan.
    pub fn build(requested: &[Ipv4Net], excluded: &[(Ipv4Net, String)], lab: bool) -> Result<Scope, SurveyError> {
        if requested.is_empty() {
            return Err(SurveyError::NoScope);
        }
        let asked = IntervalSet::from_nets(requested);
        let mut exclusions = Vec::new();
        let mut remaining = asked.clone();
        if lab {
            let loopback: Ipv4Net = LAB_RANGE.parse().expect("constant parses");
            if let Some(outside) = requested.iter().find(|net| !loopback.contains(*net)) {
                return Err(SurveyError::LabOutsideLoopback(outside.to_string()));
            }
        } else {
            for (net, reason) in BUILTIN_BLOCKLIST {
                let net: Ipv4Net = net.parse().expect("blocklist constants parse");
                subtract(&mut remaining, &mut exclusions, net, format!("built-in blocklist {net}: {reason}"));
            }
        }
        for (net, reason) in excluded {
            subtract(&mut remaining, &mut exclusions, *net, reason.clone());
        }
        Ok(Scope { targets: remaining, requested: asked.len(), exclusions })
    }
}

fn subtract(remaining: &mut IntervalSet, exclusions: &mut Vec<Exclusion>, net: Ipv4Net, reason: String) {
    let cut = IntervalSet::from_nets(&[net]);
    let removed = remaining.intersection(&cut);
    if !removed.is_empty() {
        *remaining = remaining.difference(&cut);
        exclusions.push(Exclusion { removed, reason });
    }
}

/// Parses one range as the command line and scope files write it: `CIDR`, a bare address, or
/// `FIRST-LAST` is not accepted (ranges that are not prefixes are rare in allocations and a
/// frequent source of off-by-one scope errors).
pub fn parse_range(text: &str) -> Result<Ipv4Net, String> {
    let text = text.trim();
    if text.contains(':') {
        return Err(format!("{text}: IPv6 ranges cannot be surveyed by enumeration; only IPv4 scopes are supported"));
    }
    let net = if text.contains('/') {
        text.parse::<Ipv4Net>().map_err(|e| format!("{text}: {e} (expected an IPv4 CIDR such as 198.51.100.0/24)"))?
    } else {
        let addr: Ipv4Addr =
            text.parse().map_err(|_| format!("{text}: not an IPv4 address or CIDR (expected e.g. 198.51.100.0/24)"))?;
        Ipv4Net::from(addr)
    };
    if net.network() != net.addr() {
        return Err(format!("{text}: host bits set (did you mean {}?)", net.trunc()));
    }
    Ok(net)
}

/// Reads a scope or exclusion file: one range per line, `#` starts a comment (the rest of the line
/// is kept as the reason for exclusions), blank lines ignored. Errors name the file and line.
pub fn read_range_file(path: &Path) -> Result<Vec<(Ipv4Net, String)>, SurveyError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SurveyError::Read { name: name.clone(), source })?;
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let (range, comment) = match line.split_once('#') {
            Some((range, comment)) => (range.trim(), comment.trim()),
            None => (line.trim(), ""),
        };
        if range.is_empty() {
            continue;
        }
        let net = parse_range(range)
            .map_err(|reason| SurveyError::Invalid { name: format!("{name}:{}", number + 1), reason })?;
        let reason = if comment.is_empty() {
            format!("{name}:{}", number + 1)
        } else {
            format!("{name}:{}: {comment}", number + 1)
        };
        out.push((net, reason));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nets(list: &[&str]) -> Vec<Ipv4Net> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn blocklist_is_always_subtracted_outside_lab_mode() {
        let scope = Scope::build(&nets(&["192.168.0.0/15"]), &[], false).unwrap();
        // 192.168.0.0/15 = 192.168.0.0-192.169.255.255; 192.168/16 is private.
        assert_eq!(scope.targets.len(), 65536);
        assert_eq!(scope.targets.intervals()[0].first, u32::from(Ipv4Addr::new(192, 169, 0, 0)));
        assert!(scope.exclusions[0].reason.contains("RFC 1918"));
    }

    #[test]
    fn lab_mode_refuses_anything_outside_loopback() {
        let error = Scope::build(&nets(&["127.16.0.0/12", "198.51.100.0/24"]), &[], true).unwrap_err();
        assert!(matches!(error, SurveyError::LabOutsideLoopback(ref net) if net == "198.51.100.0/24"));
        // and loopback outside lab mode is blocklisted to nothing
        let scope = Scope::build(&nets(&["127.16.0.0/12"]), &[], false).unwrap();
        assert!(scope.targets.is_empty());
    }

    #[test]
    fn exclusions_are_subtracted_and_reported_with_their_reason() {
        let excluded = vec![("127.16.0.128/25".parse().unwrap(), "optout.txt:3: customer asked".to_string())];
        let scope = Scope::build(&nets(&["127.16.0.0/24"]), &excluded, true).unwrap();
        assert_eq!(scope.targets.len(), 128);
        assert_eq!(scope.exclusions.len(), 1);
        assert_eq!(scope.exclusions[0].removed.len(), 128);
    }

    #[test]
    fn no_scope_is_an_error() {
        assert!(matches!(Scope::build(&[], &[], false), Err(SurveyError::NoScope)));
    }

    #[test]
    fn parse_range_explains_mistakes() {
        assert!(parse_range("10.0.0.1/8").unwrap_err().contains("did you mean 10.0.0.0/8"));
        assert!(parse_range("2001:db8::/32").unwrap_err().contains("IPv6"));
        assert_eq!(parse_range(" 127.0.0.1 ").unwrap(), "127.0.0.1/32".parse::<Ipv4Net>().unwrap());
    }

    fn arb_intervals() -> impl Strategy<Value = Vec<Interval>> {
        proptest::collection::vec((0u32..4096, 0u32..64), 0..12)
            .prop_map(|pairs| pairs.into_iter().map(|(first, width)| Interval { first, last: first + width }).collect())
    }

    fn members(set: &IntervalSet) -> std::collections::BTreeSet<u32> {
        set.intervals().iter().flat_map(|i| i.first..=i.last).collect()
    }

    proptest! {
        #[test]
        fn set_operations_agree_with_brute_force(a in arb_intervals(), b in arb_intervals()) {
            let (a, b) = (IntervalSet::from_intervals(a), IntervalSet::from_intervals(b));
            let (ma, mb) = (members(&a), members(&b));
            prop_assert_eq!(members(&a.difference(&b)), ma.difference(&mb).copied().collect());
            prop_assert_eq!(members(&a.intersection(&b)), ma.intersection(&mb).copied().collect());
            prop_assert_eq!(a.len(), ma.len() as u64);
            for probe in 0..4200u32 {
                prop_assert_eq!(a.contains(Ipv4Addr::from(probe)), ma.contains(&probe));
            }
            let ordered: Vec<u32> = ma.iter().copied().collect();
            for (index, value) in ordered.iter().enumerate().step_by(7) {
                prop_assert_eq!(a.nth(index as u64), Some(Ipv4Addr::from(*value)));
            }
            prop_assert_eq!(a.nth(ma.len() as u64), None);
        }
    }
}
