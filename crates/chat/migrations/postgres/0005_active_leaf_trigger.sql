-- A new message becomes its conversation's active leaf and bumps its activity, in the
-- statement that inserts it: sending stores the question and its answer with one INSERT.
CREATE FUNCTION messages_active_leaf() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations SET active_leaf_id = NEW.id, updated_at = NEW.created_at
    WHERE id = NEW.conversation_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_active_leaf AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_active_leaf();
