-- The planner's statistics of `records` follow the rows written, not a share of the table.
--
-- By default PostgreSQL analyses a table once a tenth of it has changed: 650,000 rows of a
-- national year. A kind that grows from nothing meanwhile (correlation's 48,000 botnets) reads as
-- one row to the planner, which then sorts every botnet for a page of 100 (0.34 s) where the
-- (kind, id) index reads 100. Analysed after every 10,000 rows written instead (at most once a
-- minute, autovacuum's pace; an ANALYZE samples a fixed number of rows, about a second at that
-- size).
ALTER TABLE records SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000);
