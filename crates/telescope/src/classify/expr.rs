//! The condition language of packet signatures.
//!
//! A condition compares header fields: `tcp.flags == SYN`, `tcp.seq == ip.dst`,
//! `ip.id == ip.dst ^ tcp.dport ^ tcp.seq` (compared at the left field's width, 16 bits here),
//! `tcp.flags & RST != 0`, `tcp.dport in [23, 2323, 8000-8099]`, `ip.src in [127.99.0.0/16]`.
//! A field the packet does not have (a TCP field of a UDP packet, an IPv4 address of an IPv6
//! packet) makes the condition false.

use crate::packet::{Packet, Transport};

/// Header fields a condition can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    IpVersion,
    IpTtl,
    IpId,
    IpProto,
    IpLen,
    IpSrc,
    IpDst,
    TcpSport,
    TcpDport,
    TcpSeq,
    TcpAck,
    TcpFlags,
    TcpWindow,
    UdpSport,
    UdpDport,
    IcmpType,
    IcmpCode,
}

pub(crate) const FIELD_COUNT: usize = 17;

const FIELDS: [(&str, Field, u32); FIELD_COUNT] = [
    ("ip.version", Field::IpVersion, 8),
    ("ip.ttl", Field::IpTtl, 8),
    ("ip.id", Field::IpId, 16),
    ("ip.proto", Field::IpProto, 8),
    ("ip.len", Field::IpLen, 32),
    ("ip.src", Field::IpSrc, 32),
    ("ip.dst", Field::IpDst, 32),
    ("tcp.sport", Field::TcpSport, 16),
    ("tcp.dport", Field::TcpDport, 16),
    ("tcp.seq", Field::TcpSeq, 32),
    ("tcp.ack", Field::TcpAck, 32),
    ("tcp.flags", Field::TcpFlags, 8),
    ("tcp.window", Field::TcpWindow, 16),
    ("udp.sport", Field::UdpSport, 16),
    ("udp.dport", Field::UdpDport, 16),
    ("icmp.type", Field::IcmpType, 8),
    ("icmp.code", Field::IcmpCode, 8),
];

/// Every field name, for error messages and the documentation test.
pub(crate) fn field_names() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|(name, _, _)| *name)
}

/// One packet's fields, extracted once and shared by every signature.
pub(crate) struct Fields {
    values: [u64; FIELD_COUNT],
    present: u32,
}

impl Fields {
    pub(crate) fn of(p: &Packet) -> Self {
        let mut f = Fields { values: [0; FIELD_COUNT], present: 0 };
        f.set(Field::IpVersion, u64::from(p.version));
        f.set(Field::IpTtl, u64::from(p.ttl));
        f.set(Field::IpProto, u64::from(p.protocol));
        f.set(Field::IpLen, u64::from(p.ip_len));
        if let (Some(src), Some(dst)) = (p.src.as_v4(), p.dst.as_v4()) {
            f.set(Field::IpId, u64::from(p.ip_id));
            f.set(Field::IpSrc, u64::from(src));
            f.set(Field::IpDst, u64::from(dst));
        }
        match p.transport {
            Transport::Tcp { sport, dport, seq, ack, flags, window } => {
                f.set(Field::TcpSport, u64::from(sport));
                f.set(Field::TcpDport, u64::from(dport));
                f.set(Field::TcpSeq, u64::from(seq));
                f.set(Field::TcpAck, u64::from(ack));
                f.set(Field::TcpFlags, u64::from(flags));
                f.set(Field::TcpWindow, u64::from(window));
            }
            Transport::Udp { sport, dport } => {
                f.set(Field::UdpSport, u64::from(sport));
                f.set(Field::UdpDport, u64::from(dport));
            }
            Transport::Icmp { kind, code, .. } => {
                f.set(Field::IcmpType, u64::from(kind));
                f.set(Field::IcmpCode, u64::from(code));
            }
            Transport::Other | Transport::Truncated => {}
        }
        f
    }

    #[inline]
    fn set(&mut self, field: Field, value: u64) {
        self.values[field as usize] = value;
        self.present |= 1 << field as u32;
    }

    /// Which fields the packet has (bits by `Field` number).
    #[inline]
    pub(crate) fn present(&self) -> u32 {
        self.present
    }

    #[inline]
    fn get(&self, field: Field) -> Option<u64> {
        (self.present & (1 << field as u32) != 0).then_some(self.values[field as usize])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Field(Field),
    Const(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    Xor,
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expr {
    first: Atom,
    rest: Vec<(Combine, Atom)>,
}

impl Expr {
    #[inline]
    fn eval(&self, f: &Fields) -> Option<u64> {
        let mut value = atom(self.first, f)?;
        for (op, a) in &self.rest {
            let v = atom(*a, f)?;
            value = match op {
                Combine::Xor => value ^ v,
                Combine::And => value & v,
                Combine::Or => value | v,
            };
        }
        Some(value)
    }

    fn width(&self) -> u32 {
        match self.first {
            Atom::Field(field) => FIELDS.iter().find(|(_, f, _)| *f == field).map_or(64, |(_, _, w)| *w),
            Atom::Const(_) => 64,
        }
    }
}

#[inline]
fn atom(a: Atom, f: &Fields) -> Option<u64> {
    match a {
        Atom::Field(field) => f.get(field),
        Atom::Const(c) => Some(c),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A compiled condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    Compare {
        lhs: Expr,
        op: Compare,
        rhs: Expr,
        mask: u64,
    },
    /// Member of any of the (value, mask) entries or inclusive ranges.
    In {
        lhs: Expr,
        ranges: Vec<(u64, u64)>,
    },
}

impl Condition {
    /// Bits (by `Field` number) of the fields this condition reads: a packet without all of them
    /// cannot match, which lets the caller skip the evaluation.
    pub(crate) fn field_mask(&self) -> u32 {
        let of = |e: &Expr| {
            std::iter::once(&e.first).chain(e.rest.iter().map(|(_, a)| a)).fold(0u32, |m, a| match a {
                Atom::Field(f) => m | 1 << *f as u32,
                Atom::Const(_) => m,
            })
        };
        match self {
            Condition::Compare { lhs, rhs, .. } => of(lhs) | of(rhs),
            Condition::In { lhs, .. } => of(lhs),
        }
    }

    #[inline]
    pub(crate) fn holds(&self, f: &Fields) -> bool {
        match self {
            Condition::Compare { lhs, op, rhs, mask } => {
                let (Some(l), Some(r)) = (lhs.eval(f), rhs.eval(f)) else { return false };
                let (l, r) = (l & mask, r & mask);
                match op {
                    Compare::Eq => l == r,
                    Compare::Ne => l != r,
                    Compare::Lt => l < r,
                    Compare::Le => l <= r,
                    Compare::Gt => l > r,
                    Compare::Ge => l >= r,
                }
            }
            Condition::In { lhs, ranges } => {
                let Some(v) = lhs.eval(f) else { return false };
                ranges.iter().any(|&(lo, hi)| v >= lo && v <= hi)
            }
        }
    }
}

/// Parses one condition; the error says what was expected where.
pub(crate) fn parse_condition(text: &str) -> Result<Condition, String> {
    let text = text.trim();
    if let Some((lhs, list)) = split_keyword(text, " in ") {
        let lhs = parse_expr(lhs)?;
        let list = list.trim();
        let inner = list
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .ok_or_else(|| format!("`in` needs a list in brackets, found {list:?}"))?;
        let mut ranges = Vec::new();
        for item in inner.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            ranges.push(parse_range(item)?);
        }
        if ranges.is_empty() {
            return Err("`in` needs at least one item".into());
        }
        return Ok(Condition::In { lhs, ranges });
    }
    for (token, op) in [
        ("==", Compare::Eq),
        ("!=", Compare::Ne),
        ("<=", Compare::Le),
        (">=", Compare::Ge),
        ("<", Compare::Lt),
        (">", Compare::Gt),
    ] {
        if let Some((lhs, rhs)) = text.split_once(token) {
            let lhs = parse_expr(lhs)?;
            let rhs = parse_expr(rhs)?;
            let width = lhs.width();
            let mask = if width >= 64 { u64::MAX } else { (1u64 << width) - 1 };
            return Ok(Condition::Compare { lhs, op, rhs, mask });
        }
    }
    Err(format!("no comparison (==, !=, <, <=, >, >=, in) in {text:?}"))
}

fn split_keyword<'a>(text: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    text.find(keyword).map(|at| (&text[..at], &text[at + keyword.len()..]))
}

fn parse_expr(text: &str) -> Result<Expr, String> {
    let mut rest = Vec::new();
    let mut current = String::new();
    let mut pending: Option<Combine> = None;
    let mut first: Option<Atom> = None;
    let mut flush = |token: &str, op: Option<Combine>, first: &mut Option<Atom>| -> Result<(), String> {
        let a = parse_atom(token.trim())?;
        match (first.is_none(), op) {
            (true, _) => *first = Some(a),
            (false, Some(op)) => rest.push((op, a)),
            (false, None) => unreachable!("operators separate atoms"),
        }
        Ok(())
    };
    for c in text.chars() {
        let op = match c {
            '^' => Some(Combine::Xor),
            '&' => Some(Combine::And),
            '|' if !current.trim().chars().all(|c| c.is_ascii_uppercase()) || current.trim().is_empty() => {
                Some(Combine::Or)
            }
            _ => None,
        };
        match op {
            Some(op) => {
                flush(&current, pending, &mut first)?;
                pending = Some(op);
                current.clear();
            }
            None => current.push(c),
        }
    }
    flush(&current, pending, &mut first)?;
    Ok(Expr { first: first.expect("flush sets the first atom"), rest })
}

fn parse_atom(token: &str) -> Result<Atom, String> {
    if token.is_empty() {
        return Err("an operand is missing".into());
    }
    if let Some((_, field, _)) = FIELDS.iter().find(|(name, _, _)| *name == token) {
        return Ok(Atom::Field(*field));
    }
    parse_const(token).map(Atom::Const).map_err(|_| {
        format!(
            "unknown operand {token:?}: expected a number, an IPv4 address, TCP flag names joined by | (FIN SYN RST PSH ACK URG ECE CWR), or one of {}",
            field_names().collect::<Vec<_>>().join(", ")
        )
    })
}

fn parse_const(token: &str) -> Result<u64, ()> {
    if let Some(hex) = token.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).map_err(|_| ());
    }
    if let Ok(n) = token.parse::<u64>() {
        return Ok(n);
    }
    if let Ok(ip) = token.parse::<std::net::Ipv4Addr>() {
        return Ok(u64::from(u32::from(ip)));
    }
    let mut flags = 0u64;
    for name in token.split('|').map(str::trim) {
        flags |= match name {
            "FIN" => 0x01,
            "SYN" => 0x02,
            "RST" => 0x04,
            "PSH" => 0x08,
            "ACK" => 0x10,
            "URG" => 0x20,
            "ECE" => 0x40,
            "CWR" => 0x80,
            _ => return Err(()),
        };
    }
    Ok(flags)
}

fn parse_range(item: &str) -> Result<(u64, u64), String> {
    if let Some((net, len)) = item.split_once('/') {
        let net: std::net::Ipv4Addr = net.trim().parse().map_err(|_| format!("bad network in {item:?}"))?;
        let len: u32 =
            len.trim().parse().ok().filter(|l| *l <= 32).ok_or_else(|| format!("bad prefix length in {item:?}"))?;
        let size = if len == 0 { u64::from(u32::MAX) } else { (1u64 << (32 - len)) - 1 };
        let start = u64::from(u32::from(net)) & !size;
        return Ok((start, start + size));
    }
    if let Some((lo, hi)) = item.split_once('-') {
        let lo = parse_const(lo.trim()).map_err(|_| format!("bad range start in {item:?}"))?;
        let hi = parse_const(hi.trim()).map_err(|_| format!("bad range end in {item:?}"))?;
        if lo > hi {
            return Err(format!("range {item:?} runs backwards"));
        }
        return Ok((lo, hi));
    }
    let v = parse_const(item).map_err(|_| format!("bad list item {item:?}"))?;
    Ok((v, v))
}
