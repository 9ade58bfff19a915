use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Timestamp, Transport};

/// A botnet as the centre tracks it: one serial number for its whole life, however often its C&C
/// moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Botnet {
    /// Stable id; derived from the serial when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Serial number, never reused, e.g. `BN-2026-0007`.
    pub serial: String,
    /// Malware family, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Whether it is still seen.
    pub status: BotnetStatus,
    /// First evidence of the botnet.
    pub first_seen: Timestamp,
    /// Latest evidence.
    pub last_seen: Timestamp,
    /// Infected hosts attributed to it.
    pub members: u64,
    /// Its C&C servers over time, oldest first.
    #[serde(default)]
    pub cnc: Vec<CncEndpoint>,
    /// What happened to it, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<BotnetEvent>,
    /// The flow analysers (one per ISP, normally) and feeds that reported its C&C servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reporters: Vec<String>,
    /// Confidence that its C&C servers are C&C, from 0 to 1: independent reports raise it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

impl Botnet {
    pub(crate) fn natural_key(&self) -> String {
        format!("botnet|{}", self.serial)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.serial.trim().is_empty() {
            return Err("serial must not be empty".into());
        }
        if self.first_seen > self.last_seen {
            return Err("first_seen must not be after last_seen".into());
        }
        if let Some(bad) = self.cnc.iter().find(|c| c.first_seen > c.last_seen) {
            return Err(format!("cnc {}: first_seen must not be after last_seen", bad.ip));
        }
        check_confidence(self.confidence)
    }
}

fn check_confidence(confidence: Option<f64>) -> Result<(), String> {
    match confidence {
        Some(c) if !(0.0..=1.0).contains(&c) => Err("confidence must be between 0 and 1".into()),
        _ => Ok(()),
    }
}

/// One thing that happened to a botnet, as correlation saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotnetEvent {
    /// Start of the window in which it was seen.
    pub at: Timestamp,
    /// What happened.
    pub event: Lifecycle,
    /// The other botnets involved: those merged in, or the one split from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serials: Vec<String>,
    /// In words, with the serials and servers involved.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The lifecycle events correlation records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// First seen: matched no earlier botnet.
    Emerged,
    /// Members grew by more than a quarter.
    Grew,
    /// Members shrank by more than a quarter.
    Shrank,
    /// Its set of C&C servers changed.
    CncChanged,
    /// Two or more earlier botnets continue as this one.
    Merged,
    /// Part of it continues under a new serial.
    Split,
    /// Not seen in a window after being seen.
    Gone,
}

impl Lifecycle {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Emerged => "emerged",
            Lifecycle::Grew => "grew",
            Lifecycle::Shrank => "shrank",
            Lifecycle::CncChanged => "cnc_changed",
            Lifecycle::Merged => "merged",
            Lifecycle::Split => "split",
            Lifecycle::Gone => "gone",
        }
    }
}

/// A botnet in one correlation window: who was in it and which servers controlled it.
///
/// The centre keeps these so the next window can be matched to this one (serial numbers follow
/// membership) and so the dashboard can draw members over time. Bot addresses stay at the centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotnetWindow {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The botnet's serial number.
    pub serial: String,
    /// Start of the window (inclusive).
    pub window_start: Timestamp,
    /// End of the window (exclusive).
    pub window_end: Timestamp,
    /// Malware family, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Infected hosts linked to its C&C servers in the window, in address order.
    pub bots: Vec<IpAddr>,
    /// Its C&C servers in the window.
    pub cnc: Vec<CncEndpoint>,
    /// Lifecycle events of this window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<BotnetEvent>,
    /// Flow analysers and feeds that reported its C&C servers in the window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reporters: Vec<String>,
    /// Combined confidence of its C&C servers, from 0 to 1.
    pub confidence: f64,
}

impl BotnetWindow {
    pub(crate) fn natural_key(&self) -> String {
        format!("botnet_window|{}|{}|{}", self.serial, self.window_start.to_rfc3339(), self.window_end.to_rfc3339())
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.serial.trim().is_empty() {
            return Err("serial must not be empty".into());
        }
        if self.window_end <= self.window_start {
            return Err("window_end must be after window_start".into());
        }
        check_confidence(Some(self.confidence))
    }
}

/// Whether a botnet is still active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotnetStatus {
    /// Seen in the latest correlated window.
    Active,
    /// Not in the latest window, but seen within the correlation's lookback.
    Dormant,
    /// Not seen for longer than the lookback, or merged into another botnet.
    Dead,
}

/// One C&C server a botnet used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CncEndpoint {
    /// Server address.
    pub ip: IpAddr,
    /// Server port.
    pub port: u16,
    /// Transport protocol.
    pub transport: Transport,
    /// When it was first seen in use.
    pub first_seen: Timestamp,
    /// When it was last seen in use.
    pub last_seen: Timestamp,
}
