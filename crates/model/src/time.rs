use chrono::{DateTime, Utc};

/// A point in time, always UTC; written as RFC 3339 (`2026-11-24T03:15:00Z`).
///
/// Input may carry any offset (`+09:00` is common in Japanese logs); it is converted to UTC on
/// reading, so two records naming the same instant compare equal and get the same id.
pub type Timestamp = DateTime<Utc>;
