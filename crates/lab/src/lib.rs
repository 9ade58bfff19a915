//! The lab: a miniature internet on loopback for the demo, tests and benchmarks.
//!
//! [`fleet`] decides, from one seed, which emulated devices exist (model, firmware, credentials,
//! manners) and the truth about each; [`serve`] runs them: one listener per device and service on
//! the device's own loopback address, so ports a device does not offer are closed as on a real
//! device. Nothing here can reach beyond loopback: fleets outside 127.0.0.0/8 are refused.
//!
//! Boundaries: loopback only (a fleet outside 127.0.0.0/8 is refused); it uses the survey's public
//! catalogue (`botscope_survey::catalog`) and the shared wire framing (`botscope_net::wire`), never
//! the survey's internals; for the demo, tests and benchmarks, never for production.
#![deny(missing_docs)]

pub mod darknet;
pub mod devices;
pub mod fleet;
pub mod flows;
pub mod serve;

/// Why the lab could not start.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The subnet is not inside loopback.
    #[error("{0} is outside loopback: the lab runs on 127.0.0.0/8 only")]
    NotLoopback(String),
    /// A bad argument.
    #[error("{0}")]
    Invalid(String),
    /// A listener could not be set up.
    #[error("cannot listen on port {port}: {source}{hint}")]
    Listen {
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    /// Key or certificate generation failed.
    #[error("cannot create lab keys: {0}")]
    Keys(String),
}
