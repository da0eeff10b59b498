-- Fairness (issue 12): no agent's declarations or results can hurt another.

-- Delivery progress: the highest contiguous committed seq of each agent's
-- epoch, as last computed (at Hello). Welcome carries it; the next
-- computation walks on from here, so each result is walked over once.
CREATE TABLE seq_progress (
    agent_id   TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    contiguous INTEGER NOT NULL,
    PRIMARY KEY (agent_id, epoch)
) WITHOUT ROWID;

-- Intervals declared before Hello was held to the agent's own limits: none
-- holds longer than the longest allowed interval (24 h), so a stored 2^52 ms
-- cannot make a rollup or a report re-check read or loop without end.
UPDATE target SET interval_ms = 86400000 WHERE interval_ms > 86400000;
