-- SEO projects: one row each, listed per owner by last change.
CREATE TABLE seo_projects (
    id                  TEXT PRIMARY KEY NOT NULL,
    owner_id            TEXT NOT NULL,
    topic               TEXT NOT NULL,
    primary_keyword     TEXT NOT NULL,
    secondary_keywords  TEXT NOT NULL DEFAULT '[]',
    language            TEXT NOT NULL,
    tone                TEXT NOT NULL,
    audience            TEXT,
    channel_name        TEXT,
    links               TEXT NOT NULL DEFAULT '[]',
    call_to_action      TEXT,
    duration_secs       INTEGER,
    category_id         TEXT,
    archived            INTEGER NOT NULL DEFAULT 0,
    -- Lower-case topic and keywords, for the owner's search.
    search_text         TEXT NOT NULL,
    latest_version      INTEGER,
    latest_score        INTEGER,
    -- The generation job in progress or last run, if any (the bus's job id).
    generation_job      TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX seo_projects_owner_activity ON seo_projects (owner_id, updated_at DESC, id DESC);

-- A project's transcript: the text as given and its parsed segments (JSON).
CREATE TABLE seo_transcripts (
    project_id  TEXT PRIMARY KEY NOT NULL REFERENCES seo_projects (id) ON DELETE CASCADE,
    owner_id    TEXT NOT NULL,
    format      TEXT NOT NULL,
    raw         TEXT NOT NULL,
    segments    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Package versions: never changed; an edit or a restore adds one. A generated version names
-- the job that wrote it, so a job run twice (its worker died after the write) adds it once.
CREATE TABLE seo_versions (
    project_id  TEXT NOT NULL REFERENCES seo_projects (id) ON DELETE CASCADE,
    number      INTEGER NOT NULL,
    owner_id    TEXT NOT NULL,
    source      TEXT NOT NULL,
    author_id   TEXT NOT NULL,
    package     TEXT NOT NULL,
    score       INTEGER NOT NULL,
    model       TEXT,
    job_id      TEXT UNIQUE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (project_id, number)
);
CREATE INDEX seo_versions_owner_time ON seo_versions (owner_id, created_at);
