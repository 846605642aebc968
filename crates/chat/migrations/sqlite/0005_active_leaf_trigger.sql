-- A new message becomes its conversation's active leaf and bumps its activity, in the
-- statement that inserts it: sending stores the question and its answer with one INSERT,
-- which holds SQLite's write lock for one round trip instead of a transaction's five.
CREATE TRIGGER messages_active_leaf AFTER INSERT ON messages
BEGIN
    UPDATE conversations SET active_leaf_id = NEW.id, updated_at = NEW.created_at
    WHERE id = NEW.conversation_id;
END;
