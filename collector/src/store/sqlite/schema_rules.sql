-- Which rule set the stored rollups were built with, and every change of it.
-- The newest row is current. When the parameters that shape minute states
-- change, every hour still backed by raw results is rebuilt; hours before
-- `rebuilt_from_ms` (raw results already pruned) keep the earlier rules,
-- and reports over them say so.
CREATE TABLE rule_history (
    version         TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    parameters      TEXT NOT NULL,
    applied_at_ms   INTEGER NOT NULL,
    rebuilt_from_ms INTEGER
);
