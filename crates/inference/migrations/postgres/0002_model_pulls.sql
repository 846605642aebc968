-- Model pulls run as background jobs; a pull still queued or running when the process stops
-- is resumed at the next start (the partial file is continued with a range request).
CREATE TABLE model_pulls (
    id          TEXT PRIMARY KEY NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT,
    model       TEXT NOT NULL,
    state       TEXT NOT NULL,
    bytes       BIGINT NOT NULL DEFAULT 0,
    total       BIGINT,
    error       TEXT,
    created_by  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX model_pulls_state ON model_pulls (state);
