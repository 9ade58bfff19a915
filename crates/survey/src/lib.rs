//! The survey: NOTICE rebuilt. Given the ranges an operator is authorised to survey, find devices
//! that accept default or weak ID/password pairs over telnet, ssh, http and https, devices usable
//! with no authentication and management ports that should not face the internet, and say which
//! vendor and model each is.
//!
//! The pieces, in the order a run uses them: [`scope`] (what may be touched), [`targets`] (in what
//! order), [`pace`] (how fast), [`modules`] (how each protocol is spoken, over [`conn`]'s bounded
//! conversations; [`tls`] and [`x509`] for https and its certificate's names), [`login`] (the
//! dictionary, budget and audit trail), [`fingerprint`] and [`catalog`] (what the device is),
//! [`engine`] (a whole run) and [`output`] (what a run hands out, in order per host). [`session`]
//! drives a run for a program: records to any `RecordSink` in batches, the audit trail, the
//! [`checkpoint`] that lets a killed run resume, and a [`recheck`]'s verdicts on notified cases.
//!
//! Boundaries: it connects only through `botscope_scope::connect`; it hands records to the
//! caller's `RecordSink` and never opens a store or a centre connection itself
//! (`botscope_deliver` does); a working password never leaves the dictionary (records and audit
//! name its id).
#![deny(missing_docs)]

pub mod catalog;
pub mod checkpoint;
pub mod conn;
pub mod dictionary;
pub mod engine;
pub mod fingerprint;
pub mod login;
pub mod modules;
pub mod output;
pub mod pace;
pub mod recheck;
pub mod session;
pub mod targets;

/// What the survey may touch: the operator's authorised ranges, minus a built-in blocklist of
/// special-purpose ranges, minus the operator's exclusions and opt-outs, and the one scope-checked
/// connect. It lives in `botscope-scope` (the centre's liveness probes use it too); this is the
/// same module under the survey's name.
pub mod scope {
    pub use botscope_scope::*;
}
pub mod tls;
pub mod x509;

/// Why a survey could not start or a catalogue could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    /// The scope could not be built.
    #[error(transparent)]
    Scope(#[from] botscope_scope::ScopeError),
    /// Lab mode was asked to touch something outside loopback.
    #[error("--lab allows loopback (127.0.0.0/8) targets only, and {0} is not inside it")]
    LabOutsideLoopback(String),
    /// After exclusions nothing is left.
    #[error("nothing to survey: every address in scope is excluded (see --dry-run for what was removed)")]
    NothingToSurvey,
    /// A named port set does not exist.
    #[error("no port set {name:?} (known sets: {known})")]
    UnknownPortSet {
        /// The name given.
        name: String,
        /// The sets the catalogue has.
        known: String,
    },
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
