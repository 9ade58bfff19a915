use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    Botnet, BotnetWindow, CncCandidate, DarknetDay, FeedEntry, Finding, Isp, Liveness, Notification, Outcome,
    ServiceObservation, SourceActivity, TaxiiObject, Timestamp,
};

/// Any record, tagged by its `kind` field when written as a JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A survey finding.
    Finding(Finding),
    /// A telescope source-activity summary.
    Activity(SourceActivity),
    /// A C&C candidate from a flow analyser.
    Cnc(CncCandidate),
    /// A botnet tracked by the centre.
    Botnet(Botnet),
    /// A per-ISP notification.
    Notification(Notification),
    /// A participating ISP.
    Isp(Isp),
    /// A responsive service the survey talked to.
    Service(ServiceObservation),
    /// One day of a telescope's darknet statistics.
    DarknetDay(DarknetDay),
    /// A botnet in one correlation window.
    BotnetWindow(BotnetWindow),
    /// An address an outside feed names.
    FeedEntry(FeedEntry),
    /// A C&C server's liveness change.
    Liveness(Liveness),
    /// A notification's status change.
    Outcome(Outcome),
    /// A STIX object in a TAXII collection.
    TaxiiObject(TaxiiObject),
}

/// The kinds of record, as named in the `kind` field and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `finding`
    Finding,
    /// `activity`
    Activity,
    /// `cnc`
    Cnc,
    /// `botnet`
    Botnet,
    /// `notification`
    Notification,
    /// `isp`
    Isp,
    /// `service`
    Service,
    /// `darknet_day`
    DarknetDay,
    /// `botnet_window`
    BotnetWindow,
    /// `feed_entry`
    FeedEntry,
    /// `liveness`
    Liveness,
    /// `outcome`
    Outcome,
    /// `taxii_object`
    TaxiiObject,
}

impl Kind {
    /// Every kind, in documentation order.
    pub const ALL: [Kind; 13] = [
        Kind::Finding,
        Kind::Activity,
        Kind::Cnc,
        Kind::Botnet,
        Kind::Notification,
        Kind::Isp,
        Kind::Service,
        Kind::DarknetDay,
        Kind::BotnetWindow,
        Kind::FeedEntry,
        Kind::Liveness,
        Kind::Outcome,
        Kind::TaxiiObject,
    ];

    /// The name used in the `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Finding => "finding",
            Kind::Activity => "activity",
            Kind::Cnc => "cnc",
            Kind::Botnet => "botnet",
            Kind::Notification => "notification",
            Kind::Isp => "isp",
            Kind::Service => "service",
            Kind::DarknetDay => "darknet_day",
            Kind::BotnetWindow => "botnet_window",
            Kind::FeedEntry => "feed_entry",
            Kind::Liveness => "liveness",
            Kind::Outcome => "outcome",
            Kind::TaxiiObject => "taxii_object",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| {
            let names: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown record kind {:?} (expected one of: {})", name, names.join(", "))
        })
    }
}

/// A record that parsed but breaks a rule of its format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} record: {reason}")]
pub struct RecordError {
    /// Kind of the record.
    pub kind: Kind,
    /// Which rule it broke.
    pub reason: String,
}

/// Why one line could not be read as a record.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// Not JSON, or JSON of the wrong shape (unknown or missing field, bad value).
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// The line has no `kind` field and no kind was given.
    #[error("no \"kind\" field (add one, or pass the kind of the whole file with --kind)")]
    MissingKind,
    /// The `kind` field names no known kind.
    #[error("{0}")]
    UnknownKind(String),
    /// The line's kind differs from the kind the caller insisted on.
    #[error("record is kind {found} but {expected} was required")]
    KindMismatch {
        /// Kind in the line.
        found: Kind,
        /// Kind required.
        expected: Kind,
    },
    /// Parsed, but breaks a rule of its format.
    #[error(transparent)]
    Invalid(#[from] RecordError),
    /// The `format` field is 0 (formats count from 1).
    #[error("\"format\" is 0; record formats are numbered from 1")]
    FormatZero,
    /// A record of a newer format than this build's that this build cannot read even when it
    /// ignores the fields it does not know (a new kind, a new value of a known field).
    #[error(
        "{source} (the record is format {format}, newer than this build's {FORMAT_VERSION}: upgrade botscope to read it)"
    )]
    Newer {
        /// The record's format.
        format: u64,
        /// What failed.
        source: Box<LineError>,
    },
}

#[derive(Deserialize)]
struct KindProbe<'a> {
    #[serde(borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    format: Option<u64>,
}

/// The record format this build reads in full and writes (docs/formats.md, "Format versions").
/// Records of this format omit the `format` field; a newer sensor marks its records with its own
/// number, and this build then ignores the fields it does not know instead of refusing them.
pub const FORMAT_VERSION: u64 = 1;

/// Fields of a newer format one record may have ignored: each costs one more read of the record,
/// so a hostile line cannot make reading it cost much more than a few ordinary ones.
const MAX_IGNORED_FIELDS: usize = 16;

/// Reads one JSON line as a record, checks it and gives it its stable id.
///
/// `required` is the kind the caller expects: lines without a `kind` field are read as that
/// kind, lines with a different one are rejected. Returns `Ok(None)` for a blank line. A record
/// of a newer format (its `format` above [`FORMAT_VERSION`]) has the fields this build does not
/// know ignored; [`parse_line_noting`] says which.
pub fn parse_line(line: &[u8], required: Option<Kind>) -> Result<Option<Record>, LineError> {
    parse_line_noting(line, required, &mut Vec::new())
}

/// [`parse_line`], adding to `ignored` the path of each field of a newer format's record that
/// this build does not know and left out (`device.antenna`, `top_ports[0].service`).
pub fn parse_line_noting(
    line: &[u8],
    required: Option<Kind>,
    ignored: &mut Vec<String>,
) -> Result<Option<Record>, LineError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let probe: KindProbe = serde_json::from_slice(line)?;
    let kind = match (&probe.kind, required) {
        (Some(name), required) => {
            let found = name.parse::<Kind>().map_err(LineError::UnknownKind);
            let found = match (found, probe.format) {
                (Ok(found), _) => found,
                (Err(error), Some(format)) if format > FORMAT_VERSION => {
                    return Err(LineError::Newer { format, source: Box::new(error) });
                }
                (Err(error), _) => return Err(error),
            };
            if let Some(expected) = required.filter(|expected| *expected != found) {
                return Err(LineError::KindMismatch { found, expected });
            }
            found
        }
        (None, Some(kind)) => kind,
        (None, None) => return Err(LineError::MissingKind),
    };
    let mut record = match probe.format {
        // Today's format, the common case: read straight from the bytes.
        None => match probe.kind {
            Some(_) => serde_json::from_slice::<Record>(line)?,
            None => {
                let mut from = serde_json::Deserializer::from_slice(line);
                let record = record_of_kind(kind, &mut from)?;
                from.end()?;
                record
            }
        },
        Some(0) => return Err(LineError::FormatZero),
        Some(format) => {
            let mut value: serde_json::Value = serde_json::from_slice(line)?;
            if let Some(object) = value.as_object_mut() {
                object.remove("kind");
                object.remove("format");
            }
            if format <= FORMAT_VERSION {
                record_of_kind(kind, value)?
            } else {
                let newer = |source: LineError| LineError::Newer { format, source: Box::new(source) };
                let record = record_ignoring_unknown(kind, value, ignored).map_err(|e| newer(e.into()))?;
                record.validate().map_err(|e| newer(e.into()))?;
                record
            }
        }
    };
    record.validate()?;
    record.ensure_id();
    Ok(Some(record))
}

/// A record of a known kind from a JSON object without its `kind` field.
fn record_of_kind<'de, D: serde::Deserializer<'de>>(kind: Kind, from: D) -> Result<Record, D::Error> {
    Ok(match kind {
        Kind::Finding => Record::Finding(Deserialize::deserialize(from)?),
        Kind::Activity => Record::Activity(Deserialize::deserialize(from)?),
        Kind::Cnc => Record::Cnc(Deserialize::deserialize(from)?),
        Kind::Botnet => Record::Botnet(Deserialize::deserialize(from)?),
        Kind::Notification => Record::Notification(Deserialize::deserialize(from)?),
        Kind::Isp => Record::Isp(Deserialize::deserialize(from)?),
        Kind::Service => Record::Service(Deserialize::deserialize(from)?),
        Kind::DarknetDay => Record::DarknetDay(Deserialize::deserialize(from)?),
        Kind::BotnetWindow => Record::BotnetWindow(Deserialize::deserialize(from)?),
        Kind::FeedEntry => Record::FeedEntry(Deserialize::deserialize(from)?),
        Kind::Liveness => Record::Liveness(Deserialize::deserialize(from)?),
        Kind::Outcome => Record::Outcome(Deserialize::deserialize(from)?),
        Kind::TaxiiObject => Record::TaxiiObject(Deserialize::deserialize(from)?),
    })
}

/// Reads `value` as a record of `kind`, taking out each field the reader calls unknown (where it
/// stands: a nested object's field, an element of a list) and trying again, up to
/// [`MAX_IGNORED_FIELDS`]. Any other error ends it.
fn record_ignoring_unknown(
    kind: Kind,
    mut value: serde_json::Value,
    ignored: &mut Vec<String>,
) -> Result<Record, serde_json::Error> {
    let before = ignored.len();
    loop {
        let mut track = serde_path_to_error::Track::new();
        let error = match record_of_kind(kind, serde_path_to_error::Deserializer::new(&value, &mut track)) {
            Ok(record) => return Ok(record),
            Err(error) => error,
        };
        let path = track.path();
        let Some(field) = unknown_field_name(&error) else { return Err(error) };
        if ignored.len() - before >= MAX_IGNORED_FIELDS || !remove_field(&mut value, &path, &field) {
            ignored.truncate(before);
            return Err(error);
        }
        let at = path.to_string();
        let names_field =
            matches!(path.iter().next_back(), Some(serde_path_to_error::Segment::Map { key }) if *key == field);
        ignored.push(match at.as_str() {
            _ if names_field => at,
            "." => field,
            _ => format!("{at}.{field}"),
        });
    }
}

/// The field an "unknown field" error names (serde's wording: unknown field `name`, expected ...).
fn unknown_field_name(error: &serde_json::Error) -> Option<String> {
    let message = error.to_string();
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Removes `field` from the object at `path` in `value` (the path may end with the field itself,
/// as it does when the field's name was the error); false when there is none to remove.
fn remove_field(value: &mut serde_json::Value, path: &serde_path_to_error::Path, field: &str) -> bool {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let parent = match segments.split_last() {
        Some((Segment::Map { key }, parent)) if key == field => parent,
        _ => &segments[..],
    };
    let mut at = value;
    for segment in parent {
        let next = match segment {
            Segment::Seq { index } => at.get_mut(*index),
            Segment::Map { key } => at.get_mut(key.as_str()),
            Segment::Enum { variant } => at.get_mut(variant.as_str()),
            Segment::Unknown => None,
        };
        match next {
            Some(next) => at = next,
            None => return false,
        }
    }
    at.as_object_mut().is_some_and(|object| object.remove(field).is_some())
}

impl Record {
    /// The record's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Record::Finding(_) => Kind::Finding,
            Record::Activity(_) => Kind::Activity,
            Record::Cnc(_) => Kind::Cnc,
            Record::Botnet(_) => Kind::Botnet,
            Record::Notification(_) => Kind::Notification,
            Record::Isp(_) => Kind::Isp,
            Record::DarknetDay(_) => Kind::DarknetDay,
            Record::Service(_) => Kind::Service,
            Record::BotnetWindow(_) => Kind::BotnetWindow,
            Record::FeedEntry(_) => Kind::FeedEntry,
            Record::Liveness(_) => Kind::Liveness,
            Record::Outcome(_) => Kind::Outcome,
            Record::TaxiiObject(_) => Kind::TaxiiObject,
        }
    }

    /// Checks the rules of the record's format that its types alone cannot express.
    pub fn validate(&self) -> Result<(), RecordError> {
        let checked = match self {
            Record::Finding(r) => r.check(),
            Record::Activity(r) => r.check(),
            Record::Cnc(r) => r.check(),
            Record::Botnet(r) => r.check(),
            Record::Notification(r) => r.check(),
            Record::DarknetDay(r) => r.check(),
            Record::Isp(r) => r.check(),
            Record::Service(r) => r.check(),
            Record::BotnetWindow(r) => r.check(),
            Record::FeedEntry(r) => r.check(),
            Record::Liveness(r) => r.check(),
            Record::Outcome(r) => r.check(),
            Record::TaxiiObject(r) => r.check(),
        };
        checked.map_err(|reason| RecordError { kind: self.kind(), reason })
    }

    fn id_slot(&mut self) -> &mut Option<Uuid> {
        match self {
            Record::Finding(r) => &mut r.id,
            Record::Activity(r) => &mut r.id,
            Record::Cnc(r) => &mut r.id,
            Record::Botnet(r) => &mut r.id,
            Record::DarknetDay(r) => &mut r.id,
            Record::Notification(r) => &mut r.id,
            Record::Isp(r) => &mut r.id,
            Record::Service(r) => &mut r.id,
            Record::BotnetWindow(r) => &mut r.id,
            Record::FeedEntry(r) => &mut r.id,
            Record::Liveness(r) => &mut r.id,
            Record::Outcome(r) => &mut r.id,
            Record::TaxiiObject(r) => &mut r.id,
        }
    }

    /// The id derived from the record's natural key (what [`Record::ensure_id`] assigns).
    pub fn derived_id(&self) -> Uuid {
        let key = match self {
            Record::Finding(r) => r.natural_key(),
            Record::Activity(r) => r.natural_key(),
            Record::Cnc(r) => r.natural_key(),
            Record::DarknetDay(r) => r.natural_key(),
            Record::Botnet(r) => r.natural_key(),
            Record::Notification(r) => r.natural_key(),
            Record::Isp(r) => r.natural_key(),
            Record::Service(r) => r.natural_key(),
            Record::BotnetWindow(r) => r.natural_key(),
            Record::FeedEntry(r) => r.natural_key(),
            Record::Liveness(r) => r.natural_key(),
            Record::Outcome(r) => r.natural_key(),
            Record::TaxiiObject(r) => r.natural_key(),
        };
        crate::record_id(&key)
    }

    /// Gives the record its stable id if it has none, and returns the id.
    pub fn ensure_id(&mut self) -> Uuid {
        let derived = self.derived_id();
        *self.id_slot().get_or_insert(derived)
    }

    /// Sets the id to the one derived from the record as it now is (after a field of its natural
    /// key changed), and returns it.
    pub fn rederive_id(&mut self) -> Uuid {
        let derived = self.derived_id();
        *self.id_slot() = Some(derived);
        derived
    }

    /// The `sensor` field of the kinds sensors write (finding, activity, cnc, service,
    /// darknet_day, liveness); `None` for the other kinds.
    pub fn sensor_mut(&mut self) -> Option<&mut Option<String>> {
        match self {
            Record::Finding(r) => Some(&mut r.sensor),
            Record::Activity(r) => Some(&mut r.sensor),
            Record::Cnc(r) => Some(&mut r.sensor),
            Record::Service(r) => Some(&mut r.sensor),
            Record::DarknetDay(r) => Some(&mut r.sensor),
            Record::Liveness(r) => Some(&mut r.sensor),
            _ => None,
        }
    }

    /// The record's id, if it has one yet.
    pub fn id(&self) -> Option<Uuid> {
        match self {
            Record::Finding(r) => r.id,
            Record::Activity(r) => r.id,
            Record::DarknetDay(r) => r.id,
            Record::Cnc(r) => r.id,
            Record::Botnet(r) => r.id,
            Record::Notification(r) => r.id,
            Record::Isp(r) => r.id,
            Record::Service(r) => r.id,
            Record::BotnetWindow(r) => r.id,
            Record::FeedEntry(r) => r.id,
            Record::Liveness(r) => r.id,
            Record::Outcome(r) => r.id,
            Record::TaxiiObject(r) => r.id,
        }
    }

    /// The time a record is filed under: when it was observed or made.
    pub fn time(&self) -> Option<Timestamp> {
        match self {
            Record::DarknetDay(r) => r.midnight(),
            Record::Finding(r) => Some(r.observed_at),
            Record::Activity(r) => Some(r.window_start),
            Record::Cnc(r) => Some(r.last_seen),
            Record::Botnet(r) => Some(r.last_seen),
            Record::Notification(r) => Some(r.created_at),
            Record::Service(r) => Some(r.observed_at),
            Record::BotnetWindow(r) => Some(r.window_start),
            Record::FeedEntry(r) => Some(r.first_seen),
            Record::Liveness(r) => Some(r.checked_at),
            Record::Outcome(r) => Some(r.at),
            Record::TaxiiObject(r) => Some(r.date_added),
            Record::Isp(_) => None,
        }
    }

    /// The address a record is about, which attribution maps to an ISP.
    pub fn address(&self) -> Option<IpAddr> {
        match self {
            Record::Finding(r) => Some(r.ip),
            Record::Activity(r) => Some(r.src),
            Record::Cnc(r) => Some(r.ip),
            Record::Notification(r) => Some(r.ip),
            Record::Service(r) => Some(r.ip),
            Record::FeedEntry(r) => Some(r.ip),
            Record::Liveness(r) => Some(r.ip),
            Record::Botnet(_)
            | Record::Isp(_)
            | Record::DarknetDay(_)
            | Record::BotnetWindow(_)
            | Record::Outcome(_)
            | Record::TaxiiObject(_) => None,
        }
    }

    /// The record as one JSON line, without the trailing newline.
    pub fn to_json_line(&self) -> String {
        // Serialising these types cannot fail: no maps with non-string keys, no failing Serialize impls.
        serde_json::to_string(self).expect("records always serialise")
    }
}

#[cfg(test)]
mod tests;

/// A record's payload type, one per [`Kind`]: lets code take the records of one kind out of a
/// mixed list by type (`records.iter().filter_map(Botnet::of)`) instead of matching variants by
/// hand at every call site.
pub trait Payload: Sized {
    /// The kind of record this payload is.
    const KIND: Kind;
    /// The payload, when the record is of this kind.
    fn of(record: &Record) -> Option<&Self>;
    /// The payload, owned, when the record is of this kind.
    fn from_record(record: Record) -> Option<Self>;
}

macro_rules! payload {
    ($($variant:ident => $type:ty),* $(,)?) => {$(
        impl Payload for $type {
            const KIND: Kind = Kind::$variant;
            fn of(record: &Record) -> Option<&Self> {
                if let Record::$variant(payload) = record { Some(payload) } else { None }
            }
            fn from_record(record: Record) -> Option<Self> {
                if let Record::$variant(payload) = record { Some(payload) } else { None }
            }
        }
    )*};
}

payload! {
    Finding => Finding,
    Activity => SourceActivity,
    Cnc => CncCandidate,
    Botnet => Botnet,
    Notification => Notification,
    Isp => Isp,
    Service => ServiceObservation,
    DarknetDay => DarknetDay,
    BotnetWindow => BotnetWindow,
    FeedEntry => FeedEntry,
    Liveness => Liveness,
    Outcome => Outcome,
    TaxiiObject => TaxiiObject,
}

impl Record {
    /// The payload when this record is of `T`'s kind (`records.iter().filter_map(Record::payload::<Botnet>)`).
    pub fn payload<T: Payload>(&self) -> Option<&T> {
        T::of(self)
    }

    /// The payload, owned, when this record is of `T`'s kind.
    pub fn into_payload<T: Payload>(self) -> Option<T> {
        T::from_record(self)
    }
}

/// The payloads of one kind among `records`, owned, in order.
pub fn payloads<T: Payload>(records: impl IntoIterator<Item = Record>) -> Vec<T> {
    records.into_iter().filter_map(T::from_record).collect()
}

#[cfg(test)]
mod payload_tests {
    use super::*;

    #[test]
    fn every_kind_has_a_payload_type_that_takes_only_its_own_records() {
        let line = br#"{"kind":"finding","observed_at":"2026-11-02T04:12:09Z","ip":"127.16.4.21","port":23,"protocol":"telnet","issue":"default_credential","credential_id":1}"#;
        let record = crate::parse_line(line, None).unwrap().unwrap();
        assert_eq!(<Finding as Payload>::KIND, record.kind());
        assert!(Finding::of(&record).is_some() && Botnet::of(&record).is_none());
        assert_eq!(payloads::<Finding>(vec![record.clone(), record.clone()]).len(), 2);
        assert!(payloads::<Outcome>(vec![record]).is_empty());
    }
}
