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
    /// Protocol spoken on the port (`protocol` in records, as in ZGrab2's envelope).
    #[serde(rename = "protocol")]
    pub service: Service,
    /// What is wrong.
    pub issue: FindingIssue,
    /// Dictionary id of the pair that logged in; set exactly when `issue` is `default_credential`.
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
    /// Handle of the ISP the address belongs to, when attribution was loaded (several ISPs
    /// sharing the origin AS are joined by commas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isp: Option<crate::IspHandles>,
}

impl Finding {
    pub(crate) fn natural_key(&self) -> String {
        let key = format!(
            "finding|{}|{}|{}|{}|{}",
            self.ip,
            self.port,
            self.service.as_str(),
            self.issue.as_str(),
            self.observed_at.to_rfc3339()
        );
        // The sensor is in the key so one sender's record can never take another's id; records
        // without one keep the ids they always had.
        match &self.sensor {
            Some(sensor) => format!("{key}|{sensor}"),
            None => key,
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.port == 0 {
            return Err("port must be 1-65535".into());
        }
        match (self.issue, self.credential_id) {
            (FindingIssue::DefaultCredential, None) => Err("issue default_credential needs credential_id".into()),
            (issue, Some(_)) if issue != FindingIssue::DefaultCredential => {
                Err(format!("credential_id is only allowed with issue default_credential, not {}", issue.as_str()))
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
    /// RTSP video streaming (IP cameras, DVRs).
    Rtsp,
    /// MQTT broker.
    Mqtt,
    /// UPnP / SSDP.
    Upnp,
    /// Any other service.
    Other,
}

impl std::str::FromStr for Service {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Service::ALL.into_iter().find(|s| s.as_str() == name).ok_or_else(|| {
            let names: Vec<_> = Service::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown service {name:?} (expected one of: {})", names.join(", "))
        })
    }
}

impl Service {
    /// Every service, in documentation order.
    pub const ALL: [Service; 11] = [
        Service::Telnet,
        Service::Ssh,
        Service::Http,
        Service::Https,
        Service::Ftp,
        Service::Cwmp,
        Service::Adb,
        Service::Rtsp,
        Service::Mqtt,
        Service::Upnp,
        Service::Other,
    ];

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
            Service::Rtsp => "rtsp",
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
    DefaultCredential,
    /// The service gave access with no authentication at all.
    NoAuthentication,
    /// A management port that should not face the internet answered.
    ExposedManagement,
    /// The device runs firmware older than the newest its vendor released.
    OutdatedFirmware,
    /// The vendor no longer supports the model (end of life): it will get no more fixes.
    EolDevice,
}

impl FindingIssue {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingIssue::DefaultCredential => "default_credential",
            FindingIssue::NoAuthentication => "no_authentication",
            FindingIssue::ExposedManagement => "exposed_management",
            FindingIssue::OutdatedFirmware => "outdated_firmware",
            FindingIssue::EolDevice => "eol_device",
        }
    }
}
