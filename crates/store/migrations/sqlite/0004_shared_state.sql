-- What several `botscope serve` replicas share besides records, so that any of them can answer
-- any request: page sessions and TAXII statuses (`leases`: each lives until `expires_ms`), and
-- the self-check's per-address counts (`rate_counts`). Times are Unix milliseconds, the same on
-- every backend. A session's key is a SHA-256 of its cookie: a leaked database signs nobody in.
CREATE TABLE leases (
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    owner      TEXT NOT NULL,
    body       TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX leases_owner ON leases (kind, owner, expires_ms);
CREATE INDEX leases_expiry ON leases (kind, expires_ms);

CREATE TABLE rate_counts (
    key       TEXT PRIMARY KEY,
    window_ms BIGINT NOT NULL,
    hits      BIGINT NOT NULL
);
CREATE INDEX rate_counts_window ON rate_counts (window_ms);
