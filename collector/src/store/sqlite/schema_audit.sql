-- The audit log: append-only and hash-chained (see store/audit.rs).
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    time_ms    INTEGER NOT NULL,
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
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only / log audit hanya boleh ditambah');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only / log audit hanya boleh ditambah');
END;
