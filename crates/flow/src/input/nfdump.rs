//! `nfdump -o csv`: a header starting `ts,te,td,sa,da,sp,dp,pr,flg,...` and rows with local
//! times `YYYY-MM-DD hh:mm:ss[.mmm]` (run nfdump with `TZ=UTC`; times are read as UTC), a flags
//! string such as `...AP.S.`, and a `Summary` block at the end, which is skipped.

use botscope_net::packet::Addr;
use chrono::NaiveDateTime;

use super::text::{Lines, Row, read_csv};
use super::{InputError, InputReport};
use crate::flow::{Flow, protocol};

pub(super) fn read(
    lines: &mut Lines<'_>,
    report: &mut InputReport,
    emit: &mut dyn FnMut(Flow, bool),
) -> Result<(), InputError> {
    const REQUIRED: &[&str] = &["ts", "te", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt"];
    let end = |line: &str| line == "Summary" || line.starts_with("No matching flows");
    read_csv(lines, report, "nfdump CSV", REQUIRED, &end, &|row| flow(row).map(|f| (f, false)), emit)
}

fn time(text: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok().map(|t| t.and_utc().timestamp_millis())
}

/// nfdump writes flags as `CEUAPRSF` with dots for unset bits.
fn flags(text: &str) -> u8 {
    let bits = [
        (b'F', 0x01),
        (b'S', 0x02),
        (b'R', 0x04),
        (b'P', 0x08),
        (b'A', 0x10),
        (b'U', 0x20),
        (b'E', 0x40),
        (b'C', 0x80),
    ];
    text.bytes().fold(0, |acc, c| acc | bits.iter().find(|(l, _)| *l == c).map_or(0, |(_, b)| *b))
}

fn number(text: Option<&str>) -> u64 {
    let Some(text) = text else { return 0 };
    // Large values may be written as `1.2 M`.
    let (value, unit) = text.split_once(' ').unwrap_or((text, ""));
    let factor = match unit {
        "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        _ => 1.0,
    };
    value.parse::<f64>().map(|v| (v * factor).round() as u64).unwrap_or(0)
}

fn flow(row: &Row<'_>) -> Result<Flow, String> {
    let start_ms = time(row.field("ts")?).ok_or("bad ts")?;
    let end_ms = time(row.field("te")?).ok_or("bad te")?;
    let src: std::net::IpAddr = row.field("sa")?.parse().map_err(|_| "bad sa")?;
    let dst: std::net::IpAddr = row.field("da")?.parse().map_err(|_| "bad da")?;
    let proto = match row.field("pr")?.to_ascii_uppercase().as_str() {
        "TCP" => protocol::TCP,
        "UDP" => protocol::UDP,
        "ICMP" => protocol::ICMP,
        "ICMP6" => protocol::ICMPV6,
        other => other.parse().map_err(|_| format!("unknown protocol {other:?}"))?,
    };
    // Ports are written as numbers, ICMP's as `type.code`, whose type is kept. A number outside
    // 0 to 65535 is a damaged line, not a port to cut down to size.
    let port = |name: &str| -> Result<u16, String> {
        let text = row.get(name).unwrap_or("0");
        match text.parse::<f64>() {
            Ok(v) if (0.0..65536.0).contains(&v) => Ok(v as u16),
            Ok(_) => Err(format!("{name} {text} is not a port")),
            Err(_) => Ok(0),
        }
    };
    Ok(Flow {
        start_ms: start_ms.min(end_ms),
        end_ms,
        src: Addr::from(src),
        dst: Addr::from(dst),
        src_port: port("sp")?,
        dst_port: port("dp")?,
        protocol: proto,
        tcp_flags: flags(row.get("flg").unwrap_or("")),
        packets: number(row.get("ipkt")),
        bytes: number(row.get("ibyt")),
        // opkt/obyt count the flow on the egress side of the exporter, not the reply.
        reply_packets: 0,
        reply_bytes: 0,
    })
}
