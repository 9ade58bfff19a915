-- The fields pages, APIs and reports filter on, as columns of their own with indexes, so that a
-- search by ISP, port, serial, status, sensor, TAXII collection or address prefix reads only the
-- rows it finds.
-- They are computed by the database from each record's JSON (stored generated columns), so every
-- writer, old rows included, has them; a value of another shape (a port that is no small integer)
-- is NULL rather than a failed insert. `addr` is the address as `inet`, for prefix searches
-- (`addr <<= '203.0.113.0/24'`) through a GiST index.
ALTER TABLE records
    ADD COLUMN isp TEXT GENERATED ALWAYS AS (body ->> 'isp') STORED,
    ADD COLUMN port INTEGER GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(body -> 'port') = 'number' AND (body ->> 'port') ~ '^[0-9]{1,5}$'
             THEN (body ->> 'port')::integer END) STORED,
    ADD COLUMN serial TEXT GENERATED ALWAYS AS (body ->> 'serial') STORED,
    ADD COLUMN status TEXT GENERATED ALWAYS AS (body ->> 'status') STORED,
    ADD COLUMN sensor TEXT GENERATED ALWAYS AS (body ->> 'sensor') STORED,
    ADD COLUMN collection TEXT GENERATED ALWAYS AS (body ->> 'collection') STORED,
    ADD COLUMN addr INET GENERATED ALWAYS AS (ip::inet) STORED;
CREATE INDEX records_kind_isp ON records (kind, isp, id);
CREATE INDEX records_kind_port ON records (kind, port, id);
CREATE INDEX records_kind_serial ON records (kind, serial, id);
CREATE INDEX records_kind_status ON records (kind, status, id);
CREATE INDEX records_kind_sensor ON records (kind, sensor, id);
CREATE INDEX records_kind_collection ON records (kind, collection, time);
CREATE INDEX records_addr ON records USING gist (addr inet_ops);
