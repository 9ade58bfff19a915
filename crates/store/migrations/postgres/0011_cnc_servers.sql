-- Each C&C server's reports per day and reporter, so that the overview, /cnc and the feed lead
-- times read one row per server, day and reporter instead of every report (a national year holds
-- 50,000 reports; the pages read them all on every view). Kept up by the roll-up refresh with the
-- rest of a C&C day, and kept, like the roll-ups, when retention prunes the reports.
CREATE TABLE cnc_servers (
    day        TEXT NOT NULL,              -- YYYY-MM-DD, UTC: the reports' last sighting's day
    ip         TEXT NOT NULL,
    port       INTEGER NOT NULL,
    protocol   TEXT NOT NULL,
    sensor     TEXT NOT NULL,              -- '' for reports without a sensor name
    reports    BIGINT NOT NULL,
    first_seen BIGINT NOT NULL,            -- Unix seconds
    last_seen  BIGINT NOT NULL,
    best_score DOUBLE PRECISION NOT NULL,
    family     TEXT,
    PRIMARY KEY (day, ip, port, protocol, sensor)
);
-- The generation each day's servers were counted at. A replica of an older build counts a C&C
-- day without its servers; a day counted at another generation than its servers is marked again
-- (see `dirty_rollups`), so replicas can still be upgraded one at a time.
CREATE TABLE cnc_server_days (
    day        TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
-- Every day of C&C reports is counted again, now with its servers.
INSERT INTO rollup_dirty (kind, day, generation)
SELECT DISTINCT kind, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 1 FROM records
WHERE kind = 'cnc' AND time IS NOT NULL
ON CONFLICT (kind, day) DO UPDATE SET generation = rollup_dirty.generation + 1;
