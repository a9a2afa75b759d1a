-- kestrel's PostgreSQL store, the server's records: flows, executions (and the queue every
-- worker takes them from), task runs, logs, users, tokens, trigger ticks. Never edit this file
-- once released: add a new timestamped migration instead.
--
-- The same columns as the embedded store's tables, so both answer alike. Times are Unix
-- milliseconds (UTC). JSON columns are TEXT, not JSONB: readers get back the keys in the order
-- they were written. Names and ids sort bytewise (COLLATE "C"), as in SQLite, whatever the
-- database's locale. Everything written here is masked, as readers see it, except the sealed
-- inputs of an execution not yet ended (what a restart needs to resume it).

-- Flow sources, every revision kept.
CREATE TABLE flows (
    tenant     TEXT COLLATE "C" NOT NULL,
    namespace  TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    revision   BIGINT  NOT NULL,
    source     TEXT    NOT NULL,
    deleted    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (tenant, namespace, id, revision)
);

-- Executions.
--   record:        {"histories": [{"state": "RUNNING", "at": <ms>}], "outputs": {...},
--                  "labels": [...]} (JSON text);
--   inputs_key, inputs_sealed: the raw inputs sealed under data key inputs_key (additional
--                  data: "kestrel-execution-inputs-v1", tenant, execution id); both NULL once
--                  the execution ends;
--   worker, heartbeat_at, claims: who holds a RUNNING execution, when it last said it was
--                  alive, how many times the execution was taken. A CREATED execution, or a
--                  RUNNING one whose heartbeat is too old, is in the queue.
CREATE TABLE executions (
    id                TEXT COLLATE "C" PRIMARY KEY,
    tenant            TEXT COLLATE "C" NOT NULL,
    namespace         TEXT COLLATE "C" NOT NULL,
    flow_id           TEXT COLLATE "C" NOT NULL,
    flow_revision     BIGINT  NOT NULL,
    state             TEXT    NOT NULL,
    inputs_masked     TEXT,
    record            TEXT    NOT NULL DEFAULT '{}',
    inputs_key        BIGINT REFERENCES keyring (id),
    inputs_sealed     BYTEA,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    ended_at          BIGINT,
    worker            TEXT,
    heartbeat_at      BIGINT,
    claims            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX executions_by_flow ON executions (tenant, namespace, flow_id, created_at);
-- Searches list the newest first; retention finds the oldest ended ones.
CREATE INDEX executions_by_created ON executions (tenant, created_at);
CREATE INDEX executions_by_end ON executions (ended_at) WHERE ended_at IS NOT NULL;
-- The queue, and what a restart finds: only executions not ended have an entry, so ended
-- ones (nearly all) cost it nothing.
CREATE INDEX executions_unfinished ON executions (tenant, created_at, id)
    WHERE state IN ('CREATED', 'RUNNING');
-- Heartbeats find a worker's executions.
CREATE INDEX executions_by_worker ON executions (worker) WHERE state = 'RUNNING';

-- Task runs, one row per task run: `attempt` is the number of its last attempt, `position` its
-- place in the execution's list (the order task runs started), record its attempts, parent,
-- ForEach value and metrics (JSON text, masked).
CREATE TABLE task_runs (
    id             TEXT COLLATE "C" NOT NULL,
    attempt        BIGINT  NOT NULL,
    execution_id   TEXT COLLATE "C" NOT NULL REFERENCES executions (id),
    task_id        TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    outputs_masked TEXT,
    error          TEXT,
    started_at     BIGINT  NOT NULL,
    ended_at       BIGINT,
    record         TEXT    NOT NULL DEFAULT '{}',
    position       BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (id, attempt)
);
CREATE INDEX task_runs_by_execution ON task_runs (execution_id, position);

-- Log entries, masked before they are written; task_id NULL for the server's own entries.
CREATE TABLE logs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id),
    task_id      TEXT,
    task_run_id  TEXT,
    attempt      BIGINT,
    at           BIGINT NOT NULL,
    level        TEXT   NOT NULL,
    message      TEXT   NOT NULL
);
CREATE INDEX logs_by_execution ON logs (execution_id, id);

-- People; password_hash is argon2 (PHC string).
CREATE TABLE users (
    name          TEXT COLLATE "C" PRIMARY KEY,
    password_hash TEXT   NOT NULL,
    secrets       TEXT   NOT NULL CHECK (secrets IN ('read', 'write', 'none')),
    created_at    BIGINT NOT NULL
);

-- API tokens, stored hashed (SHA-256 of the token); shown once at creation.
CREATE TABLE tokens (
    name       TEXT COLLATE "C" PRIMARY KEY,
    token_hash TEXT   NOT NULL UNIQUE,
    secrets    TEXT   NOT NULL CHECK (secrets IN ('read', 'write', 'none')),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- The namespaces a user or token reaches (none listed: every namespace).
CREATE TABLE grants (
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'token')),
    principal      TEXT COLLATE "C" NOT NULL,
    namespace      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (principal_kind, principal, namespace)
);

-- Each tick of a Schedule trigger, once: the first node to insert it starts the execution.
CREATE TABLE trigger_fires (
    tenant     TEXT COLLATE "C" NOT NULL,
    namespace  TEXT COLLATE "C" NOT NULL,
    flow_id    TEXT COLLATE "C" NOT NULL,
    trigger_id TEXT COLLATE "C" NOT NULL,
    fire_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant, namespace, flow_id, trigger_id, fire_at)
);
-- Retention removes the old ticks.
CREATE INDEX trigger_fires_by_time ON trigger_fires (fire_at);
