//! Enrolment codes in PostgreSQL (`enrol_code`). A code is consumed by one
//! conditional UPDATE, so racing redeemers (on any collector) win once.

use super::PgStore;
use crate::model::AgentIdentity;
use crate::store::credentials::{EnrolCodes, Redeemed};
use crate::store::{Op, StoreError, now_ms};

impl EnrolCodes for PgStore {
    fn issue_enrol_code(
        &self,
        agent_id: &str,
        code_sha256: &[u8],
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let exists = db
                    .query_opt("SELECT 1 FROM agent WHERE id = $1 FOR UPDATE", &[&agent_id])
                    .op("look up agent")?
                    .is_some();
                if !exists {
                    return Ok(false);
                }
                db.execute(
                    "DELETE FROM enrol_code WHERE agent_id = $1 AND used_at_ms IS NULL",
                    &[&agent_id],
                )
                .op("void old codes")?;
                db.execute(
                    "INSERT INTO enrol_code (code_sha256, agent_id, created_at_ms, expires_at_ms)
                     VALUES ($1, $2, $3, $4)",
                    &[&code_sha256, &agent_id, &now_ms(), &expires_at_ms],
                )
                .op("insert code")?;
                Ok(true)
            })
        })
    }

    fn redeem_enrol_code(
        &self,
        code_sha256: &[u8],
        token_sha256: &[u8],
        now: i64,
    ) -> Result<Redeemed, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let Some(row) = db
                    .query_opt(
                        "SELECT c.agent_id, a.opd_id, c.expires_at_ms, c.used_at_ms
                         FROM enrol_code c JOIN agent a ON a.id = c.agent_id
                         WHERE c.code_sha256 = $1 FOR UPDATE OF c",
                        &[&code_sha256],
                    )
                    .op("look up code")?
                else {
                    return Ok(Redeemed::Unknown);
                };
                let (agent_id, opd_id): (String, String) = (row.get(0), row.get(1));
                let expires: i64 = row.get(2);
                let used: Option<i64> = row.get(3);
                if used.is_some() {
                    return Ok(Redeemed::AlreadyUsed);
                }
                if now >= expires {
                    return Ok(Redeemed::Expired);
                }
                let n = db
                    .execute(
                        "UPDATE enrol_code SET used_at_ms = $2
                         WHERE code_sha256 = $1 AND used_at_ms IS NULL",
                        &[&code_sha256, &now],
                    )
                    .op("use code")?;
                if n == 0 {
                    return Ok(Redeemed::AlreadyUsed);
                }
                db.execute(
                    "UPDATE agent SET token_sha256 = $2 WHERE id = $1",
                    &[&agent_id, &token_sha256],
                )
                .op("replace token")?;
                Ok(Redeemed::Enrolled(AgentIdentity { agent_id, opd_id }))
            })
        })
    }
}
