-- Each usage row is published once as a durable `usage.recorded` event (the usage read model
-- of the admin service is built from them). A row is marked after its event is stored, so a
-- crash between the two publishes it again (consumers drop repeated event ids). Rows that
-- predate this column start unpublished: they are published once, which backfills the model.
ALTER TABLE inference_usage ADD COLUMN published BIGINT NOT NULL DEFAULT 0;
CREATE INDEX inference_usage_unpublished ON inference_usage (at, id) WHERE published = 0;
