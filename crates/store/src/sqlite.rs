use std::path::{Path, PathBuf};
use std::time::Duration;

use botscope_model::{Isp, Kind, Record, RoutedPrefix};
use chrono::{SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use crate::{PutSummary, RecordQuery, RoutingSnapshot, Store, StoreError, TokenRow};

/// SQLite rows per multi-row INSERT: well under SQLite's 32,766 bound variables.
const ROWS_PER_INSERT: usize = 2_000;

/// The embedded store: one SQLite file in WAL mode.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    path: PathBuf,
}

/// Times are stored as fixed-width RFC 3339 text, so that text order is time order.
fn time_text(time: chrono::DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The schema's migrations, embedded at build time.
/// An older build may open a store a newer one migrated (migrations only add), so that replicas
/// can be upgraded one at a time: applied migrations this build does not carry are no error.
pub(crate) static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.set_ignore_missing(true);
    migrator
});

impl SqliteStore {
    /// The start of day `$2` (`YYYY-MM-DD`) as `records.time` compares: times are stored as
    /// RFC 3339 text in UTC, so every time of that day or later sorts at or after the bare date.
    const DAY_START: &'static str = "$2";
    /// SQLite's default collation already compares bytes.
    const BYTEWISE: &'static str = "";

    /// Opens (creating if missing) and migrates the database file at `path`.
    pub async fn open(path: &Path, max_connections: u32) -> Result<Self, StoreError> {
        let store = Self::open_unmigrated(path, max_connections).await?;
        store.upgrade().await?;
        Ok(store)
    }

    crate::migrations_on_every_backend!();

    /// Opens (creating if missing) the database file at `path` and leaves its schema as it is.
    pub async fn open_unmigrated(path: &Path, max_connections: u32) -> Result<Self, StoreError> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before we report it, so an acknowledged batch survives even
            // a power cut, not only a killed process.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // Reading a whole routing table is slow by nature; that is not worth a warning.
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { url: url.clone(), source })?;
        Ok(SqliteStore { pool, path: path.to_path_buf() })
    }

    /// SQLite keeps one table: retention deletes row by row ([`Store::prune`]).
    async fn drop_whole_months(&self, _kind: Kind, _before: chrono::NaiveDate) -> Result<u64, StoreError> {
        Ok(0)
    }

    const ADDRESSES: &'static str = "SELECT id, ip FROM records WHERE kind = $1 AND ip IS NOT NULL";
    /// Each botnet's servers, one row each, in the botnet's order (`key`).
    const BOTNET_SERVERS: &'static str = "SELECT serial, json_extract(server.value, '$.ip'), \
         json_extract(server.value, '$.port') FROM records, json_each(records.body, '$.cnc') AS server \
         WHERE kind = 'botnet' AND json_type(server.value, '$.port') = 'integer'";

    /// Every botnet with each of its servers' last sighting, one row per server in the botnet's
    /// order (`key`), and one row without a server for a botnet that has none.
    const BOTNET_SERVER_SIGHTINGS: &'static str = "SELECT records.id, serial, json_extract(server.value, '$.ip'), \
         json_extract(server.value, '$.port'), json_extract(server.value, '$.last_seen'), \
         json_extract(records.body, '$.first_seen') FROM records \
         LEFT JOIN json_each(records.body, '$.cnc') AS server ON json_type(server.value, '$.port') = 'integer' \
         WHERE kind = 'botnet'";

    /// The botnets of `span` (see [`crate::BotnetSpan`]), after a `WHERE`. The first sighting is
    /// compared as a Julian day: its text may carry any number of fraction digits, which sort
    /// unlike the times they mean; the bound is a midnight, and `julianday` reads milliseconds
    /// exactly enough to tell a sighting before it from one at it.
    fn push_botnet_span(select: &mut QueryBuilder<Sqlite>, span: crate::BotnetSpan) {
        if let Some(since) = span.since {
            select.push(" AND time >= ").push_bind(Self::time(since));
        }
        if let Some(day) = span.first_seen_before {
            select
                .push(" AND julianday(json_extract(body, '$.first_seen')) < julianday(")
                .push_bind(day.to_string())
                .push(")");
        }
    }

    /// The records of a botnet page, joined to the ids [`Store::botnets_page`] picks.
    const BOTNET_PAGE: &'static str = "SELECT records.id, records.body FROM records";

    /// What a botnet page sorts by, before the serial (`None`: the serial alone).
    fn botnet_sort_key(column: crate::BotnetColumn) -> Option<&'static str> {
        use crate::BotnetColumn::*;
        match column {
            Serial => None,
            Family => Some("COALESCE(json_extract(body, '$.family'), '')"),
            Status => Some("COALESCE(json_extract(body, '$.status'), '')"),
            Members => Some("json_extract(body, '$.members')"),
            FirstSeen => Some("julianday(json_extract(body, '$.first_seen'))"),
            LastSeen => Some("time"),
            Confidence => Some("COALESCE(json_extract(body, '$.confidence'), -1)"),
            // The aggregate's own ORDER BY (SQLite 3.44 and later; the bundled library is newer).
            Reporters => {
                Some("COALESCE((SELECT group_concat(value, ' ' ORDER BY key) FROM json_each(body, '$.reporters')), '')")
            }
        }
    }

    fn now() -> String {
        time_text(Utc::now())
    }

    fn time(time: chrono::DateTime<Utc>) -> String {
        time_text(time)
    }

    fn token_row(row: &sqlx::sqlite::SqliteRow) -> Result<TokenRow, StoreError> {
        let parse = |text: String| {
            text.parse::<chrono::DateTime<Utc>>()
                .map_err(|e| StoreError::Corrupt { what: "token".into(), reason: e.to_string() })
        };
        Ok(TokenRow {
            id: row.get(0),
            hash: row.get(1),
            role: crate::decode_role(&row.get::<String, _>(0), &row.get::<String, _>(2))?,
            isp: row.get(3),
            label: row.get(4),
            sensors: crate::decode_sensors(&row.get::<String, _>(0), &row.get::<String, _>(7))?,
            created_at: parse(row.get(5))?,
            revoked_at: row.get::<Option<String>, _>(6).map(parse).transpose()?,
        })
    }

    /// Writes records in one transaction; `replace` overwrites those already stored.
    async fn write(&self, records: &[Record], replace: bool) -> Result<u64, StoreError> {
        let ingested_at = time_text(Utc::now());
        let distinct = crate::distinct_by_id(records, replace)?;
        let mut dirty = crate::rollup_days(&distinct);
        let replacing = crate::replacing_ids(&distinct, replace);
        let versioned = crate::versioned_kinds_in(&distinct);
        let mut rows = Vec::with_capacity(distinct.len());
        for record in distinct {
            rows.push((
                crate::require_id(record)?.to_string(),
                record.kind().as_str(),
                record.time().map(time_text),
                record.address().map(|ip| ip.to_string()),
                record.to_json_line(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        for chunk in replacing.chunks(crate::IDS_PER_LOOKUP) {
            let mut select: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT DISTINCT kind, substr(time, 1, 10) FROM records WHERE time IS NOT NULL AND id IN (",
            );
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            list.push_unseparated(")");
            for row in select.build().fetch_all(&mut *tx).await? {
                dirty.insert((row.get(0), row.get(1)));
            }
        }
        let mut written = 0;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut insert: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO records (id, kind, time, ip, body, ingested_at) ");
            insert.push_values(chunk, |mut row, (id, kind, time, ip, body)| {
                row.push_bind(id)
                    .push_bind(*kind)
                    .push_bind(time)
                    .push_bind(ip)
                    .push_bind(body)
                    .push_bind(&ingested_at);
            });
            insert.push(if replace {
                " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, time = excluded.time, ip = excluded.ip, \
                 body = excluded.body, ingested_at = excluded.ingested_at"
            } else {
                // A C&C report is revised when its window is scored again (late flows, or the
                // next window showed its bots back): the later revision replaces the stored one,
                // and of two made at once the one with more flows (a re-sent or older one does
                // not). A first report counts as made at its window's end.
                " ON CONFLICT (id) DO UPDATE SET time = excluded.time, body = excluded.body, \
                 ingested_at = excluded.ingested_at \
                 WHERE records.kind = 'cnc' AND excluded.kind = 'cnc' \
                 AND (julianday(COALESCE(json_extract(excluded.body, '$.revised_at'), \
                                         json_extract(excluded.body, '$.window_end'))), \
                      json_extract(excluded.body, '$.flows')) \
                   > (julianday(COALESCE(json_extract(records.body, '$.revised_at'), \
                                         json_extract(records.body, '$.window_end'))), \
                      json_extract(records.body, '$.flows'))"
            });
            written += insert.build().execute(&mut *tx).await?.rows_affected();
        }
        for isp in crate::latest_isps(records) {
            upsert_isp(&mut tx, isp).await?;
        }
        // In day order, so that two writers mark in the same order and cannot deadlock.
        for (kind, day) in &dirty {
            sqlx::query(crate::MARK_DIRTY).bind(kind).bind(day).execute(&mut *tx).await?;
        }
        // After the marks, as every writer does, so that two cannot wait on each other.
        for kind in versioned {
            sqlx::query(crate::RAISE_VERSION).bind(kind.as_str()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(written)
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    async fn put_records(&self, records: &[Record]) -> Result<PutSummary, StoreError> {
        let inserted = self.write(records, false).await?;
        Ok(PutSummary { inserted, duplicates: records.len() as u64 - inserted })
    }

    async fn upsert_records(&self, records: &[Record]) -> Result<u64, StoreError> {
        self.write(records, true).await
    }

    async fn schema(&self) -> Result<crate::Schema, StoreError> {
        let applied: i64 = sqlx::query_scalar(crate::APPLIED_SCHEMA).fetch_one(&self.pool).await?;
        Ok(crate::Schema { applied, expected: crate::expected_schema(&MIGRATOR) })
    }

    crate::same_on_every_backend!();

    async fn latest_time(&self, kind: Kind) -> Result<Option<botscope_model::Timestamp>, StoreError> {
        let latest: Option<String> = sqlx::query_scalar("SELECT MAX(time) FROM records WHERE kind = $1")
            .bind(kind.as_str())
            .fetch_one(&self.pool)
            .await?;
        latest
            .map(|text| {
                text.parse().map_err(|e: chrono::ParseError| StoreError::Corrupt {
                    what: format!("a {kind} record's time"),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    async fn record(&self, id: Uuid) -> Result<Option<Record>, StoreError> {
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM records WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        body.map(|body| crate::decode_record(&id.to_string(), &body)).transpose()
    }

    async fn records_by_id(&self, ids: &[Uuid]) -> Result<Vec<Record>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(crate::MAX_ADDRESSES_ANY) {
            let mut select: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT id, body FROM records WHERE id IN (");
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            list.push_unseparated(")");
            for row in &select.build().fetch_all(&self.pool).await? {
                found.push(crate::decode_record(row.get(0), row.get(1))?);
            }
        }
        Ok(found)
    }

    async fn records(&self, query: &RecordQuery) -> Result<Vec<Record>, StoreError> {
        if query.limit == 0 || query.matches_nothing() {
            return Ok(Vec::new());
        }
        // SQLite cannot compare addresses, so a prefix search reads the other filters' rows in id
        // order, a chunk at a time, and keeps those in the prefix until the page is full; bounded,
        // so that a search nothing narrows is an error that says so rather than a request without end.
        query.check_prefixes()?;
        let chunk = if query.by_prefix() { query.limit.max(1_000) } else { query.limit };
        let mut after = query.after;
        let mut page = Vec::new();
        let mut scanned = 0usize;
        loop {
            if scanned >= crate::MAX_PREFIX_SCAN {
                return Err(StoreError::TooBroad { scanned });
            }
            // Without statistics SQLite prefers the (kind, id) order to the outcomes' case index
            // (`EXPLAIN QUERY PLAN`), reading every outcome: named here.
            let from = if query.cases_any.is_some() {
                "SELECT id, body FROM records INDEXED BY records_outcome_case WHERE 1 = 1"
            } else {
                "SELECT id, body FROM records WHERE 1 = 1"
            };
            let mut select: QueryBuilder<Sqlite> = QueryBuilder::new(from);
            if let Some(kind) = query.kind {
                // With an address or case list, `+kind` keeps SQLite (which has no statistics to
                // go by) on the address or case index rather than reading the whole kind.
                let listed = query.ip_any.is_some() || query.cases_any.is_some();
                select.push(if listed { " AND +kind = " } else { " AND kind = " }).push_bind(kind.as_str());
            }
            if let Some(after) = after {
                select.push(" AND id > ").push_bind(after.to_string());
            }
            if let Some(since) = query.since {
                select.push(" AND time >= ").push_bind(time_text(since));
            }
            if let Some(until) = query.until {
                select.push(" AND time < ").push_bind(time_text(until));
            }
            if let Some(ip) = query.ip {
                select.push(" AND ip = ").push_bind(ip.to_string());
            }
            crate::push_typed_filters(&mut select, query, "json_extract(body, '$.notification')", ("ip", ""));
            select.push(" ORDER BY id LIMIT ").push_bind(i64::from(chunk));
            let rows = select.build().fetch_all(&self.pool).await?;
            let read = rows.len();
            scanned += read;
            for row in &rows {
                let record = crate::decode_record(row.get("id"), row.get("body"))?;
                after = record.id();
                if query.in_prefix(&record) {
                    page.push(record);
                    if page.len() >= query.limit as usize {
                        return Ok(page);
                    }
                }
            }
            if read < chunk as usize || after.is_none() {
                return Ok(page);
            }
        }
    }

    async fn replace_routed_prefixes(&self, prefixes: &[RoutedPrefix], source: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM routed_prefixes").execute(&mut *tx).await?;
        for chunk in crate::last_per_prefix(prefixes).chunks(ROWS_PER_INSERT * 2) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new("INSERT INTO routed_prefixes (prefix, origin) ");
            insert.push_values(chunk, |mut row, routed| {
                row.push_bind(routed.prefix.to_string()).push_bind(routed.origin.to_string());
            });
            insert.build().execute(&mut *tx).await?;
        }
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM routed_prefixes").fetch_one(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO routing_snapshot (id, source, loaded_at, prefixes) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET source = excluded.source, loaded_at = excluded.loaded_at, \
             prefixes = excluded.prefixes",
        )
        .bind(source)
        .bind(time_text(Utc::now()))
        .bind(stored)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn routing_snapshot(&self) -> Result<Option<RoutingSnapshot>, StoreError> {
        let row = sqlx::query("SELECT source, loaded_at, prefixes FROM routing_snapshot WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let loaded_at: String = row.get(1);
            Ok(RoutingSnapshot {
                source: row.get(0),
                loaded_at: loaded_at.parse().map_err(|e: chrono::ParseError| StoreError::Corrupt {
                    what: "routing snapshot".into(),
                    reason: e.to_string(),
                })?,
                prefixes: row.get::<i64, _>(2) as u64,
            })
        })
        .transpose()
    }

    async fn replace_isps(&self, isps: &[Isp]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM isp_asns").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM isps").execute(&mut *tx).await?;
        for isp in isps {
            upsert_isp(&mut tx, isp).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn isps(&self) -> Result<Vec<Isp>, StoreError> {
        let rows = sqlx::query("SELECT handle, body FROM isps ORDER BY handle").fetch_all(&self.pool).await?;
        rows.iter().map(|row| crate::decode_isp(row.get(0), row.get(1))).collect()
    }
}

async fn upsert_isp(tx: &mut sqlx::Transaction<'_, Sqlite>, isp: &Isp) -> Result<(), StoreError> {
    let body = serde_json::to_string(isp).expect("ISPs always serialise");
    sqlx::query(
        "INSERT INTO isps (handle, body) VALUES ($1, $2) ON CONFLICT (handle) DO UPDATE SET body = excluded.body",
    )
    .bind(&isp.handle)
    .bind(body)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM isp_asns WHERE handle = $1").bind(&isp.handle).execute(&mut **tx).await?;
    for asn in &isp.asns {
        sqlx::query("INSERT INTO isp_asns (asn, handle) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(i64::from(*asn))
            .bind(&isp.handle)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
