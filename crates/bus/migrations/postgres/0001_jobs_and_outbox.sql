-- Durable jobs: leased by workers, kept alive by heartbeats, retried with backoff.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY NOT NULL,
    kind              TEXT NOT NULL,
    payload           TEXT NOT NULL,
    priority          BIGINT NOT NULL DEFAULT 0,
    state             TEXT NOT NULL,
    attempts          BIGINT NOT NULL DEFAULT 0,
    max_attempts      BIGINT NOT NULL,
    run_after         BIGINT NOT NULL,
    progress          DOUBLE PRECISION,
    progress_message  TEXT,
    result            TEXT,
    error             TEXT,
    cancel_requested  BIGINT NOT NULL DEFAULT 0,
    created_by        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    worker            TEXT,
    lease_token       TEXT,
    lease_until       BIGINT
);
-- Leasing: the most urgent queued job of a kind, in index order.
CREATE INDEX jobs_queued ON jobs (kind, priority DESC, run_after, id) WHERE state = 'queued';
-- Leasing: running jobs whose lease expired.
CREATE INDEX jobs_leased ON jobs (kind, lease_until) WHERE state = 'running';
-- Listing, newest first, by state, kind or creator.
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_kind ON jobs (kind, id);
CREATE INDEX jobs_created_by ON jobs (created_by, id);

-- Durable events (the outbox). Publishers serialise on a table lock, so sequence numbers
-- become visible in order and a consumer never skips one that commits late.
CREATE TABLE bus_events (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic  TEXT NOT NULL,
    kind   TEXT NOT NULL,
    data   TEXT NOT NULL,
    at     BIGINT NOT NULL
);
-- Named consumers and the last sequence number each acknowledged.
CREATE TABLE bus_consumers (
    name        TEXT PRIMARY KEY NOT NULL,
    position    BIGINT NOT NULL DEFAULT 0,
    updated_at  BIGINT NOT NULL
);
