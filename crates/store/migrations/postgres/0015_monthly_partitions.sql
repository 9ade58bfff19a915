-- The large kinds in partitions by month. A national year is millions of darknet activity records
-- and hundreds of thousands of services and findings; retention then deleted them row by row, and
-- every insert wrote a random page of one index over the whole year. Now `records` is a table
-- partitioned by kind: activity, services and findings each in a table of their own, itself
-- partitioned by month of `time`, and every other kind in `records_other` (as before: one row per
-- id). Retention drops a month that is wholly before the cut, and an insert writes the indexes of
-- one month.
--
-- A partitioned table can have no key without its partition columns, so the monthly kinds are
-- keyed by (id, time). Their ids are derived from a natural key that holds the time, so an id
-- comes with one time; the store checks a record whose id is not the derived one by id alone.
--
-- Months are made as records arrive (the store makes them, moving what a `_default` partition
-- held of that month), only from five years back to next month: a sender cannot make a table per
-- month of year 9999. Rows of other months stay in `records_<kind>_default`.
--
-- A build before this one writes `INSERT .. ON CONFLICT (id)` into `records`, which a partitioned
-- table refuses: every replica must run this build or later once this has run (docs/center.md).
ALTER TABLE records RENAME TO records_unpartitioned;

CREATE TABLE records (
    id          UUID NOT NULL,
    kind        TEXT NOT NULL,
    time        TIMESTAMPTZ,
    ip          TEXT,
    body        JSONB NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    isp TEXT GENERATED ALWAYS AS (body ->> 'isp') STORED,
    port INTEGER GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(body -> 'port') = 'number' AND (body ->> 'port') ~ '^[0-9]{1,5}$'
             THEN (body ->> 'port')::integer END) STORED,
    serial TEXT GENERATED ALWAYS AS (body ->> 'serial') STORED,
    status TEXT GENERATED ALWAYS AS (body ->> 'status') STORED,
    sensor TEXT GENERATED ALWAYS AS (body ->> 'sensor') STORED,
    collection TEXT GENERATED ALWAYS AS (body ->> 'collection') STORED,
    addr INET GENERATED ALWAYS AS (ip::inet) STORED
) PARTITION BY LIST (kind);

-- Every kind but the monthly ones, indexed as `records` was (0007, 0008, 0010, 0012, 0013).
CREATE TABLE records_other PARTITION OF records (PRIMARY KEY (id)) DEFAULT;
ALTER TABLE records_other SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000);
CREATE INDEX records_other_kind_time ON records_other (kind, time);
CREATE INDEX records_other_kind_id ON records_other (kind, id);
CREATE INDEX records_other_outcome_case ON records_other ((body ->> 'notification')) WHERE kind = 'outcome';
CREATE INDEX records_other_kind_isp ON records_other (kind, isp, time) WHERE isp IS NOT NULL;
CREATE INDEX records_other_kind_port ON records_other (kind, port, time) WHERE port IS NOT NULL;
CREATE INDEX records_other_kind_serial ON records_other (kind, serial, time) WHERE serial IS NOT NULL;
CREATE INDEX records_other_kind_status ON records_other (kind, status, time) WHERE status IS NOT NULL;
CREATE INDEX records_other_kind_sensor ON records_other (kind, sensor, time) WHERE sensor IS NOT NULL;
CREATE INDEX records_other_kind_collection ON records_other (kind, collection, time) WHERE collection IS NOT NULL;
CREATE INDEX records_other_addr ON records_other (addr) WHERE addr IS NOT NULL;

-- The monthly kinds: the same indexes but (kind, id), which the key (id, time) serves, declared
-- on the kind's table so that every month made later has them.
DO $$
DECLARE
    monthly TEXT;
    field TEXT;
BEGIN
    FOREACH monthly IN ARRAY ARRAY['activity', 'service', 'finding'] LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF records (PRIMARY KEY (id, time)) FOR VALUES IN (%L) '
                       'PARTITION BY RANGE (time)', 'records_' || monthly, monthly);
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT',
                       'records_' || monthly || '_default', 'records_' || monthly);
        EXECUTE format('CREATE INDEX %I ON %I (kind, time)', 'records_' || monthly || '_kind_time', 'records_' || monthly);
        FOREACH field IN ARRAY ARRAY['isp', 'port', 'serial', 'status', 'sensor', 'collection'] LOOP
            EXECUTE format('CREATE INDEX %I ON %I (kind, %I, time) WHERE %I IS NOT NULL',
                           'records_' || monthly || '_kind_' || field, 'records_' || monthly, field, field);
        END LOOP;
        EXECUTE format('CREATE INDEX %I ON %I (addr) WHERE addr IS NOT NULL',
                       'records_' || monthly || '_addr', 'records_' || monthly);
    END LOOP;
END
$$;

-- A partition for each month the store already holds within the window (the store's rule), so
-- the copy below fills months rather than the default partitions.
DO $$
DECLARE
    held RECORD;
BEGIN
    FOR held IN
        SELECT DISTINCT kind, date_trunc('month', time AT TIME ZONE 'UTC') AS month FROM records_unpartitioned
        WHERE kind IN ('activity', 'service', 'finding') AND time IS NOT NULL
          AND time >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '60 months'
          AND time < date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '2 months'
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       'records_' || held.kind || '_' || to_char(held.month, 'YYYY_MM'), 'records_' || held.kind,
                       to_char(held.month, 'YYYY-MM-DD"T00:00:00+00:00"'),
                       to_char(held.month + interval '1 month', 'YYYY-MM-DD"T00:00:00+00:00"'));
    END LOOP;
END
$$;

INSERT INTO records (id, kind, time, ip, body, ingested_at)
SELECT id, kind, time, ip, body, ingested_at FROM records_unpartitioned;
DROP TABLE records_unpartitioned;
ANALYZE records;
