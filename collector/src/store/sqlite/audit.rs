//! The audit log in SQLite (`audit_log`, schema_audit.sql): appended on the
//! writer connection inside `BEGIN IMMEDIATE`, so the head read and the
//! insert are one step; triggers refuse UPDATE and DELETE.

use rusqlite::{Connection, OptionalExtension, params};

use super::report::SqliteRead;
use super::{SqliteStore, write_tx};
use crate::store::audit::{
    AuditEntry, AuditLog, AuditQuery, AuditRead, GENESIS, NewAuditEntry, canonical_json, entry_hash,
};
use crate::store::{Op, StoreError};

/// Append `e` after the head inside the caller's transaction.
pub fn append_in(tx: &Connection, e: &NewAuditEntry) -> Result<AuditEntry, StoreError> {
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .op("read audit head")?;
    let (seq, prev_hash) = match head {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let hash = entry_hash(seq, e, &prev_hash);
    tx.execute(
        "INSERT INTO audit_log (seq, time_ms, actor_kind, actor_name, source, action, object,
         before, after, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            seq,
            e.time_ms,
            e.actor_kind,
            e.actor_name,
            e.source,
            e.action,
            e.object,
            canonical_json(&e.before),
            canonical_json(&e.after),
            prev_hash,
            hash
        ],
    )
    .op("append audit entry")?;
    Ok(AuditEntry {
        seq,
        time_ms: e.time_ms,
        actor_kind: e.actor_kind.clone(),
        actor_name: e.actor_name.clone(),
        source: e.source.clone(),
        action: e.action.clone(),
        object: e.object.clone(),
        before: e.before.clone(),
        after: e.after.clone(),
        prev_hash,
        hash,
    })
}

fn json(i: usize, text: String) -> rusqlite::Result<serde_json::Value> {
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// Entries matching `q`, by seq.
pub fn list(c: &Connection, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    let mut st = c
        .prepare(
            "SELECT seq, time_ms, actor_kind, actor_name, source, action, object, before, after,
             prev_hash, hash FROM audit_log WHERE seq > ?1 AND time_ms >= ?2 ORDER BY seq",
        )
        .op("prepare audit list")?;
    let rows = st
        .query_map(
            params![
                q.after_seq.unwrap_or(i64::MIN),
                q.since_ms.unwrap_or(i64::MIN)
            ],
            |r| {
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    time_ms: r.get(1)?,
                    actor_kind: r.get(2)?,
                    actor_name: r.get(3)?,
                    source: r.get(4)?,
                    action: r.get(5)?,
                    object: r.get(6)?,
                    before: json(7, r.get(7)?)?,
                    after: json(8, r.get(8)?)?,
                    prev_hash: r.get(9)?,
                    hash: r.get(10)?,
                })
            },
        )
        .op("read audit log")?;
    rows.collect::<Result<_, _>>().op("read audit entry")
}

impl AuditLog for SqliteStore {
    fn append_audit(&self, e: &NewAuditEntry) -> Result<AuditEntry, StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin audit append")?;
            let stored = append_in(&tx, e)?;
            tx.commit().op("commit audit append")?;
            Ok(stored)
        })
    }

    fn audit_list(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|c| list(c, q))
    }

    fn audit_head(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_log", [], |r| {
                r.get(0)
            })
            .op("read audit head")
        })
    }
}

impl AuditRead for SqliteRead<'_> {
    fn audit_entries(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        list(self.0, q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> NewAuditEntry {
        NewAuditEntry {
            time_ms: 1_000,
            actor_kind: "cli-user".into(),
            actor_name: "root".into(),
            source: "cli:root@box".into(),
            action: action.into(),
            object: "dinkes".into(),
            before: serde_json::Value::Null,
            after: serde_json::json!({"name": "Dinas Kesehatan"}),
        }
    }

    #[test]
    fn entries_chain_and_the_table_refuses_update_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.audit_head().unwrap(), 0);
        let a = s.append_audit(&entry("opd.add")).unwrap();
        let b = s.append_audit(&entry("opd.contract")).unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(b.hash, b.computed_hash());
        let all = s.audit_list(&AuditQuery::default()).unwrap();
        assert_eq!(all, vec![a, b.clone()]);
        let later = s
            .audit_list(&AuditQuery {
                after_seq: Some(1),
                since_ms: None,
            })
            .unwrap();
        assert_eq!(later, vec![b]);
        for sql in [
            "UPDATE audit_log SET after = 'null' WHERE seq = 1",
            "DELETE FROM audit_log WHERE seq = 2",
        ] {
            let e = s
                .write(|c| c.execute(sql, []).op("tamper"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("append-only"), "{e}");
        }
        assert_eq!(s.audit_head().unwrap(), 2);
    }
}
