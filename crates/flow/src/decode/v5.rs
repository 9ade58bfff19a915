//! NetFlow v5: a 24-byte header and up to 30 fixed 48-byte records.

use std::net::SocketAddr;

use botscope_net::packet::Addr;

use super::be::{u8_at, u16_at, u32_at};
use super::{DecodeError, Decoder};
use crate::flow::Flow;

const HEADER: usize = 24;
const RECORD: usize = 48;
/// Cisco's limit; a larger count is a malformed header.
const MAX_RECORDS: usize = 30;

/// Decodes a datagram of one or more v5 export packets one after another: a packet's records end
/// where its header's count says, and more bytes than zero padding are the next packet (some
/// exporters and relays pack several into one datagram, and nfcapd reads them all).
pub(super) fn decode(
    decoder: &mut Decoder,
    exporter: SocketAddr,
    d: &[u8],
    out: &mut Vec<Flow>,
) -> Result<(), DecodeError> {
    let mut rest = d;
    loop {
        let used = decode_packet(decoder, exporter, rest, out)?;
        rest = &rest[used..];
        if rest.iter().all(|b| *b == 0) {
            return Ok(());
        }
        if u16_at(rest, 0) != Some(5) {
            return Err(DecodeError::BadHeader("NetFlow v5 (bytes after the records)"));
        }
    }
}

/// Decodes the export packet at the start of `d`; returns its length.
fn decode_packet(
    decoder: &mut Decoder,
    exporter: SocketAddr,
    d: &[u8],
    out: &mut Vec<Flow>,
) -> Result<usize, DecodeError> {
    if d.len() < HEADER {
        return Err(DecodeError::TooShort(d.len()));
    }
    let count16 = u16_at(d, 2).unwrap_or(0);
    let count = usize::from(count16);
    if count == 0 || count > MAX_RECORDS {
        return Err(DecodeError::BadHeader("NetFlow v5"));
    }
    let uptime = u32_at(d, 4).unwrap_or(0);
    let secs = i64::from(u32_at(d, 8).unwrap_or(0));
    let nsecs = i64::from(u32_at(d, 12).unwrap_or(0));
    let sequence = u32_at(d, 16).unwrap_or(0);
    let engine = u16_at(d, 20).unwrap_or(0);
    let sampling = u16_at(d, 22).unwrap_or(0);
    // Top two bits: mode; the rest: the interval. Mode 0 means no sampling whatever the rest says.
    let rate = if sampling >> 14 != 0 { u64::from(sampling & 0x3fff).max(1) } else { 1 };
    // Residual nanoseconds are below 10^9; a larger value is clamped there rather than let it
    // move the export time by up to four seconds. No overflow: secs < 2^32, so ms < 2^42.
    let export_ms = secs * 1000 + nsecs.min(999_999_999) / 1_000_000;
    decoder.sequence(exporter, 5, u64::from(engine), sequence, u32::from(count16));
    // Uptime stamps are relative to the exporter's boot; they wrap after 49.7 days, so the
    // distance back from export time is taken modulo 2^32, as a signed number: a flow may end a
    // moment after the (second-granular) export time.
    let at = |stamp: u32| export_ms - i64::from(uptime.wrapping_sub(stamp) as i32);
    let available = (d.len() - HEADER) / RECORD;
    for r in d[HEADER..].chunks_exact(RECORD).take(count) {
        let first = u32_at(r, 24).unwrap_or(0);
        let last = u32_at(r, 28).unwrap_or(0);
        let (start_ms, end_ms) = (at(first), at(last));
        out.push(Flow {
            start_ms: start_ms.min(end_ms),
            end_ms,
            src: Addr::v4(u32_at(r, 0).unwrap_or(0)),
            dst: Addr::v4(u32_at(r, 4).unwrap_or(0)),
            src_port: u16_at(r, 32).unwrap_or(0),
            dst_port: u16_at(r, 34).unwrap_or(0),
            protocol: u8_at(r, 38).unwrap_or(0),
            tcp_flags: u8_at(r, 37).unwrap_or(0),
            // 32-bit counters times a 14-bit interval cannot reach 2^64; saturating all the same.
            packets: u64::from(u32_at(r, 16).unwrap_or(0)).saturating_mul(rate),
            bytes: u64::from(u32_at(r, 20).unwrap_or(0)).saturating_mul(rate),
            reply_packets: 0,
            reply_bytes: 0,
        });
    }
    if available < count {
        return Err(DecodeError::BadHeader("NetFlow v5"));
    }
    Ok(HEADER + count * RECORD)
}
