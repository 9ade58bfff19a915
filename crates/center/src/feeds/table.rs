//! abuse.ch's CSV exports: quoted fields, `#` comment lines (the header is one of them).

use std::net::{IpAddr, SocketAddr};

use botscope_model::{FeedEntry, FeedRole};

use super::{FeedRead, each_line, family, parse_time};

/// Splits a CSV line: fields may be quoted (`""` is a quote) and followed by spaces.
pub(crate) fn split(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quote".into()),
                }
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_string());
        }
    }
}

/// Calls `row` with each data row of an abuse.ch CSV that has at least `fields` fields; comments,
/// blank lines and a bare header line are skipped, anything unreadable is counted in `read`.
fn csv_rows(
    input: impl std::io::BufRead,
    read: &mut FeedRead,
    fields: usize,
    feed: &str,
    mut row: impl FnMut(&mut FeedRead, usize, Vec<String>),
) {
    each_line(input, read, |read, at, line| {
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line.starts_with("first_seen") {
            return;
        }
        match split(line) {
            Ok(found) if found.len() >= fields => row(read, at, found),
            Ok(found) => read.problem(at, format!("{} fields, expected at least {fields} ({feed})", found.len())),
            Err(reason) => read.problem(at, reason),
        }
    });
}

/// ThreatFox: first_seen_utc, ioc_id, ioc_value, ioc_type, threat_type, fk_malware, malware_alias,
/// malware_printable, last_seen_utc, confidence_level, reference, tags, anonymous, reporter.
pub(crate) fn threatfox(input: impl std::io::BufRead, source: &str) -> FeedRead {
    let mut read = FeedRead::default();
    csv_rows(input, &mut read, 9, "ThreatFox", |read, at, fields| {
        if fields[3] != "ip:port" {
            read.not_imported += 1;
            return;
        }
        let role = match fields[4].as_str() {
            "botnet_cc" => FeedRole::Cnc,
            "payload_delivery" => FeedRole::Download,
            _ => {
                read.not_imported += 1;
                return;
            }
        };
        let Ok(endpoint) = fields[2].parse::<SocketAddr>() else {
            read.problem(at, format!("{:?} is not ADDRESS:PORT", fields[2]));
            return;
        };
        let Some(first_seen) = parse_time(&fields[0]) else {
            read.problem(at, format!("{:?} is not a time", fields[0]));
            return;
        };
        let last_seen = parse_time(&fields[8]).filter(|t| *t >= first_seen);
        push(
            read,
            at,
            FeedEntry {
                id: None,
                source: source.into(),
                role,
                ip: endpoint.ip(),
                port: Some(endpoint.port()),
                family: family(&fields[7]).or_else(|| family(&fields[5])),
                first_seen,
                last_seen,
                reference: Some(fields[1].clone()).filter(|r| !r.is_empty()),
            },
        );
    });
    read
}

/// Feodo Tracker: first_seen_utc, dst_ip, dst_port, c2_status, last_online, malware.
pub(crate) fn feodo(input: impl std::io::BufRead, source: &str) -> FeedRead {
    let mut read = FeedRead::default();
    csv_rows(input, &mut read, 6, "Feodo Tracker", |read, at, fields| {
        let (Ok(ip), Ok(port)) = (fields[1].parse::<IpAddr>(), fields[2].parse::<u16>()) else {
            read.problem(at, format!("{:?}:{:?} is not an address and port", fields[1], fields[2]));
            return;
        };
        let Some(first_seen) = parse_time(&fields[0]) else {
            read.problem(at, format!("{:?} is not a time", fields[0]));
            return;
        };
        // last_online is a date in newer exports and a time in older ones.
        let last_seen = parse_time(&fields[4])
            .or_else(|| parse_time(&format!("{} 00:00:00", fields[4].trim())))
            .filter(|t| *t >= first_seen);
        push(
            read,
            at,
            FeedEntry {
                id: None,
                source: source.into(),
                role: FeedRole::Cnc,
                ip,
                port: Some(port),
                family: family(&fields[5]),
                first_seen,
                last_seen,
                reference: None,
            },
        );
    });
    read
}

/// Keeps an entry that passes the record's rules.
pub(crate) fn push(read: &mut FeedRead, at: usize, entry: FeedEntry) {
    let mut record = botscope_model::Record::FeedEntry(entry);
    match record.validate() {
        Ok(()) => {
            record.ensure_id();
            if let botscope_model::Record::FeedEntry(entry) = record {
                read.entries.push(entry);
            }
        }
        Err(e) => read.problem(at, e.to_string()),
    }
}
