-- The owner of each message, copied from its conversation: searches filter by owner before
-- joining, so a user's newest matches come straight from an index.
ALTER TABLE messages ADD COLUMN user_id TEXT;
UPDATE messages SET user_id = (SELECT c.user_id FROM conversations c WHERE c.id = messages.conversation_id);
CREATE INDEX messages_user_created ON messages (user_id, created_at);
