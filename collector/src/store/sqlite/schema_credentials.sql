-- Credential life cycle (issue 12): an agent's token can be disabled,
-- revoked for good, rotated and given an expiry; where the agent last
-- authenticated from is kept for `agent list`.
ALTER TABLE agent ADD COLUMN disabled_at_ms INTEGER;
ALTER TABLE agent ADD COLUMN revoked_at_ms INTEGER;
ALTER TABLE agent ADD COLUMN token_expires_at_ms INTEGER;
ALTER TABLE agent ADD COLUMN last_peer TEXT;
ALTER TABLE agent ADD COLUMN last_auth_at_ms INTEGER;

-- Digests of tokens that no longer work (rotated out or revoked), kept only
-- so a refused attempt can be logged with the agent and why.
CREATE TABLE retired_token (
    token_sha256  BLOB PRIMARY KEY,
    agent_id      TEXT NOT NULL,
    why           TEXT NOT NULL CHECK (why IN ('rotated', 'revoked')),
    retired_at_ms INTEGER NOT NULL
);
