//! Small fixed-size summaries (distinct counts) and the hash that feeds them, shared by the
//! telescope (distinct destinations per source, sources per day) and the flow analyser (distinct
//! clients per server).

/// Mixes an address into 64 well-spread bits (splitmix64's finaliser on both halves).
#[inline]
pub fn mix(value: u128) -> u64 {
    crate::hash::finalize((value as u64) ^ ((value >> 64) as u64).rotate_left(29))
}

const EXACT: usize = 8;
const REGISTERS: usize = 256;

/// Distinct count: exact for the first 8 values, then a HyperLogLog of 256 one-byte registers
/// (about 6.5 % standard error).
#[derive(Debug, Clone)]
pub enum Distinct {
    /// Up to eight hashes, kept as they are.
    Exact {
        /// Hashes held.
        len: u8,
        /// The hashes.
        items: [u32; EXACT],
    },
    /// The HyperLogLog registers.
    Sketch(Box<[u8; REGISTERS]>),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Exact { len: 0, items: [0; EXACT] }
    }
}

impl Distinct {
    /// Adds a value by its 32-bit hash.
    #[inline]
    pub fn insert(&mut self, hash: u32) {
        match self {
            Distinct::Exact { len, items } => {
                let n = usize::from(*len);
                if items[..n].contains(&hash) {
                    return;
                }
                if n < EXACT {
                    items[n] = hash;
                    *len += 1;
                    return;
                }
                let mut registers = Box::new([0u8; REGISTERS]);
                for &h in items.iter() {
                    hll_add(&mut registers, h);
                }
                hll_add(&mut registers, hash);
                *self = Distinct::Sketch(registers);
            }
            Distinct::Sketch(registers) => hll_add(registers, hash),
        }
    }

    /// The (estimated) number of distinct values.
    pub fn count(&self) -> u64 {
        match self {
            Distinct::Exact { len, .. } => u64::from(*len),
            Distinct::Sketch(registers) => hll_estimate(&registers[..]),
        }
    }
}

#[inline]
fn hll_add(registers: &mut [u8; REGISTERS], hash: u32) {
    let index = (hash >> 24) as usize;
    let rank = ((hash << 8) | 0x80).leading_zeros() as u8 + 1;
    if registers[index] < rank {
        registers[index] = rank;
    }
}

/// 2^-r for every rank a register can hold (at most 64 - 14 + 1): exact powers of two, so the
/// sum is the one `exp2` gives, without a libm call per register (a telescope judges tens of
/// thousands of sources per window, 256 registers each).
const INVERSE_POWERS: [f64; 65] = {
    let mut table = [0.0; 65];
    let mut power = 1.0;
    let mut rank = 0;
    while rank < table.len() {
        table[rank] = power;
        power /= 2.0;
        rank += 1;
    }
    table
};

/// 2^-`rank`.
#[inline]
fn inverse_power(rank: u8) -> f64 {
    INVERSE_POWERS.get(usize::from(rank)).copied().unwrap_or_else(|| (-f64::from(rank)).exp2())
}

/// The HyperLogLog estimate with the small-range (linear counting) correction.
fn hll_estimate(registers: &[u8]) -> u64 {
    let m = registers.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|&r| inverse_power(r)).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
    estimate.round() as u64
}

/// A larger HyperLogLog (16,384 registers, about 0.8 % error) for whole-day unique sources.
#[derive(Debug, Clone)]
pub struct LargeDistinct {
    registers: Vec<u8>,
}

const LARGE_BITS: u32 = 14;

impl Default for LargeDistinct {
    fn default() -> Self {
        LargeDistinct { registers: vec![0; 1 << LARGE_BITS] }
    }
}

impl LargeDistinct {
    /// Counts one well-mixed 64-bit hash (from [`mix`]).
    #[inline]
    pub fn insert(&mut self, hash: u64) {
        let index = (hash >> (64 - LARGE_BITS)) as usize;
        let rank = ((hash << LARGE_BITS) | (1 << (LARGE_BITS - 1))).leading_zeros() as u8 + 1;
        if self.registers[index] < rank {
            self.registers[index] = rank;
        }
    }

    /// The estimated number of distinct hashes inserted.
    pub fn count(&self) -> u64 {
        hll_estimate(&self.registers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_is_exact_up_to_eight_and_close_after() {
        let mut d = Distinct::default();
        for i in 0..8u128 {
            d.insert(mix(i) as u32);
            d.insert(mix(i) as u32);
        }
        assert_eq!(d.count(), 8);
        for i in 8..10_000u128 {
            d.insert(mix(i) as u32);
        }
        let estimate = d.count() as f64;
        assert!((estimate - 10_000.0).abs() / 10_000.0 < 0.25, "{estimate}");
    }

    /// The table holds exactly what `exp2` gives, for every value a register byte can hold.
    #[test]
    fn the_inverse_powers_are_exp2_exactly() {
        for rank in 0..=u8::MAX {
            assert_eq!(inverse_power(rank).to_bits(), (-f64::from(rank)).exp2().to_bits(), "{rank}");
        }
    }

    #[test]
    fn large_distinct_counts_a_million_within_three_percent() {
        let mut d = LargeDistinct::default();
        for i in 0..1_000_000u128 {
            d.insert(mix(i));
        }
        let estimate = d.count() as f64;
        assert!((estimate - 1e6).abs() / 1e6 < 0.03, "{estimate}");
    }
}
