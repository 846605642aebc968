-- Backups that completed (`confab backup`), written by the backup command at its end, so
-- that the running admin service can export the time of the last one
-- (confab_backup_last_success_timestamp_seconds).
CREATE TABLE admin_backups (
    id            TEXT PRIMARY KEY NOT NULL,
    started_at    BIGINT NOT NULL,
    completed_at  BIGINT NOT NULL,
    backend       TEXT NOT NULL,
    location      TEXT NOT NULL,
    bytes         BIGINT NOT NULL,
    files         BIGINT NOT NULL
);
CREATE INDEX admin_backups_completed_at ON admin_backups (completed_at);
