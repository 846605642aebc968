-- The durable job that runs each pull (jobs live in the bus's job queue).
ALTER TABLE model_pulls ADD COLUMN job_id TEXT;
