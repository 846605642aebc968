-- Full-text search over finished messages and conversation titles (tsvector + GIN, English
-- stemming). A message's vector is empty while it streams, so checkpoints do not re-index it.
ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (
    CASE WHEN status = 'streaming' THEN ''::tsvector ELSE to_tsvector('english', content) END
) STORED;
CREATE INDEX messages_search ON messages USING GIN (search);
ALTER TABLE conversations ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('english', title)
) STORED;
CREATE INDEX conversations_search ON conversations USING GIN (search);
