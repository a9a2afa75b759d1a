-- The server's records, third step. Never edit this file once released: add a new
-- timestamped migration instead.
--
-- A restart looks for executions not ended; no other query filters executions by state alone.
-- Indexing only those (a partial index) spares every ended execution an index entry, and every
-- state change of a running one an index update.
DROP INDEX executions_by_state;
CREATE INDEX executions_unfinished ON executions (tenant, created_at)
    WHERE state IN ('CREATED', 'RUNNING');
