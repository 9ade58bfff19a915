//! The records every part of botscope exchanges.
//!
//! Sensors (survey, telescope, flow analyser) and the centre meet here: each writes and reads the
//! typed records below, one JSON object per line, tagged by `kind`. The types own their format, so
//! `docs/formats.md` and this crate must say the same thing; the tests beside each type hold an
//! example line that the documentation repeats.
//!
//! This crate does no I/O.
//!
//! Boundaries: no I/O of any kind (no files, network or store) and no botscope dependency;
//! every other crate builds on it.
#![deny(missing_docs)]

mod activity;
mod botnet;
mod cnc;
pub mod csv;
mod darknet;
mod device;
mod feed;
mod finding;
mod id;
mod isp;
mod liveness;
mod notification;
mod outcome;
mod record;
mod role;
mod routing;
mod service;
mod sink;
mod taxii;
mod time;

pub use activity::{ActivityClass, Evidence, PortCount, SourceActivity, Transport};
pub use botnet::{Botnet, BotnetEvent, BotnetStatus, BotnetWindow, CncEndpoint, Lifecycle};
pub use cnc::{CncCandidate, DetectionMethod};
pub use darknet::{CategoryCount, CountryDay, DarknetDay, IspDay};
pub use device::{Device, DeviceType};
pub use feed::{FeedEntry, FeedRole};
pub use finding::{Finding, FindingIssue, Service};
pub use id::record_id;
pub use isp::{Isp, IspHandles, Language, NotifyFormat, NotifyPreferences, is_valid_handle, is_valid_sensor_name};
pub use liveness::Liveness;
pub use notification::{Notification, NotificationReason, NotificationStatus};
pub use outcome::{Outcome, OutcomeSource};
pub use record::{
    FORMAT_VERSION, Kind, LineError, Payload, Record, RecordError, parse_line, parse_line_noting, payloads,
};
pub use role::Role;
pub use routing::{Origin, OriginParseError, RoutedPrefix};
pub use service::{AuthKind, GrabStatus, ServiceObservation};
pub use sink::RecordSink;
pub use taxii::TaxiiObject;
pub use time::Timestamp;
