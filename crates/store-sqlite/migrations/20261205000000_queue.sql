-- The execution queue several processes share (`kestrel worker`). Never edit this file once
-- released: add a new timestamped migration instead.
--
-- worker: who holds a RUNNING execution; heartbeat_at: when it last said it was alive (ms);
-- claims: how many times the execution was taken, so a takeover's task runs count as new
-- attempts. A CREATED execution, or a RUNNING one whose heartbeat is too old, is in the queue.
ALTER TABLE executions ADD COLUMN worker TEXT;
ALTER TABLE executions ADD COLUMN heartbeat_at INTEGER;
ALTER TABLE executions ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
CREATE INDEX executions_by_worker ON executions (worker) WHERE state = 'RUNNING';

-- Each tick of a Schedule trigger, once: the first node to insert it starts the execution.
CREATE TABLE trigger_fires (
    tenant     TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    flow_id    TEXT    NOT NULL,
    trigger_id TEXT    NOT NULL,
    fire_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant, namespace, flow_id, trigger_id, fire_at)
) WITHOUT ROWID;
