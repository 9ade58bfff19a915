//! What a survey run hands to its caller, in order per host: records, the audit trail of login
//! attempts (never a password), and the checkpoints. The engine and the login modules both write
//! to it, so it sits beneath both.

use std::net::Ipv4Addr;

use botscope_model::{Record, Service, Timestamp};
use serde::Serialize;

use crate::targets::Target;

/// How one login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attempt {
    /// The pair logged in (confirmed).
    Success,
    /// The device rejected the pair.
    Failure,
    /// The attempt could not be completed (timeout, reset, protocol error).
    Error,
    /// The device let the pair in (no failure text, no new login prompt) but the shell never
    /// proved itself (no echo of the marker: a vendor CLI, or a connection lost after the
    /// password). Kept as evidence, never a finding.
    Unconfirmed,
}

impl Attempt {
    /// The name used in the audit trail and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::Success => "success",
            Attempt::Failure => "failure",
            Attempt::Error => "error",
            Attempt::Unconfirmed => "unconfirmed",
        }
    }
}

/// One line of the audit trail: every login attempt, never a password.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// When the attempt ended.
    pub time: Timestamp,
    /// Target address.
    pub ip: std::net::IpAddr,
    /// Target port.
    pub port: u16,
    /// Protocol.
    pub protocol: Service,
    /// Dictionary id of the pair tried.
    pub credential_id: u32,
    /// How it ended.
    pub outcome: Attempt,
    /// This attempt repeats, on a fresh connection, one that ended in `error` or `unconfirmed`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retry: bool,
}

/// What the run hands to its caller, in order per host.
#[derive(Debug)]
pub enum Output {
    /// A service or finding record.
    Record(Box<Record>),
    /// A login attempt for the audit trail.
    Audit(AuditEntry),
    /// The port stage is complete and found these open pairs (for a checkpoint).
    PortStageDone(Vec<Target>),
    /// Every record of this host has been handed over (for a checkpoint).
    HostDone(Ipv4Addr),
}
