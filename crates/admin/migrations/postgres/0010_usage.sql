-- Usage statistics: a read model of the `usage.recorded` events that the inference service
-- publishes, one row per UTC day, user and model. `latency_buckets` is a JSON array of
-- request counts per fixed log-spaced latency bucket (see src/usage.rs), so rows merge and
-- percentiles come from the merged counts. The consumer `admin.usage` is its only writer.
CREATE TABLE usage_daily (
    day                TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    model              TEXT NOT NULL,
    requests           BIGINT NOT NULL,
    errors             BIGINT NOT NULL,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    latency_ms_sum     BIGINT NOT NULL,
    latency_buckets    TEXT NOT NULL,
    PRIMARY KEY (day, user_id, model)
);
CREATE INDEX usage_daily_user_day ON usage_daily (user_id, day);

-- The ids of the events counted in usage_daily, written in the same transaction, so an event
-- delivered again (at-least-once) or a usage row published twice (a crash between publishing
-- and marking it) is counted once. Entries older than a week are pruned.
CREATE TABLE usage_applied (
    event_id    TEXT PRIMARY KEY NOT NULL,
    applied_at  BIGINT NOT NULL
);
CREATE INDEX usage_applied_at ON usage_applied (applied_at);
