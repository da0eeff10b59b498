-- Pantau collector schema on PostgreSQL, version 1: the registry, results,
-- sessions, conflicts, delivery progress, enrolment and the remote-write
-- queue. Same meaning as the SQLite tables (store/sqlite/schema*.sql); times
-- are BIGINT milliseconds since the Unix epoch, UTC.

CREATE TABLE opd (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    contracted_mbps DOUBLE PRECISION
);

CREATE TABLE agent (
    id                  TEXT PRIMARY KEY,
    opd_id              TEXT NOT NULL REFERENCES opd(id),
    token_sha256        BYTEA NOT NULL UNIQUE,
    created_at_ms       BIGINT NOT NULL,
    version             TEXT,
    config_hash         TEXT,
    hostname            TEXT,
    last_hello_ms       BIGINT,
    clock_offset_ms     BIGINT,
    disabled_at_ms      BIGINT,
    revoked_at_ms       BIGINT,
    token_expires_at_ms BIGINT,
    last_peer           TEXT,
    last_auth_at_ms     BIGINT
);
CREATE INDEX agent_opd ON agent (opd_id);

CREATE TABLE retired_token (
    token_sha256  BYTEA PRIMARY KEY,
    agent_id      TEXT NOT NULL,
    why           TEXT NOT NULL CHECK (why IN ('rotated', 'revoked')),
    retired_at_ms BIGINT NOT NULL
);

CREATE TABLE enrol_code (
    code_sha256   BYTEA PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agent(id),
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms    BIGINT
);
CREATE INDEX enrol_code_agent ON enrol_code (agent_id);

CREATE TABLE target (
    agent_id         TEXT NOT NULL REFERENCES agent(id),
    id               TEXT NOT NULL,
    grp              TEXT NOT NULL,
    kind             TEXT NOT NULL,
    address          TEXT NOT NULL,
    label            TEXT NOT NULL,
    interval_ms      BIGINT NOT NULL,
    timeout_ms       BIGINT NOT NULL,
    first_seen_ms    BIGINT NOT NULL,
    last_declared_ms BIGINT NOT NULL,
    PRIMARY KEY (agent_id, id)
);

-- The delivery identity (agent, epoch, seq) of every stored result. A
-- partitioned table can only be unique per partition, and a replay may be
-- placed at another time (a new clock offset estimate): dedupe happens
-- here, across collectors, and `observed_at_ms` finds the stored row's
-- partition.
CREATE TABLE result_identity (
    agent_id       TEXT NOT NULL,
    epoch          BIGINT NOT NULL,
    seq            BIGINT NOT NULL,
    observed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (agent_id, epoch, seq)
);
CREATE INDEX result_identity_time ON result_identity (observed_at_ms);

-- Every result accepted, partitioned by UTC day of `observed_at_ms`
-- (`pantau_result_day` creates a day's partition on demand; retention drops
-- whole days). Times outside the window of day partitions go to
-- `result_default`.
CREATE TABLE result (
    agent_id            TEXT NOT NULL,
    epoch               BIGINT NOT NULL,
    seq                 BIGINT NOT NULL,
    opd_id              TEXT NOT NULL,
    target_id           TEXT NOT NULL,
    kind                TEXT NOT NULL,
    observed_at_ms      BIGINT NOT NULL,
    received_at_ms      BIGINT NOT NULL,
    outcome             TEXT NOT NULL,
    detail              TEXT NOT NULL,
    value_ms            DOUBLE PRECISION,
    sent                BIGINT,
    received            BIGINT,
    data                TEXT NOT NULL,
    late                BOOLEAN NOT NULL DEFAULT FALSE,
    clock_flag          TEXT,
    agent_time_ms       BIGINT,
    clock_correction_ms BIGINT
) PARTITION BY RANGE (observed_at_ms);
CREATE TABLE result_default PARTITION OF result DEFAULT;
CREATE INDEX result_key ON result (agent_id, epoch, seq);
CREATE INDEX result_agent_time ON result (agent_id, observed_at_ms);
CREATE INDEX result_opd_time ON result (opd_id, observed_at_ms);

-- Create the partition of the UTC day starting at `day_start` (ms) unless it
-- exists, moving that day's rows out of the default partition first.
-- Serialised by an advisory lock: several collectors may ask at once.
CREATE FUNCTION pantau_result_day(day_start BIGINT) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    part TEXT := 'result_d' || (day_start / 86400000)::TEXT;
    day_end BIGINT := day_start + 86400000;
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7061746175);
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE result INCLUDING DEFAULTS)', part);
    EXECUTE format('INSERT INTO %I SELECT * FROM result_default
                    WHERE observed_at_ms >= %s AND observed_at_ms < %s', part, day_start, day_end);
    EXECUTE format('DELETE FROM result_default WHERE observed_at_ms >= %s AND observed_at_ms < %s',
                   day_start, day_end);
    EXECUTE format('ALTER TABLE result ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                   part, day_start, day_end);
END $$;

CREATE TABLE agent_session (
    id                 BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    agent_id           TEXT NOT NULL REFERENCES agent(id),
    epoch              BIGINT NOT NULL,
    connected_at_ms    BIGINT NOT NULL,
    disconnected_at_ms BIGINT,
    end_reason         TEXT
);
CREATE INDEX agent_session_agent_time ON agent_session (agent_id, connected_at_ms);
CREATE INDEX agent_session_open ON agent_session (id) WHERE disconnected_at_ms IS NULL;

CREATE TABLE result_conflict (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    agent_id       TEXT NOT NULL,
    opd_id         TEXT NOT NULL,
    epoch          BIGINT NOT NULL,
    seq            BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    peer           TEXT,
    content        TEXT NOT NULL
);
CREATE INDEX result_conflict_agent ON result_conflict (agent_id, received_at_ms);
CREATE INDEX result_conflict_key ON result_conflict (agent_id, epoch, seq);

CREATE TABLE seq_progress (
    agent_id   TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    contiguous BIGINT NOT NULL,
    PRIMARY KEY (agent_id, epoch)
);

-- Remote write: while remote_write_state holds its row, ingest queues the
-- identity of every newly stored result in the same transaction. Ids come
-- from a sequence: they never go back.
CREATE TABLE remote_write_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    enabled_at_ms BIGINT NOT NULL
);

CREATE TABLE remote_write_queue (
    id       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    agent_id TEXT NOT NULL,
    epoch    BIGINT NOT NULL,
    seq      BIGINT NOT NULL
);
