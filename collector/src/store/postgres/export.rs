//! The remote-write queue in PostgreSQL: ingest queues each new result
//! while `remote_write_state` holds a row (see `ingest.rs`).

use super::PgStore;
use crate::model::{Outcome, RowKind};
use crate::store::export::{ExportQueue, QueueEntry, Queued, QueuedResult};
use crate::store::{Op, StoreError, now_ms};

fn parse<T>(s: &str, f: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    f(s).ok_or_else(|| StoreError::NotStored(format!("unknown stored name `{s}`")))
}

impl ExportQueue for PgStore {
    fn export_prepare(&self, enabled: bool) -> Result<u64, StoreError> {
        self.write(|c| {
            if enabled {
                c.db()
                    .execute(
                        "INSERT INTO remote_write_state (id, enabled_at_ms) VALUES (1, $1)
                         ON CONFLICT DO NOTHING",
                        &[&now_ms()],
                    )
                    .op("enable remote write")?;
                return Ok(0);
            }
            c.tx(|db| {
                db.execute("DELETE FROM remote_write_state", &[])
                    .op("disable remote write")?;
                db.execute("DELETE FROM remote_write_queue", &[])
                    .op("empty remote write queue")
            })
        })
    }

    fn export_take(&self, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
        let rows = self.read(|c| {
            c.db()
                .query(
                    "SELECT q.id, r.agent_id IS NULL, r.clock_flag, r.opd_id, r.agent_id, r.target_id,
                            COALESCE(t.grp, ''), r.kind, r.observed_at_ms, r.outcome, r.value_ms,
                            r.sent, r.received, r.data
                     FROM remote_write_queue q
                     LEFT JOIN result_identity i
                       ON i.agent_id = q.agent_id AND i.epoch = q.epoch AND i.seq = q.seq
                     LEFT JOIN result r ON r.agent_id = i.agent_id AND r.epoch = i.epoch
                       AND r.seq = i.seq AND r.observed_at_ms = i.observed_at_ms
                     LEFT JOIN target t ON t.agent_id = r.agent_id AND t.id = r.target_id
                     ORDER BY q.id LIMIT $1",
                    &[&(limit as i64)],
                )
                .op("read remote write queue")
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let gone: bool = row.get(1);
            let flag: Option<String> = row.get(2);
            let item = if gone {
                Queued::Expired
            } else if flag.is_some() {
                Queued::Untrusted
            } else {
                let data: String = row.get(13);
                Queued::Result(QueuedResult {
                    opd: row.get(3),
                    agent: row.get(4),
                    target: row.get(5),
                    group: row.get(6),
                    kind: parse(row.get(7), RowKind::parse)?,
                    observed_at_ms: row.get(8),
                    outcome: parse(row.get(9), Outcome::parse)?,
                    value_ms: row.get(10),
                    sent: row.get(11),
                    received: row.get(12),
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                })
            };
            out.push(QueueEntry {
                id: row.get(0),
                item,
            });
        }
        Ok(out)
    }

    fn export_ack(&self, last_id: i64) -> Result<(), StoreError> {
        self.write(|c| {
            c.db()
                .execute("DELETE FROM remote_write_queue WHERE id <= $1", &[&last_id])
                .op("acknowledge remote write queue")
                .map(drop)
        })
    }

    fn export_pending(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_one("SELECT COUNT(*) FROM remote_write_queue", &[])
                .op("count remote write queue")?
                .get(0))
        })
    }
}
