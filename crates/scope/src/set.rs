//! Sets of IPv4 addresses as sorted, disjoint intervals: what a scope holds, and what the survey
//! enumerates.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// A closed interval of IPv4 addresses as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    /// First address.
    pub first: u32,
    /// Last address (inclusive).
    pub last: u32,
}

impl Interval {
    pub(crate) fn of(net: Ipv4Net) -> Interval {
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
    /// The set holding exactly these intervals (in any order, overlapping allowed; an interval
    /// whose `first` is past its `last` holds nothing and is dropped).
    pub fn from_intervals(mut intervals: Vec<Interval>) -> IntervalSet {
        intervals.retain(|interval| interval.first <= interval.last);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
