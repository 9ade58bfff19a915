-- Leaner indexes: only records that have the field are indexed (darknet activity, most of a
-- centre's records, has no port, serial or status), so an insert no longer writes an entry for a
-- field it lacks. The key stays (kind, column, id): SQLite keeps no statistics to choose between
-- walking (kind, id) and sorting, so the index gives the page order itself.
DROP INDEX records_kind_port;
DROP INDEX records_kind_serial;
DROP INDEX records_kind_status;
DROP INDEX records_kind_sensor;
CREATE INDEX records_kind_port ON records (kind, port, id) WHERE port IS NOT NULL;
CREATE INDEX records_kind_serial ON records (kind, serial, id) WHERE serial IS NOT NULL;
CREATE INDEX records_kind_status ON records (kind, status, id) WHERE status IS NOT NULL;
CREATE INDEX records_kind_sensor ON records (kind, sensor, id) WHERE sensor IS NOT NULL;
