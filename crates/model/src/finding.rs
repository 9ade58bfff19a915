use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Device, Timestamp};

/// What the survey found on one service of one address: a weak credential, a service that needs
/// no authentication, a management port that should not face the internet, or an outdated device.
///
/// Working passwords never appear here: `credential_id` names the dictionary entry instead, so a
/// finding can be shared without handing anyone a way in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// When the check ran.
    pub observed_at: Timestamp,
    /// The device's address.
    pub ip: IpAddr,
    /// TCP port of the service.
    pub port: u16,
    /// Service spoken on the port.
    pub service: Service,
    /// What is wrong.
    pub issue: FindingIssue,
    /// Dictionary id of the pair that logged in; set exactly when `issue` is `weak_credential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<u32>,
    /// What the device is, when fingerprinting could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// Survey round, e.g. `2026-11`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<String>,
    /// Name of the survey worker that made the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
}

impl Finding {
    pub(crate) fn natural_key(&self) -> String {
        format!(
            "finding|{}|{}|{}|{}|{}",
            self.ip,
            self.port,
            self.service.as_str(),
            self.issue.as_str(),
            self.observed_at.to_rfc3339()
        )
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.port == 0 {
            return Err("port must be 1-65535".into());
        }
        match (self.issue, self.credential_id) {
            (FindingIssue::WeakCredential, None) => Err("issue weak_credential needs credential_id".into()),
            (issue, Some(_)) if issue != FindingIssue::WeakCredential => {
                Err(format!("credential_id is only allowed with issue weak_credential, not {}", issue.as_str()))
            }
            _ => Ok(()),
        }
    }
}

/// A service the survey speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Telnet.
    Telnet,
    /// SSH.
    Ssh,
    /// HTTP.
    Http,
    /// HTTP over TLS.
    Https,
    /// FTP.
    Ftp,
    /// TR-069 / CWMP device management.
    Cwmp,
    /// Android Debug Bridge.
    Adb,
    /// MQTT broker.
    Mqtt,
    /// UPnP / SSDP.
    Upnp,
    /// Any other service.
    Other,
}

impl Service {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Telnet => "telnet",
            Service::Ssh => "ssh",
            Service::Http => "http",
            Service::Https => "https",
            Service::Ftp => "ftp",
            Service::Cwmp => "cwmp",
            Service::Adb => "adb",
            Service::Mqtt => "mqtt",
            Service::Upnp => "upnp",
            Service::Other => "other",
        }
    }
}

/// The kind of problem a finding reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingIssue {
    /// A default or weak ID/password pair logged in.
    WeakCredential,
    /// The service gave access with no authentication at all.
    NoAuthentication,
    /// A management port that should not face the internet answered.
    ExposedManagement,
    /// The device is end-of-life or runs outdated firmware.
    OutdatedDevice,
}

impl FindingIssue {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingIssue::WeakCredential => "weak_credential",
            FindingIssue::NoAuthentication => "no_authentication",
            FindingIssue::ExposedManagement => "exposed_management",
            FindingIssue::OutdatedDevice => "outdated_device",
        }
    }
}
