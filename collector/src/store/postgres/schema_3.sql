-- Version 3: the peer address of every agent session
-- (store/sqlite/schema_sessions.sql) and the audit log, append-only and
-- hash-chained (store/sqlite/schema_audit.sql, store/audit.rs).

ALTER TABLE agent_session ADD COLUMN peer TEXT;

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    time_ms    BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    source     TEXT NOT NULL,
    action     TEXT NOT NULL,
    object     TEXT NOT NULL,
    before     TEXT NOT NULL,
    after      TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (time_ms);

CREATE FUNCTION pantau_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only / log audit hanya boleh ditambah';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION pantau_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION pantau_audit_append_only();
