//! The remote-write queue in SQLite: a trigger (`schema_remote_write.sql`)
//! queues each new result while `remote_write_state` holds a row.

use rusqlite::{Connection, params};

use super::{SqliteStore, text_enum, write_tx};
use crate::model::{Outcome, RowKind};
use crate::store::export::{ExportQueue, QueueEntry, Queued, QueuedResult};
use crate::store::{Op, StoreError, now_ms};

fn prepare(conn: &Connection, enabled: bool) -> Result<u64, StoreError> {
    if enabled {
        conn.execute(
            "INSERT OR IGNORE INTO remote_write_state (id, enabled_at_ms) VALUES (1, ?1)",
            [now_ms()],
        )
        .op("enable remote write")?;
        return Ok(0);
    }
    let tx = write_tx(conn).op("begin remote write off")?;
    tx.execute("DELETE FROM remote_write_state", [])
        .op("disable remote write")?;
    let dropped = tx
        .execute("DELETE FROM remote_write_queue", [])
        .op("empty remote write queue")?;
    tx.commit().op("commit remote write off")?;
    Ok(dropped as u64)
}

fn take(conn: &Connection, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT q.id, r.agent_id IS NULL, r.clock_flag, r.opd_id, r.agent_id, r.target_id,
                    COALESCE(t.grp, ''), r.kind, r.observed_at_ms, r.outcome, r.value_ms,
                    r.sent, r.received, r.data
             FROM remote_write_queue q
             LEFT JOIN result r ON r.agent_id = q.agent_id AND r.epoch = q.epoch AND r.seq = q.seq
             LEFT JOIN target t ON t.agent_id = r.agent_id AND t.id = r.target_id
             ORDER BY q.id LIMIT ?1",
        )
        .op("prepare remote write read")?;
    let mut rows = st.query([limit as i64]).op("read remote write queue")?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().op("read remote write queue")? {
        let id: i64 = row.get(0).op("read queue id")?;
        let gone: bool = row.get(1).op("read queue row")?;
        let flag: Option<String> = row.get(2).op("read queue row")?;
        let item = if gone {
            Queued::Expired
        } else if flag.is_some() {
            Queued::Untrusted
        } else {
            let data: String = row.get(13).op("read result")?;
            Queued::Result(QueuedResult {
                opd: row.get(3).op("read result")?,
                agent: row.get(4).op("read result")?,
                target: row.get(5).op("read result")?,
                group: row.get(6).op("read result")?,
                kind: text_enum(row, 7, RowKind::parse).op("read result")?,
                observed_at_ms: row.get(8).op("read result")?,
                outcome: text_enum(row, 9, Outcome::parse).op("read result")?,
                value_ms: row.get(10).op("read result")?,
                sent: row.get(11).op("read result")?,
                received: row.get(12).op("read result")?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            })
        };
        out.push(QueueEntry { id, item });
    }
    Ok(out)
}

fn ack(conn: &Connection, last_id: i64) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM remote_write_queue WHERE id <= ?1",
        params![last_id],
    )
    .map(|_| ())
    .op("acknowledge remote write queue")
}

fn pending(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT COUNT(*) FROM remote_write_queue", [], |r| r.get(0))
        .op("count remote write queue")
}

impl ExportQueue for SqliteStore {
    fn export_prepare(&self, enabled: bool) -> Result<u64, StoreError> {
        self.write(|c| prepare(c, enabled))
    }

    fn export_take(&self, limit: usize) -> Result<Vec<QueueEntry>, StoreError> {
        self.read(|c| take(c, limit))
    }

    fn export_ack(&self, last_id: i64) -> Result<(), StoreError> {
        self.write(|c| ack(c, last_id))
    }

    fn export_pending(&self) -> Result<i64, StoreError> {
        self.read(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::Batch;
    use crate::store;

    /// The exporter's read: queue entries folded into one request's batch.
    fn read_batch(conn: &Connection, max: usize) -> Result<Option<Batch>, StoreError> {
        Ok(crate::remote_write::batch(take(conn, max)?, max))
    }

    #[test]
    fn queue_fills_only_while_enabled_and_acks_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let conn = store::open(dir.path()).unwrap();
        store::add_opd(&conn, "o", "O").unwrap();
        store::add_agent(&conn, "a", "o", &[1; 32]).unwrap();
        let insert = |seq: i64, flag: Option<&str>| {
            conn.execute(
                "INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms,
                   received_at_ms, outcome, detail, value_ms, sent, received, data, late, clock_flag)
                 VALUES ('a', 1, ?1, 'o', 't', 'tcp', ?2, 0, 'ok', '', 1.5, NULL, NULL, '{}', 0, ?3)",
                params![seq, 1_000 * seq, flag],
            )
            .unwrap();
        };
        insert(1, None);
        assert_eq!(pending(&conn).unwrap(), 0, "disabled: nothing queued");
        prepare(&conn, true).unwrap();
        insert(2, None);
        insert(3, Some("future"));
        insert(4, None);
        // A replayed result is not stored again, so not queued again.
        conn.execute(
            "INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms,
               received_at_ms, outcome, detail, data) VALUES ('a', 1, 2, 'o', 't', 'tcp', 0, 0, 'ok', '', '{}')
             ON CONFLICT DO NOTHING",
            [],
        )
        .unwrap();
        assert_eq!(pending(&conn).unwrap(), 3);
        // 100 samples fit two results of two samples each.
        let b = read_batch(&conn, 100).unwrap().unwrap();
        assert_eq!((b.results.len(), b.untrusted, b.expired), (2, 1, 0));
        let ts: Vec<i64> = b.results.iter().map(|r| r[0].timestamp_ms).collect();
        assert_eq!(ts, [2_000, 4_000]);
        let acked = b.last_id;
        ack(&conn, acked).unwrap();
        drop(conn);
        let conn = store::open(dir.path()).unwrap();
        assert_eq!(pending(&conn).unwrap(), 0);
        assert!(read_batch(&conn, 100).unwrap().is_none());
        // Ids keep growing after the queue was emptied: no reuse.
        conn.execute(
            "INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms,
               received_at_ms, outcome, detail, data) VALUES ('a', 1, 5, 'o', 't', 'tcp', 5000, 0, 'ok', '', '{}')",
            [],
        )
        .unwrap();
        let b = read_batch(&conn, 100).unwrap().unwrap();
        assert_eq!(b.last_id, acked + 1);
        // Retention deleted a queued result: skipped as expired.
        conn.execute("DELETE FROM result WHERE seq = 5", [])
            .unwrap();
        let b = read_batch(&conn, 100).unwrap().unwrap();
        assert_eq!((b.results.len(), b.expired), (0, 1));
        assert_eq!(prepare(&conn, false).unwrap(), 1);
        assert_eq!(pending(&conn).unwrap(), 0);
    }
}
