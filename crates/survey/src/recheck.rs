//! A re-survey: which notified cases it can check, and the verdict on each from what it saw.
//!
//! A case is what a sensor reported, never an authorisation to connect: [`engine::Recheck`]
//! intersects the cases with the operator's scope before anything is probed.
//!
//! [`engine::Recheck`]: crate::engine::Recheck

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use botscope_model::{
    FindingIssue, Notification, NotificationReason, NotificationStatus, Outcome, OutcomeSource, Record, Timestamp,
};

use crate::engine::Recheck;
use crate::scope::Scope;
use crate::targets::Target;

/// A case a re-survey can check: an IPv4 address and port with a vulnerability.
#[derive(Debug, Clone)]
pub struct Case {
    /// The notification it came from.
    pub notification: Notification,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its port.
    pub port: u16,
}

/// The finding that would show a notified problem is still there (none for infections: a
/// re-survey cannot see those).
pub fn issue_of(reason: NotificationReason) -> Option<FindingIssue> {
    Some(match reason {
        NotificationReason::DefaultCredential => FindingIssue::DefaultCredential,
        NotificationReason::NoAuthentication => FindingIssue::NoAuthentication,
        NotificationReason::ExposedManagement => FindingIssue::ExposedManagement,
        NotificationReason::OutdatedFirmware => FindingIssue::OutdatedFirmware,
        NotificationReason::EolDevice => FindingIssue::EolDevice,
        NotificationReason::Infected => return None,
    })
}

/// The cases worth re-surveying among `notifications`: vulnerabilities (not infections, not false
/// positives) last notified at or before `due`, on IPv4 with a port. Returns them and how many
/// IPv6 cases were left out (the survey checks IPv4 only).
pub fn select(notifications: Vec<Notification>, due: Timestamp) -> (Vec<Case>, usize) {
    let mut ipv6 = 0;
    let cases = notifications
        .into_iter()
        .filter(|n| n.status != NotificationStatus::FalsePositive && issue_of(n.reason).is_some())
        .filter(|n| n.last_notified.unwrap_or(n.created_at) <= due)
        .filter_map(|n| match (n.ip, n.port) {
            (IpAddr::V4(ip), Some(port)) => Some(Case { ip, port, notification: n }),
            (IpAddr::V6(_), Some(_)) => {
                ipv6 += 1;
                None
            }
            _ => None,
        })
        .collect();
    (cases, ipv6)
}

/// A re-survey ready to run: the cases inside the operator's scope, and the scope narrowed to them.
#[derive(Debug)]
pub struct Plan {
    /// The scope narrowed to the cases' addresses.
    pub scope: Scope,
    /// The cases inside the scope.
    pub cases: Vec<Case>,
    /// Their address x port pairs, for [`crate::engine::Config::only`].
    pub only: std::sync::Arc<HashSet<(Ipv4Addr, u16)>>,
    /// Cases outside the scope: never probed.
    pub outside: Vec<(Ipv4Addr, u16)>,
}

/// Splits `cases` by the operator's `authorised` scope: a case is what a sensor reported, never an
/// authorisation to connect.
pub fn plan(authorised: &Scope, cases: Vec<Case>) -> Plan {
    let split = Recheck::new(authorised, cases.iter().map(|c| (c.ip, c.port)));
    let cases = cases.into_iter().filter(|c| split.only.contains(&(c.ip, c.port))).collect();
    Plan { scope: split.scope, cases, only: split.only, outside: split.outside }
}

/// The cases' ports as a port list (`23/telnet,8080/http`), for the catalogue to parse.
pub fn port_list(cases: &[Case]) -> String {
    let mut list: Vec<String> = cases
        .iter()
        .map(|c| match c.notification.service {
            Some(service) => format!("{}/{}", c.port, service.as_str()),
            None => c.port.to_string(),
        })
        .collect();
    list.sort_unstable();
    list.dedup();
    list.join(",")
}

/// Login attempts per host that let every case of the busiest host try the whole dictionary: a
/// re-survey must not call a device fixed because its budget ran out before the pair that worked
/// last time.
pub fn full_budget(cases: &[Case], dictionary: usize) -> u32 {
    let mut per_host: HashMap<Ipv4Addr, HashSet<u16>> = HashMap::new();
    for case in cases {
        per_host.entry(case.ip).or_default().insert(case.port);
    }
    let services = per_host.values().map(HashSet::len).max().unwrap_or(1);
    u32::try_from(services.saturating_mul(dictionary)).unwrap_or(u32::MAX)
}

/// What the re-survey saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Whether the port stage ran to its end (in this run, or in the run a checkpoint resumes).
    port_stage: bool,
    /// Hosts whose service stage ended in this run.
    hosts_done: HashSet<Ipv4Addr>,
    open: HashSet<(Ipv4Addr, u16)>,
    findings: HashSet<(IpAddr, u16, FindingIssue)>,
    /// Devices with any finding, for device-level issues (EOL, firmware) whose port is the service's.
    devices: HashSet<(IpAddr, FindingIssue)>,
}

/// The verdicts of a re-survey.
#[derive(Debug, Default)]
pub struct Verdicts {
    /// One `outcome` record per case it could judge.
    pub outcomes: Vec<Record>,
    /// Cases whose device did not answer: it may be off, or gone; that is not a fix.
    pub unreachable: usize,
    /// Cases the run cannot judge: it stopped before its port stage ended, or before the case's
    /// host was surveyed (Ctrl-C, or a host an earlier run of a resumed survey did).
    pub not_judged: usize,
}

impl Verdicts {
    /// Outcomes saying the problem is gone.
    pub fn fixed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|r| matches!(r, Record::Outcome(o) if o.status == NotificationStatus::Fixed))
            .count()
    }
}

impl Seen {
    /// Notes a record the survey produced.
    pub fn record(&mut self, record: &Record) {
        if let Record::Finding(f) = record {
            self.findings.insert((f.ip, f.port, f.issue));
            self.devices.insert((f.ip, f.issue));
        }
    }

    /// Notes that the port stage ended with these open pairs.
    pub fn port_stage_done(&mut self, open: &[Target]) {
        self.port_stage = true;
        self.open.extend(open.iter().map(|t| (t.ip, t.port)));
    }

    /// Notes that every record of `ip` was handed over.
    pub fn host_done(&mut self, ip: Ipv4Addr) {
        self.hosts_done.insert(ip);
    }

    /// One outcome per case the re-survey could judge: still there (a finding), fixed (the
    /// service answered without the problem, or a management port no longer answers after a whole
    /// port stage), or unreachable; cases it cannot judge get none.
    pub fn verdicts(&self, cases: &[Case], now: Timestamp) -> Verdicts {
        let mut verdicts = Verdicts::default();
        for case in cases {
            let Some(issue) = issue_of(case.notification.reason) else { continue };
            let found = self.findings.contains(&(IpAddr::V4(case.ip), case.port, issue))
                || (matches!(issue, FindingIssue::EolDevice | FindingIssue::OutdatedFirmware)
                    && self.devices.contains(&(IpAddr::V4(case.ip), issue)));
            let answered = self.open.contains(&(case.ip, case.port));
            // Without a whole port stage a closed port proves nothing; an open one proves a fix
            // only once its host was surveyed in this run.
            if !found && (!self.port_stage || (answered && !self.hosts_done.contains(&case.ip))) {
                verdicts.not_judged += 1;
                continue;
            }
            let (status, note) = if found {
                (NotificationStatus::NotFixed, "re-survey: the problem is still there")
            } else if answered {
                (NotificationStatus::Fixed, "re-survey: the service answered and the problem is gone")
            } else if issue == FindingIssue::ExposedManagement {
                (NotificationStatus::Fixed, "re-survey: the management port no longer answers")
            } else {
                verdicts.unreachable += 1;
                continue;
            };
            let mut record = Record::Outcome(Outcome {
                id: None,
                notification: case.notification.id.unwrap_or_default(),
                isp: case.notification.isp.clone(),
                status,
                at: now,
                source: OutcomeSource::Recheck,
                note: Some(note.into()),
            });
            record.ensure_id();
            verdicts.outcomes.push(record);
        }
        verdicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(ip: [u8; 4], port: u16, reason: NotificationReason) -> Case {
        let line = format!(
            r#"{{"kind":"notification","isp":"hikari-net","ip":"{}","port":{port},"protocol":"telnet","reason":"{}","created_at":"2026-11-03T01:00:00Z","status":"sent","language":"ja"}}"#,
            Ipv4Addr::from(ip),
            reason.as_str()
        );
        let mut record = botscope_model::parse_line(line.as_bytes(), None).expect("valid").expect("a record");
        record.ensure_id();
        let Record::Notification(notification) = record else { panic!("not a notification") };
        Case { notification, ip: Ipv4Addr::from(ip), port }
    }

    fn statuses(verdicts: &Verdicts) -> Vec<NotificationStatus> {
        verdicts.outcomes.iter().filter_map(Record::payload::<Outcome>).map(|o| o.status).collect()
    }

    #[test]
    fn regression_a_survey_stopped_in_its_port_stage_calls_nothing_fixed() {
        let cases = [
            case([127, 16, 0, 1], 23, NotificationReason::DefaultCredential),
            case([127, 16, 0, 2], 7547, NotificationReason::ExposedManagement),
        ];
        let seen = Seen::default();
        let verdicts = seen.verdicts(&cases, chrono::Utc::now());
        assert!(verdicts.outcomes.is_empty(), "{verdicts:?}");
        assert_eq!(verdicts.not_judged, 2);
    }

    #[test]
    fn regression_an_open_port_whose_host_was_not_surveyed_is_not_called_fixed() {
        let cases = [
            case([127, 16, 0, 1], 23, NotificationReason::DefaultCredential),
            case([127, 16, 0, 2], 23, NotificationReason::DefaultCredential),
            case([127, 16, 0, 3], 7547, NotificationReason::ExposedManagement),
            case([127, 16, 0, 4], 23, NotificationReason::DefaultCredential),
        ];
        let mut seen = Seen::default();
        // Ports open on .1 and .2 (a resumed run: .2 was surveyed by the earlier run); .3 and .4
        // closed.
        seen.port_stage_done(&[
            Target { ip: Ipv4Addr::new(127, 16, 0, 1), port: 23 },
            Target { ip: Ipv4Addr::new(127, 16, 0, 2), port: 23 },
        ]);
        seen.host_done(Ipv4Addr::new(127, 16, 0, 1));
        let verdicts = seen.verdicts(&cases, chrono::Utc::now());
        assert_eq!(statuses(&verdicts), [NotificationStatus::Fixed, NotificationStatus::Fixed]);
        assert_eq!((verdicts.not_judged, verdicts.unreachable), (1, 1), "{verdicts:?}");
    }
}
