//! Enrolment codes in SQLite (`enrol_code`, schema_enrol.sql).

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, write_tx};
use crate::model::AgentIdentity;
use crate::store::credentials::{EnrolCodes, Redeemed};
use crate::store::{Op, StoreError, now_ms};

fn issue(
    conn: &Connection,
    agent_id: &str,
    code_sha256: &[u8],
    expires_at_ms: i64,
) -> Result<bool, StoreError> {
    let tx = write_tx(conn).op("begin issue code")?;
    let exists: bool = tx
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM agent WHERE id = ?1)",
            [agent_id],
            |r| r.get(0),
        )
        .op("look up agent")?;
    if !exists {
        return Ok(false);
    }
    tx.execute(
        "DELETE FROM enrol_code WHERE agent_id = ?1 AND used_at_ms IS NULL",
        [agent_id],
    )
    .op("void old codes")?;
    tx.execute(
        "INSERT INTO enrol_code (code_sha256, agent_id, created_at_ms, expires_at_ms)
         VALUES (?1, ?2, ?3, ?4)",
        params![code_sha256, agent_id, now_ms(), expires_at_ms],
    )
    .op("insert code")?;
    tx.commit().op("commit issue code")?;
    Ok(true)
}

fn redeem(
    conn: &Connection,
    code_sha256: &[u8],
    token_sha256: &[u8],
    now: i64,
) -> Result<Redeemed, StoreError> {
    let tx = write_tx(conn).op("begin redeem code")?;
    let row: Option<(String, String, i64, Option<i64>)> = tx
        .query_row(
            "SELECT c.agent_id, a.opd_id, c.expires_at_ms, c.used_at_ms
             FROM enrol_code c JOIN agent a ON a.id = c.agent_id WHERE c.code_sha256 = ?1",
            [code_sha256],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .op("look up code")?;
    let Some((agent_id, opd_id, expires, used)) = row else {
        return Ok(Redeemed::Unknown);
    };
    if used.is_some() {
        return Ok(Redeemed::AlreadyUsed);
    }
    if now >= expires {
        return Ok(Redeemed::Expired);
    }
    tx.execute(
        "UPDATE enrol_code SET used_at_ms = ?2 WHERE code_sha256 = ?1 AND used_at_ms IS NULL",
        params![code_sha256, now],
    )
    .op("use code")?;
    tx.execute(
        "UPDATE agent SET token_sha256 = ?2 WHERE id = ?1",
        params![agent_id, token_sha256],
    )
    .op("replace token")?;
    tx.commit().op("commit redeem code")?;
    Ok(Redeemed::Enrolled(AgentIdentity { agent_id, opd_id }))
}

impl EnrolCodes for SqliteStore {
    fn issue_enrol_code(
        &self,
        agent_id: &str,
        code_sha256: &[u8],
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(|c| issue(c, agent_id, code_sha256, expires_at_ms))
    }

    fn redeem_enrol_code(
        &self,
        code_sha256: &[u8],
        token_sha256: &[u8],
        now_ms: i64,
    ) -> Result<Redeemed, StoreError> {
        self.write(|c| redeem(c, code_sha256, token_sha256, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Registry;

    #[test]
    fn a_code_is_used_once_expires_and_voids_older_codes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
        s.add_agent("a1", "dinkes", &[1; 32]).unwrap();
        assert!(!s.issue_enrol_code("nope", &[9; 32], i64::MAX).unwrap());
        assert!(s.issue_enrol_code("a1", &[2; 32], i64::MAX).unwrap());
        // A newer code voids the older unused one.
        assert!(s.issue_enrol_code("a1", &[3; 32], i64::MAX).unwrap());
        assert_eq!(
            s.redeem_enrol_code(&[2; 32], &[4; 32], 0).unwrap(),
            Redeemed::Unknown
        );
        let who = AgentIdentity {
            agent_id: "a1".into(),
            opd_id: "dinkes".into(),
        };
        assert_eq!(
            s.redeem_enrol_code(&[3; 32], &[4; 32], 0).unwrap(),
            Redeemed::Enrolled(who.clone())
        );
        assert_eq!(s.agent_by_token(&[4; 32]).unwrap().unwrap().0, who);
        assert_eq!(s.agent_by_token(&[1; 32]).unwrap(), None);
        assert_eq!(
            s.redeem_enrol_code(&[3; 32], &[5; 32], 0).unwrap(),
            Redeemed::AlreadyUsed
        );
        assert_eq!(s.agent_by_token(&[4; 32]).unwrap().unwrap().0, who);
        assert!(s.issue_enrol_code("a1", &[6; 32], 1_000).unwrap());
        assert_eq!(
            s.redeem_enrol_code(&[6; 32], &[7; 32], 1_000).unwrap(),
            Redeemed::Expired
        );
        assert_eq!(s.agent_by_token(&[7; 32]).unwrap(), None);
    }

    #[test]
    fn racing_redeemers_consume_a_code_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
        s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
        s.add_agent("a1", "dinkes", &[1; 32]).unwrap();
        assert!(s.issue_enrol_code("a1", &[2; 32], i64::MAX).unwrap());
        let outcomes: Vec<Redeemed> = (0..8u8)
            .map(|i| {
                let s = std::sync::Arc::clone(&s);
                std::thread::spawn(move || s.redeem_enrol_code(&[2; 32], &[10 + i; 32], 0).unwrap())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let won = outcomes
            .iter()
            .filter(|o| matches!(o, Redeemed::Enrolled(_)))
            .count();
        assert_eq!(won, 1, "{outcomes:?}");
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == Redeemed::AlreadyUsed)
                .count(),
            7
        );
    }
}
