-- A generation per kind of record that pages keep read between requests (the botnets: every
-- botnet's current server for the list's sorts, and which botnet lists each server for /cnc; a
-- national year's 48,000 botnets cost each of those pages 0.1 s of the database's CPU). Every
-- write and prune of such a kind raises it in the same transaction, so a reader that finds the
-- generation it kept knows the rows have not changed. A replica of an older build writes without
-- raising it, so readers also read again after a while (docs/center.md).
CREATE TABLE record_versions (
    kind       TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
