//! Per-source summaries the telescope keeps: the most frequent ports (here) and the distinct
//! counts and hash shared with the flow analyser (`botscope_net::sketch`).

use botscope_model::Transport;

pub use botscope_net::sketch::{Distinct, LargeDistinct, mix};

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
