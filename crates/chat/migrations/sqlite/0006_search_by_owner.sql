-- Full-text search scoped to one user inside the index. The FTS tables gain the owner as an
-- indexed column (`user_id`, the content tables' own column, so the index and its external
-- content agree), and every search matches `user_id : "<id>"` together with its words. FTS5
-- evaluates an AND by leapfrogging its terms' posting lists (each seeks to the next candidate
-- rowid of the others through the doclist index), so a search visits about as many entries as
-- the owner's own rows hold, not everyone's matches of a common word. Rebuilt from the content
-- tables: finished messages only, as the triggers index them.
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_finish;
DROP TRIGGER messages_fts_update;
DROP TRIGGER messages_fts_delete;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, user_id, content='messages', content_rowid='rowid', tokenize='porter unicode61',
    prefix='3 4'
);
INSERT INTO messages_fts (rowid, content, user_id)
    SELECT rowid, content, user_id FROM messages WHERE status <> 'streaming';
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, content, user_id) VALUES (new.rowid, new.content, new.user_id);
END;
CREATE TRIGGER messages_fts_finish AFTER UPDATE OF status ON messages
WHEN old.status = 'streaming' AND new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (rowid, content, user_id) VALUES (new.rowid, new.content, new.user_id);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.status <> 'streaming' AND new.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, user_id)
        VALUES ('delete', old.rowid, old.content, old.user_id);
    INSERT INTO messages_fts (rowid, content, user_id) VALUES (new.rowid, new.content, new.user_id);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.status <> 'streaming' BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content, user_id)
        VALUES ('delete', old.rowid, old.content, old.user_id);
END;

DROP TRIGGER conversations_fts_insert;
DROP TRIGGER conversations_fts_update;
DROP TRIGGER conversations_fts_delete;
DROP TABLE conversations_fts;
CREATE VIRTUAL TABLE conversations_fts USING fts5(
    title, user_id, content='conversations', content_rowid='rowid', tokenize='porter unicode61',
    prefix='3 4'
);
INSERT INTO conversations_fts (rowid, title, user_id)
    SELECT rowid, title, user_id FROM conversations;
CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversations_fts (rowid, title, user_id) VALUES (new.rowid, new.title, new.user_id);
END;
CREATE TRIGGER conversations_fts_update AFTER UPDATE OF title ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title, user_id)
        VALUES ('delete', old.rowid, old.title, old.user_id);
    INSERT INTO conversations_fts (rowid, title, user_id) VALUES (new.rowid, new.title, new.user_id);
END;
CREATE TRIGGER conversations_fts_delete AFTER DELETE ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title, user_id)
        VALUES ('delete', old.rowid, old.title, old.user_id);
END;
