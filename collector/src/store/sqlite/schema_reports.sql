-- Reports: rollups, maintenance windows and incident notes.
-- Hours are UTC hour starts (ms); days are local-day starts expressed in UTC ms.

-- OPD hours whose raw results changed since they were rolled up. Written in
-- the same transaction as the results, so a late result always re-rolls.
CREATE TABLE rollup_dirty (
    opd_id  TEXT NOT NULL,
    hour_ms INTEGER NOT NULL,
    PRIMARY KEY (opd_id, hour_ms)
) WITHOUT ROWID;

-- Per target and hour: minute states (60 letters, U G D - M), counts,
-- loss and a latency histogram (see report/histogram.rs).
CREATE TABLE rollup_target_hour (
    opd_id    TEXT NOT NULL,
    agent_id  TEXT NOT NULL,
    target_id TEXT NOT NULL,
    grp       TEXT NOT NULL,
    hour_ms   INTEGER NOT NULL,
    minutes   TEXT NOT NULL,
    up        INTEGER NOT NULL,
    degraded  INTEGER NOT NULL,
    down      INTEGER NOT NULL,
    unknown   INTEGER NOT NULL,
    maint     INTEGER NOT NULL,
    n_ok      INTEGER NOT NULL,
    n_fail    INTEGER NOT NULL,
    sent      INTEGER NOT NULL,
    received  INTEGER NOT NULL,
    jit_sum   REAL NOT NULL,
    jit_n     INTEGER NOT NULL,
    hist      BLOB NOT NULL,
    PRIMARY KEY (opd_id, hour_ms, agent_id, target_id)
) WITHOUT ROWID;

-- Per OPD, group and hour: the composite minute states.
CREATE TABLE rollup_group_hour (
    opd_id   TEXT NOT NULL,
    grp      TEXT NOT NULL,
    hour_ms  INTEGER NOT NULL,
    minutes  TEXT NOT NULL,
    up       INTEGER NOT NULL,
    degraded INTEGER NOT NULL,
    down     INTEGER NOT NULL,
    unknown  INTEGER NOT NULL,
    maint    INTEGER NOT NULL,
    n_ok     INTEGER NOT NULL,
    n_fail   INTEGER NOT NULL,
    sent     INTEGER NOT NULL,
    received INTEGER NOT NULL,
    jit_sum  REAL NOT NULL,
    jit_n    INTEGER NOT NULL,
    hist     BLOB NOT NULL,
    PRIMARY KEY (opd_id, grp, hour_ms)
) WITHOUT ROWID;

-- Per OPD, group and local day: sums of the hours, plus business-hours states.
CREATE TABLE rollup_group_day (
    opd_id      TEXT NOT NULL,
    grp         TEXT NOT NULL,
    day_ms      INTEGER NOT NULL,
    up          INTEGER NOT NULL,
    degraded    INTEGER NOT NULL,
    down        INTEGER NOT NULL,
    unknown     INTEGER NOT NULL,
    maint       INTEGER NOT NULL,
    bh_up       INTEGER NOT NULL,
    bh_degraded INTEGER NOT NULL,
    bh_down     INTEGER NOT NULL,
    bh_unknown  INTEGER NOT NULL,
    n_ok        INTEGER NOT NULL,
    n_fail      INTEGER NOT NULL,
    sent        INTEGER NOT NULL,
    received    INTEGER NOT NULL,
    jit_sum     REAL NOT NULL,
    jit_n       INTEGER NOT NULL,
    hist        BLOB NOT NULL,
    PRIMARY KEY (opd_id, grp, day_ms)
) WITHOUT ROWID;

-- Maintenance windows (excluded from availability). opd_id/grp NULL = all.
CREATE TABLE maintenance (
    id             INTEGER PRIMARY KEY,
    opd_id         TEXT,
    grp            TEXT,
    from_ms        INTEGER NOT NULL,
    to_ms          INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    recorded_by    TEXT NOT NULL,
    recorded_at_ms INTEGER NOT NULL
);

-- Admin notes and ticket references on incidents, keyed by where they start.
CREATE TABLE incident_note (
    opd_id   TEXT NOT NULL,
    grp      TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    note     TEXT NOT NULL,
    ticket   TEXT NOT NULL,
    author   TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    PRIMARY KEY (opd_id, grp, start_ms)
) WITHOUT ROWID;
