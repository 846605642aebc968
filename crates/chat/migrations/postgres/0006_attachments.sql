-- Files attached to user messages: what chat keeps of each when it is attached (the file
-- itself is the files service's). Gone with the message; the owner and conversation are
-- copied so a conversation's attachments, and whether a file is attached anywhere else, are
-- found from an index.
CREATE TABLE message_attachments (
    message_id       TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    conversation_id  TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    file_id          TEXT NOT NULL,
    name             TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    kind             TEXT NOT NULL,
    size_bytes       BIGINT NOT NULL,
    PRIMARY KEY (message_id, position)
);
CREATE INDEX message_attachments_conversation ON message_attachments (conversation_id);
CREATE INDEX message_attachments_user_file ON message_attachments (user_id, file_id);
-- How many files each message carries: reading a branch looks for attachments only when one
-- of its messages has some.
ALTER TABLE messages ADD COLUMN attachment_count INTEGER NOT NULL DEFAULT 0;
