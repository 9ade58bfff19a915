-- Daily roll-ups: what the dashboard's charts and cards count, per day, so that a page over a year
-- reads a few hundred rows instead of every record. A write marks its (kind, day) dirty (the
-- generation counts writes, so a refresh that raced a newer write leaves the mark for the next);
-- a refresh recomputes the day from its records and replaces its rows.
CREATE TABLE rollup_dirty (
    kind       TEXT NOT NULL,
    day        TEXT NOT NULL,          -- YYYY-MM-DD, UTC
    generation INTEGER NOT NULL,
    PRIMARY KEY (kind, day)
);
CREATE TABLE rollups (
    kind   TEXT NOT NULL,
    metric TEXT NOT NULL,
    day    TEXT NOT NULL,
    dim    TEXT NOT NULL,              -- '' for the whole, else an ISP, a device type, ...
    count  INTEGER NOT NULL,
    hosts  BLOB,                       -- the day's distinct hosts (exact list or sketch), if counted
    PRIMARY KEY (kind, metric, day, dim)
);
-- Stores made before this migration get every day of the rolled-up kinds marked, so the first
-- refresh builds their roll-ups.
INSERT INTO rollup_dirty (kind, day, generation)
SELECT DISTINCT kind, substr(time, 1, 10), 1 FROM records
WHERE kind IN ('activity', 'finding', 'notification', 'service', 'cnc') AND time IS NOT NULL;
