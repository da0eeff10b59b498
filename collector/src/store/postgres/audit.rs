//! The audit log in PostgreSQL (`audit_log`, schema_3.sql). An append takes
//! a transaction-scoped advisory lock before it reads the head, so appends
//! from every collector sharing the database form one chain without forks;
//! triggers refuse UPDATE, DELETE and TRUNCATE.

use postgres::{GenericClient, Row};

use super::report::PgRead;
use super::{Db, PgStore};
use crate::store::audit::{
    AuditEntry, AuditLog, AuditQuery, AuditRead, GENESIS, NewAuditEntry, canonical_json, entry_hash,
};
use crate::store::{Op, StoreError};

/// The advisory lock key serialising audit appends ("audit" in ASCII).
const AUDIT_LOCK: i64 = 0x0061_7564_6974;

/// Append `e` after the head inside the caller's transaction.
pub fn append_in<C: GenericClient>(
    db: &mut Db<'_, C>,
    e: &NewAuditEntry,
) -> Result<AuditEntry, StoreError> {
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
        .op("lock audit head")?;
    let head = db
        .query_opt(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .op("read audit head")?;
    let (seq, prev_hash) = match head {
        Some(r) => (r.get::<_, i64>(0) + 1, r.get::<_, String>(1)),
        None => (1, GENESIS.to_string()),
    };
    let hash = entry_hash(seq, e, &prev_hash);
    db.execute(
        "INSERT INTO audit_log (seq, time_ms, actor_kind, actor_name, source, action, object,
         before, after, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &seq,
            &e.time_ms,
            &e.actor_kind,
            &e.actor_name,
            &e.source,
            &e.action,
            &e.object,
            &canonical_json(&e.before),
            &canonical_json(&e.after),
            &prev_hash,
            &hash,
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

fn json(r: &Row, i: usize) -> Result<serde_json::Value, StoreError> {
    let text: String = r.get(i);
    serde_json::from_str(&text).map_err(|e| {
        StoreError::NotStored(format!(
            "audit_log column {i} holds invalid JSON ({e}); the log was altered outside Pantau"
        ))
    })
}

/// Entries matching `q`, by seq.
pub fn list<C: GenericClient>(
    db: &mut Db<'_, C>,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    db.query(
        "SELECT seq, time_ms, actor_kind, actor_name, source, action, object, before, after,
         prev_hash, hash FROM audit_log WHERE seq > $1 AND time_ms >= $2 ORDER BY seq",
        &[
            &q.after_seq.unwrap_or(i64::MIN),
            &q.since_ms.unwrap_or(i64::MIN),
        ],
    )
    .op("read audit log")?
    .iter()
    .map(|r| {
        Ok(AuditEntry {
            seq: r.get(0),
            time_ms: r.get(1),
            actor_kind: r.get(2),
            actor_name: r.get(3),
            source: r.get(4),
            action: r.get(5),
            object: r.get(6),
            before: json(r, 7)?,
            after: json(r, 8)?,
            prev_hash: r.get(9),
            hash: r.get(10),
        })
    })
    .collect()
}

impl AuditLog for PgStore {
    fn append_audit(&self, e: &NewAuditEntry) -> Result<AuditEntry, StoreError> {
        self.write(|c| c.tx(|db| append_in(db, e)))
    }

    fn audit_list(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|c| list(&mut c.db(), q))
    }

    fn audit_head(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_one("SELECT COALESCE(MAX(seq), 0)::bigint FROM audit_log", &[])
                .op("read audit head")?
                .get(0))
        })
    }
}

impl<C: GenericClient> AuditRead for PgRead<'_, '_, C> {
    fn audit_entries(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        list(&mut self.0.borrow_mut(), q)
    }
}
