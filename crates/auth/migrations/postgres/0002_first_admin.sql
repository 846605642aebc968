-- Who became the first admin. Registration claims the one row (id = 1) in the transaction
-- that inserts the user, so racing first sign-ups make exactly one admin: the unique key
-- makes the second claim wait for the first and then find it taken.
CREATE TABLE auth_first_admin (
    id          BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    user_id     TEXT NOT NULL,
    claimed_at  BIGINT NOT NULL
);
-- A database that already has users has had its first admin.
INSERT INTO auth_first_admin (id, user_id, claimed_at)
SELECT 1, id, created_at FROM users ORDER BY created_at, id LIMIT 1;
