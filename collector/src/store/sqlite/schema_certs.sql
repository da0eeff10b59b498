-- Client certificates (issue 12, mutual TLS): every certificate the
-- built-in CA issues to an agent, by serial (lower-case hex). A renewal or
-- an explicit revoke sets revoked_at_ms; the gRPC handshake then refuses it.
CREATE TABLE client_cert (
    serial        TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agent(id),
    issued_at_ms  INTEGER NOT NULL,
    not_after_ms  INTEGER NOT NULL,
    revoked_at_ms INTEGER,
    why           TEXT CHECK (why IN ('superseded', 'revoked'))
) WITHOUT ROWID;

CREATE INDEX client_cert_agent ON client_cert (agent_id);
