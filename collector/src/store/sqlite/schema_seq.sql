-- Delivery progress: the highest contiguous committed seq of each agent's
-- epoch, as last computed (at Hello). Welcome carries it; the next
-- computation walks on from here, so each result is walked over once.
CREATE TABLE seq_progress (
    agent_id   TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    contiguous INTEGER NOT NULL,
    PRIMARY KEY (agent_id, epoch)
) WITHOUT ROWID;
