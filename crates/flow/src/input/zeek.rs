//! Zeek conn.log: TSV with `#separator`/`#fields` headers (IoT-23 adds `label` and
//! `detailed-label` columns after `tunnel_parents`, separated by spaces), or CSV with a header
//! line of the same names.

use botscope_net::packet::Addr;

use super::text::Lines;
use super::{InputError, InputReport};
use crate::flow::{Flow, protocol};

struct Columns {
    ts: usize,
    orig_h: usize,
    orig_p: usize,
    resp_h: usize,
    resp_p: usize,
    proto: usize,
    duration: usize,
    orig_pkts: Option<usize>,
    orig_bytes: Option<usize>,
    resp_pkts: Option<usize>,
    resp_bytes: Option<usize>,
    conn_state: Option<usize>,
}

impl Columns {
    fn from_names(names: &[&str]) -> Result<Self, InputError> {
        let find = |name: &str| names.iter().position(|n| n.trim() == name);
        let need = |name: &str| {
            find(name).ok_or_else(|| InputError::Header(format!("Zeek conn.log header lacks the {name} column")))
        };
        Ok(Columns {
            ts: need("ts")?,
            orig_h: need("id.orig_h")?,
            orig_p: need("id.orig_p")?,
            resp_h: need("id.resp_h")?,
            resp_p: need("id.resp_p")?,
            proto: need("proto")?,
            duration: need("duration")?,
            orig_pkts: find("orig_pkts"),
            orig_bytes: find("orig_ip_bytes").or(find("orig_bytes")),
            resp_pkts: find("resp_pkts"),
            resp_bytes: find("resp_ip_bytes").or(find("resp_bytes")),
            conn_state: find("conn_state"),
        })
    }
}

/// Seconds since the epoch with a fraction, or RFC 3339.
pub(crate) fn time_ms(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return (0.0..1e11).contains(&seconds).then(|| (seconds * 1000.0).round() as i64);
    }
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

fn count(fields: &[&str], column: Option<usize>) -> u64 {
    column.and_then(|c| fields.get(c)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

pub(super) fn read(
    lines: &mut Lines<'_>,
    report: &mut InputReport,
    emit: &mut dyn FnMut(Flow, bool),
) -> Result<(), InputError> {
    let mut separator = '\t';
    let mut columns: Option<Columns> = None;
    while let Some((number, line)) = lines.next_line(report)? {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("#separator ") {
            separator = if rest.trim() == "\\x09" { '\t' } else { rest.chars().next().unwrap_or('\t') };
            continue;
        }
        if let Some(rest) = line.strip_prefix("#fields") {
            let names: Vec<&str> = rest.trim_start_matches(separator).split(separator).collect();
            columns = Some(Columns::from_names(&names)?);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if columns.is_none() && line.contains("id.orig_h") {
            separator = ',';
            let names: Vec<&str> = line.split(',').collect();
            columns = Some(Columns::from_names(&names)?);
            continue;
        }
        let Some(c) = &columns else {
            return Err(InputError::Header("Zeek conn.log without a #fields or header line".into()));
        };
        let fields: Vec<&str> = line.split(separator).collect();
        match flow(&fields, c) {
            Ok(flow) => {
                report.flows += 1;
                emit(flow, true);
            }
            Err(reason) => report.bad(number, reason),
        }
    }
    Ok(())
}

fn flow(f: &[&str], c: &Columns) -> Result<Flow, String> {
    let get = |i: usize| f.get(i).map(|s| s.trim()).ok_or_else(|| format!("only {} columns", f.len()));
    let start_ms = time_ms(get(c.ts)?).ok_or("bad ts")?;
    let src: std::net::IpAddr = get(c.orig_h)?.parse().map_err(|_| "bad id.orig_h")?;
    let dst: std::net::IpAddr = get(c.resp_h)?.parse().map_err(|_| "bad id.resp_h")?;
    let port = |i: usize| -> Result<u16, String> { get(i)?.parse().map_err(|_| "bad port".to_string()) };
    let proto = match get(c.proto)? {
        "tcp" => protocol::TCP,
        "udp" => protocol::UDP,
        "icmp" => protocol::ICMP,
        other => other.parse().map_err(|_| format!("unknown proto {other:?}"))?,
    };
    let duration_ms = match get(c.duration)? {
        "-" | "" => 0,
        d => (d.parse::<f64>().map_err(|_| "bad duration")?.clamp(0.0, 1e9) * 1000.0) as i64,
    };
    let state = c.conn_state.and_then(|i| f.get(i)).map(|s| s.trim()).unwrap_or("-");
    // Zeek reports connection states, not flags; a handshake that never completed reads as a
    // bare SYN, anything else as SYN+ACK.
    let tcp_flags = match (proto, state) {
        (protocol::TCP, "S0" | "REJ" | "RSTOS0" | "SH" | "OTH") => 0x02,
        (protocol::TCP, _) => 0x12,
        _ => 0,
    };
    Ok(Flow {
        start_ms,
        end_ms: start_ms + duration_ms,
        src: Addr::from(src),
        dst: Addr::from(dst),
        src_port: port(c.orig_p)?,
        dst_port: port(c.resp_p)?,
        protocol: proto,
        tcp_flags,
        packets: count(f, c.orig_pkts),
        bytes: count(f, c.orig_bytes),
        reply_packets: count(f, c.resp_pkts),
        reply_bytes: count(f, c.resp_bytes),
    })
}
