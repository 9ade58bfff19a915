use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Timestamp, Transport};

/// A C&C server's state as the liveness monitor found it: written on the first probe and on every
/// change between alive and dead, so the records are the server's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Liveness {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Server address.
    pub ip: IpAddr,
    /// Server port.
    pub port: u16,
    /// Transport.
    pub protocol: Transport,
    /// When the probe ran.
    pub checked_at: Timestamp,
    /// Whether the server accepted a connection (and answered the greeting, when one was asked).
    pub alive: bool,
    /// What the probe saw: `connected`, `greeted`, `refused`, `timeout`, `reset`, `closed` (it
    /// hung up on the greeting), `unreachable`.
    pub outcome: String,
    /// Round-trip of the connect, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Name of the prober.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
}

impl Liveness {
    pub(crate) fn natural_key(&self) -> String {
        format!("liveness|{}|{}|{}|{}", self.ip, self.port, self.protocol.as_str(), self.checked_at.to_rfc3339())
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.port == 0 {
            return Err("port must be 1-65535".into());
        }
        if self.outcome.trim().is_empty() {
            return Err("outcome must not be empty".into());
        }
        if self.rtt_ms.is_some_and(|rtt| !(rtt.is_finite() && rtt >= 0.0)) {
            return Err("rtt_ms must be a non-negative number".into());
        }
        Ok(())
    }
}
