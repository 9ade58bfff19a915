-- Daily roll-ups: what the dashboard's charts and cards count, per day, so that a page over a year
-- reads a few hundred rows instead of every record. A write counts up its (kind, day)'s
-- generation; a day is out of date while its generation is above the one last counted. A refresh
-- recomputes the day from its records and commits its rows only if, by then, the generation it
-- read is still the latest and not yet counted (generations never repeat, so a slow refresher can
-- neither overwrite a newer count nor clear a newer write's mark).
CREATE TABLE rollup_dirty (
    kind       TEXT NOT NULL,
    day        TEXT NOT NULL,          -- YYYY-MM-DD, UTC
    generation BIGINT NOT NULL,
    counted    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, day)
);
CREATE TABLE rollups (
    kind   TEXT NOT NULL,
    metric TEXT NOT NULL,
    day    TEXT NOT NULL,
    dim    TEXT NOT NULL,              -- '' for the whole, else an ISP, a device type, ...
    count  BIGINT NOT NULL,
    hosts  BYTEA,                      -- the day's distinct hosts (exact list or sketch), if counted
    PRIMARY KEY (kind, metric, day, dim)
);
-- Stores made before this migration get every day of the rolled-up kinds marked, so the first
-- refresh builds their roll-ups.
INSERT INTO rollup_dirty (kind, day, generation)
SELECT DISTINCT kind, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 1 FROM records
WHERE kind IN ('activity', 'finding', 'notification', 'service', 'cnc') AND time IS NOT NULL;
