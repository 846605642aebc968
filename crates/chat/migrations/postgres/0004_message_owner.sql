-- The owner of each message, copied from its conversation: a search can then walk the user's
-- messages newest first through (user_id, created_at) and test each against the query, which
-- for a common word finds the newest 500 matches without fetching all of them; the planner
-- still takes the GIN index for rare words.
ALTER TABLE messages ADD COLUMN user_id TEXT;
UPDATE messages SET user_id = c.user_id FROM conversations c WHERE c.id = messages.conversation_id;
CREATE INDEX messages_user_created ON messages (user_id, created_at DESC);
