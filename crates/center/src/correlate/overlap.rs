//! The cross-reporter figure: how many C&C servers each reporter (flow analyser) reported, and how
//! many each pair reported both.
//!
//! Pairs grow with the square of reporters, and reporter names come from senders, so the figure
//! names only the [`TOP_REPORTERS`] reporters with the most servers; the rest are summed as
//! "others". The overlap is computed among the named ones only, so neither the work nor the result
//! grows with invented names.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use botscope_model::CncCandidate;
use serde::Serialize;

use super::cluster::ServerKey;

/// Reporters the figure names (by servers reported; ties by name).
pub const TOP_REPORTERS: usize = 20;

/// What a reporter without a name is counted as.
const UNNAMED: &str = "unnamed";

/// Two reporters that reported the same servers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReporterOverlap {
    /// One reporter.
    pub a: String,
    /// The other.
    pub b: String,
    /// Servers both reported.
    pub shared: usize,
}

/// Servers per reporter for the top reporters, their overlap, and the rest summed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReporterFigure {
    /// Per named reporter, the distinct C&C servers it reported.
    pub per_reporter: BTreeMap<String, usize>,
    /// Per pair of named reporters that share any, the servers both reported.
    pub overlap: Vec<ReporterOverlap>,
    /// Reporters left out of the two above.
    pub others: usize,
    /// Distinct servers reported by any reporter left out.
    pub others_servers: usize,
}

/// The figure for these reports, naming at most `top` reporters.
pub fn reporter_overlap<'a>(candidates: impl IntoIterator<Item = &'a CncCandidate>, top: usize) -> ReporterFigure {
    reporter_overlap_of(candidates.into_iter().map(|c| ((c.ip, c.port, c.protocol), c.sensor.as_deref())), top)
}

/// The figure for servers and who reported them (`None` for a reporter without a name), naming
/// at most `top` reporters.
pub fn reporter_overlap_of<'a>(
    sightings: impl IntoIterator<Item = (ServerKey, Option<&'a str>)>,
    top: usize,
) -> ReporterFigure {
    let mut by_server: HashMap<ServerKey, BTreeSet<&str>> = HashMap::new();
    for (server, reporter) in sightings {
        by_server.entry(server).or_default().insert(reporter.unwrap_or(UNNAMED));
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for reporters in by_server.values() {
        for reporter in reporters {
            *counts.entry(reporter).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let others = ranked.len().saturating_sub(top);
    ranked.truncate(top);
    let named: HashSet<&str> = ranked.iter().map(|(name, _)| *name).collect();
    let mut pairs: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut others_servers = 0;
    for reporters in by_server.values() {
        // At most `top` names per server, so this is bounded by top² whatever was sent.
        let list: Vec<&str> = reporters.iter().copied().filter(|r| named.contains(r)).collect();
        if list.len() < reporters.len() {
            others_servers += 1;
        }
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                *pairs.entry((a, b)).or_default() += 1;
            }
        }
    }
    ReporterFigure {
        per_reporter: ranked.into_iter().map(|(name, n)| (name.to_string(), n)).collect(),
        overlap: pairs
            .into_iter()
            .map(|((a, b), shared)| ReporterOverlap { a: a.into(), b: b.into(), shared })
            .collect(),
        others,
        others_servers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(sensor: &str, host: u8) -> CncCandidate {
        let line = format!(
            r#"{{"kind":"cnc","window_start":"2026-11-02T09:00:00Z","window_end":"2026-11-02T10:00:00Z","ip":"127.200.0.{host}","port":6667,"protocol":"tcp","score":0.97,"rank":1,"methods":["graph"],"seed_clients":41,"total_clients":58,"flows":1290,"first_seen":"2026-11-02T09:00:03Z","last_seen":"2026-11-02T09:59:41Z","sensor":"{sensor}"}}"#
        );
        match botscope_model::parse_line(line.as_bytes(), None) {
            Ok(Some(botscope_model::Record::Cnc(c))) => c,
            other => panic!("not a cnc line: {other:?}"),
        }
    }

    #[test]
    fn two_reporters_are_named_with_what_they_share() {
        let reports = [report("a", 1), report("a", 2), report("b", 2), report("b", 3), report("b", 3)];
        let figure = reporter_overlap(&reports, TOP_REPORTERS);
        assert_eq!(figure.per_reporter, BTreeMap::from([("a".into(), 2), ("b".into(), 2)]));
        assert_eq!(figure.overlap, vec![ReporterOverlap { a: "a".into(), b: "b".into(), shared: 1 }]);
        assert_eq!((figure.others, figure.others_servers), (0, 0));
    }

    /// Regression (issue 16, finding 4): 1,500 invented reporter names made the overview's figure
    /// 1.1 million pairs (a 285 MB page).
    #[test]
    fn invented_reporter_names_do_not_grow_the_overview_with_their_square() {
        let mut reports = Vec::new();
        for host in 1..=30u8 {
            reports.push(report("isp-hikari", host));
            if host <= 10 {
                reports.push(report("isp-sakura", host));
            }
        }
        for n in 0..1500 {
            reports.push(report(&format!("fake-{n:04}"), 1));
        }
        let figure = reporter_overlap(&reports, 20);
        assert_eq!(figure.per_reporter.len(), 20);
        assert_eq!(figure.per_reporter["isp-hikari"], 30);
        assert_eq!(figure.per_reporter["isp-sakura"], 10);
        assert_eq!(figure.others, 1502 - 20);
        assert_eq!(figure.others_servers, 1, "every left-out name reported the same server");
        assert!(figure.overlap.len() <= 20 * 19 / 2, "{} pairs", figure.overlap.len());
        assert!(figure.overlap.contains(&ReporterOverlap {
            a: "isp-hikari".into(),
            b: "isp-sakura".into(),
            shared: 10
        }));
    }
}
