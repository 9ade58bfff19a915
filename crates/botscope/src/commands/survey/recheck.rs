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

/// How long fetching the cases from the centre may take in all: connecting, asking, reading.
pub const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// How long connecting to the centre may take.
const FETCH_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Most bytes of cases read from the centre (about 150,000 cases).
pub const FETCH_MAX_BYTES: usize = 64 << 20;

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
                .filter_map(Record::into_payload::<Notification>)
                .collect()
        }
        (None, false, Some(url), Some(token)) => {
            let url = format!("{}/api/v1/recheck?min_age_days={}", url.trim_end_matches('/'), min_age_secs / 86_400);
            let text = fetch(&url, token, FETCH_TIMEOUT, FETCH_MAX_BYTES).await?;
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

/// GET `url` within `timeout` in all, reading at most `max_bytes` of the answer.
async fn fetch(url: &str, token: &str, timeout: std::time::Duration, max_bytes: usize) -> anyhow::Result<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(FETCH_CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .context("cannot make the HTTP client")?;
    let response =
        client.get(url).bearer_auth(token).send().await.with_context(|| format!("--recheck: cannot reach {url}"))?;
    let status = response.status();
    let body = botscope_deliver::read_capped(response, max_bytes)
        .await
        .with_context(|| format!("--recheck: reading {url} (at most {:?})", timeout))?;
    let text = String::from_utf8_lossy(&body);
    anyhow::ensure!(
        status.is_success(),
        "--recheck: {url} answered {status}: {}",
        text.chars().take(500).collect::<String>()
    );
    Ok(text.into_owned())
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use super::*;

    /// A centre on loopback that answers one request: `head`, then `body` repeated until the
    /// client hangs up, or, with `stall`, `body` once and then silence while the connection stays
    /// open. Returns its URL.
    fn centre(head: &'static str, body: &'static [u8], stall: bool) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let _ = stream.write_all(head.as_bytes());
            if stall {
                let _ = stream.write_all(body);
                std::thread::sleep(Duration::from_secs(20));
                return;
            }
            while stream.write_all(body).is_ok() {}
        });
        url
    }

    const CHUNK: &[u8] = b"10\r\n{\"kind\":\"x\"}\n...\r\n";

    #[tokio::test]
    async fn regression_the_recheck_fetch_stops_past_its_size_cap() {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
        let url = centre(head, CHUNK, false);
        let error = fetch(&url, "token", Duration::from_secs(60), 1 << 20).await.unwrap_err();
        assert!(format!("{error:#}").contains("larger than the cap of 1 MiB"), "{error:#}");
        // A declared length over the cap is refused before the body is read.
        let url = centre("HTTP/1.1 200 OK\r\ncontent-length: 10737418240\r\n\r\n", b"x", false);
        let error = fetch(&url, "token", Duration::from_secs(60), 1 << 20).await.unwrap_err();
        assert!(format!("{error:#}").contains("10737418240 bytes, more than the cap"), "{error:#}");
    }

    #[tokio::test]
    async fn regression_the_recheck_fetch_gives_up_after_its_total_timeout() {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
        let url = centre(head, CHUNK, true);
        let started = Instant::now();
        let error = fetch(&url, "token", Duration::from_millis(500), 1 << 20).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert!(format!("{error:#}").contains("reading"), "{error:#}");
        assert_eq!((FETCH_TIMEOUT, FETCH_MAX_BYTES), (Duration::from_secs(120), 64 << 20), "the documented limits");
    }

    #[tokio::test]
    async fn the_recheck_fetch_reads_an_answer_within_its_limits() {
        let url = centre("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n", b"ok\n", true);
        assert_eq!(fetch(&url, "token", Duration::from_secs(10), 1 << 20).await.unwrap(), "ok\n");
        let url = centre("HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\n\r\n", b"denied", true);
        let error = fetch(&url, "token", Duration::from_secs(10), 1 << 20).await.unwrap_err();
        assert!(error.to_string().contains("403"), "{error:#}");
    }
}
