-- The YouTube Data API quota spent per bucket (daily_units, search_calls, insert_calls) per
-- quota day: the calendar day in America/Los_Angeles, as YYYY-MM-DD. Reservations are
-- conditional upserts, so `used` never passes `quota_limit`. `exhausted` is 1 once Google has
-- answered quotaExceeded for the bucket that day.
CREATE TABLE seo_quota_usage (
    day          TEXT NOT NULL,
    bucket       TEXT NOT NULL,
    used         BIGINT NOT NULL DEFAULT 0,
    quota_limit  BIGINT NOT NULL,
    exhausted    BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (day, bucket)
);
