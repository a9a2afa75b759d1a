-- kestrel's embedded store, first schema. Never edit this file once released: add a new
-- timestamped migration instead (the store refuses a database whose applied migration's checksum
-- differs from the embedded one).
--
-- Times are Unix milliseconds (UTC). Tenants default to 'main'. Values are stored only as
-- AES-256-GCM ciphertexts (`nonce || ciphertext || tag`), never in clear.

-- The keyring: data keys wrapped by the master key, which lives outside this file.
-- wrapped = nonce || AES-256-GCM(master key, data key) || tag, additional data
-- "kestrel-keyring-v1" || id (u32 big-endian).
CREATE TABLE keyring (
    id         INTEGER PRIMARY KEY,
    wrapped    BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row of store-wide state.
--   current_key: the data key that seals new values;
--   rotating_to: set while a `rotate-key` is unfinished (a later run resumes it);
--   generation:  bumped by every change of a secret's value or state, so every process can
--                drop its cache when another process changed something (audit rows do not
--                bump it, so reads do not flush caches).
CREATE TABLE store_state (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    current_key INTEGER REFERENCES keyring (id),
    rotating_to INTEGER REFERENCES keyring (id),
    generation  INTEGER NOT NULL
);
INSERT INTO store_state (singleton, current_key, rotating_to, generation) VALUES (1, NULL, NULL, 0);

-- A secret: its address, metadata (Kestra's shape: description, tags [{key, value}] as JSON)
-- and the number of its latest version (versions keep counting after a destroy).
CREATE TABLE secrets (
    tenant         TEXT    NOT NULL,
    namespace      TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    description    TEXT,
    tags           TEXT    NOT NULL DEFAULT '[]',
    latest_version INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant, namespace, key)
) WITHOUT ROWID;

-- Versions of a secret (the newest N kept). sealed = nonce || ciphertext || tag under data key
-- key_id, additional data binding tenant, namespace, key, version and key_id. Destroyed
-- versions keep their row (for `versions`) with sealed and key_id NULL.
CREATE TABLE secret_versions (
    tenant       TEXT    NOT NULL,
    namespace    TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    actor_kind   TEXT    NOT NULL,
    actor_id     TEXT    NOT NULL,
    deleted_at   INTEGER,
    destroyed_at INTEGER,
    key_id       INTEGER REFERENCES keyring (id),
    sealed       BLOB,
    PRIMARY KEY (tenant, namespace, key, version),
    FOREIGN KEY (tenant, namespace, key) REFERENCES secrets (tenant, namespace, key)
) WITHOUT ROWID;
-- rotate-key finds the versions not yet under the new key.
CREATE INDEX secret_versions_by_key_id ON secret_versions (key_id) WHERE sealed IS NOT NULL;

-- The audit trail: who (actor), what (action, tenant, namespace, key, version), when. Never a
-- value. Keyring actions (rotate-key, rekey) have no tenant, namespace or key.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor_kind TEXT    NOT NULL,
    actor_id   TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    tenant     TEXT,
    namespace  TEXT,
    key        TEXT,
    version    INTEGER
);
CREATE INDEX audit_by_namespace ON audit (tenant, namespace, id);
CREATE INDEX audit_by_time ON audit (at);

-- The server's tables. Created now so the schema is designed as a whole; the store trait's
-- methods for them come with the server.

-- Flow sources, every revision kept.
CREATE TABLE flows (
    tenant     TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    source     TEXT    NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, namespace, id, revision)
) WITHOUT ROWID;

-- Executions. Readers see masked data only; what expressions of the same execution need in
-- clear (SECRET inputs, the mask registry) is sealed with additional data binding tenant and
-- execution id.
CREATE TABLE executions (
    id                 TEXT    PRIMARY KEY,
    tenant             TEXT    NOT NULL,
    namespace          TEXT    NOT NULL,
    flow_id            TEXT    NOT NULL,
    flow_revision      INTEGER NOT NULL,
    state              TEXT    NOT NULL,
    inputs_masked      TEXT,
    inputs_sealed      BLOB,
    mask_registry_key  INTEGER REFERENCES keyring (id),
    mask_registry      BLOB,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    ended_at           INTEGER
);
CREATE INDEX executions_by_flow ON executions (tenant, namespace, flow_id, created_at);
CREATE INDEX executions_by_state ON executions (state, updated_at);

-- Task runs; a retry or a resume after a crash is a new attempt of the same task run.
-- outputs_sealed holds the real outputs (additional data: tenant, execution, task run), for
-- expressions of the same execution only.
CREATE TABLE task_runs (
    id             TEXT    NOT NULL,
    attempt        INTEGER NOT NULL,
    execution_id   TEXT    NOT NULL REFERENCES executions (id),
    task_id        TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    outputs_masked TEXT,
    outputs_key    INTEGER REFERENCES keyring (id),
    outputs_sealed BLOB,
    error          TEXT,
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER,
    PRIMARY KEY (id, attempt)
) WITHOUT ROWID;
CREATE INDEX task_runs_by_execution ON task_runs (execution_id, started_at);

-- Log entries, masked before they are written.
CREATE TABLE logs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT    NOT NULL REFERENCES executions (id),
    task_run_id  TEXT,
    attempt      INTEGER,
    at           INTEGER NOT NULL,
    level        TEXT    NOT NULL,
    message      TEXT    NOT NULL
);
CREATE INDEX logs_by_execution ON logs (execution_id, id);

-- People; password_hash is argon2 (PHC string). secrets: read | write | none.
CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    secrets       TEXT    NOT NULL CHECK (secrets IN ('read', 'write', 'none')),
    created_at    INTEGER NOT NULL
);

-- API tokens, stored hashed (SHA-256 of the token); shown once at creation.
CREATE TABLE tokens (
    name       TEXT    PRIMARY KEY,
    token_hash TEXT    NOT NULL UNIQUE,
    secrets    TEXT    NOT NULL CHECK (secrets IN ('read', 'write', 'none')),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- The namespaces a user or token reaches (none listed: every namespace).
CREATE TABLE grants (
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'token')),
    principal      TEXT NOT NULL,
    namespace      TEXT NOT NULL,
    PRIMARY KEY (principal_kind, principal, namespace)
) WITHOUT ROWID;
