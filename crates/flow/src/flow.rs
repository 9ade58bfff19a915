//! The one flow shape every decoder and reader produces.

use std::net::IpAddr;

use botscope_net::packet::Addr;
use serde::{Deserialize, Serialize};

/// IP protocol numbers the analyser names.
pub mod protocol {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// The earliest flow time botscope accepts, 0000-01-01T00:00:00Z, in milliseconds since the Unix
/// epoch. Flow and record formats write times in RFC 3339, which has four-digit years; a time
/// outside years 0000 to 9999 comes only from a damaged or forged export.
pub const EARLIEST_MS: i64 = -62_167_219_200_000;
/// The latest flow time botscope accepts, 9999-12-31T23:59:59.999Z.
pub const LATEST_MS: i64 = 253_402_300_799_999;

/// Whether `ms` lies between [`EARLIEST_MS`] and [`LATEST_MS`].
pub fn time_in_range(ms: i64) -> bool {
    (EARLIEST_MS..=LATEST_MS).contains(&ms)
}

/// One flow: packets between two endpoints over an interval, as an exporter or a log reports it.
///
/// Unidirectional sources (NetFlow, IPFIX, sFlow) fill only the forward counters; bidirectional
/// ones (Zeek, Argus) also give the reply direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// First packet, milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// Last packet, milliseconds since the Unix epoch.
    pub end_ms: i64,
    /// Source (the initiator for bidirectional sources).
    pub src: Addr,
    /// Destination.
    pub dst: Addr,
    /// Source port (0 when the protocol has none).
    pub src_port: u16,
    /// Destination port (for ICMP, type * 256 + code as NetFlow writes it).
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// Cumulative TCP flags.
    pub tcp_flags: u8,
    /// Packets, sampling already undone.
    pub packets: u64,
    /// IP bytes, sampling already undone.
    pub bytes: u64,
    /// Packets in the reply direction (bidirectional sources only).
    pub reply_packets: u64,
    /// Bytes in the reply direction (bidirectional sources only).
    pub reply_bytes: u64,
}

/// The JSON line form of a [`Flow`] (botscope's own flow format, `docs/formats.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowLine {
    /// First packet (RFC 3339, milliseconds).
    pub start: chrono::DateTime<chrono::Utc>,
    /// Last packet.
    pub end: chrono::DateTime<chrono::Utc>,
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    #[serde(default)]
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    #[serde(default)]
    pub dport: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP).
    pub proto: u8,
    /// Cumulative TCP flags as a number.
    #[serde(default)]
    pub flags: u8,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Reply packets (bidirectional sources).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rpackets: u64,
    /// Reply bytes (bidirectional sources).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rbytes: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl From<&Flow> for FlowLine {
    fn from(f: &Flow) -> Self {
        FlowLine {
            start: millis(f.start_ms),
            end: millis(f.end_ms),
            src: f.src.to_ip(),
            sport: f.src_port,
            dst: f.dst.to_ip(),
            dport: f.dst_port,
            proto: f.protocol,
            flags: f.tcp_flags,
            packets: f.packets,
            bytes: f.bytes,
            rpackets: f.reply_packets,
            rbytes: f.reply_bytes,
        }
    }
}

/// A flow line that cannot be a flow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowLineError {
    /// It ends before it starts.
    #[error("end is before start")]
    EndBeforeStart,
}

impl FlowLine {
    /// Back to a [`Flow`]; an end before the start is an error.
    pub fn to_flow(&self) -> Result<Flow, FlowLineError> {
        if self.end < self.start {
            return Err(FlowLineError::EndBeforeStart);
        }
        Ok(Flow {
            start_ms: self.start.timestamp_millis(),
            end_ms: self.end.timestamp_millis(),
            src: Addr::from(self.src),
            dst: Addr::from(self.dst),
            src_port: self.sport,
            dst_port: self.dport,
            protocol: self.proto,
            tcp_flags: self.flags,
            packets: self.packets,
            bytes: self.bytes,
            reply_packets: self.rpackets,
            reply_bytes: self.rbytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_are_the_first_and_last_instant_of_four_digit_years() {
        let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis();
        assert_eq!(EARLIEST_MS, at("0000-01-01T00:00:00Z"));
        assert_eq!(LATEST_MS, at("9999-12-31T23:59:59.999Z"));
        assert!(time_in_range(0) && !time_in_range(LATEST_MS + 1) && !time_in_range(EARLIEST_MS - 1));
    }

    #[test]
    fn flow_line_round_trips() {
        let line = r#"{"start":"2026-11-02T00:00:01.250Z","end":"2026-11-02T00:00:31Z","src":"127.16.0.9","sport":40112,"dst":"127.200.0.1","dport":23,"proto":6,"flags":24,"packets":6,"bytes":412}"#;
        let parsed: FlowLine = serde_json::from_str(line).unwrap();
        let flow = parsed.to_flow().unwrap();
        assert_eq!(flow.end_ms - flow.start_ms, 29_750);
        assert_eq!(FlowLine::from(&flow), parsed);
    }
}
