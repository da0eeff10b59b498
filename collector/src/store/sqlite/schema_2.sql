-- Version 2: late and clock flags on results, agent sessions.

-- 1 when the result arrived well after it was observed (after an outage).
ALTER TABLE result ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
-- 'future' or 'past' when the agent's timestamp cannot be trusted.
ALTER TABLE result ADD COLUMN clock_flag TEXT;

-- When each agent had a stream open, so reports can tell "no data" from "down".
CREATE TABLE agent_session (
    id                 INTEGER PRIMARY KEY,
    agent_id           TEXT NOT NULL REFERENCES agent(id),
    epoch              INTEGER NOT NULL,
    connected_at_ms    INTEGER NOT NULL,
    disconnected_at_ms INTEGER,
    end_reason         TEXT
);
CREATE INDEX agent_session_agent_time ON agent_session (agent_id, connected_at_ms);
