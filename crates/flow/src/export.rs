//! Encoders for the four export formats: the lab's synthetic ISP sends its flows with them, and
//! the decoders' tests round-trip through them. Real exporters (softflowd, pmacct) are what the
//! interop tests check the decoders against; these only need to be correct, not clever.

use crate::flow::Flow;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// NetFlow v5 (IPv4 only; other flows are skipped).
    V5,
    /// NetFlow v9.
    V9,
    /// IPFIX.
    Ipfix,
    /// sFlow v5 (one sampled-IPv4 record per flow, sampling rate = the flow's packets).
    Sflow,
}

/// An export format name that is not one of [`Format`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format {0:?} (v5, v9, ipfix or sflow)")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        match s {
            "v5" | "netflow5" => Ok(Format::V5),
            "v9" | "netflow9" => Ok(Format::V9),
            "ipfix" | "v10" => Ok(Format::Ipfix),
            "sflow" => Ok(Format::Sflow),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

const TEMPLATE_ID: u16 = 256;
const OPTIONS_TEMPLATE_ID: u16 = 257;
/// Templates are repeated every this many datagrams, as exporters do over UDP.
const TEMPLATE_EVERY: u64 = 16;
/// Flows per datagram for the template formats (keeps datagrams under 1,500 bytes).
const PER_DATAGRAM: usize = 24;

/// One exporter's state: sequence numbers and when templates were last sent.
pub struct Exporter {
    format: Format,
    sequence: u32,
    datagrams: u64,
    /// Sampling interval announced (1 = unsampled); counts are divided by it before sending.
    sampling: u32,
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn v4(flow: &Flow) -> Option<(u32, u32)> {
    Some((flow.src.as_v4()?, flow.dst.as_v4()?))
}

/// Template fields: (element id, length).
const FIELDS: &[(u16, u16)] = &[(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (2, 8), (1, 8)];

impl Exporter {
    /// A fresh exporter.
    pub fn new(format: Format) -> Self {
        Exporter { format, sequence: 0, datagrams: 0, sampling: 1 }
    }

    /// Announces 1-in-`n` sampling (v5 header, v9/IPFIX options record) and divides counts by
    /// it, as a sampling exporter's counters would be.
    pub fn with_sampling(mut self, n: u32) -> Self {
        self.sampling = n.clamp(1, 0x3fff);
        self
    }

    /// Encodes `flows` exported at `now_ms` into datagrams.
    pub fn encode(&mut self, flows: &[Flow], now_ms: i64, out: &mut Vec<Vec<u8>>) {
        match self.format {
            Format::V5 => {
                let v4_flows: Vec<&Flow> = flows.iter().filter(|f| v4(f).is_some()).collect();
                for chunk in v4_flows.chunks(30) {
                    out.push(self.v5(chunk, now_ms));
                }
            }
            Format::V9 | Format::Ipfix => {
                let v4_flows: Vec<&Flow> = flows.iter().filter(|f| v4(f).is_some()).collect();
                for chunk in v4_flows.chunks(PER_DATAGRAM) {
                    out.push(self.templated(chunk, now_ms));
                }
            }
            Format::Sflow => {
                for chunk in flows.chunks(PER_DATAGRAM) {
                    out.push(self.sflow(chunk));
                }
            }
        }
    }

    /// Boot time: a day before the export, so uptime stamps stay far from wrapping.
    fn boot_ms(now_ms: i64) -> i64 {
        (now_ms / 1000) * 1000 - 86_400_000
    }

    fn v5(&mut self, flows: &[&Flow], now_ms: i64) -> Vec<u8> {
        let boot = Self::boot_ms(now_ms);
        let mut b = Vec::with_capacity(24 + 48 * flows.len());
        put16(&mut b, 5);
        put16(&mut b, flows.len() as u16);
        put32(&mut b, (now_ms - boot) as u32);
        put32(&mut b, (now_ms / 1000) as u32);
        put32(&mut b, ((now_ms % 1000) * 1_000_000) as u32);
        put32(&mut b, self.sequence);
        put16(&mut b, 0);
        put16(&mut b, if self.sampling > 1 { 0x4000 | self.sampling as u16 } else { 0 });
        for f in flows {
            let (src, dst) = v4(f).unwrap_or_default();
            put32(&mut b, src);
            put32(&mut b, dst);
            put32(&mut b, 0);
            put32(&mut b, 0);
            put32(&mut b, (f.packets / u64::from(self.sampling)) as u32);
            put32(&mut b, (f.bytes / u64::from(self.sampling)) as u32);
            put32(&mut b, (f.start_ms - boot) as u32);
            put32(&mut b, (f.end_ms - boot) as u32);
            put16(&mut b, f.src_port);
            put16(&mut b, f.dst_port);
            b.extend_from_slice(&[0, f.tcp_flags, f.protocol, 0]);
            b.extend_from_slice(&[0; 8]);
        }
        self.sequence = self.sequence.wrapping_add(flows.len() as u32);
        b
    }

    fn templated(&mut self, flows: &[&Flow], now_ms: i64) -> Vec<u8> {
        let ipfix = self.format == Format::Ipfix;
        let secs = (now_ms / 1000) as u32;
        let export_ms = i64::from(secs) * 1000;
        let boot = Self::boot_ms(now_ms);
        let mut b = Vec::with_capacity(1500);
        let mut records = 0u16;
        if ipfix {
            put16(&mut b, 10);
            put16(&mut b, 0); // length, filled in below
            put32(&mut b, secs);
            put32(&mut b, self.sequence);
            put32(&mut b, 1);
        } else {
            put16(&mut b, 9);
            put16(&mut b, 0); // count, filled in below
            put32(&mut b, (export_ms - boot) as u32);
            put32(&mut b, secs);
            put32(&mut b, self.sequence);
            put32(&mut b, 1);
        }
        let times: &[(u16, u16)] = if ipfix { &[(152, 8), (153, 8)] } else { &[(22, 4), (21, 4)] };
        if self.datagrams.is_multiple_of(TEMPLATE_EVERY) {
            let set = b.len();
            put16(&mut b, if ipfix { 2 } else { 0 });
            put16(&mut b, 0);
            put16(&mut b, TEMPLATE_ID);
            put16(&mut b, (FIELDS.len() + times.len()) as u16);
            for (id, len) in FIELDS.iter().chain(times) {
                put16(&mut b, *id);
                put16(&mut b, *len);
            }
            finish_set(&mut b, set);
            records += 1;
            // The options template: scope = the exporter, option = the sampling interval.
            let set = b.len();
            put16(&mut b, if ipfix { 3 } else { 1 });
            put16(&mut b, 0);
            put16(&mut b, OPTIONS_TEMPLATE_ID);
            if ipfix {
                put16(&mut b, 2);
                put16(&mut b, 1);
                put16(&mut b, 149); // observationDomainId
                put16(&mut b, 4);
            } else {
                put16(&mut b, 4);
                put16(&mut b, 4);
                put16(&mut b, 1); // scope: system
                put16(&mut b, 4);
            }
            put16(&mut b, 34);
            put16(&mut b, 4);
            finish_set(&mut b, set);
            records += 1;
            let set = b.len();
            put16(&mut b, OPTIONS_TEMPLATE_ID);
            put16(&mut b, 0);
            put32(&mut b, 1);
            put32(&mut b, self.sampling);
            finish_set(&mut b, set);
            records += 1;
        }
        let set = b.len();
        put16(&mut b, TEMPLATE_ID);
        put16(&mut b, 0);
        for f in flows {
            let (src, dst) = v4(f).unwrap_or_default();
            put32(&mut b, src);
            put32(&mut b, dst);
            put16(&mut b, f.src_port);
            put16(&mut b, f.dst_port);
            b.extend_from_slice(&[f.protocol, f.tcp_flags]);
            put64(&mut b, f.packets / u64::from(self.sampling));
            put64(&mut b, f.bytes / u64::from(self.sampling));
            if ipfix {
                put64(&mut b, f.start_ms as u64);
                put64(&mut b, f.end_ms as u64);
            } else {
                put32(&mut b, (f.start_ms - boot) as u32);
                put32(&mut b, (f.end_ms - boot) as u32);
            }
        }
        finish_set(&mut b, set);
        records += flows.len() as u16;
        if ipfix {
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
            let data_records = if self.datagrams.is_multiple_of(TEMPLATE_EVERY) { 1 } else { 0 };
            self.sequence = self.sequence.wrapping_add(flows.len() as u32 + data_records);
        } else {
            b[2..4].copy_from_slice(&records.to_be_bytes());
            self.sequence = self.sequence.wrapping_add(1);
        }
        self.datagrams += 1;
        b
    }

    fn sflow(&mut self, flows: &[Flow]) -> Vec<u8> {
        let mut b = Vec::with_capacity(1500);
        put32(&mut b, 5);
        put32(&mut b, 1);
        b.extend_from_slice(&[127, 0, 0, 1]);
        put32(&mut b, 0);
        put32(&mut b, self.sequence);
        put32(&mut b, 0);
        put32(&mut b, flows.len() as u32);
        for f in flows {
            let packets = f.packets.clamp(1, u64::from(u32::MAX));
            let (src, dst) = (f.src.0.to_be_bytes(), f.dst.0.to_be_bytes());
            let v6 = f.src.as_v4().is_none() || f.dst.as_v4().is_none();
            let record_len: u32 = if v6 { 56 } else { 32 };
            put32(&mut b, 1); // flow sample
            put32(&mut b, 32 + 8 + record_len);
            put32(&mut b, self.datagrams as u32);
            put32(&mut b, 1);
            put32(&mut b, packets as u32); // sampling rate: this one sample stands for the flow
            put32(&mut b, 0);
            put32(&mut b, 0);
            put32(&mut b, 0);
            put32(&mut b, 0);
            put32(&mut b, 1); // one record
            put32(&mut b, if v6 { 4 } else { 3 });
            put32(&mut b, record_len);
            put32(&mut b, (f.bytes / packets) as u32);
            put32(&mut b, u32::from(f.protocol));
            if v6 {
                b.extend_from_slice(&src);
                b.extend_from_slice(&dst);
            } else {
                b.extend_from_slice(&src[12..]);
                b.extend_from_slice(&dst[12..]);
            }
            put32(&mut b, u32::from(f.src_port));
            put32(&mut b, u32::from(f.dst_port));
            put32(&mut b, u32::from(f.tcp_flags));
            put32(&mut b, 0);
        }
        self.sequence = self.sequence.wrapping_add(1);
        self.datagrams += 1;
        b
    }
}

/// Writes the set length at `start` and pads the set to four bytes.
fn finish_set(b: &mut Vec<u8>, start: usize) {
    while !(b.len() - start).is_multiple_of(4) {
        b.push(0);
    }
    let len = (b.len() - start) as u16;
    b[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
}
