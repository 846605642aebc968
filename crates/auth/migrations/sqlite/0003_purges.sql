-- Deleting a user across services (the `user.purge` job). One row per deleted user: written
-- before the durable purge request is published, marked once it was, finished when the
-- account went; kept afterwards as the record of the deletion.
CREATE TABLE auth_purges (
    user_id       TEXT PRIMARY KEY NOT NULL,
    requested_at  BIGINT NOT NULL,
    published_at  BIGINT,
    finished_at   BIGINT
);
-- The services' answers (durable `user.purge_acknowledged` events), each once by its id;
-- a service's counts are the sum of its answers.
CREATE TABLE auth_purge_acks (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    service     TEXT NOT NULL,
    counts      TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX auth_purge_acks_user ON auth_purge_acks (user_id);
