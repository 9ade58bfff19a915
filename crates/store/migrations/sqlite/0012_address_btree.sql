-- Leaner ingest: the collection and ISP indexes keep only the records that have the field (TAXII
-- objects; hosts attributed to an ISP), not every record. (On PostgreSQL this migration also
-- folds its two address indexes into one.)
DROP INDEX records_kind_collection;
CREATE INDEX records_kind_collection ON records (kind, collection, time) WHERE collection IS NOT NULL;
DROP INDEX records_kind_isp;
CREATE INDEX records_kind_isp ON records (kind, isp, id) WHERE isp IS NOT NULL;
