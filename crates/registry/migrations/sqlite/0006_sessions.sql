-- Browser sessions of the web app. The cookie holds 32 random bytes; only their SHA-256 is stored, so a
-- database leak yields no usable session. A session belongs to a principal: today the API token that was
-- pasted on the sign-in page (`principal_kind = 'token'`, `token_id`); the OpenID Connect sign-in (issue
-- 14) adds `principal_kind = 'oidc'` with the provider's `subject`, without another migration. The role is
-- fixed at sign-in. A token's sessions end with the token: every use checks that it is live.
-- A backup carries the rows like every table; without the cookie's bytes a row is useless.
CREATE TABLE web_session (
    id INTEGER PRIMARY KEY,
    session_hash TEXT NOT NULL UNIQUE CHECK (length(session_hash) = 64),
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('token', 'oidc')),
    token_id INTEGER REFERENCES api_token (id),
    subject TEXT CHECK (subject IS NULL OR (length(subject) BETWEEN 1 AND 255)),
    role TEXT NOT NULL CHECK (role IN ('admin', 'data_manager', 'annotator', 'researcher', 'service')),
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    CHECK ((principal_kind = 'token' AND token_id IS NOT NULL AND subject IS NULL)
        OR (principal_kind = 'oidc' AND subject IS NOT NULL AND token_id IS NULL))
) STRICT;
CREATE INDEX web_session_token ON web_session (token_id);
CREATE INDEX web_session_expiry ON web_session (expires_at);
