-- Leaner ingest: the collection index keeps only the records that have one (TAXII objects), not
-- every record. (On PostgreSQL this migration also folds its two address indexes into one.) The
-- ISP index stays whole here: an ISP filter is an OR (shared prefixes name several ISPs), and
-- SQLite cannot prove from an OR that a partial index covers it.
DROP INDEX records_kind_collection;
CREATE INDEX records_kind_collection ON records (kind, collection, time) WHERE collection IS NOT NULL;
