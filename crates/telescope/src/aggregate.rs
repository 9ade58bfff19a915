//! Per-source state within one window, and its conversion to an activity record.

use botscope_model::{ActivityClass, Evidence, PortCount, SourceActivity, Transport};
use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;

use crate::classify::{Catalogue, rank};
use crate::packet::Addr;
use crate::sketch::{Distinct, TopPorts};

/// What one source did in one window so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceState {
    first_ns: u64,
    last_ns: u64,
    packets: u64,
    bytes: u64,
    mirai_packets: u64,
    mask: u64,
    /// (signature index, packets) for each signature the source matched.
    counts: Vec<(u8, u32)>,
    destinations: Distinct,
    ports: TopPorts,
}

impl SourceState {
    #[inline]
    pub(crate) fn add(
        &mut self,
        ts_ns: u64,
        bytes: u32,
        mask: u64,
        mirai: bool,
        dst_hash: u32,
        port: Option<(u16, u8)>,
    ) {
        if self.packets == 0 || ts_ns < self.first_ns {
            self.first_ns = ts_ns;
        }
        self.last_ns = self.last_ns.max(ts_ns);
        self.packets += 1;
        self.bytes += u64::from(bytes);
        self.mirai_packets += u64::from(mirai);
        if mask != 0 {
            self.mask |= mask;
            let mut bits = mask;
            while bits != 0 {
                let i = bits.trailing_zeros() as u8;
                bits &= bits - 1;
                match self.counts.iter_mut().find(|(s, _)| *s == i) {
                    Some((_, c)) => *c = c.saturating_add(1),
                    None => self.counts.push((i, 1)),
                }
            }
        }
        self.destinations.insert(dst_hash);
        if let Some((port, transport)) = port {
            self.ports.add(port, transport);
        }
    }

    fn count_of(&self, signature: usize) -> u64 {
        self.counts.iter().find(|(s, _)| usize::from(*s) == signature).map_or(0, |(_, c)| u64::from(*c))
    }
}

/// One window's sources.
#[derive(Default)]
pub(crate) struct Window {
    pub(crate) sources: FxHashMap<Addr, SourceState>,
}

fn time(ns: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(i64::try_from(ns).unwrap_or(i64::MAX))
}

/// The verdict and evidence for one source.
pub(crate) fn judge(catalogue: &Catalogue, s: &SourceState) -> (ActivityClass, Vec<String>, Vec<Evidence>) {
    let mut class = ActivityClass::Unknown;
    let mut tags = Vec::new();
    let mut evidence = Vec::new();
    let mut tag_bits = 0u64;
    for (i, signature) in catalogue.signatures.iter().enumerate() {
        let count = s.count_of(i);
        if count == 0
            || count < signature.spec.min_packets
            || (count as f64) < signature.spec.min_share * s.packets as f64
        {
            continue;
        }
        tag_bits |= 1 << i;
        if !signature.spec.tag {
            continue;
        }
        tags.push(signature.spec.id.clone());
        if rank(signature.spec.class) > rank(class) {
            class = signature.spec.class;
        }
        evidence.push(Evidence {
            rule: signature.spec.id.clone(),
            packets: count,
            detail: signature.spec.description.clone(),
        });
    }
    let destinations = s.destinations.count();
    for behaviour in &catalogue.behaviours {
        let spec = &behaviour.spec;
        if catalogue.behaviour_excluded(behaviour, tag_bits)
            || s.packets < spec.min_packets
            || destinations < spec.min_destinations
        {
            continue;
        }
        let matched = s.count_of(catalogue.behaviour_signature(behaviour));
        let share = matched as f64 / s.packets as f64;
        if matched == 0 || share < spec.min_share {
            continue;
        }
        tags.push(spec.id.clone());
        if rank(spec.class) > rank(class) {
            class = spec.class;
        }
        evidence.push(Evidence {
            rule: spec.id.clone(),
            packets: matched,
            detail: format!("{}: {:.0} % of packets, {} destinations", spec.description, share * 100.0, destinations),
        });
    }
    tags.sort();
    evidence.sort_by(|a, b| a.rule.cmp(&b.rule));
    (class, tags, evidence)
}

/// Turns a window's state into records, in source address order, handing each to `emit` as it
/// is made: a window of a million sources never exists twice in memory.
pub(crate) fn drain_records(
    catalogue: &Catalogue,
    mut window: Window,
    window_start_ns: u64,
    window_len_ns: u64,
    sensor: Option<&str>,
    emit: &mut impl FnMut(SourceActivity),
) {
    let mut order: Vec<Addr> = window.sources.keys().copied().collect();
    order.sort_unstable();
    for addr in order {
        let Some(s) = window.sources.remove(&addr) else { continue };
        let (classification, tags, evidence) = judge(catalogue, &s);
        emit(SourceActivity {
            id: None,
            window_start: time(window_start_ns),
            window_end: time(window_start_ns.saturating_add(window_len_ns)),
            src: addr.to_ip(),
            classification,
            tags,
            packets: s.packets,
            bytes: s.bytes,
            mirai_packets: s.mirai_packets,
            distinct_destinations: s.destinations.count().max(1),
            top_ports: s
                .ports
                .sorted()
                .into_iter()
                .map(|(port, transport, packets)| PortCount { port, transport, packets })
                .collect(),
            evidence,
            first_seen: time(s.first_ns),
            last_seen: time(s.last_ns),
            isp: None,
            sensor: sensor.map(str::to_string),
        });
    }
}

/// The transport code used by the port sketch.
pub(crate) fn transport_code(t: Transport) -> u8 {
    crate::sketch::transport_code(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every signature's count is kept exactly, however many a source matches.
    #[test]
    fn signature_counts_are_exact_for_many_signatures() {
        let mut state = SourceState::default();
        for n in 0..200u64 {
            // Signature i matches every (i + 1)-th packet, for i in 0..12.
            let mask = (0..12).filter(|i| n % (i + 1) == 0).fold(0u64, |m, i| m | 1 << i);
            state.add(n, 40, mask, false, n as u32, Some((23, 0)));
        }
        for i in 0..12usize {
            assert_eq!(state.count_of(i), 200u64.div_ceil(i as u64 + 1), "signature {i}");
        }
        assert_eq!(state.count_of(40), 0);
        assert_eq!(state.packets, 200);
    }
}
