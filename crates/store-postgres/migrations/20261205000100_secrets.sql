-- kestrel's PostgreSQL store: secrets, their versions and the audit trail, as the embedded
-- store keeps them. Never edit this file once released: add a new timestamped migration instead.
--
-- Times are Unix milliseconds (UTC). Tenants default to 'main'. Names sort byte by byte
-- (COLLATE "C"), as the embedded store sorts them, whatever the database's locale. Values are
-- stored only as AES-256-GCM ciphertexts (`nonce || ciphertext || tag`), never in clear.

-- A secret: its address, metadata (Kestra's shape: description, tags [{key, value}] as JSON)
-- and the number of its latest version (versions keep counting after a destroy). A change
-- locks this row, so two nodes setting one key get distinct versions.
CREATE TABLE secrets (
    tenant         TEXT COLLATE "C" NOT NULL,
    namespace      TEXT COLLATE "C" NOT NULL,
    key            TEXT COLLATE "C" NOT NULL,
    description    TEXT,
    tags           TEXT   NOT NULL DEFAULT '[]',
    latest_version BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant, namespace, key)
);

-- Versions of a secret (the newest N kept). sealed = nonce || ciphertext || tag under data key
-- key_id, additional data binding tenant, namespace, key, version and key_id. Destroyed
-- versions keep their row (for `versions`) with sealed and key_id NULL.
CREATE TABLE secret_versions (
    tenant       TEXT COLLATE "C" NOT NULL,
    namespace    TEXT COLLATE "C" NOT NULL,
    key          TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    actor_kind   TEXT   NOT NULL,
    actor_id     TEXT   NOT NULL,
    deleted_at   BIGINT,
    destroyed_at BIGINT,
    key_id       BIGINT REFERENCES keyring (id),
    sealed       BYTEA,
    PRIMARY KEY (tenant, namespace, key, version),
    FOREIGN KEY (tenant, namespace, key) REFERENCES secrets (tenant, namespace, key)
);
-- rotate-key finds the versions not yet under the new key.
CREATE INDEX secret_versions_by_key_id ON secret_versions (key_id) WHERE sealed IS NOT NULL;

-- The audit trail: who (actor), what (action, tenant, namespace, key, version), when. Never a
-- value. Keyring actions (rotate-key, rekey) have no tenant, namespace or key.
CREATE TABLE audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    actor_kind TEXT   NOT NULL,
    actor_id   TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    tenant     TEXT COLLATE "C",
    namespace  TEXT COLLATE "C",
    key        TEXT COLLATE "C",
    version    BIGINT
);
CREATE INDEX audit_by_namespace ON audit (tenant, namespace, id);
CREATE INDEX audit_by_time ON audit (at);
