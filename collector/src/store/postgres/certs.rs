//! Client certificates in PostgreSQL (`client_cert`, schema_4.sql); the
//! same semantics as SQLite (store/sqlite/certs.rs).

use super::PgStore;
use crate::store::certs::{CertRefusals, ClientCerts};
use crate::store::{Op, StoreError};

impl ClientCerts for PgStore {
    fn record_client_cert(
        &self,
        agent_id: &str,
        serial: &str,
        issued_at_ms: i64,
        not_after_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(|c| {
            c.db()
                .execute(
                    "INSERT INTO client_cert (serial, agent_id, issued_at_ms, not_after_ms)
                     VALUES ($1, $2, $3, $4)",
                    &[&serial, &agent_id, &issued_at_ms, &not_after_ms],
                )
                .op("record client certificate")?;
            Ok(())
        })
    }

    fn supersede_client_certs(
        &self,
        agent_id: &str,
        keep: &str,
        at_ms: i64,
    ) -> Result<usize, StoreError> {
        let n = self.write(|c| {
            c.db()
                .execute(
                    "UPDATE client_cert SET revoked_at_ms = $3, why = 'superseded'
                     WHERE agent_id = $1 AND serial <> $2 AND revoked_at_ms IS NULL",
                    &[&agent_id, &keep, &at_ms],
                )
                .op("supersede client certificates")
        })?;
        Ok(n as usize)
    }

    fn revoke_client_cert(&self, serial: &str, at_ms: i64) -> Result<bool, StoreError> {
        let n = self.write(|c| {
            c.db()
                .execute(
                    "UPDATE client_cert SET revoked_at_ms = $2, why = 'revoked' WHERE serial = $1",
                    &[&serial, &at_ms],
                )
                .op("revoke client certificate")
        })?;
        Ok(n > 0)
    }

    fn cert_refusals(&self) -> Result<CertRefusals, StoreError> {
        // One snapshot: the certificates and the blocked agents agree.
        self.read(|c| {
            c.snapshot(|db| {
                let mut out = CertRefusals::default();
                for r in db
                    .query(
                        "SELECT serial, agent_id, revoked_at_ms IS NOT NULL FROM client_cert",
                        &[],
                    )
                    .op("read client certificates")?
                {
                    let (serial, agent, revoked): (String, String, bool) =
                        (r.get(0), r.get(1), r.get(2));
                    if revoked {
                        out.revoked.push(serial);
                    } else {
                        out.active.push((serial, agent));
                    }
                }
                out.blocked_agents = db
                    .query("SELECT id FROM agent WHERE revoked_at_ms IS NOT NULL", &[])
                    .op("read blocked agents")?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                Ok(out)
            })
        })
    }
}
