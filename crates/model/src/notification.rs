use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Device, Language, Timestamp};

/// One row an ISP is asked to act on: a subscriber address seen infected or vulnerable.
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
    /// Why.
    pub reason: NotificationReason,
    /// When the notification was made.
    pub created_at: Timestamp,
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
}

impl Notification {
    pub(crate) fn natural_key(&self) -> String {
        format!("notification|{}|{}|{}|{}", self.isp, self.ip, self.reason.as_str(), self.created_at.to_rfc3339())
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !crate::is_valid_handle(&self.isp) {
            return Err(format!("isp {:?} is not a valid ISP handle", self.isp));
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
}
