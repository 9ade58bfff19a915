//! The order targets are probed in: a keyed pseudo-random permutation of every address x port
//! pair, so that no network sees a burst (consecutive probes almost never share a /24), and so that
//! `--shard I/N` workers split one permutation without talking to each other.
//!
//! ZMap walks a cyclic multiplicative group; this uses a balanced Feistel network over the smallest
//! even power of two covering the pairs, with cycle-walking (indices whose image falls outside the
//! domain are skipped). A Feistel network is a bijection for any round function, so every pair is
//! visited exactly once per run, and the key (the seed) decides the order.

use std::net::Ipv4Addr;

pub use botscope_net::splitmix;

use crate::scope::IntervalSet;

pub use botscope_net::permutation::Permutation;

/// One address and port to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// The address.
    pub ip: Ipv4Addr,
    /// The TCP port.
    pub port: u16,
}

/// Every address x port pair of a scope, in permuted order.
#[derive(Debug, Clone)]
pub struct TargetSpace {
    addresses: IntervalSet,
    ports: Vec<u16>,
    permutation: Permutation,
}

impl TargetSpace {
    /// The pairs of `addresses` x `ports`, ordered by `seed`.
    pub fn new(addresses: IntervalSet, ports: Vec<u16>, seed: u64) -> TargetSpace {
        let size = addresses.len() * ports.len() as u64;
        TargetSpace { permutation: Permutation::new(size, seed), addresses, ports }
    }

    /// Number of pairs in the whole space.
    pub fn len(&self) -> u64 {
        self.permutation.size()
    }

    /// Whether there is nothing to probe.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of pairs in one shard, about: shards split the permutation's domain evenly, so
    /// each holds close to its share of the pairs (counting exactly would walk the whole domain).
    pub fn shard_len_estimate(&self, shards: u64) -> u64 {
        self.len().div_ceil(shards.max(1))
    }

    /// One shard's pairs, in permuted order.
    pub fn shard(&self, shard: u64, shards: u64) -> impl Iterator<Item = Target> + '_ {
        let ports = self.ports.len() as u64;
        self.permutation.shard(shard, shards).filter_map(move |element| {
            let ip = self.addresses.nth(element / ports)?;
            Some(Target { ip, port: self.ports[(element % ports) as usize] })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Interval;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        #[test]
        fn shards_partition_the_space_exactly(size in 0u64..5000, seed: u64, shards in 1u64..5) {
            let permutation = Permutation::new(size, seed);
            let mut seen = HashSet::new();
            for shard in 0..shards {
                for value in permutation.shard(shard, shards) {
                    prop_assert!(value < size);
                    prop_assert!(seen.insert(value), "{} visited twice", value);
                }
            }
            prop_assert_eq!(seen.len() as u64, size);
        }
    }

    #[test]
    fn consecutive_probes_rarely_hit_the_same_slash_24() {
        let addresses = IntervalSet::from_intervals(vec![Interval {
            first: u32::from(Ipv4Addr::new(127, 16, 0, 0)),
            last: u32::from(Ipv4Addr::new(127, 16, 63, 255)),
        }]);
        let space = TargetSpace::new(addresses, vec![23, 80], 7);
        let order: Vec<Target> = space.shard(0, 1).collect();
        assert_eq!(order.len(), 64 * 256 * 2);
        let same = order.windows(2).filter(|w| w[0].ip.octets()[..3] == w[1].ip.octets()[..3]).count();
        // 64 /24s: a random order puts neighbours in the same /24 about 1 time in 64.
        assert!(same < order.len() / 32, "{same} neighbours share a /24");
    }

    #[test]
    fn the_seed_changes_the_order_but_not_the_set() {
        let addresses = IntervalSet::from_intervals(vec![Interval { first: 100, last: 1099 }]);
        let a: Vec<_> = TargetSpace::new(addresses.clone(), vec![23], 1).shard(0, 1).collect();
        let b: Vec<_> = TargetSpace::new(addresses, vec![23], 2).shard(0, 1).collect();
        assert_ne!(a, b);
        let (sa, sb): (HashSet<_>, HashSet<_>) = (a.into_iter().collect(), b.into_iter().collect());
        assert_eq!(sa, sb);
    }
}
