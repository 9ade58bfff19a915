-- Reading every record of a kind a page at a time (`kind = ? AND id > ? ORDER BY id LIMIT ?`) had
-- no index in id order within a kind: SQLite sorted the whole kind for every page, so a full read
-- took time quadratic in the kind's size. This index makes each page a range scan.
CREATE INDEX records_kind_id ON records (kind, id);
