//! Known-infected hosts (and optionally known C&C servers) the graph propagates from.
//!
//! Accepted, mixed freely in one file: botscope records (telescope `activity` classified
//! `infected`, survey `finding`s of a default credential or no authentication: the devices bots
//! take over, `cnc` records as known C&C), or plain lines: an address (a bot), `bot ADDRESS`,
//! `cnc ADDRESS[:PORT]` or `ADDRESS:PORT` (a known C&C). In plain lines `#` starts a comment.

use std::net::{IpAddr, SocketAddr};

use botscope_model::{ActivityClass, FindingIssue, Record};
use botscope_net::packet::Addr;
use rustc_hash::{FxHashMap, FxHashSet};
use uuid::Uuid;

/// Whether `addr` is among the `share` of bots a seed list leaves out (as a telescope misses
/// some): the same addresses for `lab flows --seeds --withhold` and `flow evaluate --withhold`.
pub fn withheld(addr: Addr, share: f64) -> bool {
    let hash = botscope_net::sketch::mix(addr.0 ^ 0x5eed);
    ((hash % 10_000) as f64) < share * 10_000.0
}

/// The seed sets.
#[derive(Debug, Clone, Default)]
pub struct Seeds {
    bots: FxHashSet<Addr>,
    cnc: FxHashSet<(Addr, u16)>,
    cnc_any_port: FxHashSet<Addr>,
    /// The record each bot came from, when it came from a record: what a candidate cites
    /// instead of the address.
    refs: FxHashMap<Addr, Uuid>,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedLineError {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// What reading a seed file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Bots added.
    pub bots: usize,
    /// Known C&C added.
    pub cnc: usize,
    /// Records of other kinds or classes (not infected), skipped.
    pub skipped: usize,
    /// Lines that could not be read (the first few are kept in `errors`).
    pub bad_lines: usize,
    /// The first bad lines.
    pub errors: Vec<SeedLineError>,
}

impl Seeds {
    /// Adds the seeds in `text`; bad lines are counted, not fatal.
    pub fn add_text(&mut self, text: &str) -> SeedReport {
        let mut report = SeedReport::default();
        for (index, raw) in text.lines().enumerate() {
            // A record may hold `#` in its strings; only plain lines have comments.
            let trimmed = raw.trim();
            let line = if trimmed.starts_with('{') { trimmed } else { raw.split('#').next().unwrap_or("").trim() };
            if line.is_empty() {
                continue;
            }
            if let Err(reason) = self.add_line(line, &mut report) {
                report.bad_lines += 1;
                if report.errors.len() < 5 {
                    report.errors.push(SeedLineError { line: index + 1, reason });
                }
            }
        }
        report
    }

    fn add_line(&mut self, line: &str, report: &mut SeedReport) -> Result<(), String> {
        if line.starts_with('{') {
            return match botscope_model::parse_line(line.as_bytes(), None) {
                Ok(Some(Record::Activity(a))) if a.classification == ActivityClass::Infected => {
                    self.add_bot(a.src, report);
                    self.refs.entry(Addr::from(a.src)).or_insert(a.id.unwrap_or_default());
                    Ok(())
                }
                Ok(Some(Record::Finding(f)))
                    if matches!(f.issue, FindingIssue::DefaultCredential | FindingIssue::NoAuthentication) =>
                {
                    self.add_bot(f.ip, report);
                    self.refs.entry(Addr::from(f.ip)).or_insert(f.id.unwrap_or_default());
                    Ok(())
                }
                Ok(Some(Record::Cnc(c))) => {
                    self.add_cnc(c.ip, Some(c.port), report);
                    Ok(())
                }
                Ok(_) => {
                    report.skipped += 1;
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            };
        }
        let mut words = line.split_whitespace();
        let (role, value) = match (words.next(), words.next(), words.next()) {
            (Some(role @ ("bot" | "cnc")), Some(value), None) => (role, value),
            (Some(value), None, None) => ("", value),
            _ => return Err("expected an address, `bot ADDRESS` or `cnc ADDRESS[:PORT]`".into()),
        };
        if let Ok(ip) = value.parse::<IpAddr>() {
            match role {
                "cnc" => self.add_cnc(ip, None, report),
                _ => self.add_bot(ip, report),
            }
            return Ok(());
        }
        if let Ok(socket) = value.parse::<SocketAddr>() {
            if role == "bot" {
                return Err("a bot is an address without a port".into());
            }
            self.add_cnc(socket.ip(), Some(socket.port()), report);
            return Ok(());
        }
        Err(format!("{value:?} is not an address or address:port"))
    }

    fn add_bot(&mut self, ip: IpAddr, report: &mut SeedReport) {
        if self.bots.insert(Addr::from(ip)) {
            report.bots += 1;
        }
    }

    fn add_cnc(&mut self, ip: IpAddr, port: Option<u16>, report: &mut SeedReport) {
        let fresh = match port {
            Some(port) => self.cnc.insert((Addr::from(ip), port)),
            None => self.cnc_any_port.insert(Addr::from(ip)),
        };
        if fresh {
            report.cnc += 1;
        }
    }

    /// Adds one bot.
    pub fn insert_bot(&mut self, addr: Addr) {
        self.bots.insert(addr);
    }

    /// Whether `addr` is a known bot.
    #[inline]
    pub fn is_bot(&self, addr: Addr) -> bool {
        self.bots.contains(&addr)
    }

    /// Whether the server is a known C&C.
    pub fn is_cnc(&self, addr: Addr, port: u16) -> bool {
        self.cnc.contains(&(addr, port)) || self.cnc_any_port.contains(&addr)
    }

    /// The id of the record a bot came from, if it came from one.
    pub fn reference(&self, addr: Addr) -> Option<Uuid> {
        self.refs.get(&addr).copied()
    }

    /// Number of known bots.
    pub fn bot_count(&self) -> usize {
        self.bots.len()
    }

    /// Number of known C&C entries.
    pub fn cnc_count(&self) -> usize {
        self.cnc.len() + self.cnc_any_port.len()
    }

    /// The known bots.
    pub fn bots(&self) -> impl Iterator<Item = Addr> + '_ {
        self.bots.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_record_lines_mix() {
        let text = "\
# seeds
127.16.0.1
bot 127.16.0.2
cnc 127.200.0.1:23
127.200.0.2:6667
cnc 127.200.0.3
{\"kind\":\"activity\",\"window_start\":\"2026-11-02T00:00:00Z\",\"window_end\":\"2026-11-03T00:00:00Z\",\"src\":\"127.16.0.4\",\"classification\":\"infected\",\"packets\":3,\"distinct_destinations\":3,\"first_seen\":\"2026-11-02T00:00:00Z\",\"last_seen\":\"2026-11-02T00:00:01Z\",\"sensor\":\"darknet#1\"}
{\"kind\":\"activity\",\"window_start\":\"2026-11-02T00:00:00Z\",\"window_end\":\"2026-11-03T00:00:00Z\",\"src\":\"127.16.0.3\",\"classification\":\"infected\",\"packets\":3,\"distinct_destinations\":3,\"first_seen\":\"2026-11-02T00:00:00Z\",\"last_seen\":\"2026-11-02T00:00:01Z\"}
{\"kind\":\"activity\",\"window_start\":\"2026-11-02T00:00:00Z\",\"window_end\":\"2026-11-03T00:00:00Z\",\"src\":\"127.99.0.3\",\"classification\":\"research_scanner\",\"packets\":3,\"distinct_destinations\":3,\"first_seen\":\"2026-11-02T00:00:00Z\",\"last_seen\":\"2026-11-02T00:00:01Z\"}
bot 127.16.0.9:80
nonsense here too
";
        let mut seeds = Seeds::default();
        let report = seeds.add_text(text);
        assert_eq!((report.bots, report.cnc, report.skipped, report.bad_lines), (4, 3, 1, 2));
        assert_eq!(report.errors[0].line, 10);
        assert!(seeds.is_bot(Addr::from("127.16.0.3".parse::<IpAddr>().unwrap())));
        assert!(seeds.is_cnc(Addr::from("127.200.0.3".parse::<IpAddr>().unwrap()), 99));
        assert!(!seeds.is_cnc(Addr::from("127.200.0.1".parse::<IpAddr>().unwrap()), 99));
    }
}
