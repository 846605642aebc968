-- Stored files: one row each; the bytes are in the blob store under files/{owner}/{id}.
-- Ids are UUIDv7 text, so ordering by id is ordering by creation.
CREATE TABLE files (
    id            TEXT PRIMARY KEY NOT NULL,
    owner         TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    -- pending, clean, infected or unscanned.
    state         TEXT NOT NULL,
    threat        TEXT,
    width         BIGINT,
    height        BIGINT,
    variants      BIGINT NOT NULL DEFAULT 0,
    created_ms    BIGINT NOT NULL,
    scanned_ms    BIGINT
);
-- The owner's listing, newest first (and the purge, oldest first).
CREATE INDEX files_owner_id ON files (owner, id DESC);
-- The admin view of files in one state.
CREATE INDEX files_state_id ON files (state, id);

-- What each owner stores: moved in the same transaction as the file rows, by a conditional
-- update that refuses to pass the quota.
CREATE TABLE files_usage (
    owner  TEXT PRIMARY KEY NOT NULL,
    bytes  BIGINT NOT NULL,
    files  BIGINT NOT NULL
);

-- Share links: the token is signed from these fields and never stored.
CREATE TABLE files_links (
    id          TEXT PRIMARY KEY NOT NULL,
    file_id     TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    revoked     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX files_links_file ON files_links (file_id);

-- The service's secrets (the link-signing key), shared by every replica.
CREATE TABLE files_secrets (
    name   TEXT PRIMARY KEY NOT NULL,
    value  BYTEA NOT NULL
);

-- Resumable uploads being sent in parts; the parts wait in the blob store under
-- uploads/{owner}/{id}/{n} until the upload completes, is cancelled or expires.
CREATE TABLE files_uploads (
    id             TEXT PRIMARY KEY NOT NULL,
    owner          TEXT NOT NULL,
    name           TEXT NOT NULL,
    declared_type  TEXT,
    size           BIGINT NOT NULL,
    part_bytes     BIGINT NOT NULL,
    created_ms     BIGINT NOT NULL,
    expires_ms     BIGINT NOT NULL
);
CREATE INDEX files_uploads_owner ON files_uploads (owner);
CREATE INDEX files_uploads_expires ON files_uploads (expires_ms);

-- The parts of an upload stored so far (a part sent again is recorded once).
CREATE TABLE files_upload_parts (
    upload_id  TEXT NOT NULL REFERENCES files_uploads (id) ON DELETE CASCADE,
    n          INTEGER NOT NULL,
    PRIMARY KEY (upload_id, n)
);
