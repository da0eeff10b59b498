//! The API's reads in SQLite, served by the pool of read-only connections.

use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::store::api::{Agent, ApiRead, Opd, Session, StoredResult, Target};
use crate::store::{Op, StoreError};

/// Sessions of an agent overlapping `[from, to)`, oldest first.
pub fn sessions(
    conn: &Connection,
    agent: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Session>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT agent_id, epoch, connected_at_ms, disconnected_at_ms, end_reason, peer FROM agent_session
             WHERE agent_id = ?1 AND connected_at_ms < ?3 AND COALESCE(disconnected_at_ms, ?3) >= ?2
             ORDER BY connected_at_ms",
        )
        .op("prepare sessions")?;
    st.query_map(params![agent, from_ms, to_ms], |r| {
        Ok(Session {
            agent: r.get(0)?,
            epoch: r.get::<_, i64>(1)? as u64,
            connected_at_ms: r.get(2)?,
            disconnected_at_ms: r.get(3)?,
            end_reason: r.get(4)?,
            peer: r.get(5)?,
        })
    })
    .op("query sessions")?
    .collect::<Result<_, _>>()
    .op("read sessions")
}

/// All OPDs.
pub fn opds(conn: &Connection) -> Result<Vec<Opd>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT o.id, o.name, (SELECT COUNT(*) FROM agent a WHERE a.opd_id = o.id),
                    (SELECT MAX(r.received_at_ms) FROM result r WHERE r.opd_id = o.id)
             FROM opd o WHERE o.state <> 'removed' ORDER BY o.id",
        )
        .op("prepare opds")?;
    st.query_map([], |r| {
        Ok(Opd {
            id: r.get(0)?,
            name: r.get(1)?,
            agents: r.get(2)?,
            last_seen_ms: r.get(3)?,
        })
    })
    .op("query opds")?
    .collect::<Result<_, _>>()
    .op("read opds")
}

/// All agents.
pub fn agents(conn: &Connection) -> Result<Vec<Agent>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT a.id, a.opd_id, a.version, a.hostname, a.last_hello_ms,
                    (SELECT MAX(r.received_at_ms) FROM result r WHERE r.agent_id = a.id), a.clock_offset_ms,
                    (SELECT COUNT(*) FROM result_conflict c WHERE c.agent_id = a.id), a.last_peer,
                    s.version, s.sha256, s.error
             FROM agent a LEFT JOIN agent_config_status s ON s.agent_id = a.id ORDER BY a.id",
        )
        .op("prepare agents")?;
    st.query_map([], |r| {
        Ok(Agent {
            id: r.get(0)?,
            opd: r.get(1)?,
            version: r.get(2)?,
            hostname: r.get(3)?,
            last_hello_ms: r.get(4)?,
            last_seen_ms: r.get(5)?,
            clock_offset_ms: r.get(6)?,
            conflicts: r.get(7)?,
            last_peer: r.get(8)?,
            config_version: r.get(9)?,
            config_sha256: r.get(10)?,
            config_error: r.get(11)?,
        })
    })
    .op("query agents")?
    .collect::<Result<_, _>>()
    .op("read agents")
}

/// All targets with their latest result.
pub fn targets(conn: &Connection, agent: Option<&str>) -> Result<Vec<Target>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT t.agent_id, a.opd_id, t.id, t.grp, t.kind, t.address, t.label,
                    r.observed_at_ms, r.outcome, r.value_ms, r.sent, r.received
             FROM target t JOIN agent a ON a.id = t.agent_id
             LEFT JOIN result r ON r.agent_id = t.agent_id AND r.target_id = t.id
               AND r.observed_at_ms = (SELECT MAX(observed_at_ms) FROM result r2
                                       WHERE r2.agent_id = t.agent_id AND r2.target_id = t.id)
             WHERE (?1 IS NULL AND a.opd_id IN (SELECT id FROM opd WHERE state <> 'removed'))
                OR t.agent_id = ?1
             GROUP BY t.agent_id, t.id
             ORDER BY a.opd_id, t.agent_id, t.grp, t.id",
        )
        .op("prepare targets")?;
    st.query_map([agent], |r| {
        let sent: Option<u32> = r.get(10)?;
        let received: Option<u32> = r.get(11)?;
        Ok(Target {
            agent: r.get(0)?,
            opd: r.get(1)?,
            id: r.get(2)?,
            group: r.get(3)?,
            kind: r.get(4)?,
            address: r.get(5)?,
            label: r.get(6)?,
            observed_at_ms: r.get(7)?,
            outcome: r.get(8)?,
            value_ms: r.get(9)?,
            loss: match (sent, received) {
                (Some(s), Some(rc)) if s > 0 => {
                    Some(f64::from(s.saturating_sub(rc)) / f64::from(s))
                }
                _ => None,
            },
        })
    })
    .op("query targets")?
    .collect::<Result<_, _>>()
    .op("read targets")
}

/// Raw results of an agent observed in `[from, to)`, oldest first, at most `limit`.
pub fn results(
    conn: &Connection,
    agent: &str,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<StoredResult>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT agent_id, opd_id, target_id, kind, epoch, seq, observed_at_ms, received_at_ms,
                    outcome, detail, value_ms, sent, received, data, late, clock_flag
             FROM result WHERE agent_id = ?1 AND observed_at_ms >= ?2 AND observed_at_ms < ?3
             ORDER BY observed_at_ms, epoch, seq LIMIT ?4",
        )
        .op("prepare results")?;
    st.query_map(params![agent, from_ms, to_ms, limit as i64], |r| {
        let data: String = r.get(13)?;
        Ok(StoredResult {
            agent: r.get(0)?,
            opd: r.get(1)?,
            target: r.get(2)?,
            kind: r.get(3)?,
            epoch: r.get::<_, i64>(4)? as u64,
            seq: r.get::<_, i64>(5)? as u64,
            observed_at_ms: r.get(6)?,
            received_at_ms: r.get(7)?,
            outcome: r.get(8)?,
            detail: r.get(9)?,
            value_ms: r.get(10)?,
            sent: r.get(11)?,
            received: r.get(12)?,
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            late: r.get(14)?,
            clock_flag: r.get(15)?,
        })
    })
    .op("query results")?
    .collect::<Result<_, _>>()
    .op("read results")
}

/// Whether an agent exists.
pub fn agent_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM agent WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )
    .op("look up agent")
}

impl ApiRead for SqliteStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).op("ping"))
    }

    fn opds(&self) -> Result<Vec<Opd>, StoreError> {
        self.read(opds)
    }

    fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.read(agents)
    }

    fn targets(&self, agent: Option<&str>) -> Result<Vec<Target>, StoreError> {
        self.read(|c| targets(c, agent))
    }

    fn results(
        &self,
        agent: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredResult>, StoreError> {
        self.read(|c| results(c, agent, from_ms, to_ms, limit))
    }

    fn sessions(&self, agent: &str, from_ms: i64, to_ms: i64) -> Result<Vec<Session>, StoreError> {
        self.read(|c| sessions(c, agent, from_ms, to_ms))
    }

    fn agent_exists(&self, id: &str) -> Result<bool, StoreError> {
        self.read(|c| agent_exists(c, id))
    }
}
