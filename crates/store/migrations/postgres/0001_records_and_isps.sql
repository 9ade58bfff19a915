-- Every record, whatever its kind, keyed by its stable id. `body` is the record's JSON; the other
-- columns are copies of the fields that queries filter on.
CREATE TABLE records (
    id          UUID PRIMARY KEY,
    kind        TEXT NOT NULL,
    time        TIMESTAMPTZ,
    ip          TEXT,
    body        JSONB NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX records_kind_time ON records (kind, time);
CREATE INDEX records_ip ON records (ip);

-- The ISP registry: one row per participating ISP, and the ASNs that map to it.
CREATE TABLE isps (
    handle TEXT PRIMARY KEY,
    body   JSONB NOT NULL
);
CREATE TABLE isp_asns (
    asn    BIGINT NOT NULL,
    handle TEXT NOT NULL REFERENCES isps (handle) ON DELETE CASCADE,
    PRIMARY KEY (asn, handle)
);

-- The routing table used for attribution (one snapshot at a time) and where it came from.
CREATE TABLE routed_prefixes (
    prefix TEXT PRIMARY KEY,
    origin TEXT NOT NULL
);
CREATE TABLE routing_snapshot (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    source    TEXT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL,
    prefixes  BIGINT NOT NULL
);
