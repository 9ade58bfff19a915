//! What botscope may connect to, and the one function that connects.
//!
//! A [`Scope`] is the operator's authorised ranges minus the built-in blocklist of special-purpose
//! ranges ([`BUILTIN_BLOCKLIST`], [`BUILTIN_BLOCKLIST_V6`]) minus the operator's exclusions and
//! opt-outs; in lab mode, loopback only. [`connect`] opens a TCP connection only to an address the
//! scope allows, and refuses anything else with a typed error before any packet leaves. The
//! survey's port probes and conversations, the re-survey and C&C liveness all connect through it;
//! `clippy.toml` at the workspace root forbids the direct ways (`disallowed-methods`).
//!
//! This crate is small on purpose: the centre uses it for liveness without depending on the
//! survey.
//!
//! Boundaries: the only crate that opens an outbound TCP connection (`clippy.toml` disallows the
//! other ways everywhere); it knows no protocol and no record.
#![deny(missing_docs)]

mod blocklist;
mod connect;
mod scope;
mod set;

pub use blocklist::{BUILTIN_BLOCKLIST, BUILTIN_BLOCKLIST_V6, LAB_RANGE, LAB_RANGE_V6, blocklisted_v4, blocklisted_v6};
pub use connect::{ConnectError, connect};
pub use scope::{Exclusion, OutOfScope, Refusal, Scope, parse_net, parse_range, read_net_file, read_range_file};

/// Why a range given on the command line or in a scope file is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// An IPv6 range where only IPv4 can be enumerated (the survey).
    #[error("{0}: IPv6 ranges cannot be surveyed by enumeration; only IPv4 scopes are supported")]
    Ipv6NotEnumerable(String),
    /// Not an address or CIDR.
    #[error("{text}: {why} (expected {example})")]
    Malformed {
        /// What was given.
        text: String,
        /// What is wrong with it.
        why: String,
        /// What a good one looks like.
        example: &'static str,
    },
    /// Bits set below the prefix length: probably a typo for the network.
    #[error("{text}: host bits set (did you mean {network}?)")]
    HostBits {
        /// What was given.
        text: String,
        /// The network it lies in.
        network: String,
    },
}
pub use set::{Interval, IntervalSet};

/// Why a scope could not be built or a range file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    /// No range was given.
    #[error("no scope: give the ranges you are authorised to survey with --scope CIDR or --scope-file FILE")]
    NoScope,
    /// Lab mode was asked to touch something outside loopback.
    #[error("--lab allows loopback (127.0.0.0/8, ::1) targets only, and {0} is not inside it")]
    LabOutsideLoopback(String),
    /// A file could not be read.
    #[error("cannot read {name}: {source}")]
    Read {
        /// The file.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file or argument is malformed.
    #[error("{name}: {reason}")]
    Invalid {
        /// Where.
        name: String,
        /// What is wrong.
        reason: String,
    },
}
