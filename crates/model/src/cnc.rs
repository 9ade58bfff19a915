use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Timestamp, Transport};

/// A likely botnet command-and-control server found by an ISP's flow analyser.
///
/// It carries counts of the bots seen talking to the server, never their addresses: the analyser
/// runs inside the ISP and this record is what leaves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CncCandidate {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The server's address.
    pub ip: IpAddr,
    /// The server's port.
    pub port: u16,
    /// Transport protocol.
    pub transport: Transport,
    /// First flow between a known bot and the server.
    pub first_seen: Timestamp,
    /// Last such flow.
    pub last_seen: Timestamp,
    /// Confidence from 0 (none) to 1 (certain).
    pub score: f64,
    /// How it was found.
    pub method: DetectionMethod,
    /// Distinct known bots seen talking to the server (a count, never addresses).
    pub bot_clients: u64,
    /// Flows that supported the verdict.
    pub flows: u64,
    /// Malware family, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Name of the flow analyser (normally one per ISP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
}

impl CncCandidate {
    pub(crate) fn natural_key(&self) -> String {
        format!(
            "cnc|{}|{}|{}|{}|{}",
            self.ip,
            self.port,
            self.transport.as_str(),
            self.first_seen.to_rfc3339(),
            self.sensor.as_deref().unwrap_or("")
        )
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.score) {
            return Err("score must be between 0 and 1".into());
        }
        if self.first_seen > self.last_seen {
            return Err("first_seen must not be after last_seen".into());
        }
        if self.port == 0 && self.transport != Transport::Icmp {
            return Err("port must be 1-65535".into());
        }
        Ok(())
    }
}

/// How a C&C candidate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionMethod {
    /// Graph mining from known bots.
    Graph,
    /// The learned flow model.
    Model,
    /// Both agreed.
    GraphAndModel,
    /// An outside feed named it.
    Feed,
}
