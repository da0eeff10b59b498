//! Client certificates in SQLite (`client_cert`, schema_certs.sql).

use rusqlite::params;

use super::SqliteStore;
use crate::store::certs::{CertRefusals, ClientCerts};
use crate::store::{Op, StoreError};

impl ClientCerts for SqliteStore {
    fn record_client_cert(
        &self,
        agent_id: &str,
        serial: &str,
        issued_at_ms: i64,
        not_after_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO client_cert (serial, agent_id, issued_at_ms, not_after_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![serial, agent_id, issued_at_ms, not_after_ms],
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
        self.write(|c| {
            c.execute(
                "UPDATE client_cert SET revoked_at_ms = ?3, why = 'superseded'
                 WHERE agent_id = ?1 AND serial <> ?2 AND revoked_at_ms IS NULL",
                params![agent_id, keep, at_ms],
            )
            .op("supersede client certificates")
        })
    }

    fn revoke_client_cert(&self, serial: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.write(|c| {
            let n = c
                .execute(
                    "UPDATE client_cert SET revoked_at_ms = ?2, why = 'revoked'
                     WHERE serial = ?1",
                    params![serial, at_ms],
                )
                .op("revoke client certificate")?;
            Ok(n > 0)
        })
    }

    fn cert_refusals(&self) -> Result<CertRefusals, StoreError> {
        self.read(|c| {
            let mut out = CertRefusals::default();
            let mut q = c
                .prepare("SELECT serial, agent_id, revoked_at_ms IS NOT NULL FROM client_cert")
                .op("read client certificates")?;
            let rows = q
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
                })
                .op("read client certificates")?;
            for row in rows {
                let (serial, agent, revoked): (String, String, bool) =
                    row.op("read client certificate")?;
                if revoked {
                    out.revoked.push(serial);
                } else {
                    out.active.push((serial, agent));
                }
            }
            let mut q = c
                .prepare("SELECT id FROM agent WHERE revoked_at_ms IS NOT NULL")
                .op("read blocked agents")?;
            out.blocked_agents = q
                .query_map([], |r| r.get(0))
                .op("read blocked agents")?
                .collect::<Result<_, _>>()
                .op("read blocked agents")?;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Registry;

    #[test]
    fn renewal_supersedes_and_revoked_agents_are_blocked() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
        s.add_agent("a1", "dinkes", &[1; 32]).unwrap();
        s.record_client_cert("a1", "01aa", 1, 100).unwrap();
        s.record_client_cert("a1", "02bb", 2, 200).unwrap();
        let r = s.cert_refusals().unwrap();
        assert_eq!(r.active.len(), 2);
        assert_eq!(s.supersede_client_certs("a1", "02bb", 3).unwrap(), 1);
        let r = s.cert_refusals().unwrap();
        assert_eq!(r.active, vec![("02bb".to_string(), "a1".to_string())]);
        assert_eq!(r.revoked, vec!["01aa".to_string()]);
        assert!(r.blocked_agents.is_empty());
        assert!(s.revoke_client_cert("02bb", 4).unwrap());
        assert!(!s.revoke_client_cert("ffff", 4).unwrap());
        assert!(s.cert_refusals().unwrap().active.is_empty());
        // Disabling is undone by `enable`: the token check refuses it.
        s.change_credential("a1", &crate::store::registry::CredentialChange::Disable)
            .unwrap();
        assert!(s.cert_refusals().unwrap().blocked_agents.is_empty());
        s.change_credential("a1", &crate::store::registry::CredentialChange::Revoke)
            .unwrap();
        assert_eq!(s.cert_refusals().unwrap().blocked_agents, vec!["a1"]);
    }
}
