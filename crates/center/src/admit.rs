//! What a sender may write: the rules the centre applies to every record a token posts.
//!
//! A record belongs to the token that sent it. Its `sensor` is one of the token's names (the
//! label, or a name the admin allowed it), its id is the one the centre derives from it (so no
//! sender can take another's id, or pre-empt a record by guessing it), and a re-survey's verdict
//! may only move a case a re-survey judges. Admin tokens are trusted with everything.

use botscope_model::{
    Kind, Notification, NotificationReason, NotificationStatus, Outcome, OutcomeSource, Record, Timestamp,
};
use botscope_store::Store;

use crate::tokens::{Caller, Role};

/// Kinds a sensor or surveyor token may send; the centre makes the others itself.
pub const SENSOR_KINDS: [Kind; 7] =
    [Kind::Finding, Kind::Activity, Kind::Cnc, Kind::Service, Kind::DarknetDay, Kind::FeedEntry, Kind::Outcome];

/// Longest string a sender's record may carry, bytes. The longest legitimate one is a service
/// banner, which the survey cuts to 1 KiB before decoding.
pub const MAX_STRING_BYTES: usize = 4096;

/// How far ahead of the centre's clock a verdict may be dated (clock skew between machines).
pub const MAX_AHEAD_SECONDS: i64 = 300;

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The kind is one the centre makes.
    #[error("kind {0} is made by the centre; a sensor or surveyor token may send {kinds}", kinds = sensor_kind_names())]
    CentreKind(Kind),
    /// The line named an id other than the one the centre derives.
    #[error("id {given} is not the id the centre derives for this record ({derived}); leave `id` out or send that one")]
    ForeignId {
        /// The id sent.
        given: uuid::Uuid,
        /// The id the centre derives.
        derived: uuid::Uuid,
    },
    /// The record names a sensor the token does not hold.
    #[error(
        "{field} {name:?} is not a name of this token (it may write as: {names}); an admin allows more names with `botscope token create --sensor NAME`"
    )]
    NotYourName {
        /// `sensor` or `source`.
        field: &'static str,
        /// The name sent.
        name: String,
        /// The token's names.
        names: String,
    },
    /// A string longer than [`MAX_STRING_BYTES`].
    #[error("a string of {0} bytes is longer than the {MAX_STRING_BYTES} bytes a record may carry")]
    TooLong(usize),
    /// An outcome from a token that is not a survey worker's.
    #[error("only surveyor tokens send outcomes (a re-survey's verdict); ISPs report theirs through /api/v1/isp")]
    OutcomeRole,
    /// An outcome that is not a re-survey's verdict.
    #[error("a surveyor sends only re-survey verdicts: source recheck with status fixed or not_fixed")]
    OutcomeKind,
    /// An outcome dated ahead of the centre's clock.
    #[error("the verdict is dated {at}, ahead of the centre's clock ({now})")]
    Ahead {
        /// The outcome's time.
        at: Timestamp,
        /// The centre's time.
        now: Timestamp,
    },
    /// An outcome about no open vulnerable case of the ISP it names (unknown, another ISP's, an
    /// infected host or a false positive: a re-survey judges none of them).
    #[error("no case {notification} of {isp} that a re-survey judges")]
    NoSuchCase {
        /// The case named.
        notification: uuid::Uuid,
        /// The ISP named.
        isp: String,
    },
}

fn sensor_kind_names() -> String {
    SENSOR_KINDS.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

/// Applies the rules that need no store to one record `caller` sent: kind, names, id, lengths,
/// and the form of an outcome. Returns the record as the centre keeps it (its `sensor` filled in
/// with the token's label when it named none, its id derived).
pub fn admit(mut record: Record, caller: &Caller, now: Timestamp) -> Result<Record, Refusal> {
    if caller.role == Role::Admin {
        return Ok(record);
    }
    if !SENSOR_KINDS.contains(&record.kind()) {
        return Err(Refusal::CentreKind(record.kind()));
    }
    // The id as parsed is the one sent, or the one derived from the line as sent when none was.
    let sent_id = record.id();
    let derived_as_sent = record.derived_id();
    let not_yours = |field, name: &str| Refusal::NotYourName {
        field,
        name: name.to_string(),
        names: caller.names().collect::<Vec<_>>().join(", "),
    };
    if let Some(slot) = record.sensor_mut() {
        match slot {
            None => *slot = Some(caller.label.clone()),
            Some(name) if !caller.may_name(name) => return Err(not_yours("sensor", name)),
            Some(_) => {}
        }
    }
    match &record {
        Record::FeedEntry(entry) if !caller.may_name(&entry.source) => return Err(not_yours("source", &entry.source)),
        Record::Outcome(outcome) => check_outcome_form(outcome, caller, now)?,
        _ => {}
    }
    let derived = record.rederive_id();
    if let Some(given) = sent_id.filter(|given| *given != derived_as_sent && *given != derived) {
        return Err(Refusal::ForeignId { given, derived });
    }
    if let Some(len) = longest_string(&record).filter(|len| *len > MAX_STRING_BYTES) {
        return Err(Refusal::TooLong(len));
    }
    Ok(record)
}

fn check_outcome_form(outcome: &Outcome, caller: &Caller, now: Timestamp) -> Result<(), Refusal> {
    if caller.role != Role::Surveyor {
        return Err(Refusal::OutcomeRole);
    }
    if outcome.source != OutcomeSource::Recheck
        || !matches!(outcome.status, NotificationStatus::Fixed | NotificationStatus::NotFixed)
    {
        return Err(Refusal::OutcomeKind);
    }
    if outcome.at > now + chrono::Duration::seconds(MAX_AHEAD_SECONDS) {
        return Err(Refusal::Ahead { at: outcome.at, now });
    }
    Ok(())
}

/// Whether a re-survey may judge `case`: a vulnerable service (not an infected host, whose fix a
/// login cannot see) that nobody called a false positive. What `/api/v1/recheck` offers.
pub fn recheckable(case: &Notification) -> bool {
    case.status != NotificationStatus::FalsePositive
        && case.reason != NotificationReason::Infected
        && case.port.is_some()
}

/// The rule that needs the store: a non-admin's outcome must be about a case of the ISP it names
/// that a re-survey judges.
pub async fn admit_outcome(store: &impl Store, outcome: &Outcome, caller: &Caller) -> Result<(), AdmitError> {
    if caller.role == Role::Admin {
        return Ok(());
    }
    match store.record(outcome.notification).await? {
        Some(Record::Notification(case)) if case.isp == outcome.isp && recheckable(&case) => Ok(()),
        _ => Err(AdmitError::Refused(Refusal::NoSuchCase {
            notification: outcome.notification,
            isp: outcome.isp.clone(),
        })),
    }
}

/// A refusal, or the store failing while checking.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// The record breaks a rule.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] botscope_store::StoreError),
}

/// Length of the longest string anywhere in the record, as it would be stored.
fn longest_string(record: &Record) -> Option<usize> {
    fn walk(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::String(s) => s.len(),
            serde_json::Value::Array(items) => items.iter().map(walk).max().unwrap_or(0),
            serde_json::Value::Object(fields) => {
                fields.iter().map(|(key, value)| key.len().max(walk(value))).max().unwrap_or(0)
            }
            _ => 0,
        }
    }
    serde_json::to_value(record).ok().map(|value| walk(&value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use botscope_model::parse_line;

    fn caller(role: Role, label: &str, sensors: &[&str]) -> Caller {
        Caller {
            token_id: "tok_test".into(),
            role,
            isp: None,
            label: label.into(),
            sensors: sensors.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn now() -> Timestamp {
        "2026-11-10T00:00:00Z".parse().unwrap()
    }

    fn line(text: &str) -> Record {
        parse_line(text.as_bytes(), None).unwrap().unwrap()
    }

    const ACTIVITY: &str = r#"{"kind":"activity","window_start":"2026-11-02T00:00:00Z","window_end":"2026-11-03T00:00:00Z","src":"127.20.240.35","classification":"infected","packets":98,"distinct_destinations":103,"first_seen":"2026-11-02T00:23:51Z","last_seen":"2026-11-02T01:03:14Z"SENSOR}"#;

    fn activity(sensor: Option<&str>, id: Option<&str>) -> String {
        let mut extra = String::new();
        if let Some(sensor) = sensor {
            extra.push_str(&format!(r#","sensor":"{sensor}""#));
        }
        if let Some(id) = id {
            extra.push_str(&format!(r#","id":"{id}""#));
        }
        ACTIVITY.replace("SENSOR", &extra)
    }

    #[test]
    fn a_sensor_writes_only_under_its_own_names() {
        let darknet = caller(Role::Sensor, "darknet-a", &["darknet-a2"]);
        let named = admit(line(&activity(None, None)), &darknet, now()).unwrap();
        assert_eq!(named.clone().sensor_mut().unwrap().as_deref(), Some("darknet-a"));
        assert_eq!(named.id(), Some(named.derived_id()), "the id follows the filled-in sensor");
        assert!(admit(line(&activity(Some("darknet-a2"), None)), &darknet, now()).is_ok());
        let forged = admit(line(&activity(Some("darknet-b"), None)), &darknet, now());
        assert!(matches!(forged, Err(Refusal::NotYourName { field: "sensor", .. })), "{forged:?}");
    }

    #[test]
    fn a_sender_cannot_choose_another_records_id() {
        let darknet = caller(Role::Sensor, "darknet-a", &[]);
        let theirs = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
        let refused = admit(line(&activity(Some("darknet-a"), Some(theirs))), &darknet, now());
        assert!(matches!(refused, Err(Refusal::ForeignId { .. })), "{refused:?}");
        let own = line(&activity(Some("darknet-a"), None)).derived_id().to_string();
        assert!(admit(line(&activity(Some("darknet-a"), Some(&own))), &darknet, now()).is_ok());
    }

    #[test]
    fn feed_entries_are_named_after_their_sender() {
        let partner = caller(Role::Sensor, "partner-feed", &[]);
        let entry = |source: &str| {
            line(&format!(
                r#"{{"kind":"feed_entry","source":"{source}","role":"cnc","ip":"127.200.0.10","port":6667,"first_seen":"2026-11-04T08:00:00Z"}}"#
            ))
        };
        assert!(admit(entry("partner-feed"), &partner, now()).is_ok());
        assert!(matches!(
            admit(entry("threatfox"), &partner, now()),
            Err(Refusal::NotYourName { field: "source", .. })
        ));
    }

    #[test]
    fn only_surveyors_send_verdicts_and_never_dated_ahead() {
        let verdict = |status: &str, source: &str, at: &str| {
            line(&format!(
                r#"{{"kind":"outcome","notification":"1b4e28ba-2fa1-11d2-883f-0016d3cca427","isp":"hikari-net","status":"{status}","source":"{source}","at":"{at}"}}"#
            ))
        };
        let survey = caller(Role::Surveyor, "survey-1", &[]);
        let sensor = caller(Role::Sensor, "darknet-a", &[]);
        let fine = verdict("fixed", "recheck", "2026-11-09T23:00:00Z");
        assert!(admit(fine.clone(), &survey, now()).is_ok());
        assert_eq!(admit(fine, &sensor, now()), Err(Refusal::OutcomeRole));
        for (status, source) in [("false_positive", "recheck"), ("contacted", "recheck"), ("fixed", "isp")] {
            let refused = admit(verdict(status, source, "2026-11-09T23:00:00Z"), &survey, now());
            assert_eq!(refused, Err(Refusal::OutcomeKind), "{status} from {source}");
        }
        assert!(matches!(
            admit(verdict("fixed", "recheck", "2027-01-01T00:00:00Z"), &survey, now()),
            Err(Refusal::Ahead { .. })
        ));
    }

    #[test]
    fn centre_kinds_and_long_strings_are_refused() {
        let sensor = caller(Role::Sensor, "darknet-a", &[]);
        let isp = line(
            r#"{"kind":"isp","handle":"hikari-net","name":"Hikari Net","asns":[64500,64501],"contact":"abuse@hikari.example","language":"ja","notify":{"daily_infected":true,"monthly_vulnerable":true,"format":"csv"}}"#,
        );
        assert_eq!(admit(isp.clone(), &sensor, now()), Err(Refusal::CentreKind(Kind::Isp)));
        assert!(admit(isp, &caller(Role::Admin, "analyst", &[]), now()).is_ok(), "admins may");
        let long = format!(
            r#"{{"kind":"feed_entry","source":"darknet-a","role":"cnc","ip":"127.200.0.10","first_seen":"2026-11-04T08:00:00Z","family":"{}"}}"#,
            "m".repeat(MAX_STRING_BYTES + 1)
        );
        assert_eq!(admit(line(&long), &sensor, now()), Err(Refusal::TooLong(MAX_STRING_BYTES + 1)));
    }
}
