//! The distinct hosts a roll-up counts: exact while a day's set is small, a HyperLogLog sketch
//! past that, so that a year of days merges in a few milliseconds whatever the traffic.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// Sketch precision: 2^12 registers, a standard error of 1.04/sqrt(4096), about 1.6 %.
const PRECISION: u32 = 12;
const REGISTERS: usize = 1 << PRECISION;
/// Hosts a day keeps exactly (16 bytes each) before its set becomes a 4 KiB sketch.
pub const EXACT_LIMIT: usize = 1024;
/// Hosts a merge of days keeps exactly before it becomes a sketch, bounding a long range's memory.
pub const MERGED_EXACT_LIMIT: usize = 100_000;

const TAG_EXACT: u8 = 1;
const TAG_SKETCH: u8 = 2;

/// A set of hosts, exact or estimated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSet {
    /// Every address (IPv4 as IPv4-mapped IPv6).
    Exact(BTreeSet<u128>),
    /// HyperLogLog registers.
    Sketch(Box<[u8]>),
}

/// A count of distinct hosts, and whether it is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostCount {
    /// How many.
    pub value: u64,
    /// False when estimated from sketches (about 1.6 % standard error).
    pub exact: bool,
}

impl Default for HostSet {
    fn default() -> Self {
        HostSet::Exact(BTreeSet::new())
    }
}

/// An address as a number. IPv4 takes the deprecated IPv4-compatible form (`::a.b.c.d`), not the
/// mapped one, so that `1.2.3.4` and `::ffff:1.2.3.4` count as two hosts, as the records do.
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// A fixed 64-bit mix of an address. Sketches are stored, so this must never change.
fn hash(key: u128) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    mix(mix((key as u64) ^ 0x9e37_79b9_7f4a_7c15) ^ ((key >> 64) as u64))
}

fn sketch_add(registers: &mut [u8], key: u128) {
    let h = hash(key);
    let index = (h >> (64 - PRECISION)) as usize;
    // The rank of the first one bit in the remaining bits (a sentinel bounds it).
    let rank = ((h << PRECISION) | (1 << (PRECISION - 1))).leading_zeros() as u8 + 1;
    if registers[index] < rank {
        registers[index] = rank;
    }
}

impl HostSet {
    /// Adds a host; a set past [`EXACT_LIMIT`] becomes a sketch.
    pub fn insert(&mut self, ip: IpAddr) {
        match self {
            HostSet::Exact(set) => {
                set.insert(key(ip));
                if set.len() > EXACT_LIMIT {
                    self.become_sketch();
                }
            }
            HostSet::Sketch(registers) => sketch_add(registers, key(ip)),
        }
    }

    fn become_sketch(&mut self) {
        if let HostSet::Exact(set) = self {
            let mut registers = vec![0u8; REGISTERS].into_boxed_slice();
            for k in set.iter() {
                sketch_add(&mut registers, *k);
            }
            *self = HostSet::Sketch(registers);
        }
    }

    /// Adds every host of `other`. Two exact sets stay exact up to [`MERGED_EXACT_LIMIT`] hosts;
    /// anything merged with a sketch is a sketch.
    pub fn merge(&mut self, other: &HostSet) {
        match (&mut *self, other) {
            (HostSet::Exact(mine), HostSet::Exact(theirs)) => {
                mine.extend(theirs.iter().copied());
                if mine.len() > MERGED_EXACT_LIMIT {
                    self.become_sketch();
                }
            }
            (HostSet::Sketch(mine), HostSet::Sketch(theirs)) => {
                for (a, b) in mine.iter_mut().zip(theirs.iter()) {
                    *a = (*a).max(*b);
                }
            }
            (HostSet::Sketch(mine), HostSet::Exact(theirs)) => {
                for k in theirs {
                    sketch_add(mine, *k);
                }
            }
            (HostSet::Exact(_), HostSet::Sketch(_)) => {
                self.become_sketch();
                self.merge(other);
            }
        }
    }

    /// Hosts in `self` and not in `other`: exact when both are, else estimated by inclusion
    /// (|A ∪ B| - |B|).
    pub fn count_without(&self, other: &HostSet) -> HostCount {
        match (self, other) {
            (HostSet::Exact(a), HostSet::Exact(b)) => HostCount { value: a.difference(b).count() as u64, exact: true },
            _ => {
                let mut union = self.clone();
                union.merge(other);
                let value = union.count().value.saturating_sub(other.count().value);
                HostCount { value, exact: false }
            }
        }
    }

    /// How many hosts.
    pub fn count(&self) -> HostCount {
        match self {
            HostSet::Exact(set) => HostCount { value: set.len() as u64, exact: true },
            HostSet::Sketch(registers) => HostCount { value: estimate(registers), exact: false },
        }
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            HostSet::Exact(set) => {
                let mut out = Vec::with_capacity(1 + set.len() * 16);
                out.push(TAG_EXACT);
                for k in set {
                    out.extend_from_slice(&k.to_be_bytes());
                }
                out
            }
            HostSet::Sketch(registers) => {
                let mut out = Vec::with_capacity(1 + REGISTERS);
                out.push(TAG_SKETCH);
                out.extend_from_slice(registers);
                out
            }
        }
    }

    /// Reads the stored form back; anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<HostSet, String> {
        match bytes.split_first() {
            Some((&TAG_EXACT, rest)) if rest.len() % 16 == 0 => Ok(HostSet::Exact(
                rest.chunks_exact(16).map(|c| u128::from_be_bytes(c.try_into().expect("chunks of 16"))).collect(),
            )),
            Some((&TAG_SKETCH, rest)) if rest.len() == REGISTERS => {
                let limit = (64 - PRECISION + 1) as u8;
                if rest.iter().any(|r| *r > limit) {
                    return Err("a sketch register is out of range".into());
                }
                Ok(HostSet::Sketch(rest.to_vec().into_boxed_slice()))
            }
            Some((&TAG_EXACT, _)) => Err("an exact host list of a length not a multiple of 16".into()),
            Some((&TAG_SKETCH, rest)) => Err(format!("a sketch of {} registers, not {REGISTERS}", rest.len())),
            Some((tag, _)) => Err(format!("unknown host set tag {tag}")),
            None => Err("an empty host set".into()),
        }
    }
}

/// HyperLogLog's estimate, with linear counting while registers are still empty (small sets).
fn estimate(registers: &[u8]) -> u64 {
    let m = registers.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|r| (-(f64::from(*r))).exp2()).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|r| **r == 0).count();
    let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
    estimate.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addresses(seed: u64, n: usize) -> Vec<IpAddr> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                IpAddr::V4(std::net::Ipv4Addr::from((state >> 32) as u32))
            })
            .collect()
    }

    #[test]
    fn small_sets_are_exact_and_survive_their_stored_form() {
        let mut set = HostSet::default();
        for ip in addresses(1, 500) {
            set.insert(ip);
            set.insert(ip);
        }
        assert_eq!(set.count(), HostCount { value: 500, exact: true });
        assert_eq!(HostSet::decode(&set.encode()).unwrap(), set);
    }

    #[test]
    fn large_sets_are_estimated_within_a_few_percent() {
        for (seed, n) in [(2, 2_000), (3, 20_000), (4, 300_000)] {
            let mut set = HostSet::default();
            for ip in addresses(seed, n) {
                set.insert(ip);
            }
            let count = set.count();
            assert!(!count.exact);
            let error = (count.value as f64 - n as f64).abs() / n as f64;
            assert!(error < 0.05, "{n} hosts estimated as {}", count.value);
            assert_eq!(HostSet::decode(&set.encode()).unwrap(), set);
        }
    }

    #[test]
    fn a_union_of_days_counts_a_host_seen_on_many_days_once() {
        let all = addresses(5, 10_000);
        let mut range = HostSet::default();
        for day in 0..30 {
            let mut set = HostSet::default();
            // Each day sees 2,000 of the same 10,000 hosts.
            for ip in all.iter().skip(day * 277 % 8_000).take(2_000) {
                set.insert(*ip);
            }
            range.merge(&HostSet::decode(&set.encode()).unwrap());
        }
        let mut truth = std::collections::BTreeSet::new();
        for day in 0..30 {
            truth.extend(all.iter().skip(day * 277 % 8_000).take(2_000).copied());
        }
        let error = (range.count().value as f64 - truth.len() as f64).abs() / truth.len() as f64;
        assert!(error < 0.05, "{} estimated as {}", truth.len(), range.count().value);
    }

    proptest! {
        #[test]
        fn any_stored_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            if let Ok(set) = HostSet::decode(&bytes) {
                let _ = set.count();
            }
        }

        #[test]
        fn exact_merges_and_differences_are_set_operations(
            a in proptest::collection::vec(any::<u32>(), 0..300),
            b in proptest::collection::vec(any::<u32>(), 0..300),
        ) {
            let set = |v: &[u32]| {
                let mut s = HostSet::default();
                for x in v {
                    s.insert(IpAddr::V4((*x).into()));
                }
                s
            };
            let (sa, sb) = (set(&a), set(&b));
            let mut union = sa.clone();
            union.merge(&sb);
            let truth_a: std::collections::BTreeSet<u32> = a.iter().copied().collect();
            let truth_b: std::collections::BTreeSet<u32> = b.iter().copied().collect();
            prop_assert_eq!(union.count().value, truth_a.union(&truth_b).count() as u64);
            prop_assert_eq!(sa.count_without(&sb).value, truth_a.difference(&truth_b).count() as u64);
        }

        #[test]
        fn a_sketch_merged_in_any_order_gives_one_count(seed in any::<u64>()) {
            let hosts = addresses(seed, 4_000);
            let (mut forward, mut backward) = (HostSet::default(), HostSet::default());
            let parts: Vec<HostSet> = hosts.chunks(1_500).map(|c| {
                let mut s = HostSet::default();
                for ip in c { s.insert(*ip); }
                s
            }).collect();
            for p in &parts { forward.merge(p); }
            for p in parts.iter().rev() { backward.merge(p); }
            prop_assert_eq!(forward.count(), backward.count());
        }
    }
}
