//! The API's reads in PostgreSQL, served by the pool.

use postgres::Row;

use super::PgStore;
use crate::store::api::{Agent, ApiRead, Opd, Session, StoredResult, Target};
use crate::store::{Op, StoreError};

fn target_row(r: &Row) -> Target {
    let sent: Option<i64> = r.get(10);
    let received: Option<i64> = r.get(11);
    Target {
        agent: r.get(0),
        opd: r.get(1),
        id: r.get(2),
        group: r.get(3),
        kind: r.get(4),
        address: r.get(5),
        label: r.get(6),
        observed_at_ms: r.get(7),
        outcome: r.get(8),
        value_ms: r.get(9),
        loss: match (sent, received) {
            (Some(s), Some(rc)) if s > 0 => Some(s.saturating_sub(rc).max(0) as f64 / s as f64),
            _ => None,
        },
    }
}

fn result_row(r: &Row) -> StoredResult {
    let data: String = r.get(13);
    StoredResult {
        agent: r.get(0),
        opd: r.get(1),
        target: r.get(2),
        kind: r.get(3),
        epoch: r.get::<_, i64>(4) as u64,
        seq: r.get::<_, i64>(5) as u64,
        observed_at_ms: r.get(6),
        received_at_ms: r.get(7),
        outcome: r.get(8),
        detail: r.get(9),
        value_ms: r.get(10),
        sent: r.get::<_, Option<i64>>(11).map(|v| v as u32),
        received: r.get::<_, Option<i64>>(12).map(|v| v as u32),
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        late: r.get(14),
        clock_flag: r.get(15),
    }
}

impl ApiRead for PgStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.db().query_one("SELECT 1", &[]).op("ping").map(drop))
    }

    fn opds(&self) -> Result<Vec<Opd>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT o.id, o.name, (SELECT COUNT(*) FROM agent a WHERE a.opd_id = o.id),
                            (SELECT MAX(r.received_at_ms) FROM result r WHERE r.opd_id = o.id)
                     FROM opd o WHERE o.state <> 'removed' ORDER BY o.id",
                    &[],
                )
                .op("read opds")?
                .iter()
                .map(|r| Opd {
                    id: r.get(0),
                    name: r.get(1),
                    agents: r.get::<_, i64>(2) as u32,
                    last_seen_ms: r.get(3),
                })
                .collect())
        })
    }

    fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT a.id, a.opd_id, a.version, a.hostname, a.last_hello_ms,
                            (SELECT MAX(r.received_at_ms) FROM result r WHERE r.agent_id = a.id),
                            a.clock_offset_ms,
                            (SELECT COUNT(*) FROM result_conflict c WHERE c.agent_id = a.id),
                            a.last_peer, s.version, s.sha256, s.error
                     FROM agent a LEFT JOIN agent_config_status s ON s.agent_id = a.id
                     ORDER BY a.id",
                    &[],
                )
                .op("read agents")?
                .iter()
                .map(|r| Agent {
                    id: r.get(0),
                    opd: r.get(1),
                    version: r.get(2),
                    hostname: r.get(3),
                    last_hello_ms: r.get(4),
                    last_seen_ms: r.get(5),
                    clock_offset_ms: r.get(6),
                    conflicts: r.get(7),
                    last_peer: r.get(8),
                    config_version: r.get(9),
                    config_sha256: r.get(10),
                    config_error: r.get(11),
                })
                .collect())
        })
    }

    fn targets(&self, agent: Option<&str>) -> Result<Vec<Target>, StoreError> {
        // The latest result per target: one index probe each (LATERAL).
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT t.agent_id, a.opd_id, t.id, t.grp, t.kind, t.address, t.label,
                            r.observed_at_ms, r.outcome, r.value_ms, r.sent, r.received
                     FROM target t JOIN agent a ON a.id = t.agent_id
                     LEFT JOIN LATERAL (
                       SELECT observed_at_ms, outcome, value_ms, sent, received FROM result r
                       WHERE r.agent_id = t.agent_id AND r.target_id = t.id
                       ORDER BY observed_at_ms DESC LIMIT 1) r ON TRUE
                     WHERE ($1::text IS NULL
                            AND a.opd_id IN (SELECT id FROM opd WHERE state <> 'removed'))
                        OR t.agent_id = $1
                     ORDER BY a.opd_id, t.agent_id, t.grp, t.id",
                    &[&agent],
                )
                .op("read targets")?
                .iter()
                .map(target_row)
                .collect())
        })
    }

    fn results(
        &self,
        agent: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredResult>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT agent_id, opd_id, target_id, kind, epoch, seq, observed_at_ms,
                            received_at_ms, outcome, detail, value_ms, sent, received, data, late,
                            clock_flag
                     FROM result WHERE agent_id = $1 AND observed_at_ms >= $2 AND observed_at_ms < $3
                     ORDER BY observed_at_ms, epoch, seq LIMIT $4",
                    &[&agent, &from_ms, &to_ms, &(limit as i64)],
                )
                .op("read results")?
                .iter()
                .map(result_row)
                .collect())
        })
    }

    fn sessions(&self, agent: &str, from_ms: i64, to_ms: i64) -> Result<Vec<Session>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT agent_id, epoch, connected_at_ms, disconnected_at_ms, end_reason, peer
                     FROM agent_session
                     WHERE agent_id = $1 AND connected_at_ms < $3
                       AND COALESCE(disconnected_at_ms, $3) >= $2
                     ORDER BY connected_at_ms",
                    &[&agent, &from_ms, &to_ms],
                )
                .op("read sessions")?
                .iter()
                .map(|r| Session {
                    agent: r.get(0),
                    epoch: r.get::<_, i64>(1) as u64,
                    connected_at_ms: r.get(2),
                    disconnected_at_ms: r.get(3),
                    end_reason: r.get(4),
                    peer: r.get(5),
                })
                .collect())
        })
    }

    fn agent_exists(&self, id: &str) -> Result<bool, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_one("SELECT EXISTS(SELECT 1 FROM agent WHERE id = $1)", &[&id])
                .op("look up agent")?
                .get(0))
        })
    }
}
