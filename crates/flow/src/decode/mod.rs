//! Flow export decoders: NetFlow v5, NetFlow v9, IPFIX and sFlow v5.
//!
//! One [`Decoder`] serves every exporter: it keeps templates per exporter (UDP source address and
//! port) and observation domain, sequence numbers to count losses, and sampling rates from
//! options data. Every datagram is decoded on its own; nothing an exporter sends can make it
//! panic, loop or grow without bound. Bad input is counted in [`DecodeStats`].

mod be;
mod sflow;
mod template;
mod v5;

use std::net::SocketAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::flow::Flow;
pub use template::MAX_TEMPLATES;

/// What the decoder saw, for the collector's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DecodeStats {
    /// Datagrams handed to the decoder.
    pub datagrams: u64,
    /// Flow records produced.
    pub flows: u64,
    /// NetFlow v5 datagrams.
    pub v5: u64,
    /// NetFlow v9 datagrams.
    pub v9: u64,
    /// IPFIX messages.
    pub ipfix: u64,
    /// sFlow v5 datagrams.
    pub sflow: u64,
    /// Datagrams with another version number.
    pub unknown_version: u64,
    /// Datagrams (or sets, samples) cut short or contradicting themselves; what came before the
    /// damage in the same datagram is kept.
    pub malformed: u64,
    /// Templates learnt (new or replaced).
    pub templates: u64,
    /// Templates that replaced a different template with the same id.
    pub template_changes: u64,
    /// Templates refused (zero length, too many fields, too many templates).
    pub templates_refused: u64,
    /// Data sets skipped because their template is not (yet) known.
    pub unknown_template_sets: u64,
    /// Options data records read (sampling rates and the like).
    pub options_records: u64,
    /// Records lost according to sequence numbers (flows for v5 and IPFIX, datagrams for v9
    /// and sFlow).
    pub sequence_lost: u64,
    /// Sequence numbers that went backwards or jumped far (exporter restart or reordering).
    pub sequence_resets: u64,
    /// sFlow samples or records of kinds the analyser does not use (counters and the like).
    pub ignored_samples: u64,
    /// Sampled packet headers that held no usable IP packet.
    pub unusable_headers: u64,
    /// Records skipped because a time in them, or computed from them, does not fit: seconds or
    /// milliseconds beyond 64 bits, or a time outside years 0000 to 9999. Read whole, so the
    /// records after them are still decoded.
    pub time_out_of_range: u64,
    /// Flow records that name no pair of addresses, read and left out: a wireless controller's
    /// per-station counts (Cisco WLC sends the station's address alone), for instance. nfcapd
    /// stores them with empty addresses; the analyser has no server to put them under.
    pub no_addresses: u64,
    /// Records skipped because a number is wider than its field allows (a port above 65535, a
    /// protocol above 255, an integer of more than 64 bits, a count times the sampling rate
    /// beyond 64 bits).
    pub value_out_of_range: u64,
}

impl DecodeStats {
    /// Adds another decoder's counters (one decoder runs per listening socket).
    pub fn merge(&mut self, other: &DecodeStats) {
        let pairs = [
            (&mut self.datagrams, other.datagrams),
            (&mut self.flows, other.flows),
            (&mut self.v5, other.v5),
            (&mut self.v9, other.v9),
            (&mut self.ipfix, other.ipfix),
            (&mut self.sflow, other.sflow),
            (&mut self.unknown_version, other.unknown_version),
            (&mut self.malformed, other.malformed),
            (&mut self.templates, other.templates),
            (&mut self.template_changes, other.template_changes),
            (&mut self.templates_refused, other.templates_refused),
            (&mut self.unknown_template_sets, other.unknown_template_sets),
            (&mut self.options_records, other.options_records),
            (&mut self.sequence_lost, other.sequence_lost),
            (&mut self.sequence_resets, other.sequence_resets),
            (&mut self.ignored_samples, other.ignored_samples),
            (&mut self.unusable_headers, other.unusable_headers),
            (&mut self.time_out_of_range, other.time_out_of_range),
            (&mut self.value_out_of_range, other.value_out_of_range),
            (&mut self.no_addresses, other.no_addresses),
        ];
        for (mine, theirs) in pairs {
            *mine = mine.saturating_add(theirs);
        }
    }
}

/// Why a datagram was refused as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Too short to hold any header.
    #[error("datagram too short ({0} bytes)")]
    TooShort(usize),
    /// Not a version the decoder knows.
    #[error("unknown flow export version {0}")]
    UnknownVersion(u32),
    /// The header is inconsistent (lengths, counts).
    #[error("malformed {0} header")]
    BadHeader(&'static str),
}

/// Why a record that was read whole gave no flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    /// Counted in [`DecodeStats::time_out_of_range`].
    Time,
    /// Counted in [`DecodeStats::value_out_of_range`].
    Value,
}

impl DecodeStats {
    fn skipped(&mut self, why: Skip) {
        match why {
            Skip::Time => self.time_out_of_range += 1,
            Skip::Value => self.value_out_of_range += 1,
        }
    }
}

/// Sequence tracking for one stream (exporter, domain or engine).
#[derive(Debug, Clone, Copy)]
struct Sequence {
    expected: u32,
}

/// Decodes datagrams from any number of exporters.
#[derive(Default)]
pub struct Decoder {
    templates: template::Templates,
    sequences: FxHashMap<(SocketAddr, u8, u64), Sequence>,
    /// Counters.
    pub stats: DecodeStats,
}

/// Jumps larger than this are treated as a restart, not as loss.
const SEQUENCE_RESET: u32 = 1 << 24;
/// Bounds the sequence table the way templates are bounded.
const MAX_SEQUENCE_STREAMS: usize = 65_536;

/// The flow timeouts an exporter announced in its options data: how long after a flow starts
/// (active) or falls silent (idle) the exporter sends it at the latest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Timeouts {
    /// flowActiveTimeout, seconds.
    pub active_s: Option<u64>,
    /// flowIdleTimeout, seconds.
    pub idle_s: Option<u64>,
}

impl Timeouts {
    /// The longer of the two.
    pub fn longest_s(&self) -> Option<u64> {
        self.active_s.max(self.idle_s)
    }
}

impl Decoder {
    /// The flow timeouts each exporter announced so far (NetFlow v9 and IPFIX options data).
    pub fn timeouts(&self) -> std::collections::BTreeMap<std::net::IpAddr, Timeouts> {
        self.templates.timeouts()
    }

    /// A decoder with no templates.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Decodes one datagram from `exporter`, appending flows to `out`. `now_ms` stands in for
    /// timestamps the export does not carry (sFlow). Records decoded before damage are kept.
    pub fn decode(
        &mut self,
        exporter: SocketAddr,
        datagram: &[u8],
        now_ms: i64,
        out: &mut Vec<Flow>,
    ) -> Result<(), DecodeError> {
        self.stats.datagrams += 1;
        let before = out.len();
        let result = self.decode_inner(exporter, datagram, now_ms, out);
        self.stats.flows += (out.len() - before) as u64;
        match result {
            Err(DecodeError::UnknownVersion(_)) => self.stats.unknown_version += 1,
            Err(_) => self.stats.malformed += 1,
            Ok(()) => {}
        }
        result
    }

    fn decode_inner(
        &mut self,
        exporter: SocketAddr,
        datagram: &[u8],
        now_ms: i64,
        out: &mut Vec<Flow>,
    ) -> Result<(), DecodeError> {
        if datagram.len() < 4 {
            return Err(DecodeError::TooShort(datagram.len()));
        }
        let version16 = u16::from_be_bytes([datagram[0], datagram[1]]);
        match version16 {
            5 => {
                self.stats.v5 += 1;
                v5::decode(self, exporter, datagram, out)
            }
            9 => {
                self.stats.v9 += 1;
                template::decode_v9(self, exporter, datagram, out)
            }
            10 => {
                self.stats.ipfix += 1;
                template::decode_ipfix(self, exporter, datagram, out)
            }
            0 => {
                let version32 = u32::from_be_bytes([datagram[0], datagram[1], datagram[2], datagram[3]]);
                if version32 == 5 {
                    self.stats.sflow += 1;
                    sflow::decode(self, exporter, datagram, now_ms, out)
                } else {
                    Err(DecodeError::UnknownVersion(version32))
                }
            }
            other => Err(DecodeError::UnknownVersion(u32::from(other))),
        }
    }

    /// Checks a stream's sequence number: `advance` is what this datagram adds to it.
    fn sequence(&mut self, exporter: SocketAddr, kind: u8, stream: u64, seq: u32, advance: u32) {
        let key = (exporter, kind, stream);
        match self.sequences.get_mut(&key) {
            Some(state) => {
                let gap = seq.wrapping_sub(state.expected);
                if gap != 0 {
                    if gap < SEQUENCE_RESET {
                        self.stats.sequence_lost = self.stats.sequence_lost.saturating_add(u64::from(gap));
                    } else {
                        self.stats.sequence_resets += 1;
                    }
                }
                state.expected = seq.wrapping_add(advance);
            }
            None => {
                if self.sequences.len() >= MAX_SEQUENCE_STREAMS {
                    return;
                }
                self.sequences.insert(key, Sequence { expected: seq.wrapping_add(advance) });
            }
        }
    }

    /// Templates currently held.
    pub fn template_count(&self) -> usize {
        self.templates.len()
    }
}

#[cfg(test)]
mod tests;
