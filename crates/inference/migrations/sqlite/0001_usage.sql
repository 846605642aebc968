-- One row per inference request, written in batches off the request path.
CREATE TABLE inference_usage (
    id                 TEXT PRIMARY KEY NOT NULL,
    at                 BIGINT NOT NULL,
    day                TEXT NOT NULL,
    user_id            TEXT,
    api_key_id         TEXT,
    model              TEXT NOT NULL,
    backend            TEXT NOT NULL,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    ttft_ms            BIGINT,
    latency_ms         BIGINT NOT NULL,
    status             TEXT NOT NULL,
    cached             BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX inference_usage_user_day ON inference_usage (user_id, day);
CREATE INDEX inference_usage_key_day ON inference_usage (api_key_id, day);
CREATE INDEX inference_usage_model_day ON inference_usage (model, day);
