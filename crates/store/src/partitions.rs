//! PostgreSQL's monthly partitions of the large kinds (migration 0015): which table a record goes
//! to, the months made as records arrive, and retention that drops a whole month at once.
//!
//! `records` is partitioned by kind; activity, services and findings each have a table partitioned
//! by month of `time` (`records_activity_2026_11`), with a `_default` partition for the rows of
//! months that have none. Every other kind is in `records_other`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use botscope_model::{Kind, Record, Timestamp};
use chrono::{Datelike, NaiveDate};
use sqlx::PgPool;
use sqlx::Row;

use crate::StoreError;

/// The kinds kept in monthly partitions: the ones a national year holds millions of, whose ids
/// are derived from a natural key that holds the record's time (so an id comes with one time).
pub(crate) const MONTHLY_KINDS: [Kind; 3] = [Kind::Activity, Kind::Service, Kind::Finding];

/// How far back a month gets a partition of its own as records arrive: older rows (an import of
/// old data, a sender's wrong clock) go to the default partition, so a sender cannot make a table
/// per month of any year it likes.
const MONTHS_BACK: i32 = 60;

/// How far ahead: next month's partition is made before midnight of the month's last day.
const MONTHS_AHEAD: i32 = 1;

/// How long retention waits to drop a month (the drop locks the kind's table against readers
/// and writers while it waits). Past it, the month's rows are deleted row by row instead.
const DROP_LOCK_TIMEOUT: &str = "5s";

/// A calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Month {
    year: i32,
    /// 1-12.
    month: u32,
}

impl Month {
    /// The month holding `time`.
    pub(crate) fn of(time: Timestamp) -> Month {
        Month { year: time.year(), month: time.month() }
    }

    /// The month holding `day`.
    pub(crate) fn of_day(day: NaiveDate) -> Month {
        Month { year: day.year(), month: day.month() }
    }

    /// Months since year 0, for distances between months.
    fn ordinal(self) -> i32 {
        self.year * 12 + self.month as i32 - 1
    }

    fn next(self) -> Month {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { month: self.month + 1, ..self } }
    }

    /// Its first day.
    fn first_day(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
    }

    /// Midnight UTC of its first day, as a literal PostgreSQL reads the same in every time zone.
    fn start_literal(self) -> String {
        format!("{:04}-{:02}-01T00:00:00+00:00", self.year, self.month)
    }

    /// Whether writes make a partition for this month when `now` is in `current`.
    fn in_window(self, current: Month) -> bool {
        let distance = self.ordinal() - current.ordinal();
        (-MONTHS_BACK..=MONTHS_AHEAD).contains(&distance)
    }

    /// The name of `kind`'s partition for this month. Only years 1-9999 (what a timestamp holds
    /// and the window admits) are named, so the name is always plain digits.
    fn table(self, kind: Kind) -> String {
        format!("{}_{:04}_{:02}", table_of(kind), self.year, self.month)
    }

    /// The month a partition of `kind` is named for, if `name` is one.
    fn of_table(kind: Kind, name: &str) -> Option<Month> {
        let rest = name.strip_prefix(table_of(kind))?.strip_prefix('_')?;
        let (year, month) = rest.split_once('_')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        let month = Month { year: year.parse().ok()?, month: month.parse().ok()? };
        month.first_day().map(|_| month)
    }
}

/// The table of every kind not kept by month.
pub(crate) const OTHER_TABLE: &str = "records_other";

/// Every table records are written to: the monthly kinds' and [`OTHER_TABLE`].
pub(crate) const TABLES: [&str; 4] = ["records_activity", "records_service", "records_finding", OTHER_TABLE];

/// Whether `kind` is kept in monthly partitions.
pub(crate) fn is_monthly(kind: Kind) -> bool {
    MONTHLY_KINDS.contains(&kind)
}

/// The table `kind`'s records are written to: the kind's own partitioned table, or
/// `records_other`.
pub(crate) fn table_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Activity => "records_activity",
        Kind::Service => "records_service",
        Kind::Finding => "records_finding",
        _ => OTHER_TABLE,
    }
}

/// The months this process knows have a partition, so that a write asks the database only for a
/// month it has not seen (shared by the store's clones).
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownMonths(Arc<Mutex<HashSet<(Kind, Month)>>>);

impl KnownMonths {
    /// The months of `records` in the window around `now` that this process has not yet seen with
    /// a partition.
    pub(crate) fn missing<'a>(
        &self,
        records: impl IntoIterator<Item = &'a Record>,
        now: Timestamp,
    ) -> Vec<(Kind, Month)> {
        let current = Month::of(now);
        let known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut missing: Vec<(Kind, Month)> = records
            .into_iter()
            .filter(|record| is_monthly(record.kind()))
            .filter_map(|record| Some((record.kind(), Month::of(record.time()?))))
            .filter(|(kind, month)| month.in_window(current) && !known.contains(&(*kind, *month)))
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    fn insert(&self, kind: Kind, month: Month) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert((kind, month));
    }

    fn forget(&self, kind: Kind, month: Month) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&(kind, month));
    }
}

/// Makes `kind`'s partition for `month` unless it exists, moving into it what the default
/// partition held of that month; returns whether it made it. Serialised between writers and
/// replicas by an advisory lock; the kind's table is locked meanwhile, so no row of the month can
/// reach the default partition between the move and the new partition.
pub(crate) async fn make_month(
    pool: &PgPool,
    known: &KnownMonths,
    kind: Kind,
    month: Month,
) -> Result<bool, StoreError> {
    if !is_monthly(kind) {
        return Ok(false);
    }
    let (parent, table) = (table_of(kind), month.table(kind));
    let (from, to) = (month.start_literal(), month.next().start_literal());
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('botscope monthly partitions'))").execute(&mut *tx).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(&table).fetch_one(&mut *tx).await?;
    if exists {
        tx.commit().await?;
        known.insert(kind, month);
        return Ok(false);
    }
    // Safe: every name and literal below is made here from a kind of the enum and two numbers.
    let statements = [
        format!("LOCK TABLE {parent} IN ACCESS EXCLUSIVE MODE"),
        format!(
            "CREATE TEMPORARY TABLE moving_month ON COMMIT DROP AS SELECT id, kind, time, ip, body, ingested_at \
             FROM {parent}_default WHERE time >= '{from}' AND time < '{to}'"
        ),
        format!("DELETE FROM {parent}_default WHERE time >= '{from}' AND time < '{to}'"),
        format!("CREATE TABLE {table} PARTITION OF {parent} FOR VALUES FROM ('{from}') TO ('{to}')"),
        format!("INSERT INTO {parent} (id, kind, time, ip, body, ingested_at) SELECT * FROM moving_month"),
    ];
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    known.insert(kind, month);
    Ok(true)
}

/// Drops `kind`'s monthly partitions wholly before `before` and returns how many records they
/// held (0 for a kind without months, or when the lock was not had in time: the caller's row by
/// row delete then takes them).
pub(crate) async fn drop_months_before(
    pool: &PgPool,
    known: &KnownMonths,
    kind: Kind,
    before: NaiveDate,
) -> Result<u64, StoreError> {
    if !is_monthly(kind) {
        return Ok(0);
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT child.relname::text FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid \
         WHERE pg_inherits.inhparent = to_regclass($1)",
    )
    .bind(table_of(kind))
    .fetch_all(pool)
    .await?;
    let whole: Vec<(Month, String)> = names
        .into_iter()
        .filter_map(|name| Some((Month::of_table(kind, &name)?, name)))
        // Wholly before: the month ends on or before the first day kept.
        .filter(|(month, _)| month.next().first_day().is_some_and(|end| end <= before))
        .collect();
    if whole.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    // Safe: a constant.
    sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")))
        .execute(&mut *tx)
        .await?;
    let mut dropped = 0u64;
    for (month, name) in &whole {
        // Safe: a name read from the catalogue that parsed as one of ours (letters, digits, '_').
        let counted = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {name}")))
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get::<i64, _>(0));
        let result = match counted {
            Ok(count) => sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {name}")))
                .execute(&mut *tx)
                .await
                .map(|_| count.max(0) as u64),
            Err(error) => Err(error),
        };
        match result {
            Ok(count) => dropped += count,
            // Not had in time (55P03): the whole transaction is void, and rows go one by one.
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("55P03") => {
                log::warn!("retention: {name} was in use for {DROP_LOCK_TIMEOUT}; its rows are deleted one by one");
                return Ok(0);
            }
            Err(error) => return Err(error.into()),
        }
        known.forget(kind, *month);
    }
    tx.commit().await?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(text: &str) -> Month {
        Month::of_day(format!("{text}-01").parse().unwrap())
    }

    #[test]
    fn names_and_bounds_read_back() {
        let november = month("2026-11");
        assert_eq!(november.table(Kind::Activity), "records_activity_2026_11");
        assert_eq!(Month::of_table(Kind::Activity, "records_activity_2026_11"), Some(november));
        assert_eq!(november.start_literal(), "2026-11-01T00:00:00+00:00");
        assert_eq!(month("2026-12").next(), month("2027-01"));
        for foreign in [
            "records_activity_default",
            "records_service_2026_11",
            "records_activity_2026_13",
            "records_activity_26_11",
        ] {
            assert_eq!(Month::of_table(Kind::Activity, foreign), None, "{foreign}");
        }
    }

    #[test]
    fn only_months_near_now_get_a_partition() {
        let now = month("2026-12");
        assert!(month("2026-12").in_window(now));
        assert!(month("2027-01").in_window(now));
        assert!(!month("2027-02").in_window(now), "two months ahead goes to the default partition");
        assert!(month("2021-12").in_window(now));
        assert!(!month("2021-11").in_window(now), "five years back is the limit");
        assert!(!Month { year: 9999, month: 12 }.in_window(now));
    }
}
