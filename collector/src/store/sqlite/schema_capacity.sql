-- Capacity evidence: throughput tests and link utilisation, rolled up per
-- hour and local day like the availability rollups (rebuilt from raw rows
-- when an hour is dirty, so late data corrects them). See report/capacity.rs.

-- Contracted bandwidth of the OPD's link, Mbit/s, set with
-- `pantau-collector opd contract ID --mbps N` (NULL: use the contracted
-- capacity the OPD's link polls report, if any).
ALTER TABLE opd ADD COLUMN contracted_mbps REAL;

-- Per bandwidth target and hour: tests that ran, were skipped or failed, and
-- every measured rate (bit/s, little-endian f64, ascending).
CREATE TABLE rollup_bw_hour (
    opd_id    TEXT NOT NULL,
    agent_id  TEXT NOT NULL,
    target_id TEXT NOT NULL,
    hour_ms   INTEGER NOT NULL,
    n_ok      INTEGER NOT NULL,
    n_skipped INTEGER NOT NULL,
    n_fail    INTEGER NOT NULL,
    dl        BLOB NOT NULL,
    ul        BLOB NOT NULL,
    PRIMARY KEY (opd_id, hour_ms, agent_id, target_id)
) WITHOUT ROWID;

CREATE TABLE rollup_bw_day (
    opd_id    TEXT NOT NULL,
    agent_id  TEXT NOT NULL,
    target_id TEXT NOT NULL,
    day_ms    INTEGER NOT NULL,
    n_ok      INTEGER NOT NULL,
    n_skipped INTEGER NOT NULL,
    n_fail    INTEGER NOT NULL,
    dl        BLOB NOT NULL,
    ul        BLOB NOT NULL,
    PRIMARY KEY (opd_id, day_ms, agent_id, target_id)
) WITHOUT ROWID;

-- Per link target and hour: polls, polls without a rate, covered time, bits
-- moved (rate x seconds), peaks, time-weighted rate histograms
-- (report/capacity.rs RateHist) and the latest capacity.
CREATE TABLE rollup_link_hour (
    opd_id         TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    hour_ms        INTEGER NOT NULL,
    if_name        TEXT NOT NULL,
    polls          INTEGER NOT NULL,
    no_rate        INTEGER NOT NULL,
    covered_ms     INTEGER NOT NULL,
    in_bits        REAL NOT NULL,
    out_bits       REAL NOT NULL,
    in_peak        REAL NOT NULL,
    out_peak       REAL NOT NULL,
    in_hist        BLOB NOT NULL,
    out_hist       BLOB NOT NULL,
    capacity_bps   REAL NOT NULL,
    contracted     INTEGER NOT NULL,
    capacity_at_ms INTEGER NOT NULL,
    PRIMARY KEY (opd_id, hour_ms, agent_id, target_id)
) WITHOUT ROWID;

CREATE TABLE rollup_link_day (
    opd_id         TEXT NOT NULL,
    agent_id       TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    day_ms         INTEGER NOT NULL,
    if_name        TEXT NOT NULL,
    polls          INTEGER NOT NULL,
    no_rate        INTEGER NOT NULL,
    covered_ms     INTEGER NOT NULL,
    in_bits        REAL NOT NULL,
    out_bits       REAL NOT NULL,
    in_peak        REAL NOT NULL,
    out_peak       REAL NOT NULL,
    in_hist        BLOB NOT NULL,
    out_hist       BLOB NOT NULL,
    capacity_bps   REAL NOT NULL,
    contracted     INTEGER NOT NULL,
    capacity_at_ms INTEGER NOT NULL,
    PRIMARY KEY (opd_id, day_ms, agent_id, target_id)
) WITHOUT ROWID;

-- Rule change: bandwidth and link results no longer count
-- towards availability. Re-roll every hour still backed by raw results.
INSERT OR IGNORE INTO rollup_dirty (opd_id, hour_ms)
    SELECT DISTINCT opd_id, (observed_at_ms / 3600000) * 3600000 FROM result;
