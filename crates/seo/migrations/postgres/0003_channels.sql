-- A user's connected YouTube channel: the OAuth refresh token, sealed (XChaCha20-Poly1305,
-- bound to the owner), and whether it still works.
CREATE TABLE seo_channels (
    owner_id       TEXT PRIMARY KEY NOT NULL,
    refresh_token  TEXT NOT NULL,
    status         TEXT NOT NULL,
    connected_at   BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Consent flows under way: the state sent to Google, the PKCE verifier (sealed), where
-- Google sends the user back, and until when the flow may finish.
CREATE TABLE seo_oauth_states (
    state         TEXT PRIMARY KEY NOT NULL,
    owner_id      TEXT NOT NULL,
    verifier      TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX seo_oauth_states_owner ON seo_oauth_states (owner_id);
