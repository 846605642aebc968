-- The tamper-evident chain. Every entry gets its place (`seq`: 1, 2, 3… without gaps), the
-- previous entry's hash and its own. Rows written before this migration have none yet: the
-- service chains them once at start (`SqlAuditLog::open`), which is the only update the
-- triggers below allow.
ALTER TABLE audit_log
    ADD COLUMN seq BIGINT,
    ADD COLUMN prev_hash TEXT,
    ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);

-- The newest entry's seq and hash. Every append updates this one row first in its
-- transaction (taking its row lock), so appends from every process queue on it and the chain
-- cannot fork.
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
CREATE FUNCTION audit_archives_contiguous() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Two archivers racing both compute the same from_seq: the unique index refuses the later.
    IF NEW.from_seq <> (SELECT COALESCE(MAX(to_seq), 0) + 1 FROM audit_archives)
        OR NEW.to_seq > (SELECT seq FROM audit_head WHERE id = 1) THEN
        RAISE EXCEPTION 'audit archives must continue where the last one ended';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_archives_contiguous BEFORE INSERT ON audit_archives
FOR EACH ROW EXECUTE FUNCTION audit_archives_contiguous();
CREATE TRIGGER audit_archives_no_change BEFORE UPDATE OR DELETE ON audit_archives
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_archives_no_truncate BEFORE TRUNCATE ON audit_archives
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Still append-only, with two narrow exceptions: an unchained row may receive its chain
-- fields (nothing else may change), and a row may be deleted once an archive covers it.
DROP TRIGGER audit_log_no_change ON audit_log;
CREATE FUNCTION audit_log_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq IS NULL AND OLD.hash IS NULL
        AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
        AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.target, NEW.outcome, NEW.ip,
             NEW.user_agent, NEW.request_id, NEW.details)
            IS NOT DISTINCT FROM
            (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.target, OLD.outcome, OLD.ip,
             OLD.user_agent, OLD.request_id, OLD.details) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_guard_update();
CREATE FUNCTION audit_log_guard_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq IS NOT NULL AND EXISTS (
        SELECT 1 FROM audit_archives WHERE OLD.seq BETWEEN from_seq AND to_seq
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: only archived entries may be deleted';
END;
$$;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_guard_delete();
-- TRUNCATE skips row triggers.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
