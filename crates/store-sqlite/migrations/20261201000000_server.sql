-- The server's records, second step: what the first schema's server tables lacked. Never edit
-- this file once released: add a new timestamped migration instead.
--
-- Everything written here is masked, as readers see it, except the sealed inputs of an
-- execution not yet ended (what a restart needs to resume it).

-- An execution's histories, outputs and labels as JSON:
--   {"histories": [{"state": "RUNNING", "at": <ms>}], "outputs": {...}, "labels": [...]}.
-- inputs_key: the data key of inputs_sealed (additional data: "kestrel-execution-inputs-v1",
-- tenant, execution id); both are set to NULL when the execution ends.
ALTER TABLE executions ADD COLUMN record TEXT NOT NULL DEFAULT '{}';
ALTER TABLE executions ADD COLUMN inputs_key INTEGER REFERENCES keyring (id);
-- Searches list the newest first; retention finds the oldest ended ones.
CREATE INDEX executions_by_created ON executions (tenant, created_at);
CREATE INDEX executions_by_end ON executions (ended_at) WHERE ended_at IS NOT NULL;

-- A task run's attempts, parent, ForEach value, metrics (JSON, masked). One row per task run:
-- `attempt` is the number of its last attempt; `position` its place in the execution's list
-- (the order task runs started).
ALTER TABLE task_runs ADD COLUMN record TEXT NOT NULL DEFAULT '{}';
ALTER TABLE task_runs ADD COLUMN position INTEGER NOT NULL DEFAULT 0;

-- The task that emitted a log entry (NULL for the server's own entries).
ALTER TABLE logs ADD COLUMN task_id TEXT;
