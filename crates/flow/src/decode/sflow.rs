//! sFlow version 5: flow samples carrying sampled packet headers (or their decoded IPv4/IPv6
//! summaries). Each sampled packet stands for `sampling_rate` packets; sFlow has no flow
//! timestamps, so the receive time is used.

use std::net::SocketAddr;

use botscope_net::packet::{self, Addr, linktype};

use super::be::u32_at;
use super::{DecodeError, Decoder, Skip};
use crate::flow::Flow;

/// Samples per datagram at most (a datagram cannot hold more than a few hundred).
const MAX_SAMPLES: u32 = 1024;

pub(super) fn decode(
    decoder: &mut Decoder,
    exporter: SocketAddr,
    d: &[u8],
    now_ms: i64,
    out: &mut Vec<Flow>,
) -> Result<(), DecodeError> {
    let bad = DecodeError::BadHeader("sFlow");
    let address_type = u32_at(d, 4).ok_or(bad)?;
    let mut at = match address_type {
        1 => 12,
        2 => 24,
        _ => return Err(bad),
    };
    let sub_agent = u32_at(d, at).ok_or(bad)?;
    let sequence = u32_at(d, at + 4).ok_or(bad)?;
    let samples = u32_at(d, at + 12).ok_or(bad)?;
    at += 16;
    if samples > MAX_SAMPLES {
        return Err(bad);
    }
    // `at` is 28 or 40 here.
    let agent = d.get(8..at - 16).map(|a| a.iter().fold(0u64, |h, b| h.rotate_left(8) ^ u64::from(*b))).unwrap_or(0);
    decoder.sequence(exporter, 5 | 0x80, agent ^ (u64::from(sub_agent) << 32), sequence, 1);
    for _ in 0..samples {
        let (Some(format), Some(len)) = (u32_at(d, at), u32_at(d, at + 4)) else {
            return Err(bad);
        };
        // `at` stays within the datagram, so `at + 8` cannot overflow; the sample's length is
        // hostile and is only ever a bounds-checked slice end.
        let start = at + 8;
        let Some(body) = d.get(start..start.saturating_add(len as usize)) else {
            return Err(bad);
        };
        at = start + body.len();
        match format {
            1 => flow_sample(decoder, body, false, now_ms, out),
            3 => flow_sample(decoder, body, true, now_ms, out),
            _ => decoder.stats.ignored_samples += 1,
        }
    }
    Ok(())
}

fn flow_sample(decoder: &mut Decoder, s: &[u8], expanded: bool, now_ms: i64, out: &mut Vec<Flow>) {
    // Compact: seq, source id, rate, pool, drops, input, output, record count.
    // Expanded: seq, source id type, index, rate, pool, drops, input format, value, output
    // format, value, record count.
    let (rate_at, count_at) = if expanded { (12, 40) } else { (8, 28) };
    let (Some(rate), Some(count)) = (u32_at(s, rate_at), u32_at(s, count_at)) else {
        decoder.stats.malformed += 1;
        return;
    };
    let rate = u64::from(rate.max(1));
    let mut at = count_at + 4;
    for _ in 0..count.min(MAX_SAMPLES) {
        let (Some(format), Some(len)) = (u32_at(s, at), u32_at(s, at + 4)) else {
            decoder.stats.malformed += 1;
            return;
        };
        let Some(record) = s.get(at + 8..(at + 8).saturating_add(len as usize)) else {
            decoder.stats.malformed += 1;
            return;
        };
        at += 8 + record.len();
        let flow = match format {
            1 => raw_header(decoder, record),
            3 | 4 => match sampled_ip(record, format == 4) {
                Ok(flow) => Some(flow),
                Err(None) => {
                    decoder.stats.malformed += 1;
                    None
                }
                Err(Some(why)) => {
                    decoder.stats.skipped(why);
                    None
                }
            },
            _ => {
                decoder.stats.ignored_samples += 1;
                continue;
            }
        };
        if let Some((mut flow, frame_length)) = flow {
            flow.start_ms = now_ms;
            flow.end_ms = now_ms;
            flow.packets = rate;
            // A 32-bit length times a 32-bit rate stays below 2^64.
            flow.bytes = frame_length.saturating_mul(rate);
            out.push(flow);
        }
    }
}

/// A sampled packet header (record format 1): protocol, frame length, stripped, header length,
/// header bytes.
fn raw_header(decoder: &mut Decoder, r: &[u8]) -> Option<(Flow, u64)> {
    let (Some(proto), Some(frame_length), Some(header_len)) = (u32_at(r, 0), u32_at(r, 4), u32_at(r, 12)) else {
        decoder.stats.malformed += 1;
        return None;
    };
    let Some(header) = r.get(16..16usize.saturating_add(header_len as usize)) else {
        decoder.stats.malformed += 1;
        return None;
    };
    let link = match proto {
        1 => linktype::ETHERNET,
        11 | 12 => linktype::RAW,
        _ => {
            decoder.stats.unusable_headers += 1;
            return None;
        }
    };
    let Ok(p) = packet::parse(link, header) else {
        decoder.stats.unusable_headers += 1;
        return None;
    };
    let (src_port, dst_port) = match p.transport {
        packet::Transport::Icmp { kind, code, .. } => (0, u16::from(kind) << 8 | u16::from(code)),
        _ => p.ports().unwrap_or((0, 0)),
    };
    // The IP length is what NetFlow counts; the frame length adds the link header.
    let bytes = if p.ip_len > 0 { u64::from(p.ip_len) } else { u64::from(frame_length) };
    Some((flow(p.src, p.dst, src_port, dst_port, p.protocol, p.tcp_flags().unwrap_or(0)), bytes))
}

/// Decoded IPv4 (format 3) or IPv6 (format 4) summary: length, protocol, src, dst, ports,
/// flags, tos/priority. `Err(None)` when the record is cut short, `Err(Some(_))` when a 32-bit
/// field holds more than its protocol field can (a port above 65535, a protocol above 255).
fn sampled_ip(r: &[u8], v6: bool) -> Result<(Flow, u64), Option<Skip>> {
    let length = u32_at(r, 0).ok_or(None)?;
    let proto = u32_at(r, 4).ok_or(None)?;
    let (src, dst, rest) = if v6 {
        let bytes = |at: usize| -> Option<[u8; 16]> { r.get(at..at + 16)?.try_into().ok() };
        let (src, dst) = (bytes(8).ok_or(None)?, bytes(24).ok_or(None)?);
        (Addr(u128::from_be_bytes(src)), Addr(u128::from_be_bytes(dst)), 40)
    } else {
        (Addr::v4(u32_at(r, 8).ok_or(None)?), Addr::v4(u32_at(r, 12).ok_or(None)?), 16)
    };
    let (sport, dport, flags) =
        (u32_at(r, rest).ok_or(None)?, u32_at(r, rest + 4).ok_or(None)?, u32_at(r, rest + 8).ok_or(None)?);
    let narrow = |v: u32| u16::try_from(v).map_err(|_| Some(Skip::Value));
    let proto = u8::try_from(proto).map_err(|_| Some(Skip::Value))?;
    // The TCP flags word carries the classic eight flags in its low byte.
    let flags = (flags & 0xff) as u8;
    Ok((flow(src, dst, narrow(sport)?, narrow(dport)?, proto, flags), u64::from(length)))
}

fn flow(src: Addr, dst: Addr, src_port: u16, dst_port: u16, protocol: u8, tcp_flags: u8) -> Flow {
    Flow {
        start_ms: 0,
        end_ms: 0,
        src,
        dst,
        src_port,
        dst_port,
        protocol,
        tcp_flags,
        packets: 1,
        bytes: 0,
        reply_packets: 0,
        reply_bytes: 0,
    }
}
