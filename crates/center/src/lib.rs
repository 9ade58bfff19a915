//! The integrated analysis centre: what turns the sensors' records into botnets, alerts and
//! measured remediation.
//!
//! * [`admit`]: what a sender's token may write (names, ids, verdicts).
//! * [`correlate`]: bots and C&C reports (from any ISP) and feeds into botnets per window, each
//!   with a serial number that follows its membership across C&C moves.
//! * [`feeds`]: outside C&C and bot lists (ThreatFox, Feodo Tracker, STIX, plain) as records.
//! * [`liveness`]: probes C&C servers and records when they come and go.
//! * [`notify`]: per-ISP reports in the Shadowserver style, deduplicated, by file, API or e-mail.
//! * [`remediation`]: whether notifications led to fixes.
//! * [`rollup`]: daily counts for the dashboard, kept up to date as records arrive.
//! * [`tokens`]: the API's tokens and roles.
//!
//! Boundaries: it works over the `Store` trait; it connects out only to probe C&C liveness (through
//! `botscope_scope::connect`) and to the SMTP relay the operator names for notifications.
#![deny(missing_docs)]

pub mod admit;
pub mod correlate;
mod error;
pub mod feeds;
pub mod liveness;
pub mod notify;
pub mod remediation;
pub mod retention;
pub mod rollup;
pub mod tokens;

pub use error::CenterError;
