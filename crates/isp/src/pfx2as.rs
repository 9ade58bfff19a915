//! CAIDA RouteViews prefix2as files: `prefix<TAB>length<TAB>origin` per line.
//!
//! The origin is one ASN, several joined by `_` (multi-origin) or an AS set joined by `,`; see
//! [`Origin`]. Files are often gzipped; [`read`] accepts either.

use std::io::BufRead;
use std::net::IpAddr;

use botscope_input::{BoundedLines, Line};
use botscope_model::{Origin, RoutedPrefix};
use ipnet::IpNet;

/// No real prefix2as line comes near this; a longer one is garbage, not a record.
pub const MAX_LINE: usize = 1024;

/// How many malformed lines are kept for the report; the rest are only counted.
const KEPT_PROBLEMS: usize = 20;

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line number.
    pub line: u64,
    /// What was wrong.
    pub reason: String,
}

/// Everything read from one prefix2as file.
#[derive(Debug, Default)]
pub struct Table {
    /// The prefixes, in file order.
    pub prefixes: Vec<RoutedPrefix>,
    /// Malformed lines skipped (all of them).
    pub skipped: u64,
    /// The first few skipped lines, for the report.
    pub problems: Vec<Skipped>,
}

/// Reading the file itself failed (as opposed to a line in it being malformed).
#[derive(Debug, thiserror::Error)]
#[error("reading prefix2as data failed after line {line}: {source}")]
pub struct ReadError {
    /// Last line read.
    pub line: u64,
    /// Why.
    pub source: std::io::Error,
}

/// Reads a whole prefix2as stream; malformed lines are counted and skipped, never fatal.
/// `on_progress` gets the number of bytes read so far now and then.
pub fn read(reader: impl BufRead, mut on_progress: impl FnMut(u64)) -> Result<Table, ReadError> {
    let mut lines = BoundedLines::new(reader, MAX_LINE);
    let mut table = Table::default();
    let mut last_line = 0;
    loop {
        let next = lines.next_line().map_err(|source| ReadError { line: last_line, source })?;
        let Some((number, line)) = next else { break };
        last_line = number;
        let parsed = match line {
            Line::TooLong { length } => Err(format!("line of {length} bytes is too long")),
            Line::Text(text) => parse_line(text),
        };
        match parsed {
            Ok(Some(prefix)) => table.prefixes.push(prefix),
            Ok(None) => {}
            Err(reason) => {
                table.skipped += 1;
                if table.problems.len() < KEPT_PROBLEMS {
                    table.problems.push(Skipped { line: number, reason });
                }
            }
        }
        if number % 65_536 == 0 {
            on_progress(lines.bytes_read());
        }
    }
    on_progress(lines.bytes_read());
    Ok(table)
}

/// Reads one line; `Ok(None)` for blank lines and `#` comments.
pub fn parse_line(line: &[u8]) -> Result<Option<RoutedPrefix>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8 text".to_string())?;
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let mut fields = text.split_ascii_whitespace();
    let (Some(address), Some(length), Some(origin), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("expected three fields: prefix, length, origin AS".into());
    };
    let address: IpAddr = address.parse().map_err(|_| format!("{address:?} is not an IP address"))?;
    let length: u8 = length.parse().map_err(|_| format!("{length:?} is not a prefix length"))?;
    let prefix = IpNet::new(address, length).map_err(|_| format!("/{length} is too long for {address}"))?;
    if prefix.trunc() != prefix {
        return Err(format!("{prefix} has host bits set (network is {})", prefix.trunc()));
    }
    let origin: Origin = origin.parse().map_err(|e: botscope_model::OriginParseError| e.to_string())?;
    Ok(Some(RoutedPrefix { prefix, origin }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_caida_lines() {
        let p = parse_line(b"203.0.113.0\t24\t64500_64501").unwrap().unwrap();
        assert_eq!(p.prefix.to_string(), "203.0.113.0/24");
        assert_eq!(p.origin.asns(), vec![64500, 64501]);
        let p = parse_line(b"2001:db8::\t32\t64502,64503").unwrap().unwrap();
        assert_eq!(p.prefix.to_string(), "2001:db8::/32");
        assert_eq!(p.origin.origins, vec![vec![64502, 64503]]);
        assert_eq!(parse_line(b"# comment").unwrap(), None);
        assert_eq!(parse_line(b"   ").unwrap(), None);
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        for (line, expected) in [
            (&b"203.0.113.0\t24"[..], "three fields"),
            (b"203.0.113.0\t24\t1\t2", "three fields"),
            (b"203.0.113.300\t24\t1", "not an IP"),
            (b"203.0.113.0\t33\t1", "too long"),
            (b"203.0.113.0\tx\t1", "prefix length"),
            (b"203.0.113.1\t24\t1", "host bits"),
            (b"203.0.113.0\t24\tAS1", "origin"),
            (b"\xff\xfe", "UTF-8"),
        ] {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(expected), "{:?}: {err}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn a_file_with_bad_lines_keeps_the_good_ones_and_counts_the_rest() {
        let mut data = b"192.0.2.0\t24\t64500\nbroken\n".to_vec();
        data.extend(vec![b'9'; 5000]);
        data.extend_from_slice(b"\n2001:db8::\t32\t64501\n");
        let table = read(&data[..], |_| {}).unwrap();
        assert_eq!(table.prefixes.len(), 2);
        assert_eq!(table.skipped, 2);
        assert_eq!(table.problems[0].line, 2);
        assert!(table.problems[1].reason.contains("too long"));
    }

    proptest! {
        #[test]
        fn arbitrary_lines_never_panic(line in prop::collection::vec(any::<u8>(), 0..120)) {
            let _ = parse_line(&line);
        }

        #[test]
        fn well_formed_lines_round_trip(addr in any::<u32>(), len in 0u8..=32, asn in any::<u32>()) {
            let prefix = IpNet::new(std::net::Ipv4Addr::from(addr).into(), len).unwrap().trunc();
            let line = format!("{}\t{}\t{}", prefix.addr(), prefix.prefix_len(), asn);
            let parsed = parse_line(line.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(parsed.prefix, prefix);
            prop_assert_eq!(parsed.origin, Origin::single(asn));
        }
    }
}
