use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{NotificationStatus, Timestamp};

/// A change of a notification's status: an ISP reporting what it did, or a re-survey confirming
/// or refuting a fix. The history of these is what remediation is measured from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Stable id; derived from the natural key when absent on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The notification it is about.
    pub notification: Uuid,
    /// The ISP the notification went to.
    pub isp: String,
    /// The new status.
    pub status: NotificationStatus,
    /// When.
    pub at: Timestamp,
    /// Who said so.
    pub source: OutcomeSource,
    /// Free text from the ISP (no passwords, no subscriber names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Outcome {
    pub(crate) fn natural_key(&self) -> String {
        format!(
            "outcome|{}|{}|{}|{}",
            self.notification,
            self.status.as_str(),
            self.source.as_str(),
            self.at.to_rfc3339()
        )
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if !crate::is_valid_handle(&self.isp) {
            return Err(format!("isp {:?} is not a valid ISP handle", self.isp));
        }
        if self.note.as_ref().is_some_and(|note| note.len() > 2_000) {
            return Err("note must be at most 2,000 bytes".into());
        }
        Ok(())
    }
}

/// Who reported an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeSource {
    /// The ISP, through the API or `botscope notify status`.
    Isp,
    /// A re-survey of the notified device (`survey --recheck`).
    Recheck,
    /// The centre itself: a case marked fixed (by its ISP or a re-survey) that a later report saw
    /// again.
    Centre,
}

impl OutcomeSource {
    /// The name used in records.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeSource::Isp => "isp",
            OutcomeSource::Recheck => "recheck",
            OutcomeSource::Centre => "centre",
        }
    }
}
