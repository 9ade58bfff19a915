-- Leaner ingest. Every record with an address paid for two address indexes, each a write to a
-- random page: the text index `records_ip` (exact addresses) and the GiST index on `addr`
-- (prefixes). One B-tree on `addr` answers both: PostgreSQL turns `addr <<= prefix` into a range
-- of it, and exact addresses are equalities on it. The collection index keeps only the records
-- that have one (TAXII objects), not every record.
DROP INDEX records_ip;
DROP INDEX records_addr;
CREATE INDEX records_addr ON records (addr) WHERE addr IS NOT NULL;
DROP INDEX records_kind_collection;
CREATE INDEX records_kind_collection ON records (kind, collection, time) WHERE collection IS NOT NULL;
