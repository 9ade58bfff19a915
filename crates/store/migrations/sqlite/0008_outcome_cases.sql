-- Outcomes by the case they report on, so that a case's day can be counted with its outcomes
-- (the remediation figures of the daily roll-ups) without reading every outcome. Only outcomes
-- are indexed: the other kinds have no such field and pay nothing on insert.
CREATE INDEX records_outcome_case ON records (json_extract(body, '$.notification')) WHERE kind = 'outcome';
-- Every day of cases is counted again, now with the remediation figures.
INSERT INTO rollup_dirty (kind, day, generation)
SELECT DISTINCT kind, substr(time, 1, 10), 1 FROM records
WHERE kind = 'notification' AND time IS NOT NULL
ON CONFLICT (kind, day) DO UPDATE SET generation = rollup_dirty.generation + 1;
