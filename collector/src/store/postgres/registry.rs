//! The registry in PostgreSQL: OPDs, agents, tokens, credentials and the
//! rows the metrics seeding starts from.

use postgres::{GenericClient, Row};

use super::{Db, PgStore};
use crate::model::AgentIdentity;
use crate::store::registry::{
    AgentSeries, Credential, CredentialChange, CredentialInfo, OpdInfo, OpdState, Refusal, Registry,
};
use crate::store::{Op, StoreError, now_ms};

// An agent of a disabled or removed OPD reads as disabled.
const CREDENTIAL_BY_TOKEN: &str = "SELECT id, opd_id, token_sha256, disabled_at_ms IS NOT NULL
    OR (SELECT state FROM opd WHERE opd.id = agent.opd_id) <> 'active',
    revoked_at_ms IS NOT NULL, token_expires_at_ms FROM agent WHERE token_sha256 = $1";
const CREDENTIAL_OF: &str = "SELECT id, opd_id, token_sha256, disabled_at_ms IS NOT NULL
    OR (SELECT state FROM opd WHERE opd.id = agent.opd_id) <> 'active',
    revoked_at_ms IS NOT NULL, token_expires_at_ms FROM agent WHERE id = $1";

fn credential_row(r: &Row) -> Credential {
    Credential {
        who: AgentIdentity {
            agent_id: r.get(0),
            opd_id: r.get(1),
        },
        token_sha256: r.get(2),
        disabled: r.get(3),
        revoked: r.get(4),
        expires_at_ms: r.get(5),
    }
}

fn add_agent<C: GenericClient>(
    db: &mut Db<'_, C>,
    id: &str,
    opd: &str,
    token_sha256: &[u8],
) -> Result<(), StoreError> {
    let state: Option<String> = db
        .query_opt("SELECT state FROM opd WHERE id = $1", &[&opd])
        .op("look up opd")?
        .map(|r| r.get(0));
    match state.as_deref().map(OpdState::parse) {
        None => return Err(StoreError::UnknownOpd(opd.to_string())),
        Some(OpdState::Active) => {}
        Some(_) => return Err(StoreError::OpdInactive(opd.to_string())),
    }
    let n = db
        .execute(
            "INSERT INTO agent (id, opd_id, token_sha256, created_at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&id, &opd, &token_sha256, &now_ms()],
        )
        .op("insert agent")?;
    if n == 0 {
        // The id is taken, or (rarely) the digest is another agent's.
        return Err(StoreError::Exists(format!("agent `{id}`")));
    }
    Ok(())
}

fn change_credential<C: GenericClient>(
    db: &mut Db<'_, C>,
    id: &str,
    change: &CredentialChange,
) -> Result<(), StoreError> {
    let Some(state) = db
        .query_opt(
            "SELECT token_sha256, revoked_at_ms IS NOT NULL FROM agent WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .op("look up agent")?
    else {
        return Err(StoreError::UnknownAgent(id.to_string()));
    };
    let old: Vec<u8> = state.get(0);
    let revoked: bool = state.get(1);
    let now = now_ms();
    let retire = |db: &mut Db<'_, C>, why: &str| {
        db.execute(
            "INSERT INTO retired_token (token_sha256, agent_id, why, retired_at_ms)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (token_sha256) DO UPDATE SET agent_id = excluded.agent_id,
               why = excluded.why, retired_at_ms = excluded.retired_at_ms",
            &[&old, &id, &why, &now],
        )
        .op("retire token")
    };
    match change {
        CredentialChange::Disable => {
            db.execute(
                "UPDATE agent SET disabled_at_ms = COALESCE(disabled_at_ms, $2) WHERE id = $1",
                &[&id, &now],
            )
            .op("disable agent")?;
        }
        CredentialChange::Enable if revoked => return Err(StoreError::Revoked(id.to_string())),
        CredentialChange::Enable => {
            db.execute(
                "UPDATE agent SET disabled_at_ms = NULL WHERE id = $1",
                &[&id],
            )
            .op("enable agent")?;
        }
        CredentialChange::Revoke => {
            if !revoked {
                retire(db, "revoked")?;
            }
            // As in SQLite: a per-agent marker no SHA-256 can equal.
            db.execute(
                "UPDATE agent SET revoked_at_ms = COALESCE(revoked_at_ms, $2),
                 token_sha256 = convert_to('revoked:' || id, 'UTF8') WHERE id = $1",
                &[&id, &now],
            )
            .op("revoke agent")?;
        }
        CredentialChange::Rotate { .. } if revoked => {
            return Err(StoreError::Revoked(id.to_string()));
        }
        CredentialChange::Rotate {
            token_sha256,
            expires_at_ms,
        } => {
            retire(db, "rotated")?;
            db.execute(
                "UPDATE agent SET token_sha256 = $2, token_expires_at_ms = $3 WHERE id = $1",
                &[&id, token_sha256, expires_at_ms],
            )
            .op("rotate token")?;
        }
    }
    Ok(())
}

fn agent_series<C: GenericClient>(
    db: &mut Db<'_, C>,
    lookback_ms: i64,
) -> Result<Vec<AgentSeries>, StoreError> {
    let agents = db
        .query(
            "SELECT id, opd_id, clock_offset_ms FROM agent ORDER BY id",
            &[],
        )
        .op("seed agents")?;
    let mut out = Vec::with_capacity(agents.len());
    for a in agents {
        let agent: String = a.get(0);
        let last_seen_ms: Option<i64> = db
            .query_one(
                "SELECT MAX(received_at_ms) FROM result WHERE agent_id = $1
                 AND observed_at_ms >= (SELECT MAX(observed_at_ms) FROM result WHERE agent_id = $1) - $2",
                &[&agent, &lookback_ms],
            )
            .op("seed last seen")?
            .get(0);
        let targets = db
            .query(
                "SELECT id FROM target WHERE agent_id = $1 ORDER BY id",
                &[&agent],
            )
            .op("seed targets")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        out.push(AgentSeries {
            who: AgentIdentity {
                agent_id: agent,
                opd_id: a.get(1),
            },
            last_seen_ms,
            clock_offset_ms: a.get(2),
            targets,
        });
    }
    Ok(out)
}

impl Registry for PgStore {
    fn add_opd(&self, id: &str, name: &str) -> Result<(), StoreError> {
        let n = self.write(|c| {
            c.db()
                .execute(
                    "INSERT INTO opd (id, name, created_at_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO NOTHING",
                    &[&id, &name, &now_ms()],
                )
                .op("insert opd")
        })?;
        if n == 0 {
            return Err(StoreError::Exists(format!("OPD `{id}`")));
        }
        Ok(())
    }

    fn add_agent(&self, id: &str, opd: &str, token_sha256: &[u8]) -> Result<(), StoreError> {
        self.write(|c| c.tx(|db| add_agent(db, id, opd, token_sha256)))
    }

    fn agent_by_token(
        &self,
        digest: &[u8],
    ) -> Result<Option<(AgentIdentity, Vec<u8>)>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_opt(
                    "SELECT id, opd_id, token_sha256 FROM agent WHERE token_sha256 = $1
                     AND disabled_at_ms IS NULL AND revoked_at_ms IS NULL
                     AND (token_expires_at_ms IS NULL OR token_expires_at_ms > $2)
                     AND opd_id IN (SELECT id FROM opd WHERE state = 'active')",
                    &[&digest, &now_ms()],
                )
                .op("look up token")?
                .map(|r| {
                    (
                        AgentIdentity {
                            agent_id: r.get(0),
                            opd_id: r.get(1),
                        },
                        r.get(2),
                    )
                }))
        })
    }

    fn opd_name(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_opt("SELECT name FROM opd WHERE id = $1", &[&id])
                .op("read OPD name")?
                .map(|r| r.get(0)))
        })
    }

    fn opd_ids(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query("SELECT id FROM opd ORDER BY id", &[])
                .op("seed opds")?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn agent_series(&self, lookback_ms: i64) -> Result<Vec<AgentSeries>, StoreError> {
        self.read(|c| c.snapshot(|db| agent_series(db, lookback_ms)))
    }

    fn credential_by_token(&self, digest: &[u8]) -> Result<Option<Credential>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_opt(CREDENTIAL_BY_TOKEN, &[&digest])
                .op("look up credential")?
                .as_ref()
                .map(credential_row))
        })
    }

    fn credential_of(&self, id: &str) -> Result<Option<Credential>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_opt(CREDENTIAL_OF, &[&id])
                .op("look up agent credential")?
                .as_ref()
                .map(credential_row))
        })
    }

    fn retired_token(&self, digest: &[u8]) -> Result<Option<(String, Refusal)>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_opt(
                    "SELECT agent_id, why FROM retired_token WHERE token_sha256 = $1",
                    &[&digest],
                )
                .op("look up retired token")?
                .map(|r| (r.get(0), Refusal::from_retired(r.get(1)))))
        })
    }

    fn change_credential(&self, id: &str, change: &CredentialChange) -> Result<(), StoreError> {
        self.write(|c| c.tx(|db| change_credential(db, id, change)))
    }

    fn record_auth(&self, id: &str, peer: &str, at_ms: i64) -> Result<(), StoreError> {
        self.write(|c| {
            c.db()
                .execute(
                    "UPDATE agent SET last_peer = $2, last_auth_at_ms = $3 WHERE id = $1",
                    &[&id, &peer, &at_ms],
                )
                .op("record authentication")
                .map(drop)
        })
    }

    fn credentials(&self) -> Result<Vec<CredentialInfo>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT id, disabled_at_ms IS NOT NULL, revoked_at_ms IS NOT NULL,
                     token_expires_at_ms, last_peer, last_auth_at_ms FROM agent ORDER BY id",
                    &[],
                )
                .op("read credentials")?
                .iter()
                .map(|r| CredentialInfo {
                    agent_id: r.get(0),
                    disabled: r.get(1),
                    revoked: r.get(2),
                    expires_at_ms: r.get(3),
                    last_peer: r.get(4),
                    last_auth_at_ms: r.get(5),
                })
                .collect())
        })
    }

    fn rename_opd(&self, id: &str, name: &str) -> Result<String, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let old: String = db
                    .query_opt("SELECT name FROM opd WHERE id = $1 FOR UPDATE", &[&id])
                    .op("read opd name")?
                    .ok_or_else(|| StoreError::UnknownOpd(id.to_string()))?
                    .get(0);
                db.execute("UPDATE opd SET name = $2 WHERE id = $1", &[&id, &name])
                    .op("rename opd")?;
                Ok(old)
            })
        })
    }

    fn set_opd_state(&self, id: &str, state: OpdState) -> Result<OpdState, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let before: String = db
                    .query_opt("SELECT state FROM opd WHERE id = $1 FOR UPDATE", &[&id])
                    .op("read opd state")?
                    .ok_or_else(|| StoreError::UnknownOpd(id.to_string()))?
                    .get(0);
                db.execute(
                    "UPDATE opd SET state = $2 WHERE id = $1",
                    &[&id, &state.as_str()],
                )
                .op("set opd state")?;
                Ok(OpdState::parse(&before))
            })
        })
    }

    fn opd_infos(&self) -> Result<Vec<OpdInfo>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT o.id, o.name, o.state,
                     (SELECT COUNT(*) FROM agent a WHERE a.opd_id = o.id), o.contracted_mbps
                     FROM opd o ORDER BY o.id",
                    &[],
                )
                .op("read opd infos")?
                .iter()
                .map(|r| OpdInfo {
                    id: r.get(0),
                    name: r.get(1),
                    state: OpdState::parse(r.get(2)),
                    agents: r.get(3),
                    contracted_mbps: r.get(4),
                })
                .collect())
        })
    }
}
