-- The conditions a Flow trigger's multiple condition met within its window, one row each:
-- shared by every process on the file, kept across restarts.
CREATE TABLE condition_windows (
    tenant       TEXT    NOT NULL,
    namespace    TEXT    NOT NULL,
    flow_id      TEXT    NOT NULL,
    trigger_id   TEXT    NOT NULL,
    condition_id TEXT    NOT NULL,
    met          TEXT    NOT NULL,
    met_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant, namespace, flow_id, trigger_id, condition_id, met)
) WITHOUT ROWID;
