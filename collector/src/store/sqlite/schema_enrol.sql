-- One-time enrolment codes (issue 12): `agent add` and `agent enrol-code`
-- print a code; the Enrol RPC consumes it once and issues the agent's
-- permanent token. Only the SHA-256 of a code is stored.
CREATE TABLE enrol_code (
    code_sha256   BLOB PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agent(id),
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER
) WITHOUT ROWID;

CREATE INDEX enrol_code_agent ON enrol_code (agent_id);
