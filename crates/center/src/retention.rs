//! Retention: a centre keeps the raw observations (telescope activity, survey services and
//! findings, C&C reports) for a set number of days and its daily roll-ups for good, so a year of
//! charts outlives the records they were counted from.
//!
//! Cases, outcomes, botnets, liveness, feeds and the darknet's daily statistics are never pruned:
//! they are what the centre decided and told, and they are small.

use botscope_model::Kind;
use botscope_store::Store;
use chrono::NaiveDate;

use crate::{CenterError, rollup};

/// The kinds retention deletes old records of.
pub const PRUNED_KINDS: [Kind; 4] = [Kind::Activity, Kind::Service, Kind::Finding, Kind::Cnc];

/// Records deleted per statement: a short transaction at a time, so writers are not held up.
const PER_BATCH: u32 = 10_000;

/// What a prune did or, in a dry run, would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneSummary {
    /// The first day kept (UTC).
    pub first_kept: NaiveDate,
    /// Per kind, records deleted (or that would be).
    pub per_kind: Vec<(Kind, u64)>,
}

impl PruneSummary {
    /// Records deleted in all.
    pub fn total(&self) -> u64 {
        self.per_kind.iter().map(|(_, n)| n).sum()
    }
}

/// The first day kept when `keep_days` days are kept, today included.
pub fn first_kept(today: NaiveDate, keep_days: u32) -> NaiveDate {
    today - chrono::Days::new(u64::from(keep_days.max(1)) - 1)
}

/// Deletes the records of [`PRUNED_KINDS`] from before the last `keep_days` days (today
/// included); `dry_run` only counts them. The daily roll-ups are brought up to date first, so the
/// pruned days keep everything they held. `progress` hears each batch (kind, deleted so far).
pub async fn prune(
    store: &impl Store,
    keep_days: u32,
    today: NaiveDate,
    dry_run: bool,
    mut progress: impl FnMut(Kind, u64),
) -> Result<PruneSummary, CenterError> {
    let first_kept = first_kept(today, keep_days);
    let mut summary = PruneSummary { first_kept, per_kind: Vec::new() };
    if !dry_run {
        rollup::refresh(store).await?;
    }
    for kind in PRUNED_KINDS {
        let deleted = if dry_run {
            store.count_before(kind, first_kept).await?
        } else {
            let mut deleted = 0;
            loop {
                let batch = store.prune(kind, first_kept, PER_BATCH).await?;
                deleted += batch;
                progress(kind, deleted);
                if batch < u64::from(PER_BATCH) {
                    break;
                }
            }
            deleted
        };
        summary.per_kind.push((kind, deleted));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeping_n_days_keeps_today_and_the_n_minus_one_before() {
        let today: NaiveDate = "2026-12-07".parse().unwrap();
        assert_eq!(first_kept(today, 1), today);
        assert_eq!(first_kept(today, 7).to_string(), "2026-12-01");
        assert_eq!(first_kept(today, 400).to_string(), "2025-11-03");
        assert_eq!(first_kept(today, 0), today, "zero keeps today rather than nothing");
    }

    /// A prune leaves the figures of the days it deletes as they were: the roll-ups are counted
    /// before, and the records that were waiting to be counted are counted.
    #[tokio::test]
    async fn pruned_days_keep_their_figures_and_later_days_their_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = botscope_store::SqliteStore::open(&dir.path().join("prune.db"), 1).await.unwrap();
        let mut records: Vec<_> = botscope_testkit::records::week(5, 40)
            .iter()
            .map(|line| botscope_model::parse_line(line.as_bytes(), None).unwrap().unwrap())
            .collect();
        for record in &mut records {
            record.ensure_id();
        }
        store.put_records(&records).await.unwrap();
        let read = |store| async move {
            rollup::Series::read(store, Kind::Activity, "infected", None, None).await.unwrap().per_day("")
        };
        // Counted without a refresh beforehand: the prune must count them itself.
        let today: NaiveDate = "2026-11-07".parse().unwrap();
        let dry = prune(&store, 3, today, true, |_, _| {}).await.unwrap();
        assert_eq!(dry.first_kept.to_string(), "2026-11-05");
        assert!(dry.total() > 100, "{dry:?}");
        assert_eq!(store.count_records(Some(Kind::Activity)).await.unwrap(), 280, "a dry run deletes nothing");
        let done = prune(&store, 3, today, false, |_, _| {}).await.unwrap();
        assert_eq!(done, dry, "the dry run counted what the prune deleted");
        let fresh = botscope_store::SqliteStore::open(&dir.path().join("all.db"), 1).await.unwrap();
        fresh.put_records(&records).await.unwrap();
        rollup::refresh(&fresh).await.unwrap();
        assert_eq!(read(&store).await, read(&fresh).await, "every day's figure as if nothing was pruned");
        assert_eq!(store.count_before(Kind::Activity, dry.first_kept).await.unwrap(), 0);
        assert_eq!(store.count_records(Some(Kind::Activity)).await.unwrap(), 120, "three days of 40 are kept");
    }
}
