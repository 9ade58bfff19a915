//! Per-ISP notifications: what each ISP should act on, as Shadowserver-style reports.
//!
//! A *case* is one address (and port) with one problem at one ISP; its id is derived from those,
//! so the same problem seen again is the same case. Each report lists the period's cases with a
//! `state`: `new` (first time), `repeat` (notified before, unchanged: the ISP has not acted yet,
//! counted in `times_notified`) or `changed` (notified before, but the device now looks different).
//! Generating a period again changes nothing. Cases an ISP marked `false_positive` are left out;
//! a case the ISP called `fixed` that shows up again goes back to `not_fixed`.

mod mail;
mod period;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use botscope_isp::Attributor;
use botscope_model::{
    ActivityClass, Device, Isp, IspHandles, Kind, Language, Notification, NotificationStatus, Outcome, OutcomeSource,
    Record, Timestamp,
};
use botscope_store::{RecordQuery, Store, all_records, records_about};
use serde::Serialize;
use uuid::Uuid;

use crate::CenterError;
pub use mail::{MailConfig, send_reports};
pub use period::{Period, PeriodError, PeriodKind};
pub use report::{ReportFile, ReportFormat, ReportType, cases_csv, report_csv, write_reports};

/// Statuses an ISP reports; the others are the centre's and the re-survey's.
pub const ISP_STATUSES: [NotificationStatus; 4] = [
    NotificationStatus::Contacted,
    NotificationStatus::Fixed,
    NotificationStatus::Unreachable,
    NotificationStatus::FalsePositive,
];

/// How a case appears in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Notified for the first time.
    New,
    /// Notified before, nothing changed.
    Repeat,
    /// Notified before; the device looks different now.
    Changed,
}

impl CaseState {
    /// The name written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::New => "new",
            CaseState::Repeat => "repeat",
            CaseState::Changed => "changed",
        }
    }
}

/// One report row: a case and what this period saw of it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Which report it goes in.
    pub report: ReportType,
    /// The case, as updated by this generation.
    pub case: Notification,
    /// How it appears.
    pub state: CaseState,
    /// Origin AS of the address, when the routing table knows it.
    pub asn: Option<u32>,
    /// Service protocol (vulnerable reports) or the darknet tags (infected).
    pub tag: String,
    /// First evidence in the period.
    pub first_seen: Timestamp,
    /// Last evidence in the period.
    pub last_seen: Timestamp,
    /// Darknet packets in the period (infected).
    pub packets: u64,
    /// Packets with the Mirai fingerprint (infected).
    pub mirai_packets: u64,
    /// Malware family (infected, when correlation knows it).
    pub family: Option<String>,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Daily (infected) or monthly (vulnerable) reports.
    pub kind: PeriodKind,
    /// The period; the one holding the latest evidence when `None`.
    pub period: Option<Period>,
    /// Only these ISPs; all registered ISPs when `None`.
    pub isps: Option<Vec<String>>,
    /// The time written as the notification time.
    pub now: Timestamp,
    /// Repeats are left out of the reports: they are not counted as notified again.
    pub new_only: bool,
    /// Compute the rows only, changing nothing in the store (a report served on request).
    pub dry_run: bool,
}

/// What a generation made.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// The period reported (written `day:...` / `month:...`).
    pub period: Period,
    /// Rows, per ISP in address order.
    #[serde(skip)]
    pub rows: Vec<Row>,
    /// New cases.
    pub new: u64,
    /// Cases notified again unchanged (with `new_only`: seen again and left out).
    pub repeat: u64,
    /// Cases notified again with a changed device.
    pub changed: u64,
    /// Repeats whose ISP never reported any action (still `sent`).
    pub repeat_without_response: u64,
    /// Cases left out because the ISP marked them false positive.
    pub suppressed_false_positive: u64,
    /// Cases marked fixed (by the ISP or a re-survey) that were seen again (now `not_fixed`).
    pub reopened: u64,
    /// Evidence records (findings, activity) whose address no registered ISP holds (not notified).
    pub unattributed: u64,
    /// Rows per ISP.
    pub per_isp: BTreeMap<String, u64>,
}

/// Evidence gathered for one case before it is matched to the stored one.
struct Gathered {
    report: ReportType,
    isp: String,
    ip: IpAddr,
    port: Option<u16>,
    service: Option<botscope_model::Service>,
    asn: Option<u32>,
    tag: String,
    first_seen: Timestamp,
    last_seen: Timestamp,
    packets: u64,
    mirai_packets: u64,
    evidence: Vec<Uuid>,
    device: Option<Device>,
}

async fn records_of(
    store: &impl Store,
    kind: Kind,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<Vec<Record>, CenterError> {
    Ok(all_records(store, RecordQuery { kind: Some(kind), since, until, ..Default::default() }).await?)
}

/// The ISP an address belongs to: the first registered one the record names (sensors join several
/// with commas), else the routing table's and registry's first.
fn attribute(
    attributor: &Attributor,
    registry: &BTreeMap<&str, &Isp>,
    given: Option<&IspHandles>,
    ip: IpAddr,
) -> (Option<String>, Option<u32>) {
    let found = attributor.lookup(ip);
    let asn = found.origin.and_then(|o| o.asns().first().copied());
    let named = given.into_iter().flat_map(IspHandles::iter).find(|h| registry.contains_key(h));
    let isp = named.or_else(|| found.isps.iter().copied().find(|h| registry.contains_key(h)));
    (isp.map(String::from), asn)
}

/// Generates the period's cases and updates the stored ones. `guide_of` names the remediation
/// guide for a device (a catalogue id), when there is one.
pub async fn generate(
    store: &impl Store,
    config: &GenerateConfig,
    guide_of: &(dyn Fn(&Device) -> Option<String> + Sync),
) -> Result<Generated, CenterError> {
    let isps: Vec<Isp> = store.isps().await?;
    let attributor = Attributor::new(store.routed_prefixes().await?, &isps);
    let evidence_kind = match config.kind {
        PeriodKind::Day => Kind::Activity,
        PeriodKind::Month => Kind::Finding,
    };
    let period = match config.period {
        Some(period) => period,
        None => latest_period(store, config.kind, evidence_kind).await?,
    };
    if period.kind() != config.kind {
        return Err(CenterError::Invalid("the period does not match the report kind".into()));
    }
    let records = records_of(store, evidence_kind, Some(period.start()), Some(period.end())).await?;
    // Devices the survey identified, for infected hosts too (the survey saw the same address):
    // read through the address index for the period's hosts only.
    let hosts: BTreeSet<IpAddr> = records.iter().filter(|r| is_evidence(r)).filter_map(Record::address).collect();
    let mut devices: BTreeMap<IpAddr, Device> = BTreeMap::new();
    for record in records_about(store, Kind::Finding, &hosts).await? {
        if let Record::Finding(f) = record
            && let Some(device) = f.device
        {
            devices.insert(f.ip, device);
        }
    }
    let wanted = |isp: &str| config.isps.as_ref().is_none_or(|list| list.iter().any(|i| i == isp));
    let registry: BTreeMap<&str, &Isp> = isps.iter().map(|i| (i.handle.as_str(), i)).collect();
    let mut gathered: BTreeMap<(String, IpAddr, Option<u16>, ReportType), Gathered> = BTreeMap::new();
    let mut report = Generated {
        period,
        rows: Vec::new(),
        new: 0,
        repeat: 0,
        changed: 0,
        repeat_without_response: 0,
        suppressed_false_positive: 0,
        reopened: 0,
        unattributed: 0,
        per_isp: BTreeMap::new(),
    };
    for record in &records {
        if !is_evidence(record) {
            continue;
        }
        let (report_type, ip, port, given_isp, time_from, time_to, tag, packets, mirai, device) = match record {
            Record::Activity(a) => (
                ReportType::Infected,
                a.src,
                None::<(u16, botscope_model::Service)>,
                a.isp.as_ref(),
                a.first_seen,
                a.last_seen,
                a.tags.join(";"),
                a.packets,
                a.mirai_packets,
                devices.get(&a.src).cloned(),
            ),
            Record::Finding(f) => (
                ReportType::for_issue(f.issue),
                f.ip,
                Some((f.port, f.service)),
                f.isp.as_ref(),
                f.observed_at,
                f.observed_at,
                f.service.as_str().to_string(),
                0,
                0,
                f.device.clone(),
            ),
            _ => continue,
        };
        let (isp, asn) = attribute(&attributor, &registry, given_isp, ip);
        let Some(isp) = isp else {
            report.unattributed += 1;
            continue;
        };
        if !wanted(&isp) {
            continue;
        }
        let prefs = &registry[isp.as_str()].notify;
        if (report_type == ReportType::Infected && !prefs.daily_infected)
            || (report_type != ReportType::Infected && !prefs.monthly_vulnerable)
        {
            continue;
        }
        let entry = gathered.entry((isp.clone(), ip, port.map(|p| p.0), report_type)).or_insert_with(|| Gathered {
            report: report_type,
            isp,
            ip,
            port: port.map(|p| p.0),
            service: port.map(|p| p.1),
            asn,
            tag: tag.clone(),
            first_seen: time_from,
            last_seen: time_to,
            packets: 0,
            mirai_packets: 0,
            evidence: Vec::new(),
            device: None,
        });
        entry.first_seen = entry.first_seen.min(time_from);
        entry.last_seen = entry.last_seen.max(time_to);
        entry.packets += packets;
        entry.mirai_packets += mirai;
        entry.evidence.extend(record.id());
        if device.is_some() {
            entry.device = device;
        }
    }

    let botnet_of = botnets_by_bot(store, period).await?;
    // The stored cases of the hosts found, through the address index: a case's id is derived
    // from its ISP, host, port and reason, so no other case can match.
    let found_hosts: BTreeSet<IpAddr> = gathered.values().map(|g| g.ip).collect();
    let existing: BTreeMap<Uuid, Notification> = records_about(store, Kind::Notification, &found_hosts)
        .await?
        .into_iter()
        .filter_map(Record::into_payload::<Notification>)
        .filter_map(|n| n.id.map(|id| (id, n)))
        .collect();
    let mut updated: Vec<Record> = Vec::new();
    let mut outcomes: Vec<Record> = Vec::new();
    let this_period = period.to_string();
    for found in gathered.into_values() {
        let language = registry.get(found.isp.as_str()).map(|i| i.language).unwrap_or(Language::Ja);
        let (serial, family) = botnet_of.get(&found.ip).cloned().unzip();
        let mut fresh = Notification {
            id: None,
            isp: found.isp.clone(),
            ip: found.ip,
            port: found.port,
            service: found.service,
            reason: found.report.reason(),
            created_at: config.now,
            last_notified: Some(config.now),
            times_notified: 1,
            last_period: Some(this_period.clone()),
            status: NotificationStatus::Sent,
            language,
            evidence: found.evidence.clone(),
            device: found.device.clone(),
            guide: Some(found.device.as_ref().and_then(guide_of).unwrap_or_else(|| "generic".into())),
            botnet: if found.report == ReportType::Infected { serial.clone() } else { None },
        };
        let id = Record::Notification(fresh.clone()).derived_id();
        fresh.id = Some(id);
        let (case, state) = match existing.get(&id) {
            None => (fresh, CaseState::New),
            Some(old) if old.status == NotificationStatus::FalsePositive => {
                report.suppressed_false_positive += 1;
                continue;
            }
            Some(old) if old.last_period.as_deref() == Some(this_period.as_str()) => {
                // This period was generated before: report it as it was, change nothing.
                let state = if old.times_notified <= 1 { CaseState::New } else { CaseState::Repeat };
                (old.clone(), state)
            }
            Some(old) if old.last_period.as_deref().is_some_and(|last| last > this_period.as_str()) => {
                // An earlier period generated after a later one: the case was already sent; list it
                // without counting it again.
                (old.clone(), CaseState::Repeat)
            }
            Some(old) => {
                let mut case = old.clone();
                case.times_notified += 1;
                case.last_notified = Some(config.now);
                case.last_period = Some(this_period.clone());
                case.evidence = found.evidence.clone();
                if case.botnet.is_none() {
                    case.botnet = fresh.botnet.clone();
                }
                if case.status == NotificationStatus::Fixed {
                    case.status = NotificationStatus::NotFixed;
                    report.reopened += 1;
                    outcomes.push(outcome_record(
                        &case,
                        NotificationStatus::NotFixed,
                        OutcomeSource::Centre,
                        config.now,
                        Some(format!("seen again in {this_period}")),
                    ));
                }
                let changed = found.device.is_some() && found.device != old.device;
                if changed {
                    case.device = found.device.clone();
                    case.guide = fresh.guide.clone();
                }
                if config.new_only && !changed {
                    // Left out of the files, so not sent: it keeps its count and period, and only
                    // a reopening is kept.
                    let mut kept = old.clone();
                    kept.status = case.status;
                    (kept, CaseState::Repeat)
                } else {
                    (case, if changed { CaseState::Changed } else { CaseState::Repeat })
                }
            }
        };
        match state {
            CaseState::New => report.new += 1,
            CaseState::Repeat => {
                report.repeat += 1;
                if case.status == NotificationStatus::Sent {
                    report.repeat_without_response += 1;
                }
            }
            CaseState::Changed => report.changed += 1,
        }
        *report.per_isp.entry(case.isp.clone()).or_default() += 1;
        updated.push(Record::Notification(case.clone()));
        report.rows.push(Row {
            report: found.report,
            case,
            state,
            asn: found.asn,
            tag: found.tag,
            first_seen: found.first_seen,
            last_seen: found.last_seen,
            packets: found.packets,
            mirai_packets: found.mirai_packets,
            family: family.flatten(),
        });
    }
    if !config.dry_run {
        store.put_records(&outcomes).await?;
        store.upsert_records(&updated).await?;
    }
    Ok(report)
}

/// The latest period holding evidence: the one holding the latest record of the kind (through the
/// time index), else, when that period's records are none of them evidence, the latest evidence
/// found by reading them all.
async fn latest_period(store: &impl Store, kind: PeriodKind, evidence_kind: Kind) -> Result<Period, CenterError> {
    let none = || CenterError::Invalid(format!("no {evidence_kind} evidence in the store to report"));
    let latest = store.latest_time(evidence_kind).await?.ok_or_else(none)?;
    let candidate = Period::holding(kind, latest);
    let in_it = records_of(store, evidence_kind, Some(candidate.start()), Some(candidate.end())).await?;
    if in_it.iter().any(is_evidence) {
        return Ok(candidate);
    }
    let all = records_of(store, evidence_kind, None, None).await?;
    let time = all.iter().filter(|r| is_evidence(r)).filter_map(Record::time).max().ok_or_else(none)?;
    Ok(Period::holding(kind, time))
}

fn is_evidence(record: &Record) -> bool {
    match record {
        Record::Activity(a) => a.classification == ActivityClass::Infected,
        Record::Finding(_) => true,
        _ => false,
    }
}

/// Which botnet (serial, family) each bot was in during the period.
async fn botnets_by_bot(
    store: &impl Store,
    period: Period,
) -> Result<BTreeMap<IpAddr, (String, Option<String>)>, CenterError> {
    let mut found = BTreeMap::new();
    for record in records_of(store, Kind::BotnetWindow, None, Some(period.end())).await? {
        if let Record::BotnetWindow(w) = record
            && w.window_end > period.start()
        {
            for bot in &w.bots {
                found.insert(*bot, (w.serial.clone(), w.family.clone()));
            }
        }
    }
    Ok(found)
}

fn outcome_record(
    case: &Notification,
    status: NotificationStatus,
    source: OutcomeSource,
    at: Timestamp,
    note: Option<String>,
) -> Record {
    let mut record = Record::Outcome(Outcome {
        id: None,
        notification: case.id.unwrap_or_default(),
        isp: case.isp.clone(),
        status,
        at,
        source,
        note,
    });
    record.ensure_id();
    record
}

/// Records a status change of a case: an outcome record and the case's new status, in one
/// transaction.
pub async fn record_outcome(
    store: &impl Store,
    case: &mut Notification,
    status: NotificationStatus,
    source: OutcomeSource,
    note: Option<String>,
) -> Result<Outcome, CenterError> {
    let record = outcome_record(case, status, source, chrono::Utc::now(), note);
    record.validate().map_err(|e| CenterError::Invalid(e.to_string()))?;
    let mut updated = case.clone();
    updated.status = status;
    // An outcome's id is new (it has the time in its key), so the upsert is an insert for it.
    store.upsert_records(&[record.clone(), Record::Notification(updated.clone())]).await?;
    *case = updated;
    let Record::Outcome(outcome) = record else { unreachable!("made as an outcome above") };
    Ok(outcome)
}

/// Moves the cases that re-survey outcomes (already stored) are about to their verdicts: the
/// latest verdict of each case in `outcomes`, unless the case was notified again after it or is a
/// false positive. Returns how many cases changed.
pub async fn apply_outcomes(store: &impl Store, outcomes: &[Outcome]) -> Result<usize, CenterError> {
    let mut latest: BTreeMap<Uuid, &Outcome> = BTreeMap::new();
    for outcome in outcomes {
        let slot = latest.entry(outcome.notification).or_insert(outcome);
        if outcome.at > slot.at {
            *slot = outcome;
        }
    }
    let mut changed = Vec::new();
    for (id, outcome) in latest {
        // A verdict older than the case's latest notification is stale: the case was reported
        // again since.
        if let Some(Record::Notification(mut case)) = store.record(id).await?
            && case.status != outcome.status
            && case.status != NotificationStatus::FalsePositive
            && outcome.at >= case.last_notified.unwrap_or(case.created_at)
        {
            case.status = outcome.status;
            changed.push(Record::Notification(case));
        }
    }
    store.upsert_records(&changed).await?;
    Ok(changed.len())
}
