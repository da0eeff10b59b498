-- Central targets (store/fleet.rs): definitions per scope (`province`,
-- `opd:<id>`, `agent:<id>`; a NULL definition removes an id an earlier
-- scope defined), each scope's local-targets policy, the revision history,
-- and what every agent reported about the configuration it applied.

CREATE TABLE fleet_target (
    scope      TEXT NOT NULL,
    target_id  TEXT NOT NULL,
    definition TEXT,
    PRIMARY KEY (scope, target_id)
);

CREATE TABLE fleet_policy (
    scope         TEXT PRIMARY KEY,
    local_targets INTEGER NOT NULL
);

CREATE TABLE fleet_revision (
    revision INTEGER PRIMARY KEY,
    time_ms  INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    summary  TEXT NOT NULL
);

CREATE TABLE agent_config_status (
    agent_id       TEXT PRIMARY KEY,
    version        INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    error          TEXT NOT NULL,
    reported_at_ms INTEGER NOT NULL
);
