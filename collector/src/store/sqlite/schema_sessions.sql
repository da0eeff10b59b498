-- The peer address (as the collector saw it) of every agent session, so an
-- admin can tell where a stream came from, and when.
ALTER TABLE agent_session ADD COLUMN peer TEXT;
