-- Web accounts, sessions and API tokens (issue 13). Passwords as argon2id
-- PHC strings; session ids and API tokens only as SHA-256. `opds` is a
-- comma-separated list of OPD ids (ids never contain a comma).
CREATE TABLE account (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    opds          TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE web_session (
    id_sha256     BLOB PRIMARY KEY,
    account       TEXT NOT NULL REFERENCES account(name) ON DELETE CASCADE,
    csrf          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX web_session_account ON web_session (account);

CREATE TABLE api_token (
    name          TEXT PRIMARY KEY,
    token_sha256  BLOB NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    opds          TEXT NOT NULL DEFAULT '',
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);

-- The register of signed reports handed out by the web (issue 13): a bundle
-- can be checked against it, not only against the key.
CREATE TABLE signed_report (
    id           INTEGER PRIMARY KEY,
    number       TEXT NOT NULL,
    number_given INTEGER NOT NULL,
    issued       TEXT NOT NULL,
    issued_given INTEGER NOT NULL,
    period_from  TEXT NOT NULL,
    period_to    TEXT NOT NULL,
    scope        TEXT NOT NULL,
    format       TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    requester    TEXT NOT NULL,
    role         TEXT NOT NULL,
    source       TEXT NOT NULL,
    at_ms        INTEGER NOT NULL
);
