-- Read-only share links: a snapshot of the active branch, taken when the link is made, so the
-- link shows what the owner chose to share and nothing else of theirs.
CREATE TABLE share_links (
    token            TEXT PRIMARY KEY NOT NULL,
    conversation_id  TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    snapshot         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    revoked_at       BIGINT
);
CREATE INDEX share_links_conversation ON share_links (conversation_id);

-- Reactions to messages: one per user, message and emoji.
CREATE TABLE message_reactions (
    message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    emoji       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);
