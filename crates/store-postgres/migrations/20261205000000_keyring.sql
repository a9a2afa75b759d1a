-- kestrel's PostgreSQL store, first step: the keyring and the store-wide state. Never edit this
-- file once released: add a new timestamped migration instead (the store refuses a database
-- whose applied migration's checksum differs from the embedded one).
--
-- Times are Unix milliseconds (UTC), as in the embedded store. Values are stored only as
-- AES-256-GCM ciphertexts (`nonce || ciphertext || tag`), never in clear: the database never
-- sees a secret value, nor the master key that wraps the data keys.

-- Data keys wrapped by the master key: wrapped = nonce || AES-256-GCM(master key, data key) ||
-- tag, additional data "kestrel-keyring-v1" || id (u32 big-endian).
CREATE TABLE keyring (
    id         BIGINT PRIMARY KEY,
    wrapped    BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row of store-wide state.
--   current_key: the data key that seals new values;
--   rotating_to: set while a `rotate-key` is unfinished (a later run resumes it);
--   generation:  bumped by every change of a secret's value or state (every node drops its
--                cache when it moves; NOTIFY kestrel_secrets tells them at once).
CREATE TABLE store_state (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    current_key BIGINT REFERENCES keyring (id),
    rotating_to BIGINT REFERENCES keyring (id),
    generation  BIGINT NOT NULL
);
INSERT INTO store_state (singleton, current_key, rotating_to, generation) VALUES (1, NULL, NULL, 0);
