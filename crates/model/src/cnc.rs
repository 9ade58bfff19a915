use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Timestamp, Transport};

/// A likely botnet command-and-control server found by an ISP's flow analyser in one window.
///
/// It carries counts of the clients seen talking to the server, never their addresses: the
/// analyser runs inside the ISP and this record is what leaves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CncCandidate {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Start of the analysis window (inclusive).
    pub window_start: Timestamp,
    /// End of the analysis window (exclusive).
    pub window_end: Timestamp,
    /// The server's address.
    pub ip: IpAddr,
    /// The server's port.
    pub port: u16,
    /// Transport protocol.
    pub protocol: Transport,
    /// Combined confidence from 0 (none) to 1 (certain).
    pub score: f64,
    /// Position among the window's candidates, 1 = highest score.
    pub rank: u32,
    /// The detectors that flagged it on their own.
    pub methods: Vec<DetectionMethod>,
    /// Distinct known bots (seeds) seen talking to the server (a count, never addresses).
    pub seed_clients: u64,
    /// Distinct clients of any kind (exact up to a few hundred, then estimated).
    pub total_clients: u64,
    /// Ids of the seed records (the centre's telescope activity or survey finding records given
    /// as `--seeds`) whose hosts were clients: the centre links bots to the server by them. They
    /// name records the centre already holds, never an address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seed_refs: Vec<Uuid>,
    /// Contacts (client-to-server flows) in the window.
    pub flows: u64,
    /// First flow of the server in the window.
    pub first_seen: Timestamp,
    /// Last flow of the server in the window.
    pub last_seen: Timestamp,
    /// Median seconds between a client's contacts, when they recur regularly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodicity: Option<f64>,
    /// Why, in words: the features that weighed most (no addresses).
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Malware family, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Name of the flow analyser (normally one per ISP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
    /// Set on a revision: the window was scored again, for flows that arrived late or because
    /// the window after it showed its bots coming back, when flows had reached this time (the
    /// end of the latest window closed). Of two reports with one id, the later revision stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revised_at: Option<Timestamp>,
}

impl CncCandidate {
    /// Orders the reports of one id: the later revision, and of two made at once the one with
    /// more flows (a first report counts as made at its window's end). The store keeps the
    /// greatest.
    pub fn revision_order(&self) -> (Timestamp, u64) {
        (self.revised_at.unwrap_or(self.window_end), self.flows)
    }

    pub(crate) fn natural_key(&self) -> String {
        format!(
            "cnc|{}|{}|{}|{}|{}|{}",
            self.ip,
            self.port,
            self.protocol.as_str(),
            self.window_start.to_rfc3339(),
            self.window_end.to_rfc3339(),
            self.sensor.as_deref().unwrap_or("")
        )
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.score) {
            return Err("score must be between 0 and 1".into());
        }
        if self.window_end <= self.window_start {
            return Err("window_end must be after window_start".into());
        }
        if self.first_seen > self.last_seen {
            return Err("first_seen must not be after last_seen".into());
        }
        if self.port == 0 && self.protocol != Transport::Icmp {
            return Err("port must be 1-65535".into());
        }
        if self.seed_clients > self.total_clients {
            return Err("seed_clients cannot exceed total_clients".into());
        }
        if self.periodicity.is_some_and(|p| !(p.is_finite() && p >= 0.0)) {
            return Err("periodicity must be a non-negative number of seconds".into());
        }
        if self.revised_at.is_some_and(|at| at < self.window_end) {
            return Err("revised_at cannot be before window_end".into());
        }
        Ok(())
    }
}

/// How a C&C candidate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionMethod {
    /// Graph mining: the server's clients are mostly known or inferred bots.
    Graph,
    /// The learned model over the server's behaviour.
    Model,
    /// An outside feed named it.
    Feed,
}
