-- Runtime settings an admin changed (one row); absent until the first change, when the
-- start-up configuration's values are in force.
CREATE TABLE runtime_settings (
    id          BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    settings    TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT
);
