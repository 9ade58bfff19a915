//! Who a centre token speaks for: the roles every layer (store, centre, web) agrees on.

use std::fmt;
use std::str::FromStr;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Post records (telescopes, flow analysers, survey workers).
    Sensor,
    /// A survey worker: posts records and fetches the cases to re-survey (which name vulnerable
    /// subscribers of every ISP, so a flow analyser's sensor token may not).
    Surveyor,
    /// Read its own ISP's notifications and report outcomes.
    Isp,
    /// Everything.
    Admin,
}

impl Role {
    /// Whether tokens of this role post records (and so hold sensor names).
    pub fn writes_records(self) -> bool {
        matches!(self, Role::Sensor | Role::Surveyor)
    }

    /// The name used on the command line and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sensor => "sensor",
            Role::Surveyor => "surveyor",
            Role::Isp => "isp",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "sensor" => Ok(Role::Sensor),
            "surveyor" => Ok(Role::Surveyor),
            "isp" => Ok(Role::Isp),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?} (expected sensor, surveyor, isp or admin)")),
        }
    }
}
