//! A keyed pseudo-random permutation of `0..size` (a four-round Feistel network over splitmix64,
//! cycle-walked into range): the survey's probe order and the lab's address choices.

use crate::hash::splitmix;

/// A keyed permutation of `0..size`.
#[derive(Debug, Clone)]
pub struct Permutation {
    size: u64,
    half_bits: u32,
    keys: [u64; 4],
}

impl Permutation {
    /// A permutation of `0..size` chosen by `seed`.
    pub fn new(size: u64, seed: u64) -> Permutation {
        let bits = 64 - size.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut state = seed;
        let keys = [splitmix(&mut state), splitmix(&mut state), splitmix(&mut state), splitmix(&mut state)];
        Permutation { size, half_bits, keys }
    }

    /// How many elements are permuted.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Size of the Feistel domain the permutation walks (a power of four >= size).
    pub fn domain(&self) -> u64 {
        1u64 << (2 * self.half_bits)
    }

    /// The image of `index` in the Feistel domain (not cycle-walked).
    fn feistel(&self, index: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (index >> self.half_bits, index & mask);
        for key in self.keys {
            let mixed = round(right, key) & mask;
            (left, right) = (right, left ^ mixed);
        }
        (left << self.half_bits) | right
    }

    /// The elements at domain positions `shard`, `shard + shards`, ... in order: one worker's
    /// share of the permutation. The shares of `0..shards` are disjoint and cover `0..size`.
    pub fn shard(&self, shard: u64, shards: u64) -> impl Iterator<Item = u64> + '_ {
        let shards = shards.max(1);
        (shard..self.domain())
            .step_by(shards as usize)
            .map(|position| self.feistel(position))
            .filter(|v| *v < self.size)
    }
}

fn round(value: u64, key: u64) -> u64 {
    let mut state = value ^ key;
    splitmix(&mut state)
}
