use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Device, Service, Timestamp};

/// One responsive service the survey talked to, whether or not anything was wrong with it: the
/// survey's ZGrab2-like envelope (address, port, protocol, how the grab went, what it showed).
///
/// Together with findings this is the coverage researchers ask for ("how many telnet services did
/// the round see?"), and it lets an identification be checked against the banner behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceObservation {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// When the service was probed.
    pub observed_at: Timestamp,
    /// The device's address.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
    /// Protocol the survey spoke (from the port catalogue, confirmed by the banner).
    pub protocol: Service,
    /// How the conversation went.
    pub status: GrabStatus,
    /// What the service printed before any login (telnet text up to the prompt, SSH version line,
    /// HTTP status line and chosen headers), lossily decoded and cut to 1 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// How the service asks for credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthKind>,
    /// What the device is, when identification could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// Survey round, e.g. `2026-11`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<String>,
    /// Name of the survey worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<String>,
}

impl ServiceObservation {
    pub(crate) fn natural_key(&self) -> String {
        let key =
            format!("service|{}|{}|{}|{}", self.ip, self.port, self.protocol.as_str(), self.observed_at.to_rfc3339());
        // As for findings: the sensor keeps senders' records apart.
        match &self.sensor {
            Some(sensor) => format!("{key}|{sensor}"),
            None => key,
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.port == 0 {
            return Err("port must be 1-65535".into());
        }
        Ok(())
    }
}

/// How a grab ended, after ZGrab2's status values (in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrabStatus {
    /// The protocol conversation completed.
    Success,
    /// The peer closed the connection before the conversation completed.
    ConnectionClosed,
    /// The peer stopped answering in time (tarpits end here).
    IoTimeout,
    /// The peer answered, but not in the protocol expected.
    ProtocolError,
    /// A TLS or SSH handshake failed.
    HandshakeError,
}

impl GrabStatus {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            GrabStatus::Success => "success",
            GrabStatus::ConnectionClosed => "connection_closed",
            GrabStatus::IoTimeout => "io_timeout",
            GrabStatus::ProtocolError => "protocol_error",
            GrabStatus::HandshakeError => "handshake_error",
        }
    }
}

/// How a service asks for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// It asks for nothing: the shell or admin page is open.
    None,
    /// A login and password prompt (telnet) or SSH password authentication.
    Password,
    /// HTTP Basic authentication.
    Basic,
    /// HTTP Digest authentication.
    Digest,
    /// An HTML login form (not tried: form logins differ per model).
    Form,
    /// SSH that offers no password authentication (keys only).
    PublicKeyOnly,
}
