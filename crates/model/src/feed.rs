use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Timestamp, Transport};

/// One address an outside feed (ThreatFox, Feodo Tracker, a partner's STIX bundle, a plain list)
/// names, kept apart by source so the centre can say which of its findings came first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedEntry {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The feed, e.g. `threatfox`, `feodo`, or the name given at import.
    pub source: String,
    /// What the feed says the address is.
    pub role: FeedRole,
    /// The address.
    pub ip: IpAddr,
    /// The port, when the feed gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Malware family, when the feed gives one (lower case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// When the feed first listed it.
    pub first_seen: Timestamp,
    /// When the feed last saw it, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// The feed's own id or link for the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl FeedEntry {
    pub(crate) fn natural_key(&self) -> String {
        let port = self.port.map(|p| p.to_string()).unwrap_or_default();
        format!("feed_entry|{}|{}|{}|{}", self.source, self.role.as_str(), self.ip, port)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.source.trim().is_empty() {
            return Err("source must not be empty".into());
        }
        if self.port == Some(0) {
            return Err("port must be 1-65535".into());
        }
        if self.last_seen.is_some_and(|last| last < self.first_seen) {
            return Err("last_seen must not be before first_seen".into());
        }
        Ok(())
    }

    /// The endpoint, when the entry names a port (feeds list TCP C&C servers).
    pub fn endpoint(&self) -> Option<(IpAddr, u16, Transport)> {
        self.port.map(|port| (self.ip, port, Transport::Tcp))
    }
}

/// What a feed says an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedRole {
    /// A command-and-control server.
    Cnc,
    /// An infected host.
    Bot,
    /// A server handing out malware.
    Download,
}

impl FeedRole {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedRole::Cnc => "cnc",
            FeedRole::Bot => "bot",
            FeedRole::Download => "download",
        }
    }
}
