use std::fmt;

use chrono::{Datelike, NaiveDate};

use botscope_model::Timestamp;

/// Which reports: the daily one (infected hosts) or the monthly ones (vulnerable devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    /// A UTC day.
    Day,
    /// A UTC month.
    Month,
}

/// A period that does not read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}: expected {}", match kind { PeriodKind::Day => "a day as YYYY-MM-DD", PeriodKind::Month => "a month as YYYY-MM" })]
pub struct PeriodError {
    /// What was given.
    pub text: String,
    /// What it should have been.
    pub kind: PeriodKind,
}

/// One report period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A UTC day.
    Day(NaiveDate),
    /// A UTC month (its first day).
    Month(NaiveDate),
}

impl Period {
    /// The period of `kind` holding `time`.
    pub fn holding(kind: PeriodKind, time: Timestamp) -> Period {
        let date = time.date_naive();
        match kind {
            PeriodKind::Day => Period::Day(date),
            PeriodKind::Month => Period::Month(date.with_day(1).unwrap_or(date)),
        }
    }

    /// Reads `YYYY-MM-DD` (a day) or `YYYY-MM` (a month).
    pub fn parse(kind: PeriodKind, text: &str) -> Result<Period, PeriodError> {
        let bad = || PeriodError { text: text.to_string(), kind };
        match kind {
            PeriodKind::Day => NaiveDate::parse_from_str(text, "%Y-%m-%d").map(Period::Day).map_err(|_| bad()),
            PeriodKind::Month => {
                NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").map(Period::Month).map_err(|_| bad())
            }
        }
    }

    /// Its kind.
    pub fn kind(self) -> PeriodKind {
        match self {
            Period::Day(_) => PeriodKind::Day,
            Period::Month(_) => PeriodKind::Month,
        }
    }

    /// First instant.
    pub fn start(self) -> Timestamp {
        let date = match self {
            Period::Day(d) | Period::Month(d) => d,
        };
        date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }

    /// First instant after it.
    pub fn end(self) -> Timestamp {
        match self {
            Period::Day(d) => d.succ_opt().unwrap_or(d),
            Period::Month(d) => d.checked_add_months(chrono::Months::new(1)).unwrap_or(d),
        }
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
    }

    /// As written in file names: `2026-11-02` or `2026-11`.
    pub fn label(self) -> String {
        match self {
            Period::Day(d) => d.format("%Y-%m-%d").to_string(),
            Period::Month(d) => d.format("%Y-%m").to_string(),
        }
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Period {
    /// As kept in a notification's `last_period`: `day:2026-11-02`, `month:2026-11`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Day(_) => write!(f, "day:{}", self.label()),
            Period::Month(_) => write!(f, "month:{}", self.label()),
        }
    }
}
