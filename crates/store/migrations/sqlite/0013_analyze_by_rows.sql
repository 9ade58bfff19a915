-- PostgreSQL analyses `records` by rows written from here (its migration 0013). SQLite plans
-- without statistics in this store, so there is nothing to change; the migration keeps both
-- backends at the same versions.
SELECT 1;
