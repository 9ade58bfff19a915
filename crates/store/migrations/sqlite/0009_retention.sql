-- Retention: per kind, the first day still kept. Records of earlier days are deleted by
-- `botscope db prune` (or `serve` with store.retention_days); their daily roll-ups stay as counted,
-- and a record written later for such a day marks nothing, so the day is never counted again from
-- what little arrives late.
CREATE TABLE retention (
    kind       TEXT PRIMARY KEY,
    before_day TEXT NOT NULL           -- YYYY-MM-DD, UTC
);
