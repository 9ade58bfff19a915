//! Small fixed-size summaries kept per source, so a million sources stay within memory.

use botscope_model::Transport;

/// Mixes an address into 64 well-spread bits (splitmix64's finaliser on both halves).
#[inline]
pub fn mix(value: u128) -> u64 {
    let mut z = (value as u64) ^ ((value >> 64) as u64).rotate_left(29);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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

/// The HyperLogLog estimate with the small-range (linear counting) correction.
fn hll_estimate(registers: &[u8]) -> u64 {
    let m = registers.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|&r| (-(f64::from(r))).exp2()).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
    estimate.round() as u64
}

/// A larger HyperLogLog (16,384 registers, about 0.8 % error) for whole-day unique sources.
#[derive(Debug, Clone)]
pub(crate) struct LargeDistinct {
    registers: Vec<u8>,
}

const LARGE_BITS: u32 = 14;

impl Default for LargeDistinct {
    fn default() -> Self {
        LargeDistinct { registers: vec![0; 1 << LARGE_BITS] }
    }
}

impl LargeDistinct {
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64) {
        let index = (hash >> (64 - LARGE_BITS)) as usize;
        let rank = ((hash << LARGE_BITS) | (1 << (LARGE_BITS - 1))).leading_zeros() as u8 + 1;
        if self.registers[index] < rank {
            self.registers[index] = rank;
        }
    }

    pub(crate) fn count(&self) -> u64 {
        hll_estimate(&self.registers)
    }
}

const SLOTS: usize = 5;

/// The most frequent ports by the space-saving algorithm: exact while at most five ports occur,
/// after that the top ones stay and counts may be overestimated by the evicted remainder.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopPorts {
    len: u8,
    slots: [(u16, u8, u32); SLOTS],
}

pub(crate) fn transport_code(t: Transport) -> u8 {
    match t {
        Transport::Tcp => 0,
        Transport::Udp => 1,
        Transport::Icmp => 2,
    }
}

fn transport_of(code: u8) -> Transport {
    match code {
        0 => Transport::Tcp,
        1 => Transport::Udp,
        _ => Transport::Icmp,
    }
}

impl TopPorts {
    #[inline]
    pub(crate) fn add(&mut self, port: u16, transport: u8) {
        let n = usize::from(self.len);
        for slot in &mut self.slots[..n] {
            if slot.0 == port && slot.1 == transport {
                slot.2 = slot.2.saturating_add(1);
                return;
            }
        }
        if n < SLOTS {
            self.slots[n] = (port, transport, 1);
            self.len += 1;
            return;
        }
        let min = (0..SLOTS).min_by_key(|&i| self.slots[i].2).unwrap_or(0);
        let count = self.slots[min].2.saturating_add(1);
        self.slots[min] = (port, transport, count);
    }

    /// Most packets first; ties by port.
    pub(crate) fn sorted(&self) -> Vec<(u16, Transport, u64)> {
        let mut out: Vec<_> =
            self.slots[..usize::from(self.len)].iter().map(|&(p, t, c)| (p, transport_of(t), u64::from(c))).collect();
        out.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        out
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

    #[test]
    fn large_distinct_counts_a_million_within_three_percent() {
        let mut d = LargeDistinct::default();
        for i in 0..1_000_000u128 {
            d.insert(mix(i));
        }
        let estimate = d.count() as f64;
        assert!((estimate - 1e6).abs() / 1e6 < 0.03, "{estimate}");
    }

    #[test]
    fn top_ports_keeps_the_heavy_hitters() {
        let mut top = TopPorts::default();
        for i in 0..1000u16 {
            top.add(23, 0);
            // Space-saving guarantees items above N/5 (N = 2700 here) stay.
            if i % 10 < 7 {
                top.add(2323, 0);
            }
            top.add(10_000 + i, 0);
        }
        let sorted = top.sorted();
        assert_eq!(sorted[0], (23, Transport::Tcp, 1000));
        assert_eq!(sorted[1].0, 2323);
    }
}
