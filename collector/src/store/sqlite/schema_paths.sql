-- Paths: one row per distinct route an agent saw to a target (traceroute).
-- A traceroute whose hop list equals the latest path extends it (last_seen,
-- times_seen, latest RTTs); a different hop list starts a new row, which is
-- how a path change shows.
CREATE TABLE path (
    id             INTEGER PRIMARY KEY,
    agent_id       TEXT NOT NULL REFERENCES agent(id),
    target_id      TEXT NOT NULL,
    -- JSON array of hop addresses in TTL order; "" where no hop answered.
    hops           TEXT NOT NULL,
    -- 1 when the target answered at the last hop.
    reached        INTEGER NOT NULL,
    -- JSON array of the latest observation's per-hop RTT in microseconds (0: no answer).
    rtt_us         TEXT NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL,
    times_seen     INTEGER NOT NULL,
    -- id of the path this one replaced (NULL for the first path seen).
    previous_id    INTEGER REFERENCES path(id)
);
CREATE INDEX path_agent_target ON path (agent_id, target_id, last_seen_ms);
