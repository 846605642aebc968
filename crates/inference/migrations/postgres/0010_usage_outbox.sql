-- The usage rows whose `usage.recorded` event is not yet durable, in a table of their own. A
-- flag on the usage rows made every publish an update of the row: not a HOT update (the flag
-- was in a partial index's predicate), so all five indexes got new entries, and the partial
-- index of unpublished rows filled with dead entries that each "what is unpublished?" scan
-- walked again until a vacuum: work that grew with the table. Rows are now written once;
-- an id enters this small table with its row and leaves it once the event is stored.
CREATE TABLE inference_usage_outbox (
    id  TEXT PRIMARY KEY NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX inference_usage_outbox_at ON inference_usage_outbox (at, id);
INSERT INTO inference_usage_outbox (id, at) SELECT id, at FROM inference_usage WHERE published = 0;
DROP INDEX inference_usage_unpublished;
ALTER TABLE inference_usage DROP COLUMN published;
