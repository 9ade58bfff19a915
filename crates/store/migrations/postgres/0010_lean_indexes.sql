-- Leaner indexes for ingest at national scale. With the typed columns' indexes keyed (kind,
-- column, id), a year of records (6.5 M) loaded at a third of the rate before them: ids are
-- random, so every insert wrote a random page of each of five 470 MB indexes, most of them
-- entries for a field the record does not have (darknet activity has no port, serial or status).
-- Now only records that have the field are indexed, in time order (inserts land at the end), and
-- pages still come in id order: a common value walks the (kind, id) index and filters, a rare one
-- reads its few rows and sorts them.
DROP INDEX records_kind_isp;
DROP INDEX records_kind_port;
DROP INDEX records_kind_serial;
DROP INDEX records_kind_status;
DROP INDEX records_kind_sensor;
CREATE INDEX records_kind_isp ON records (kind, isp, time) WHERE isp IS NOT NULL;
CREATE INDEX records_kind_port ON records (kind, port, time) WHERE port IS NOT NULL;
CREATE INDEX records_kind_serial ON records (kind, serial, time) WHERE serial IS NOT NULL;
CREATE INDEX records_kind_status ON records (kind, status, time) WHERE status IS NOT NULL;
CREATE INDEX records_kind_sensor ON records (kind, sensor, time) WHERE sensor IS NOT NULL;
