//! Argus binetflow CSV as CTU-13 publishes it:
//! `StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,SrcBytes,Label`.
//! Times are `YYYY/MM/DD hh:mm:ss.ffffff` (taken as UTC); ICMP ports are hexadecimal.

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
    const REQUIRED: &[&str] = &[
        "StartTime",
        "Dur",
        "Proto",
        "SrcAddr",
        "Sport",
        "Dir",
        "DstAddr",
        "Dport",
        "TotPkts",
        "TotBytes",
        "SrcBytes",
    ];
    read_csv(lines, report, "Argus binetflow", REQUIRED, &|_| false, &flow, emit)
}

fn port(text: &str) -> u16 {
    match text.strip_prefix("0x") {
        Some(hex) => u16::from_str_radix(hex, 16).unwrap_or(0),
        None => text.parse().unwrap_or(0),
    }
}

fn flow(row: &Row<'_>) -> Result<(Flow, bool), String> {
    let start = NaiveDateTime::parse_from_str(row.field("StartTime")?, "%Y/%m/%d %H:%M:%S%.f")
        .map_err(|_| "bad StartTime")?
        .and_utc()
        .timestamp_millis();
    let duration: f64 = row.field("Dur")?.parse().map_err(|_| "bad Dur")?;
    let proto = match row.field("Proto")? {
        "tcp" => protocol::TCP,
        "udp" => protocol::UDP,
        "icmp" => protocol::ICMP,
        other => other.parse().map_err(|_| format!("unknown Proto {other:?}"))?,
    };
    let src: std::net::IpAddr = row.field("SrcAddr")?.parse().map_err(|_| "bad SrcAddr")?;
    let dst: std::net::IpAddr = row.field("DstAddr")?.parse().map_err(|_| "bad DstAddr")?;
    let total_packets: u64 = row.field("TotPkts")?.parse().map_err(|_| "bad TotPkts")?;
    let total_bytes: u64 = row.field("TotBytes")?.parse().map_err(|_| "bad TotBytes")?;
    let src_bytes: u64 = row.field("SrcBytes")?.parse().map_err(|_| "bad SrcBytes")?;
    let reply_bytes = total_bytes.saturating_sub(src_bytes);
    // Argus gives total packets only; the split follows the bytes.
    let reply_packets = if reply_bytes == 0 {
        0
    } else {
        ((total_packets as f64) * reply_bytes as f64 / total_bytes.max(1) as f64).ceil() as u64
    };
    let state = row.get("State").unwrap_or("");
    let tcp_flags = if proto == protocol::TCP && (state.starts_with("S_") || state == "S") {
        0x02
    } else if proto == protocol::TCP {
        0x12
    } else {
        0
    };
    let dir = row.field("Dir")?;
    let mut flow = Flow {
        start_ms: start,
        end_ms: start + (duration.clamp(0.0, 1e9) * 1000.0) as i64,
        src: Addr::from(src),
        dst: Addr::from(dst),
        src_port: port(row.get("Sport").unwrap_or("")),
        dst_port: port(row.get("Dport").unwrap_or("")),
        protocol: proto,
        tcp_flags,
        packets: total_packets - reply_packets.min(total_packets),
        bytes: src_bytes,
        reply_packets,
        reply_bytes,
    };
    if dir.trim() == "<-" {
        std::mem::swap(&mut flow.src, &mut flow.dst);
        std::mem::swap(&mut flow.src_port, &mut flow.dst_port);
        std::mem::swap(&mut flow.packets, &mut flow.reply_packets);
        std::mem::swap(&mut flow.bytes, &mut flow.reply_bytes);
    }
    Ok((flow, !dir.contains('?')))
}
