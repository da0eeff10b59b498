-- Pantau collector schema, version 1. Times are integer milliseconds since
-- the Unix epoch, UTC. `observed_at_ms` is the agent's clock, `received_at_ms`
-- the collector's.

CREATE TABLE opd (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE agent (
    id              TEXT PRIMARY KEY,
    opd_id          TEXT NOT NULL REFERENCES opd(id),
    token_sha256    BLOB NOT NULL UNIQUE,
    created_at_ms   INTEGER NOT NULL,
    version         TEXT,
    config_hash     TEXT,
    hostname        TEXT,
    last_hello_ms   INTEGER,
    clock_offset_ms INTEGER
);

-- Targets as declared by each agent's Hello.
CREATE TABLE target (
    agent_id         TEXT NOT NULL REFERENCES agent(id),
    id               TEXT NOT NULL,
    grp              TEXT NOT NULL,
    kind             TEXT NOT NULL,
    address          TEXT NOT NULL,
    label            TEXT NOT NULL,
    interval_ms      INTEGER NOT NULL,
    timeout_ms       INTEGER NOT NULL,
    first_seen_ms    INTEGER NOT NULL,
    last_declared_ms INTEGER NOT NULL,
    PRIMARY KEY (agent_id, id)
) WITHOUT ROWID;

-- Every result ever accepted. (agent, epoch, seq) is the delivery identity:
-- a replayed result is ignored, never counted twice.
CREATE TABLE result (
    agent_id       TEXT NOT NULL,
    epoch          INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    opd_id         TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    kind           TEXT NOT NULL,
    observed_at_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    outcome        TEXT NOT NULL,
    detail         TEXT NOT NULL,
    -- Headline duration in ms: ICMP mean RTT, TCP connect, HTTP total, DNS resolve.
    value_ms       REAL,
    -- ICMP echoes sent and received.
    sent           INTEGER,
    received       INTEGER,
    -- Every kind-specific measurement, as JSON.
    data           TEXT NOT NULL,
    PRIMARY KEY (agent_id, epoch, seq)
) WITHOUT ROWID;

CREATE INDEX result_agent_time ON result (agent_id, observed_at_ms);
CREATE INDEX result_opd_time ON result (opd_id, observed_at_ms);
