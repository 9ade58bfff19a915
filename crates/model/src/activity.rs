use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Timestamp;

/// What one source address sent to the darknet during one window (an hour or a UTC day).
///
/// The telescope writes one record per source per window; a researcher can load a day of them
/// straight into a data frame, and the centre turns the `infected` ones into the daily list each
/// ISP is notified of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceActivity {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Start of the window (inclusive).
    pub window_start: Timestamp,
    /// End of the window (exclusive).
    pub window_end: Timestamp,
    /// The sending address.
    pub src: IpAddr,
    /// What the telescope concluded about the source.
    pub classification: ActivityClass,
    /// Names of the signatures and behaviours the source matched, sorted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Packets seen from the source in the window.
    pub packets: u64,
    /// IP bytes (header included) of those packets.
    #[serde(default)]
    pub bytes: u64,
    /// Of those, packets carrying the Mirai fingerprint (TCP sequence number = destination address).
    #[serde(default)]
    pub mirai_packets: u64,
    /// Distinct darknet addresses the source reached (exact up to 8, then a HyperLogLog estimate).
    pub distinct_destinations: u64,
    /// The ports involved, most packets first: the destination port of probes, and for replies
    /// (backscatter) the victim's own port the reply came from, which is the attacked service.
    #[serde(default)]
    pub top_ports: Vec<PortCount>,
    /// Why the source got its classification: each matched signature or behaviour with its count.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// First packet in the window.
    pub first_seen: Timestamp,
    /// Last packet in the window.
    pub last_seen: Timestamp,
    /// Handle of the ISP holding the address, when attribution data is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isp: Option<crate::IspHandles>,
    /// Name of the telescope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
}

impl SourceActivity {
    pub(crate) fn natural_key(&self) -> String {
        format!(
            "activity|{}|{}|{}|{}",
            self.src,
            self.window_start.to_rfc3339(),
            self.window_end.to_rfc3339(),
            self.sensor.as_deref().unwrap_or("")
        )
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.window_end <= self.window_start {
            return Err("window_end must be after window_start".into());
        }
        if self.first_seen > self.last_seen {
            return Err("first_seen must not be after last_seen".into());
        }
        if self.first_seen < self.window_start || self.last_seen >= self.window_end {
            return Err("first_seen and last_seen must lie inside the window".into());
        }
        if self.mirai_packets > self.packets {
            return Err("mirai_packets cannot exceed packets".into());
        }
        if self.packets == 0 {
            return Err("packets must be at least 1".into());
        }
        if let Some(e) = self.evidence.iter().find(|e| e.packets > self.packets) {
            return Err(format!("evidence {:?} counts more packets than the source sent", e.rule));
        }
        Ok(())
    }
}

/// The telescope's verdict on a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityClass {
    /// Scans with a botnet's fingerprint, or IoT-port scanning behaviour: an infected host.
    Infected,
    /// A known research or commercial scanner.
    ResearchScanner,
    /// Replies to spoofed traffic: a victim of a DDoS attack.
    Backscatter,
    /// Anything else.
    Unknown,
}

impl ActivityClass {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityClass::Infected => "infected",
            ActivityClass::ResearchScanner => "research_scanner",
            ActivityClass::Backscatter => "backscatter",
            ActivityClass::Unknown => "unknown",
        }
    }
}

/// One reason behind a classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Id of the signature or behaviour rule (as in `data/signatures/`).
    pub rule: String,
    /// Packets that matched it (for a behaviour rule: the packets it looked at).
    pub packets: u64,
    /// What the rule saw, in words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Packets to one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortCount {
    /// The port (0 for ICMP).
    pub port: u16,
    /// Transport protocol.
    pub transport: Transport,
    /// Packets counted for it.
    pub packets: u64,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP or ICMPv6.
    Icmp,
}

impl Transport {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
        }
    }
}
