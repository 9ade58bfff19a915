//! The packet parser: from a link-layer frame to the header fields the signatures look at.
//!
//! Only headers are read, never payload. Everything is bounds-checked by slice length; a frame cut
//! short by the snap length still yields what it holds (an IP header without its transport header
//! is a packet with `Transport::Truncated`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Link types this parser understands (LINKTYPE_* numbers from tcpdump.org).
pub mod linktype {
    /// BSD loopback: a 4-byte address family in the writer's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet, with 802.1Q / 802.1ad tags.
    pub const ETHERNET: u32 = 1;
    /// Raw IP as DLT_RAW on some systems.
    pub const RAW_DLT12: u32 = 12;
    /// Raw IP as DLT_RAW on others.
    pub const RAW_DLT14: u32 = 14;
    /// Raw IP.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback (address family in network byte order).
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
}

/// An address as one integer: IPv4 in the low 32 bits with the IPv4-mapped prefix, so both
/// families hash and compare alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr(pub u128);

const MAPPED: u128 = 0xffff_0000_0000;

impl Addr {
    /// An IPv4 address.
    pub fn v4(bits: u32) -> Self {
        Addr(MAPPED | u128::from(bits))
    }

    /// The IPv4 address, if this is one.
    pub fn as_v4(self) -> Option<u32> {
        (self.0 >> 32 == MAPPED >> 32).then_some(self.0 as u32)
    }

    /// As a standard address.
    pub fn to_ip(self) -> IpAddr {
        match self.as_v4() {
            Some(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            None => IpAddr::V6(Ipv6Addr::from(self.0)),
        }
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Addr::v4(u32::from(v4)),
            IpAddr::V6(v6) => Addr(u128::from(v6)),
        }
    }
}

/// The transport header, as far as it was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Flag bits (see [`tcp_flags`]).
        flags: u8,
        /// Window.
        window: u16,
    },
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// ICMP or ICMPv6.
    Icmp {
        /// Type.
        kind: u8,
        /// Code.
        code: u8,
        /// For error messages: the destination of the quoted packet, which is who sent the
        /// original (the address a DDoS victim's router or stack was answering for).
        quoted_dst: Option<Addr>,
    },
    /// Another protocol, or a later fragment without a transport header.
    Other,
    /// The capture ended inside the transport header.
    Truncated,
}

/// The header fields of one IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// 4 or 6.
    pub version: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    /// IP protocol / final next header.
    pub protocol: u8,
    /// IP length from the header (total length; for IPv6 payload length + 40).
    pub ip_len: u32,
    /// The transport header.
    pub transport: Transport,
}

/// Why a frame holds no usable IP packet. Counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketSkip {
    /// A link type the parser does not know.
    UnsupportedLinktype,
    /// A frame that carries something other than IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// The frame ended inside the link or IP header, or the header contradicts itself.
    Malformed,
}

impl PacketSkip {
    /// A short name for counters.
    pub fn as_str(self) -> &'static str {
        match self {
            PacketSkip::UnsupportedLinktype => "unsupported_linktype",
            PacketSkip::NotIp => "not_ip",
            PacketSkip::Malformed => "malformed",
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses a frame of the given link type.
#[inline]
pub fn parse(linktype: u32, frame: &[u8]) -> Result<Packet, PacketSkip> {
    let ip = match linktype {
        linktype::ETHERNET => ethernet_payload(frame)?,
        linktype::RAW | linktype::RAW_DLT12 | linktype::RAW_DLT14 | linktype::IPV4 | linktype::IPV6 => frame,
        // libpcap puts a stripped 802.1Q tag back after the cooked header, so tags follow here too.
        linktype::LINUX_SLL => {
            let protocol = be16(frame, 14).ok_or(PacketSkip::Malformed)?;
            after_vlan_tags(frame, protocol, 16)?
        }
        linktype::LINUX_SLL2 => {
            let protocol = be16(frame, 0).ok_or(PacketSkip::Malformed)?;
            after_vlan_tags(frame, protocol, 20)?
        }
        linktype::NULL | linktype::LOOP => {
            let family = frame.get(..4).ok_or(PacketSkip::Malformed)?;
            // The family is in the writer's byte order; 2 is IPv4 and 24, 28 or 30 IPv6 everywhere.
            let family = if family[0] == 0 && family[1] == 0 { family[3] } else { family[0] };
            match family {
                2 | 24 | 28 | 30 => &frame[4..],
                _ => return Err(PacketSkip::NotIp),
            }
        }
        _ => return Err(PacketSkip::UnsupportedLinktype),
    };
    parse_ip(ip)
}

fn ethernet_payload(frame: &[u8]) -> Result<&[u8], PacketSkip> {
    let ethertype = be16(frame, 12).ok_or(PacketSkip::Malformed)?;
    after_vlan_tags(frame, ethertype, 14)
}

/// Steps over VLAN tags starting at `at` (where the payload of `ethertype` begins) to the IP packet.
fn after_vlan_tags(frame: &[u8], mut ethertype: u16, mut at: usize) -> Result<&[u8], PacketSkip> {
    // At most two tags (802.1ad outer + 802.1Q inner) occur in practice; allow a third for safety.
    for _ in 0..3 {
        if !matches!(ethertype, ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) {
            break;
        }
        ethertype = be16(frame, at + 2).ok_or(PacketSkip::Malformed)?;
        at += 4;
    }
    ip_by_ethertype(ethertype, frame.get(at..).ok_or(PacketSkip::Malformed)?)
}

fn ip_by_ethertype(ethertype: u16, payload: &[u8]) -> Result<&[u8], PacketSkip> {
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(payload),
        _ => Err(PacketSkip::NotIp),
    }
}

/// Parses an IP packet (version from its first nibble).
#[inline]
pub fn parse_ip(ip: &[u8]) -> Result<Packet, PacketSkip> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => parse_ipv4(ip),
        Some(6) => parse_ipv6(ip),
        Some(_) => Err(PacketSkip::NotIp),
        None => Err(PacketSkip::Malformed),
    }
}

#[inline]
fn parse_ipv4(ip: &[u8]) -> Result<Packet, PacketSkip> {
    if ip.len() < 20 {
        return Err(PacketSkip::Malformed);
    }
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    if header_len < 20 {
        return Err(PacketSkip::Malformed);
    }
    let total_len = u32::from(u16::from_be_bytes([ip[2], ip[3]]));
    let ip_id = u16::from_be_bytes([ip[4], ip[5]]);
    let fragment_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    let protocol = ip[9];
    let src = Addr::v4(u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]));
    let dst = Addr::v4(u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]));
    let transport = if fragment_offset != 0 {
        Transport::Other
    } else {
        match ip.get(header_len..) {
            Some(rest) => parse_transport(protocol, rest, false),
            None => Transport::Truncated,
        }
    };
    Ok(Packet { src, dst, version: 4, ttl: ip[8], ip_id, protocol, ip_len: total_len, transport })
}

fn ipv6_addr(b: &[u8], at: usize) -> Addr {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&b[at..at + 16]);
    Addr(u128::from_be_bytes(bytes))
}

fn parse_ipv6(ip: &[u8]) -> Result<Packet, PacketSkip> {
    if ip.len() < 40 {
        return Err(PacketSkip::Malformed);
    }
    let payload_len = u32::from(u16::from_be_bytes([ip[4], ip[5]]));
    let src = ipv6_addr(ip, 8);
    let dst = ipv6_addr(ip, 24);
    let (protocol, transport) = ipv6_transport(ip[6], &ip[40..], false);
    Ok(Packet { src, dst, version: 6, ttl: ip[7], ip_id: 0, protocol, ip_len: payload_len + 40, transport })
}

/// Walks IPv6 extension headers (a bounded number of them) to the transport header.
fn ipv6_transport(mut next: u8, mut rest: &[u8], quoted: bool) -> (u8, Transport) {
    for _ in 0..8 {
        match next {
            0 | 43 | 60 => {
                let (Some(&following), Some(&units)) = (rest.first(), rest.get(1)) else {
                    return (next, Transport::Truncated);
                };
                let len = (usize::from(units) + 1) * 8;
                let Some(after) = rest.get(len..) else {
                    return (next, Transport::Truncated);
                };
                next = following;
                rest = after;
            }
            44 => {
                let (Some(&following), Some(offset)) = (rest.first(), be16(rest, 2)) else {
                    return (next, Transport::Truncated);
                };
                if offset >> 3 != 0 {
                    return (following, Transport::Other);
                }
                next = following;
                rest = &rest[8.min(rest.len())..];
            }
            _ => return (next, parse_transport(next, rest, quoted)),
        }
    }
    (next, Transport::Other)
}

#[inline]
fn parse_transport(protocol: u8, rest: &[u8], quoted: bool) -> Transport {
    match protocol {
        6 => {
            // A quoted TCP header (inside an ICMP error) is only guaranteed to hold 8 bytes.
            if quoted {
                return match (be16(rest, 0), be16(rest, 2), be32(rest, 4)) {
                    (Some(sport), Some(dport), Some(seq)) => {
                        Transport::Tcp { sport, dport, seq, ack: 0, flags: 0, window: 0 }
                    }
                    _ => Transport::Truncated,
                };
            }
            if rest.len() < 20 {
                return Transport::Truncated;
            }
            Transport::Tcp {
                sport: u16::from_be_bytes([rest[0], rest[1]]),
                dport: u16::from_be_bytes([rest[2], rest[3]]),
                seq: u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
                ack: u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]),
                flags: rest[13],
                window: u16::from_be_bytes([rest[14], rest[15]]),
            }
        }
        17 => match (be16(rest, 0), be16(rest, 2)) {
            (Some(sport), Some(dport)) if rest.len() >= 8 || quoted => Transport::Udp { sport, dport },
            _ => Transport::Truncated,
        },
        1 | 58 => {
            let (Some(&kind), Some(&code)) = (rest.first(), rest.get(1)) else {
                return Transport::Truncated;
            };
            let is_error = if protocol == 1 { matches!(kind, 3 | 4 | 5 | 11 | 12) } else { kind < 128 };
            let quoted_dst = if is_error && !quoted { rest.get(8..).and_then(quoted_destination) } else { None };
            Transport::Icmp { kind, code, quoted_dst }
        }
        _ => Transport::Other,
    }
}

/// The destination of the packet an ICMP error quotes.
fn quoted_destination(quoted: &[u8]) -> Option<Addr> {
    match quoted.first()? >> 4 {
        4 if quoted.len() >= 20 => Some(Addr::v4(be32(quoted, 16)?)),
        6 if quoted.len() >= 40 => Some(ipv6_addr(quoted, 24)),
        _ => None,
    }
}

impl Packet {
    /// The TCP flags, if this is TCP.
    pub fn tcp_flags(&self) -> Option<u8> {
        match self.transport {
            Transport::Tcp { flags, .. } => Some(flags),
            _ => None,
        }
    }

    /// Source and destination ports, if TCP or UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport {
            Transport::Tcp { sport, dport, .. } | Transport::Udp { sport, dport } => Some((sport, dport)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
