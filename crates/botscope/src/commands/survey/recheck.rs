//! `survey --recheck`: the notified cases to re-survey, and the verdicts on them.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::Context;
use botscope_model::{
    FindingIssue, Kind, Notification, NotificationReason, NotificationStatus, Outcome, OutcomeSource, Record, Timestamp,
};
use botscope_store::{RecordQuery, all_records};
use botscope_survey::targets::Target;

use crate::Settings;

/// A case a re-survey can check: an IPv4 address and port with a vulnerability.
pub struct Case {
    pub notification: Notification,
    pub ip: Ipv4Addr,
    pub port: u16,
}

fn issue_of(reason: NotificationReason) -> Option<FindingIssue> {
    Some(match reason {
        NotificationReason::DefaultCredential => FindingIssue::DefaultCredential,
        NotificationReason::NoAuthentication => FindingIssue::NoAuthentication,
        NotificationReason::ExposedManagement => FindingIssue::ExposedManagement,
        NotificationReason::OutdatedFirmware => FindingIssue::OutdatedFirmware,
        NotificationReason::EolDevice => FindingIssue::EolDevice,
        NotificationReason::Infected => return None,
    })
}

fn read_cases(text: &str, origin: &str) -> anyhow::Result<Vec<Notification>> {
    let mut list = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match botscope_model::parse_line(line.as_bytes(), Some(Kind::Notification)) {
            Ok(Some(Record::Notification(case))) => list.push(case),
            Ok(_) => {}
            Err(error) => anyhow::bail!("--recheck {origin}:{}: {error}", n + 1),
        }
    }
    Ok(list)
}

/// The cases to re-survey: from a file of notification records, else the store (--db), else the
/// centre (--center, GET /api/v1/recheck).
pub async fn cases(
    file: Option<&Path>,
    min_age_secs: u64,
    settings: &Settings,
    db_given: bool,
    center: &crate::commands::sink::CenterArgs,
) -> anyhow::Result<Vec<Case>> {
    let notifications: Vec<Notification> = match (file, db_given, &center.center, &center.token) {
        (Some(path), _, _, _) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("--recheck {}", path.display()))?;
            read_cases(&text, &path.display().to_string())?
        }
        (None, true, _, _) => {
            let store = settings.open_store().await?;
            all_records(&store, RecordQuery { kind: Some(Kind::Notification), ..Default::default() })
                .await?
                .into_iter()
                .filter_map(|r| if let Record::Notification(n) = r { Some(n) } else { None })
                .collect()
        }
        (None, false, Some(url), Some(token)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let url = format!("{}/api/v1/recheck?min_age_days={}", url.trim_end_matches('/'), min_age_secs / 86_400);
            let response = reqwest::Client::new()
                .get(&url)
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("--recheck: cannot reach {url}"))?;
            let status = response.status();
            let text = response.text().await.with_context(|| format!("--recheck: reading {url}"))?;
            anyhow::ensure!(status.is_success(), "--recheck: {url} answered {status}: {text}");
            read_cases(&text, &url)?
        }
        _ => anyhow::bail!("--recheck needs the cases: a FILE, --db (the store) or --center with --token"),
    };
    let due = chrono::Utc::now() - chrono::Duration::seconds(min_age_secs.min(i64::MAX as u64) as i64);
    let mut ipv6 = 0;
    let cases: Vec<Case> = notifications
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
    if ipv6 > 0 {
        tracing::warn!(cases = ipv6, "IPv6 cases skipped: the survey checks IPv4 only");
    }
    Ok(cases)
}

/// Login attempts per host that let every case of the busiest host try the whole dictionary.
pub fn full_budget(cases: &[Case], dictionary: usize) -> u32 {
    let mut per_host: std::collections::HashMap<Ipv4Addr, HashSet<u16>> = Default::default();
    for case in cases {
        per_host.entry(case.ip).or_default().insert(case.port);
    }
    let services = per_host.values().map(HashSet::len).max().unwrap_or(1);
    (services * dictionary).min(u32::MAX as usize) as u32
}

/// What the re-survey saw.
#[derive(Default)]
pub struct Seen {
    open: HashSet<(Ipv4Addr, u16)>,
    findings: HashSet<(IpAddr, u16, FindingIssue)>,
    /// Devices with any finding, for device-level issues (EOL, firmware) whose port is the service's.
    devices: HashSet<(IpAddr, FindingIssue)>,
}

impl Seen {
    pub fn record(&mut self, record: &Record) {
        if let Record::Finding(f) = record {
            self.findings.insert((f.ip, f.port, f.issue));
            self.devices.insert((f.ip, f.issue));
        }
    }

    pub fn open(&mut self, open: &[Target]) {
        self.open.extend(open.iter().map(|t| (t.ip, t.port)));
    }

    /// One outcome per case the re-survey could judge, and how many it could not (the device did
    /// not answer: it may be off, or gone; that is not a fix).
    pub fn outcomes(&self, cases: &[Case], now: Timestamp) -> (Vec<Record>, usize) {
        let mut records = Vec::new();
        let mut unreachable = 0;
        for case in cases {
            let Some(issue) = issue_of(case.notification.reason) else { continue };
            let found = self.findings.contains(&(IpAddr::V4(case.ip), case.port, issue))
                || (matches!(issue, FindingIssue::EolDevice | FindingIssue::OutdatedFirmware)
                    && self.devices.contains(&(IpAddr::V4(case.ip), issue)));
            let answered = self.open.contains(&(case.ip, case.port));
            let (status, note) = if found {
                (NotificationStatus::NotFixed, "re-survey: the problem is still there")
            } else if answered {
                (NotificationStatus::Fixed, "re-survey: the service answered and the problem is gone")
            } else if issue == FindingIssue::ExposedManagement {
                (NotificationStatus::Fixed, "re-survey: the management port no longer answers")
            } else {
                unreachable += 1;
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
            records.push(record);
        }
        (records, unreachable)
    }
}
