-- Remote write (optional export to a Prometheus-compatible store).
-- While remote_write_state holds its row (remote_write.enabled = true), a
-- trigger queues the identity of every newly stored result; the exporter
-- deletes queue rows only after the receiver accepted them (or refused them
-- as bad data), so the queue is the durable cursor: nothing is lost while the
-- receiver or the collector is down. AUTOINCREMENT: ids never go back, even
-- after the queue was emptied. IF NOT EXISTS: safe to re-run.
CREATE TABLE IF NOT EXISTS remote_write_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    enabled_at_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS remote_write_queue (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id TEXT NOT NULL,
    epoch    INTEGER NOT NULL,
    seq      INTEGER NOT NULL
);

CREATE TRIGGER IF NOT EXISTS remote_write_enqueue AFTER INSERT ON result
WHEN EXISTS (SELECT 1 FROM remote_write_state)
BEGIN
    INSERT INTO remote_write_queue (agent_id, epoch, seq) VALUES (NEW.agent_id, NEW.epoch, NEW.seq);
END;
