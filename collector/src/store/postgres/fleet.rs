//! Central targets in PostgreSQL (`fleet_*`, `agent_config_status`,
//! schema_5.sql); the same semantics as SQLite (store/sqlite/fleet.rs). A
//! change takes a transaction-scoped advisory lock before it numbers the
//! revision, so collectors sharing the database never hand out one twice.

use postgres::GenericClient;

use super::{Db, PgStore};
use crate::store::fleet::{ConfigStatus, Fleet, FleetChange, Revision, ScopePolicy, ScopedTarget};
use crate::store::{Op, StoreError};

/// The advisory lock key serialising revisions ("fleet" in ASCII).
const FLEET_LOCK: i64 = 0x0066_6c65_6574;

fn put<C: GenericClient>(db: &mut Db<'_, C>, t: &ScopedTarget) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO fleet_target (scope, target_id, definition) VALUES ($1, $2, $3)
         ON CONFLICT (scope, target_id) DO UPDATE SET definition = excluded.definition",
        &[&t.scope, &t.target_id, &t.definition],
    )
    .op("store central target")?;
    Ok(())
}

impl Fleet for PgStore {
    fn fleet_targets(&self) -> Result<Vec<ScopedTarget>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT scope, target_id, definition FROM fleet_target
                     ORDER BY scope, target_id",
                    &[],
                )
                .op("read central targets")?
                .iter()
                .map(|r| ScopedTarget {
                    scope: r.get(0),
                    target_id: r.get(1),
                    definition: r.get(2),
                })
                .collect())
        })
    }

    fn fleet_policies(&self) -> Result<Vec<ScopePolicy>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT scope, local_targets FROM fleet_policy ORDER BY scope",
                    &[],
                )
                .op("read central policies")?
                .iter()
                .map(|r| ScopePolicy {
                    scope: r.get(0),
                    local_targets: r.get(1),
                })
                .collect())
        })
    }

    fn fleet_change(
        &self,
        change: &FleetChange,
        time_ms: i64,
        actor: &str,
        summary: &str,
    ) -> Result<i64, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                db.execute("SELECT pg_advisory_xact_lock($1)", &[&FLEET_LOCK])
                    .op("lock central revision")?;
                match change {
                    FleetChange::Put(t) => put(db, t)?,
                    FleetChange::Delete { scope, target_id } => {
                        db.execute(
                            "DELETE FROM fleet_target WHERE scope = $1 AND target_id = $2",
                            &[scope, target_id],
                        )
                        .op("remove central target")?;
                    }
                    FleetChange::ReplaceScope { scope, entries } => {
                        db.execute("DELETE FROM fleet_target WHERE scope = $1", &[scope])
                            .op("replace central targets")?;
                        for t in entries {
                            put(db, t)?;
                        }
                    }
                    FleetChange::Policy {
                        scope,
                        local_targets: Some(allow),
                    } => {
                        db.execute(
                            "INSERT INTO fleet_policy (scope, local_targets) VALUES ($1, $2)
                             ON CONFLICT (scope) DO UPDATE SET local_targets = excluded.local_targets",
                            &[scope, allow],
                        )
                        .op("store central policy")?;
                    }
                    FleetChange::Policy {
                        scope,
                        local_targets: None,
                    } => {
                        db.execute("DELETE FROM fleet_policy WHERE scope = $1", &[scope])
                            .op("clear central policy")?;
                    }
                }
                let revision: i64 = db
                    .query_one(
                        "SELECT COALESCE(MAX(revision), 0) + 1 FROM fleet_revision",
                        &[],
                    )
                    .op("next central revision")?
                    .get(0);
                db.execute(
                    "INSERT INTO fleet_revision (revision, time_ms, actor, summary)
                     VALUES ($1, $2, $3, $4)",
                    &[&revision, &time_ms, &actor, &summary],
                )
                .op("record central revision")?;
                Ok(revision)
            })
        })
    }

    fn fleet_revision(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_one(
                    "SELECT COALESCE(MAX(revision), 0)::BIGINT FROM fleet_revision",
                    &[],
                )
                .op("read central revision")?
                .get(0))
        })
    }

    fn fleet_history(&self) -> Result<Vec<Revision>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT revision, time_ms, actor, summary FROM fleet_revision
                     ORDER BY revision",
                    &[],
                )
                .op("read central revisions")?
                .iter()
                .map(|r| Revision {
                    revision: r.get(0),
                    time_ms: r.get(1),
                    actor: r.get(2),
                    summary: r.get(3),
                })
                .collect())
        })
    }

    fn record_config_status(&self, agent_id: &str, s: &ConfigStatus) -> Result<(), StoreError> {
        self.write(|c| {
            c.db()
                .execute(
                    "INSERT INTO agent_config_status
                       (agent_id, version, sha256, error, reported_at_ms)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (agent_id) DO UPDATE SET version = excluded.version,
                       sha256 = excluded.sha256, error = excluded.error,
                       reported_at_ms = excluded.reported_at_ms",
                    &[
                        &agent_id,
                        &s.version,
                        &s.sha256,
                        &s.error,
                        &s.reported_at_ms,
                    ],
                )
                .op("record agent config status")?;
            Ok(())
        })
    }

    fn config_statuses(&self) -> Result<Vec<(String, ConfigStatus)>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT agent_id, version, sha256, error, reported_at_ms
                     FROM agent_config_status ORDER BY agent_id",
                    &[],
                )
                .op("read agent config status")?
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        ConfigStatus {
                            version: r.get(1),
                            sha256: r.get(2),
                            error: r.get(3),
                            reported_at_ms: r.get(4),
                        },
                    )
                })
                .collect())
        })
    }
}
