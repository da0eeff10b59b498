//! Central targets in SQLite (`fleet_*`, `agent_config_status`,
//! schema_fleet.sql).

use rusqlite::params;

use super::{SqliteStore, write_tx};
use crate::store::fleet::{ConfigStatus, Fleet, FleetChange, Revision, ScopePolicy, ScopedTarget};
use crate::store::{Op, StoreError};

fn put(c: &rusqlite::Connection, t: &ScopedTarget) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO fleet_target (scope, target_id, definition) VALUES (?1, ?2, ?3)
         ON CONFLICT (scope, target_id) DO UPDATE SET definition = excluded.definition",
        params![t.scope, t.target_id, t.definition],
    )
    .op("store central target")?;
    Ok(())
}

impl Fleet for SqliteStore {
    fn fleet_targets(&self) -> Result<Vec<ScopedTarget>, StoreError> {
        self.read(|c| {
            let mut q = c
                .prepare(
                    "SELECT scope, target_id, definition FROM fleet_target
                     ORDER BY scope, target_id",
                )
                .op("read central targets")?;
            q.query_map([], |r| {
                Ok(ScopedTarget {
                    scope: r.get(0)?,
                    target_id: r.get(1)?,
                    definition: r.get(2)?,
                })
            })
            .op("read central targets")?
            .collect::<Result<_, _>>()
            .op("read central targets")
        })
    }

    fn fleet_policies(&self) -> Result<Vec<ScopePolicy>, StoreError> {
        self.read(|c| {
            let mut q = c
                .prepare("SELECT scope, local_targets FROM fleet_policy ORDER BY scope")
                .op("read central policies")?;
            q.query_map([], |r| {
                Ok(ScopePolicy {
                    scope: r.get(0)?,
                    local_targets: r.get(1)?,
                })
            })
            .op("read central policies")?
            .collect::<Result<_, _>>()
            .op("read central policies")
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
            let tx = write_tx(c).op("begin central target change")?;
            match change {
                FleetChange::Put(t) => put(&tx, t)?,
                FleetChange::Delete { scope, target_id } => {
                    tx.execute(
                        "DELETE FROM fleet_target WHERE scope = ?1 AND target_id = ?2",
                        params![scope, target_id],
                    )
                    .op("remove central target")?;
                }
                FleetChange::ReplaceScope { scope, entries } => {
                    tx.execute("DELETE FROM fleet_target WHERE scope = ?1", params![scope])
                        .op("replace central targets")?;
                    for t in entries {
                        put(&tx, t)?;
                    }
                }
                FleetChange::Policy {
                    scope,
                    local_targets: Some(allow),
                } => {
                    tx.execute(
                        "INSERT INTO fleet_policy (scope, local_targets) VALUES (?1, ?2)
                         ON CONFLICT (scope) DO UPDATE SET local_targets = excluded.local_targets",
                        params![scope, allow],
                    )
                    .op("store central policy")?;
                }
                FleetChange::Policy {
                    scope,
                    local_targets: None,
                } => {
                    tx.execute("DELETE FROM fleet_policy WHERE scope = ?1", params![scope])
                        .op("clear central policy")?;
                }
            }
            let revision: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(revision), 0) + 1 FROM fleet_revision",
                    [],
                    |r| r.get(0),
                )
                .op("next central revision")?;
            tx.execute(
                "INSERT INTO fleet_revision (revision, time_ms, actor, summary)
                 VALUES (?1, ?2, ?3, ?4)",
                params![revision, time_ms, actor, summary],
            )
            .op("record central revision")?;
            tx.commit().op("commit central target change")?;
            Ok(revision)
        })
    }

    fn fleet_revision(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT COALESCE(MAX(revision), 0) FROM fleet_revision",
                [],
                |r| r.get(0),
            )
            .op("read central revision")
        })
    }

    fn fleet_history(&self) -> Result<Vec<Revision>, StoreError> {
        self.read(|c| {
            let mut q = c
                .prepare(
                    "SELECT revision, time_ms, actor, summary FROM fleet_revision
                     ORDER BY revision",
                )
                .op("read central revisions")?;
            q.query_map([], |r| {
                Ok(Revision {
                    revision: r.get(0)?,
                    time_ms: r.get(1)?,
                    actor: r.get(2)?,
                    summary: r.get(3)?,
                })
            })
            .op("read central revisions")?
            .collect::<Result<_, _>>()
            .op("read central revisions")
        })
    }

    fn record_config_status(&self, agent_id: &str, s: &ConfigStatus) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO agent_config_status (agent_id, version, sha256, error, reported_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (agent_id) DO UPDATE SET version = excluded.version,
                   sha256 = excluded.sha256, error = excluded.error,
                   reported_at_ms = excluded.reported_at_ms",
                params![agent_id, s.version, s.sha256, s.error, s.reported_at_ms],
            )
            .op("record agent config status")?;
            Ok(())
        })
    }

    fn config_statuses(&self) -> Result<Vec<(String, ConfigStatus)>, StoreError> {
        self.read(|c| {
            let mut q = c
                .prepare(
                    "SELECT agent_id, version, sha256, error, reported_at_ms
                     FROM agent_config_status ORDER BY agent_id",
                )
                .op("read agent config status")?;
            q.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    ConfigStatus {
                        version: r.get(1)?,
                        sha256: r.get(2)?,
                        error: r.get(3)?,
                        reported_at_ms: r.get(4)?,
                    },
                ))
            })
            .op("read agent config status")?
            .collect::<Result<_, _>>()
            .op("read agent config status")
        })
    }
}
