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
        Ok(())
    }
}

/// Whether a botnet is still active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotnetStatus {
    /// Its C&C answers or its bots are seen.
    Active,
    /// Nothing seen lately, but not long enough to call it dead.
    Dormant,
    /// No C&C alive and no bots seen for the configured time.
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
