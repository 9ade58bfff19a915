-- PostgreSQL's 0015 splits `records` into monthly partitions for the large kinds. SQLite, the
-- embedded store, has no partitions and keeps one table; this keeps both backends' migrations
-- numbered alike, so `db status` reads the same on both.
SELECT 1;
