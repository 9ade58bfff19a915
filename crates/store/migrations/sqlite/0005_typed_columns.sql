-- The fields pages, APIs and reports filter on, as columns of their own with indexes, so that a
-- search by ISP, port, serial, status, sensor or TAXII collection reads only the rows it finds. They are computed
-- by the database from each record's JSON (virtual generated columns), so every writer, old rows
-- included, has them without a rewrite.
ALTER TABLE records ADD COLUMN isp TEXT GENERATED ALWAYS AS (json_extract(body, '$.isp')) VIRTUAL;
ALTER TABLE records ADD COLUMN port INTEGER GENERATED ALWAYS AS (json_extract(body, '$.port')) VIRTUAL;
ALTER TABLE records ADD COLUMN serial TEXT GENERATED ALWAYS AS (json_extract(body, '$.serial')) VIRTUAL;
ALTER TABLE records ADD COLUMN status TEXT GENERATED ALWAYS AS (json_extract(body, '$.status')) VIRTUAL;
ALTER TABLE records ADD COLUMN sensor TEXT GENERATED ALWAYS AS (json_extract(body, '$.sensor')) VIRTUAL;
ALTER TABLE records ADD COLUMN collection TEXT GENERATED ALWAYS AS (json_extract(body, '$.collection')) VIRTUAL;
CREATE INDEX records_kind_isp ON records (kind, isp, id);
CREATE INDEX records_kind_port ON records (kind, port, id);
CREATE INDEX records_kind_serial ON records (kind, serial, id);
CREATE INDEX records_kind_status ON records (kind, status, id);
CREATE INDEX records_kind_sensor ON records (kind, sensor, id);
CREATE INDEX records_kind_collection ON records (kind, collection, time);
