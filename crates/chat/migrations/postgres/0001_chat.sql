-- Conversations: one row each, listed per user by last activity.
CREATE TABLE conversations (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL,
    title           TEXT NOT NULL DEFAULT '',
    model           TEXT,
    system_prompt   TEXT,
    params          TEXT NOT NULL DEFAULT '{}',
    folder          TEXT,
    pinned          BIGINT NOT NULL DEFAULT 0,
    archived        BIGINT NOT NULL DEFAULT 0,
    active_leaf_id  TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX conversations_user_activity ON conversations (user_id, updated_at DESC, id DESC);

CREATE TABLE conversation_tags (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    tag             TEXT NOT NULL,
    PRIMARY KEY (conversation_id, tag)
);
CREATE INDEX conversation_tags_tag ON conversation_tags (tag);

-- Messages: one row each, a tree through parent_id (edits and regenerations are siblings).
CREATE TABLE messages (
    id                 TEXT PRIMARY KEY NOT NULL,
    conversation_id    TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    parent_id          TEXT REFERENCES messages (id) ON DELETE CASCADE,
    role               TEXT NOT NULL,
    content            TEXT NOT NULL,
    status             TEXT NOT NULL,
    model              TEXT,
    error              TEXT,
    prompt_tokens      BIGINT,
    completion_tokens  BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at);
CREATE INDEX messages_parent ON messages (parent_id);
-- Only rows still streaming: the start-up sweep that marks them interrupted reads this.
CREATE INDEX messages_streaming ON messages (status) WHERE status = 'streaming';

-- Named system prompts with parameters, per user.
CREATE TABLE chat_presets (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL,
    name           TEXT NOT NULL,
    system_prompt  TEXT,
    params         TEXT NOT NULL DEFAULT '{}',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (user_id, name)
);
