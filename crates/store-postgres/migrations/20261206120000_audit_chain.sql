-- The audit trail as a chain (kestrel_store::chain): each row names the row it follows and
-- carries a link, an HMAC of the row and of that row's link under a key derived from the
-- keyring; rows written before this migration have neither. A purge of old rows leaves the
-- anchor: the last purged row's id and link, sealed by the same key.
ALTER TABLE audit ADD COLUMN previous BIGINT;
ALTER TABLE audit ADD COLUMN link BYTEA;
CREATE TABLE audit_anchor (
    one  SMALLINT PRIMARY KEY CHECK (one = 1),
    id   BIGINT  NOT NULL,
    link BYTEA   NOT NULL,
    seal BYTEA   NOT NULL
);
