-- The conditions a Flow trigger's multiple condition met within its window, one row each:
-- shared by every node, kept across restarts.
CREATE TABLE condition_windows (
    tenant       TEXT COLLATE "C" NOT NULL,
    namespace    TEXT COLLATE "C" NOT NULL,
    flow_id      TEXT COLLATE "C" NOT NULL,
    trigger_id   TEXT COLLATE "C" NOT NULL,
    condition_id TEXT COLLATE "C" NOT NULL,
    met          TEXT COLLATE "C" NOT NULL,
    met_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant, namespace, flow_id, trigger_id, condition_id, met)
);
