-- Leases on shared background work and the record of finished pieces
-- (issue 14, store/lease.rs). With SQLite one collector holds every lease;
-- the tables exist so both backends behave alike.
CREATE TABLE lease (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    token    INTEGER NOT NULL
);

CREATE TABLE work_log (
    id         INTEGER PRIMARY KEY,
    job        TEXT NOT NULL,
    from_ms    INTEGER NOT NULL,
    to_ms      INTEGER NOT NULL,
    holder     TEXT NOT NULL,
    token      INTEGER NOT NULL,
    done_at_ms INTEGER NOT NULL,
    UNIQUE (job, from_ms)
);
