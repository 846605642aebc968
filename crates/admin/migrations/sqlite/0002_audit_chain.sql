-- The tamper-evident chain. Every entry gets its place (`seq`: 1, 2, 3… without gaps), the
-- previous entry's hash and its own. Rows written before this migration have none yet: the
-- service chains them once at start (`SqlAuditLog::open`), which is the only update the
-- triggers below allow.
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);

-- The newest entry's seq and hash. Every append updates this one row first in its
-- transaction, so appends from every process queue on it and the chain cannot fork.
CREATE TABLE audit_head (
    id    BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Entries moved to JSONL files by retention: contiguous seq ranges, recorded before their
-- rows may be deleted.
CREATE TABLE audit_archives (
    id           TEXT PRIMARY KEY NOT NULL,
    from_seq     BIGINT NOT NULL UNIQUE,
    to_seq       BIGINT NOT NULL UNIQUE,
    entries      BIGINT NOT NULL,
    last_hash    TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    file_sha256  TEXT NOT NULL,
    at           BIGINT NOT NULL,
    CHECK (from_seq >= 1 AND to_seq >= from_seq AND entries = to_seq - from_seq + 1)
);
CREATE TRIGGER audit_archives_contiguous BEFORE INSERT ON audit_archives
WHEN NEW.from_seq <> (SELECT COALESCE(MAX(to_seq), 0) + 1 FROM audit_archives)
    OR NEW.to_seq > (SELECT seq FROM audit_head WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'audit archives must continue where the last one ended'); END;
CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only'); END;
CREATE TRIGGER audit_archives_no_delete BEFORE DELETE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only'); END;

-- Still append-only, with two narrow exceptions: an unchained row may receive its chain
-- fields (nothing else may change), and a row may be deleted once an archive covers it.
DROP TRIGGER audit_log_no_update;
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (
    OLD.seq IS NULL AND OLD.hash IS NULL
    AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
    AND NEW.id IS OLD.id AND NEW.at IS OLD.at AND NEW.actor IS OLD.actor
    AND NEW.action IS OLD.action AND NEW.target IS OLD.target AND NEW.outcome IS OLD.outcome
    AND NEW.ip IS OLD.ip AND NEW.user_agent IS OLD.user_agent
    AND NEW.request_id IS OLD.request_id AND NEW.details IS OLD.details
)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq IS NULL OR NOT EXISTS (
    SELECT 1 FROM audit_archives WHERE OLD.seq BETWEEN from_seq AND to_seq
)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: only archived entries may be deleted'); END;
