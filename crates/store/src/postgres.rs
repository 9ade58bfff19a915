use botscope_model::{Isp, Kind, Record, RoutedPrefix, Timestamp};
use chrono::Utc;
use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::partitions::{self, KnownMonths, Month};
use crate::{PutSummary, RecordQuery, RoutingSnapshot, Store, StoreError, TokenRow};

/// Rows per array-bound INSERT: large enough to amortise round trips, small enough to keep each
/// statement's memory modest.
const ROWS_PER_INSERT: usize = 20_000;

/// The centre's store on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    url: String,
    /// For one direct connection when the pool cannot get one: it says why (refused, no such
    /// host, a password) where the pool can only say it waited.
    options: Box<PgConnectOptions>,
    /// The monthly partitions this process has seen (see [`partitions`]).
    known_months: KnownMonths,
}

/// How long a request waits for a pooled connection. When the server is down the pool keeps
/// trying until then, so this is also how long a request takes to fail: seconds, not the driver's
/// default half-minute. A busy pool still queues requests this long before they get 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema's migrations, embedded at build time.
/// An older build may open a store a newer one migrated (migrations only add), so that replicas
/// can be upgraded one at a time: applied migrations this build does not carry are no error.
pub(crate) static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
});

impl PostgresStore {
    /// The start of day `$2` (`YYYY-MM-DD`) in UTC, whatever the session's time zone.
    const DAY_START: &'static str = "($2 || 'T00:00:00+00:00')::timestamptz";
    /// Text compared byte by byte, as Rust compares strings, whatever the database's collation.
    const BYTEWISE: &'static str = "COLLATE \"C\"";

    /// Connects to and migrates the database at `url`.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let store = Self::open_unmigrated(url, max_connections).await?;
        store.upgrade().await?;
        Ok(store)
    }

    crate::migrations_on_every_backend!();

    /// Connects to the database at `url` and leaves its schema as it is.
    pub async fn open_unmigrated(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let shown = crate::redact(url);
        let options = PgConnectOptions::from_str(url)
            .map_err(|source| StoreError::Open { url: shown.clone(), source })?
            // Reading a whole routing table is slow by nature; that is not worth a warning.
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let pool = PgPoolOptions::new()
            // Planned for each query's own values, without JIT. The records are skewed (one /24 of
            // bots holds a hundred thousand rows, most hold none): after five runs of a prepared
            // statement PostgreSQL may keep a generic plan, and for a prefix search that plan
            // (a bitmap of the whole kind) took 1.7 s where the value's own took 9 ms. JIT added
            // 25 ms of compiling to queries that run for a few. Set per connection rather than as
            // startup options, which connection poolers may refuse.
            .after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *connection, "SET plan_cache_mode = force_custom_plan; SET jit = off")
                        .await
                        .map(|_| ())
                })
            })
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|source| StoreError::Open { url: shown.clone(), source })?;
        Ok(PostgresStore { pool, url: shown, options: Box::new(options), known_months: KnownMonths::default() })
    }

    /// Makes `kind`'s monthly partition for the month holding `day`, whatever the month, moving
    /// into it what the default partition held of that month; returns whether it made one (not
    /// for a partition that exists, or a kind not kept by month). Writes make the months from five
    /// years back to next month by themselves; this is for an operator who imports older data.
    pub async fn make_month_partition(&self, kind: Kind, day: chrono::NaiveDate) -> Result<bool, StoreError> {
        partitions::make_month(&self.pool, &self.known_months, kind, Month::of_day(day)).await
    }

    /// The monthly kinds are keyed by (id, time). botscope derives their ids from a natural key
    /// that holds the time, so an id comes with one time and the key holds it once. A record
    /// whose id is not the derived one (an admin's import of records made elsewhere) and that
    /// replaces is written in place of every row of its id, whatever their time. Written only if
    /// new, it is looked for by (id, time) like the rest: looking every imported id up in every
    /// month made a national year's import 2.4 times slower (docs/center.md).
    async fn replace_foreign_ids(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        records: &[&Record],
    ) -> Result<(), StoreError> {
        for kind in partitions::MONTHLY_KINDS {
            let foreign: Vec<Uuid> = records
                .iter()
                .filter(|record| record.kind() == kind)
                .filter_map(|record| record.id().filter(|id| *id != record.derived_id()))
                .collect();
            for chunk in foreign.chunks(crate::IDS_PER_LOOKUP) {
                // Safe: the table's name is a constant.
                let statement = format!("DELETE FROM {} WHERE id = ANY($1::uuid[])", partitions::table_of(kind));
                sqlx::query(sqlx::AssertSqlSafe(statement)).bind(chunk).execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    /// Drops `kind`'s monthly partitions wholly before `before` ([`Store::prune`]).
    async fn drop_whole_months(&self, kind: Kind, before: chrono::NaiveDate) -> Result<u64, StoreError> {
        partitions::drop_months_before(&self.pool, &self.known_months, kind, before).await
    }

    const ADDRESSES: &'static str = "SELECT id::text, ip FROM records WHERE kind = $1 AND ip IS NOT NULL";
    /// Each botnet's servers, one row each, numbered in the botnet's order (`key`).
    const BOTNET_SERVERS: &'static str = "SELECT serial, server.value ->> 'ip', (server.value ->> 'port')::bigint \
         FROM records CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(body -> 'cnc') = 'array' \
         THEN body -> 'cnc' ELSE '[]'::jsonb END) WITH ORDINALITY AS server (value, key) \
         WHERE kind = 'botnet' AND jsonb_typeof(server.value -> 'port') = 'number'";

    /// Every botnet with each of its servers' last sighting, one row per server in the botnet's
    /// order (`key`), and one row without a server for a botnet that has none.
    const BOTNET_SERVER_SIGHTINGS: &'static str = "SELECT records.id::text, serial, server.value ->> 'ip', \
         (server.value ->> 'port')::bigint, server.value ->> 'last_seen', body ->> 'first_seen' FROM records \
         LEFT JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(body -> 'cnc') = 'array' \
         THEN body -> 'cnc' ELSE '[]'::jsonb END) WITH ORDINALITY AS server (value, key) \
         ON jsonb_typeof(server.value -> 'port') = 'number' WHERE kind = 'botnet'";

    /// The botnets of `span` (see [`crate::BotnetSpan`]), after a `WHERE`.
    fn push_botnet_span(select: &mut QueryBuilder<Postgres>, span: crate::BotnetSpan) {
        if let Some(since) = span.since {
            select.push(" AND time >= ").push_bind(since);
        }
        if let Some(day) = span.first_seen_before {
            select
                .push(" AND (body ->> 'first_seen')::timestamptz < ")
                .push_bind(day.and_time(chrono::NaiveTime::MIN).and_utc());
        }
    }

    /// The records of a botnet page, joined to the ids [`Store::botnets_page`] picks.
    const BOTNET_PAGE: &'static str = "SELECT records.id::text, records.body::text FROM records";

    /// What a botnet page sorts by, before the serial (`None`: the serial alone). Text byte by
    /// byte (`COLLATE "C"`), as the dashboard sorts a table it holds.
    fn botnet_sort_key(column: crate::BotnetColumn) -> Option<&'static str> {
        use crate::BotnetColumn::*;
        match column {
            Serial => None,
            Family => Some("COALESCE(body ->> 'family', '') COLLATE \"C\""),
            Status => Some("COALESCE(body ->> 'status', '') COLLATE \"C\""),
            Members => Some("(body ->> 'members')::bigint"),
            FirstSeen => Some("(body ->> 'first_seen')::timestamptz"),
            LastSeen => Some("time"),
            Confidence => Some("COALESCE((body ->> 'confidence')::float8, -1)"),
            Reporters => Some(
                "COALESCE((SELECT string_agg(reporter.name, ' ' ORDER BY reporter.n) \
                 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(body -> 'reporters') = 'array' \
                 THEN body -> 'reporters' ELSE '[]'::jsonb END) WITH ORDINALITY AS reporter (name, n)), '') \
                 COLLATE \"C\"",
            ),
        }
    }

    fn now() -> chrono::DateTime<Utc> {
        Utc::now()
    }

    fn time(time: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
        time
    }

    fn token_row(row: &sqlx::postgres::PgRow) -> Result<TokenRow, StoreError> {
        Ok(TokenRow {
            id: row.get(0),
            hash: row.get(1),
            role: crate::decode_role(&row.get::<String, _>(0), &row.get::<String, _>(2))?,
            isp: row.get(3),
            label: row.get(4),
            sensors: crate::decode_sensors(&row.get::<String, _>(0), &row.get::<String, _>(7))?,
            created_at: row.get(5),
            revoked_at: row.get(6),
        })
    }

    /// `ANALYZE` of the records (see [`crate::AnyStore::refresh_statistics`]).
    pub(crate) async fn analyze(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE records").execute(&self.pool).await?;
        Ok(())
    }

    /// Writes records in one transaction; `replace` overwrites those already stored.
    async fn write(&self, records: &[Record], replace: bool) -> Result<u64, StoreError> {
        let ingested_at = Utc::now();
        let distinct = crate::distinct_by_id(records, replace)?;
        // Before the transaction, which would otherwise hold its rows while the kind's table is
        // locked to make the month.
        for (kind, month) in self.known_months.missing(distinct.iter().copied(), ingested_at) {
            if let Err(error) = partitions::make_month(&self.pool, &self.known_months, kind, month).await {
                log::warn!("no partition made for {kind} of {month:?} ({error}); its records go to the default one");
            }
        }
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        let mut dirty = crate::rollup_days(&distinct);
        for chunk in crate::replacing_ids(&distinct, replace).chunks(crate::IDS_PER_LOOKUP) {
            let rows = sqlx::query(
                // Locked, so that of two revisions at once the second sees the day the first moved
                // the report to (FOR UPDATE allows no DISTINCT; the set below dedups).
                "SELECT kind, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM records \
                 WHERE time IS NOT NULL AND id = ANY($1::uuid[]) FOR UPDATE",
            )
            .bind(chunk)
            .fetch_all(&mut *tx)
            .await?;
            for row in rows {
                dirty.insert((row.get(0), row.get(1)));
            }
        }
        if replace {
            Self::replace_foreign_ids(&mut tx, &distinct).await?;
        }
        for table in partitions::TABLES {
            let monthly = table != partitions::OTHER_TABLE;
            let rows: Vec<&Record> =
                distinct.iter().copied().filter(|record| partitions::table_of(record.kind()) == table).collect();
            let key = if monthly { "(id, time)" } else { "(id)" };
            let on_conflict = if replace {
                "DO UPDATE SET kind = excluded.kind, time = excluded.time, ip = excluded.ip, \
                 body = excluded.body, ingested_at = excluded.ingested_at"
            } else if monthly {
                "DO NOTHING"
            } else {
                // A C&C report is revised when its window is scored again (late flows, or the
                // next window showed its bots back): the later revision replaces the stored one,
                // and of two made at once the one with more flows (a re-sent or older one does
                // not). A first report counts as made at its window's end.
                "DO UPDATE SET time = excluded.time, body = excluded.body, \
                 ingested_at = excluded.ingested_at \
                 WHERE records.kind = 'cnc' AND excluded.kind = 'cnc' \
                 AND (COALESCE(excluded.body->>'revised_at', excluded.body->>'window_end')::timestamptz, \
                      (excluded.body->>'flows')::numeric) \
                   > (COALESCE(records.body->>'revised_at', records.body->>'window_end')::timestamptz, \
                      (records.body->>'flows')::numeric)"
            };
            for chunk in rows.chunks(ROWS_PER_INSERT) {
                let mut ids = Vec::with_capacity(chunk.len());
                let mut kinds = Vec::with_capacity(chunk.len());
                let mut times: Vec<Option<Timestamp>> = Vec::with_capacity(chunk.len());
                let mut ips = Vec::with_capacity(chunk.len());
                let mut bodies = Vec::with_capacity(chunk.len());
                for record in chunk {
                    ids.push(crate::require_id(record)?);
                    kinds.push(record.kind().as_str().to_string());
                    times.push(record.time());
                    ips.push(record.address().map(|ip| ip.to_string()));
                    bodies.push(record.to_json_line());
                }
                // Safe: the only interpolations are a table name and clauses, all constants above.
                inserted += sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} AS records (id, kind, time, ip, body, ingested_at) \
                     SELECT id, kind, time, ip, body::jsonb, $6 \
                     FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[]) \
                       AS batch (id, kind, time, ip, body) ON CONFLICT {key} {on_conflict}"
                )))
                .bind(ids)
                .bind(kinds)
                .bind(times)
                .bind(ips)
                .bind(bodies)
                .bind(ingested_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        for isp in crate::latest_isps(records) {
            upsert_isp(&mut tx, isp).await?;
        }
        // In day order, so that two writers mark in the same order and cannot deadlock.
        for (kind, day) in &dirty {
            sqlx::query(crate::MARK_DIRTY).bind(kind).bind(day).execute(&mut *tx).await?;
        }
        // After the marks, as every writer does, so that two cannot wait on each other.
        for kind in crate::versioned_kinds_in(&distinct) {
            sqlx::query(crate::RAISE_VERSION).bind(kind.as_str()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

/// `addr` within `prefix`. PostgreSQL turns `addr <<= prefix` into a range of the address index
/// only when the prefix is a constant of the plan, and sqlx's statements are prepared: after a few
/// runs a generic plan could read the whole kind. The range's bounds are bound too, so every plan
/// can use the index.
fn push_within(select: &mut QueryBuilder<Postgres>, prefix: ipnet::IpNet) {
    let prefix = prefix.trunc();
    select
        .push("(addr >= ")
        .push_bind(prefix.network().to_string())
        .push("::inet AND addr <= ")
        .push_bind(prefix.broadcast().to_string())
        .push("::inet AND addr <<= ")
        .push_bind(prefix.to_string())
        .push("::inet)");
}

impl Store for PostgresStore {
    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn put_records(&self, records: &[Record]) -> Result<PutSummary, StoreError> {
        let inserted = self.write(records, false).await?;
        Ok(PutSummary { inserted, duplicates: records.len() as u64 - inserted })
    }

    async fn upsert_records(&self, records: &[Record]) -> Result<u64, StoreError> {
        self.write(records, true).await
    }

    async fn schema(&self) -> Result<crate::Schema, StoreError> {
        match sqlx::query_scalar(crate::APPLIED_SCHEMA).fetch_one(&self.pool).await {
            Ok(applied) => Ok(crate::Schema { applied, expected: crate::expected_schema(&MIGRATOR) }),
            // The pool only knows it waited; one direct connection, itself bounded, says why.
            Err(sqlx::Error::PoolTimedOut) => {
                match tokio::time::timeout(ACQUIRE_TIMEOUT, self.options.connect()).await {
                    Ok(Err(source)) => Err(StoreError::Open { url: self.url.clone(), source }),
                    Err(_) => Err(StoreError::Open {
                        url: self.url.clone(),
                        source: sqlx::Error::Io(std::io::ErrorKind::TimedOut.into()),
                    }),
                    // It answers: the pool is busy, not the database gone.
                    Ok(Ok(connection)) => {
                        let _ = sqlx::Connection::close(connection).await;
                        Err(StoreError::Query(sqlx::Error::PoolTimedOut))
                    }
                }
            }
            Err(other) => Err(other.into()),
        }
    }

    crate::same_on_every_backend!();

    async fn latest_time(&self, kind: Kind) -> Result<Option<Timestamp>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MAX(time) FROM records WHERE kind = $1")
            .bind(kind.as_str())
            .fetch_one(&self.pool)
            .await?)
    }

    async fn record(&self, id: Uuid) -> Result<Option<Record>, StoreError> {
        Ok(self.records_by_id(&[id]).await?.pop())
    }

    /// Looked for among the kinds not kept by month first (botnets, cases: what pages read by
    /// id), then, for the ids not found there, in the monthly kinds' partitions: an id alone on
    /// the partitioned table is looked for in every month of every kind.
    async fn records_by_id(&self, ids: &[Uuid]) -> Result<Vec<Record>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(crate::MAX_ADDRESSES_ANY) {
            let mut rest: std::collections::HashSet<Uuid> = chunk.iter().copied().collect();
            // Safe: the table names are constants.
            for table in [partitions::OTHER_TABLE, "records"] {
                if rest.is_empty() {
                    break;
                }
                let asked: Vec<Uuid> = rest.iter().copied().collect();
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT id, body::text FROM {table} WHERE id = ANY($1::uuid[])"
                )))
                .bind(asked)
                .fetch_all(&self.pool)
                .await?;
                for row in &rows {
                    let id: Uuid = row.get(0);
                    rest.remove(&id);
                    found.push(crate::decode_record(&id.to_string(), row.get(1))?);
                }
            }
        }
        Ok(found)
    }

    async fn records(&self, query: &RecordQuery) -> Result<Vec<Record>, StoreError> {
        if query.matches_nothing() {
            return Ok(Vec::new());
        }
        let mut select: QueryBuilder<Postgres> =
            QueryBuilder::new("SELECT id::text, body::text FROM records WHERE TRUE");
        if let Some(kind) = query.kind {
            select.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(after) = query.after {
            select.push(" AND id > ").push_bind(after);
        }
        if let Some(since) = query.since {
            select.push(" AND time >= ").push_bind(since);
        }
        if let Some(until) = query.until {
            select.push(" AND time < ").push_bind(until);
        }
        if let Some(ip) = query.ip {
            select.push(" AND addr = ").push_bind(ip.to_string()).push("::inet");
        }
        if let Some(prefix) = query.prefix {
            select.push(" AND ");
            push_within(&mut select, prefix);
        }
        query.check_prefixes()?;
        if let Some(any) = &query.within_any {
            // One containment test per prefix, ORed: each is a range of the address index (an
            // array comparison could not be).
            select.push(" AND (FALSE");
            for prefix in any {
                select.push(" OR ");
                push_within(&mut select, *prefix);
            }
            select.push(")");
        }
        crate::push_typed_filters(&mut select, query, "(body ->> 'notification')", ("addr", "::inet"));
        // `records.id`, not `id`: a bare name means the output column `id::text` here, which no
        // index has, so every page sorted all the rows it matched (1.3 s for a page of 100 of a
        // million).
        select.push(" ORDER BY records.id LIMIT ").push_bind(i64::from(query.limit));
        let rows = select.build().fetch_all(&self.pool).await?;
        rows.iter().map(|row| crate::decode_record(row.get(0), row.get(1))).collect()
    }

    async fn replace_routed_prefixes(&self, prefixes: &[RoutedPrefix], source: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM routed_prefixes").execute(&mut *tx).await?;
        for chunk in crate::last_per_prefix(prefixes).chunks(ROWS_PER_INSERT * 5) {
            let texts: Vec<String> = chunk.iter().map(|routed| routed.prefix.to_string()).collect();
            let origins: Vec<String> = chunk.iter().map(|routed| routed.origin.to_string()).collect();
            sqlx::query("INSERT INTO routed_prefixes (prefix, origin) SELECT * FROM UNNEST($1::text[], $2::text[])")
                .bind(texts)
                .bind(origins)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO routing_snapshot (id, source, loaded_at, prefixes) \
             VALUES (1, $1, $2, (SELECT COUNT(*) FROM routed_prefixes)) \
             ON CONFLICT (id) DO UPDATE SET source = excluded.source, loaded_at = excluded.loaded_at, \
             prefixes = excluded.prefixes",
        )
        .bind(source)
        .bind(Utc::now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn routing_snapshot(&self) -> Result<Option<RoutingSnapshot>, StoreError> {
        let row = sqlx::query("SELECT source, loaded_at, prefixes FROM routing_snapshot WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| RoutingSnapshot {
            source: row.get(0),
            loaded_at: row.get(1),
            prefixes: row.get::<i64, _>(2) as u64,
        }))
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
        let rows = sqlx::query("SELECT handle, body::text FROM isps ORDER BY handle").fetch_all(&self.pool).await?;
        rows.iter().map(|row| crate::decode_isp(row.get(0), row.get(1))).collect()
    }
}

async fn upsert_isp(tx: &mut sqlx::Transaction<'_, Postgres>, isp: &Isp) -> Result<(), StoreError> {
    let body = serde_json::to_string(isp).expect("ISPs always serialise");
    sqlx::query(
        "INSERT INTO isps (handle, body) VALUES ($1, $2::jsonb) \
         ON CONFLICT (handle) DO UPDATE SET body = excluded.body",
    )
    .bind(&isp.handle)
    .bind(body)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM isp_asns WHERE handle = $1").bind(&isp.handle).execute(&mut **tx).await?;
    let asns: Vec<i64> = isp.asns.iter().map(|asn| i64::from(*asn)).collect();
    sqlx::query("INSERT INTO isp_asns (asn, handle) SELECT DISTINCT asn, $2 FROM UNNEST($1::bigint[]) AS a (asn)")
        .bind(asns)
        .bind(&isp.handle)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
