//! Report files in the Shadowserver style: one CSV (or JSON lines) per report type, period and
//! ISP, times in UTC, one row per case. docs/notifications.md lists the columns.

use std::io::Write;
use std::path::{Path, PathBuf};

use botscope_model::csv::CsvWriter;
use botscope_model::{FindingIssue, Notification, NotificationReason};
use serde::Serialize;

use super::{Period, Row};
use crate::CenterError;

/// The report types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportType {
    /// Daily: hosts the darknet saw behaving like bots.
    Infected,
    /// Monthly: a default or weak ID/password logs in.
    DefaultCredentials,
    /// Monthly: usable without any password.
    NoAuthentication,
    /// Monthly: a management service faces the internet.
    ExposedManagement,
    /// Monthly: the model is end of life.
    Eol,
    /// Monthly: the firmware is older than the vendor's newest.
    OutdatedFirmware,
}

impl ReportType {
    /// Every type, daily first.
    pub const ALL: [ReportType; 6] = [
        ReportType::Infected,
        ReportType::DefaultCredentials,
        ReportType::NoAuthentication,
        ReportType::ExposedManagement,
        ReportType::Eol,
        ReportType::OutdatedFirmware,
    ];

    /// The name in file names and the `report` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportType::Infected => "infected",
            ReportType::DefaultCredentials => "default_credentials",
            ReportType::NoAuthentication => "no_authentication",
            ReportType::ExposedManagement => "exposed_management",
            ReportType::Eol => "eol",
            ReportType::OutdatedFirmware => "outdated_firmware",
        }
    }

    /// The report a survey finding goes in.
    pub fn for_issue(issue: FindingIssue) -> ReportType {
        match issue {
            FindingIssue::DefaultCredential => ReportType::DefaultCredentials,
            FindingIssue::NoAuthentication => ReportType::NoAuthentication,
            FindingIssue::ExposedManagement => ReportType::ExposedManagement,
            FindingIssue::EolDevice => ReportType::Eol,
            FindingIssue::OutdatedFirmware => ReportType::OutdatedFirmware,
        }
    }

    /// The notification reason of its cases.
    pub fn reason(self) -> NotificationReason {
        match self {
            ReportType::Infected => NotificationReason::Infected,
            ReportType::DefaultCredentials => NotificationReason::DefaultCredential,
            ReportType::NoAuthentication => NotificationReason::NoAuthentication,
            ReportType::ExposedManagement => NotificationReason::ExposedManagement,
            ReportType::Eol => NotificationReason::EolDevice,
            ReportType::OutdatedFirmware => NotificationReason::OutdatedFirmware,
        }
    }

    /// Shadowserver's severity words: infected and open logins are what harms others.
    pub fn severity(self) -> &'static str {
        match self {
            ReportType::Infected | ReportType::DefaultCredentials | ReportType::NoAuthentication => "high",
            ReportType::ExposedManagement | ReportType::Eol => "medium",
            ReportType::OutdatedFirmware => "low",
        }
    }
}

/// File format of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line, same fields.
    Json,
}

/// The columns, in order.
pub const COLUMNS: [&str; 25] = [
    "timestamp",
    "severity",
    "ip",
    "protocol",
    "port",
    "asn",
    "isp",
    "tag",
    "device_vendor",
    "device_type",
    "device_model",
    "device_version",
    "release_year",
    "eol",
    "first_seen",
    "last_seen",
    "packets",
    "mirai_packets",
    "botnet",
    "family",
    "notification_id",
    "state",
    "times_notified",
    "first_notified",
    "guide",
];

fn time(t: botscope_model::Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A row's fields in [`COLUMNS`] order.
fn fields(row: &Row) -> Vec<String> {
    let case = &row.case;
    let device = case.device.clone().unwrap_or_default();
    let opt = |v: Option<String>| v.unwrap_or_default();
    vec![
        time(row.last_seen),
        row.report.severity().into(),
        case.ip.to_string(),
        if row.report == ReportType::Infected { String::new() } else { row.tag.clone() },
        opt(case.port.map(|p| p.to_string())),
        opt(row.asn.map(|a| a.to_string())),
        case.isp.clone(),
        if row.report == ReportType::Infected { row.tag.clone() } else { row.report.as_str().into() },
        opt(device.vendor),
        opt(device
            .device_type
            .map(|t| serde_json::to_value(t).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default())),
        opt(device.model),
        opt(device.firmware),
        opt(device.release_year.map(|y| y.to_string())),
        opt(device.end_of_life.map(|e| e.to_string())),
        time(row.first_seen),
        time(row.last_seen),
        row.packets.to_string(),
        row.mirai_packets.to_string(),
        opt(case.botnet.clone()),
        opt(row.family.clone()),
        opt(case.id.map(|id| id.to_string())),
        row.state.as_str().into(),
        case.times_notified.to_string(),
        time(case.created_at),
        opt(case.guide.clone()),
    ]
}

/// One written report file.
#[derive(Debug, Clone, Serialize)]
pub struct ReportFile {
    /// The ISP.
    pub isp: String,
    /// The report type.
    pub report: ReportType,
    /// Where it was written.
    pub path: PathBuf,
    /// Rows in it.
    pub rows: usize,
}

/// Writes one file per ISP and report type under `dir/ISP/`, named `PERIOD-REPORT.csv` (or
/// `.json`), in the format `format_of` gives for the ISP. `new_only` leaves out repeats.
pub fn write_reports(
    dir: &Path,
    period: Period,
    rows: &[Row],
    format_of: &dyn Fn(&str) -> ReportFormat,
    new_only: bool,
) -> Result<Vec<ReportFile>, CenterError> {
    let io = |path: &Path, source| CenterError::Io { path: path.display().to_string(), source };
    let mut groups: std::collections::BTreeMap<(&str, ReportType), Vec<&Row>> = Default::default();
    for row in rows {
        if new_only && row.state == super::CaseState::Repeat {
            continue;
        }
        groups.entry((row.case.isp.as_str(), row.report)).or_default().push(row);
    }
    let mut written = Vec::new();
    for ((isp, report), mut group) in groups {
        group.sort_by_key(|row| (row.case.ip, row.case.port));
        let format = format_of(isp);
        let folder = dir.join(isp);
        std::fs::create_dir_all(&folder).map_err(|e| io(&folder, e))?;
        let extension = if format == ReportFormat::Csv { "csv" } else { "json" };
        let path = folder.join(format!("{}-{}.{extension}", period.label(), report.as_str()));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| io(&path, e))?);
        match format {
            ReportFormat::Csv => out.write_all(report_csv(&group).as_bytes()).map_err(|e| io(&path, e))?,
            ReportFormat::Json => {
                for row in &group {
                    let object: serde_json::Map<String, serde_json::Value> = COLUMNS
                        .iter()
                        .zip(fields(row))
                        .map(|(name, value)| (name.to_string(), serde_json::Value::String(value)))
                        .collect();
                    writeln!(out, "{}", serde_json::Value::Object(object)).map_err(|e| io(&path, e))?;
                }
            }
        }
        out.flush().map_err(|e| io(&path, e))?;
        written.push(ReportFile { isp: isp.to_string(), report, path, rows: group.len() });
    }
    Ok(written)
}

/// Report rows as the CSV of a report file (header and one line per row, in the order given).
pub fn report_csv(rows: &[&Row]) -> String {
    let mut csv = CsvWriter::with_header(COLUMNS);
    for row in rows {
        csv.row(fields(row));
    }
    csv.finish()
}

/// Stored cases as CSV (what the API's `format=csv` returns).
pub fn cases_csv(cases: &[Notification]) -> String {
    let mut csv = CsvWriter::with_header([
        "notification_id",
        "isp",
        "ip",
        "port",
        "reason",
        "status",
        "first_notified",
        "last_notified",
        "times_notified",
        "device_vendor",
        "device_model",
        "botnet",
        "guide",
    ]);
    for case in cases {
        let device = case.device.clone().unwrap_or_default();
        let fields = [
            case.id.map(|i| i.to_string()).unwrap_or_default(),
            case.isp.clone(),
            case.ip.to_string(),
            case.port.map(|p| p.to_string()).unwrap_or_default(),
            case.reason.as_str().into(),
            case.status.as_str().into(),
            time(case.created_at),
            case.last_notified.map(time).unwrap_or_default(),
            case.times_notified.to_string(),
            device.vendor.unwrap_or_default(),
            device.model.unwrap_or_default(),
            case.botnet.clone().unwrap_or_default(),
            case.guide.clone().unwrap_or_default(),
        ];
        csv.row(fields);
    }
    csv.finish()
}
