-- Evidence: the agent's own clock beside the placed time, a watermark so
-- every hour of monitoring is rolled up (silent hours included), and
-- conflicting duplicates kept aside.

-- The agent's timestamp exactly as sent. `observed_at_ms` is where the result
-- is placed: the same value, or, when the agent's clock was off by more than
-- the skew threshold, the agent's time plus the collector's offset estimate.
ALTER TABLE result ADD COLUMN agent_time_ms INTEGER;
-- The offset (collector clock minus agent clock, ms) applied to place the
-- result; NULL when the agent's own time was used.
ALTER TABLE result ADD COLUMN clock_correction_ms INTEGER;

-- Per OPD: rollups are complete up to this instant (UTC ms). Each refresh
-- re-rolls every hour between the watermark and now, so hours without any
-- result still get their (unknown) minutes.
CREATE TABLE rollup_watermark (
    opd_id   TEXT PRIMARY KEY,
    until_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- A result whose delivery identity (agent, epoch, seq) was already stored
-- with different content: two writers on one spool, or a cloned agent. The
-- first stored result stays; the conflicting one is kept here, never counted.
CREATE TABLE result_conflict (
    id             INTEGER PRIMARY KEY,
    agent_id       TEXT NOT NULL,
    opd_id         TEXT NOT NULL,
    epoch          INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    peer           TEXT,
    -- The conflicting result as JSON (target, kind, observed time, outcome, values, data).
    content        TEXT NOT NULL
);
CREATE INDEX result_conflict_agent ON result_conflict (agent_id, received_at_ms);
