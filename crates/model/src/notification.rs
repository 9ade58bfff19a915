use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Device, Language, Service, Timestamp};

/// One case an ISP is asked to act on: a subscriber address (and port, for a vulnerable service)
/// seen infected or vulnerable, for one reason.
///
/// A case is made once and updated after: each report that lists it again bumps `times_notified`
/// and `last_notified` instead of raising a new case, so an unchanged device is never sent as new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Handle of the ISP it goes to.
    pub isp: String,
    /// The subscriber address.
    pub ip: IpAddr,
    /// The vulnerable service's port (absent for infected hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// What the service speaks (absent for infected hosts): a re-survey needs it.
    #[serde(default, rename = "protocol", skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// Why.
    pub reason: NotificationReason,
    /// When the case was first notified.
    pub created_at: Timestamp,
    /// When it was last included in a report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notified: Option<Timestamp>,
    /// How many reports included it (1 for a new case).
    #[serde(default = "one")]
    pub times_notified: u32,
    /// The last report period that included it (`day:2026-11-02`, `month:2026-11`): generating the
    /// same period again changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_period: Option<String>,
    /// Where it stands.
    pub status: NotificationStatus,
    /// Language of the guide sent with it.
    pub language: Language,
    /// Ids of the records that are its evidence.
    #[serde(default)]
    pub evidence: Vec<Uuid>,
    /// The device, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// Id of the remediation guide (`data/devices.toml` model id, or `generic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guide: Option<String>,
    /// The botnet the host was linked to, for infected hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub botnet: Option<String>,
}

fn one() -> u32 {
    1
}

impl Notification {
    pub(crate) fn natural_key(&self) -> String {
        let port = self.port.map(|p| p.to_string()).unwrap_or_default();
        format!("notification|{}|{}|{}|{}", self.isp, self.ip, port, self.reason.as_str())
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !crate::is_valid_handle(&self.isp) {
            return Err(format!("isp {:?} is not a valid ISP handle", self.isp));
        }
        if self.port == Some(0) {
            return Err("port must be 1-65535".into());
        }
        if self.last_notified.is_some_and(|last| last < self.created_at) {
            return Err("last_notified must not be before created_at".into());
        }
        Ok(())
    }
}

/// Why an address is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationReason {
    /// Seen scanning like a bot.
    Infected,
    /// A default or weak password logged in.
    DefaultCredential,
    /// Usable without authentication.
    NoAuthentication,
    /// A management port faces the internet.
    ExposedManagement,
    /// Runs outdated firmware.
    OutdatedFirmware,
    /// The model is end of life.
    EolDevice,
}

impl NotificationReason {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationReason::Infected => "infected",
            NotificationReason::DefaultCredential => "default_credential",
            NotificationReason::NoAuthentication => "no_authentication",
            NotificationReason::ExposedManagement => "exposed_management",
            NotificationReason::OutdatedFirmware => "outdated_firmware",
            NotificationReason::EolDevice => "eol_device",
        }
    }
}

/// Where a notification stands; the ISP moves it, the next re-survey confirms or refutes `fixed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Made, not yet delivered.
    Pending,
    /// Delivered to the ISP.
    Sent,
    /// The ISP contacted the subscriber.
    Contacted,
    /// The ISP reports it fixed.
    Fixed,
    /// The ISP could not reach the subscriber.
    Unreachable,
    /// A re-survey found the problem still there.
    NotFixed,
    /// The ISP found the notification wrong.
    FalsePositive,
}

impl NotificationStatus {
    /// Every status, in the order a case normally moves.
    pub const ALL: [NotificationStatus; 7] = [
        NotificationStatus::Pending,
        NotificationStatus::Sent,
        NotificationStatus::Contacted,
        NotificationStatus::Fixed,
        NotificationStatus::Unreachable,
        NotificationStatus::NotFixed,
        NotificationStatus::FalsePositive,
    ];

    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Pending => "pending",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Contacted => "contacted",
            NotificationStatus::Fixed => "fixed",
            NotificationStatus::Unreachable => "unreachable",
            NotificationStatus::NotFixed => "not_fixed",
            NotificationStatus::FalsePositive => "false_positive",
        }
    }
}

impl std::str::FromStr for NotificationStatus {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        NotificationStatus::ALL.into_iter().find(|s| s.as_str() == name).ok_or_else(|| {
            let names: Vec<_> = NotificationStatus::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown status {name:?} (expected one of: {})", names.join(", "))
        })
    }
}
