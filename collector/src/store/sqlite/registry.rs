//! The registry in SQLite: OPDs, agents, tokens, and the rows the metrics
//! seeding starts from.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::model::AgentIdentity;
use crate::store::registry::{
    AgentSeries, Credential, CredentialChange, CredentialInfo, OpdInfo, OpdState, Refusal, Registry,
};
use crate::store::{Op, StoreError, now_ms};

/// Add an OPD.
pub fn add_opd(conn: &Connection, id: &str, name: &str) -> Result<(), StoreError> {
    let n = conn
        .execute(
            "INSERT INTO opd (id, name, created_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO NOTHING",
            params![id, name, now_ms()],
        )
        .op("insert opd")?;
    if n == 0 {
        return Err(StoreError::Exists(format!("OPD `{id}`")));
    }
    Ok(())
}

/// Add an agent under an OPD with the SHA-256 of its token.
pub fn add_agent(
    conn: &Connection,
    id: &str,
    opd: &str,
    token_sha256: &[u8],
) -> Result<(), StoreError> {
    let state: Option<String> = conn
        .query_row("SELECT state FROM opd WHERE id = ?1", [opd], |r| r.get(0))
        .optional()
        .op("look up opd")?;
    match state.as_deref().map(OpdState::parse) {
        None => return Err(StoreError::UnknownOpd(opd.to_string())),
        Some(OpdState::Active) => {}
        Some(_) => return Err(StoreError::OpdInactive(opd.to_string())),
    }
    let n = conn
        .execute(
            "INSERT INTO agent (id, opd_id, token_sha256, created_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO NOTHING",
            params![id, opd, token_sha256, now_ms()],
        )
        .op("insert agent")?;
    if n == 0 {
        return Err(StoreError::Exists(format!("agent `{id}`")));
    }
    Ok(())
}

/// Find the agent whose token hashes to `digest`; returns its identity and
/// the stored digest for a constant-time comparison by the caller.
pub fn agent_by_token(
    conn: &Connection,
    digest: &[u8],
) -> Result<Option<(AgentIdentity, Vec<u8>)>, StoreError> {
    conn.query_row(
        "SELECT id, opd_id, token_sha256 FROM agent WHERE token_sha256 = ?1
         AND disabled_at_ms IS NULL AND revoked_at_ms IS NULL
         AND (token_expires_at_ms IS NULL OR token_expires_at_ms > ?2)
         AND opd_id IN (SELECT id FROM opd WHERE state = 'active')",
        params![digest, now_ms()],
        |r| {
            Ok((
                AgentIdentity {
                    agent_id: r.get(0)?,
                    opd_id: r.get(1)?,
                },
                r.get(2)?,
            ))
        },
    )
    .optional()
    .op("look up token")
}

// An agent of a disabled or removed OPD reads as disabled.
const CREDENTIAL: &str = "SELECT id, opd_id, token_sha256, disabled_at_ms IS NOT NULL
    OR (SELECT state FROM opd WHERE opd.id = agent.opd_id) <> 'active',
    revoked_at_ms IS NOT NULL, token_expires_at_ms FROM agent";

fn credential_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Credential> {
    Ok(Credential {
        who: AgentIdentity {
            agent_id: r.get(0)?,
            opd_id: r.get(1)?,
        },
        token_sha256: r.get(2)?,
        disabled: r.get(3)?,
        revoked: r.get(4)?,
        expires_at_ms: r.get(5)?,
    })
}

fn credential_by_token(conn: &Connection, digest: &[u8]) -> Result<Option<Credential>, StoreError> {
    conn.prepare_cached(&format!("{CREDENTIAL} WHERE token_sha256 = ?1"))
        .op("prepare credential by token")?
        .query_row([digest], credential_row)
        .optional()
        .op("look up credential")
}

fn credential_of(conn: &Connection, id: &str) -> Result<Option<Credential>, StoreError> {
    conn.prepare_cached(&format!("{CREDENTIAL} WHERE id = ?1"))
        .op("prepare credential of agent")?
        .query_row([id], credential_row)
        .optional()
        .op("look up agent credential")
}

fn retired_token(
    conn: &Connection,
    digest: &[u8],
) -> Result<Option<(String, Refusal)>, StoreError> {
    conn.query_row(
        "SELECT agent_id, why FROM retired_token WHERE token_sha256 = ?1",
        [digest],
        |r| Ok((r.get(0)?, Refusal::from_retired(&r.get::<_, String>(1)?))),
    )
    .optional()
    .op("look up retired token")
}

/// Apply a credential change in one transaction.
pub fn change_credential(
    conn: &Connection,
    id: &str,
    change: &CredentialChange,
) -> Result<(), StoreError> {
    let tx = super::write_tx(conn).op("begin credential change")?;
    let state: Option<(Vec<u8>, bool)> = tx
        .query_row(
            "SELECT token_sha256, revoked_at_ms IS NOT NULL FROM agent WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .op("look up agent")?;
    let Some((old, revoked)) = state else {
        return Err(StoreError::UnknownAgent(id.to_string()));
    };
    let now = now_ms();
    let retire = |why: &str| {
        tx.execute(
            "INSERT OR REPLACE INTO retired_token (token_sha256, agent_id, why, retired_at_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![old, id, why, now],
        )
        .op("retire token")
    };
    match change {
        CredentialChange::Disable => {
            tx.execute(
                "UPDATE agent SET disabled_at_ms = COALESCE(disabled_at_ms, ?2) WHERE id = ?1",
                params![id, now],
            )
            .op("disable agent")?;
        }
        CredentialChange::Enable if revoked => return Err(StoreError::Revoked(id.to_string())),
        CredentialChange::Enable => {
            tx.execute("UPDATE agent SET disabled_at_ms = NULL WHERE id = ?1", [id])
                .op("enable agent")?;
        }
        CredentialChange::Revoke => {
            if !revoked {
                retire("revoked")?;
            }
            // The digest is dropped: the column is NOT NULL UNIQUE, so it
            // holds a per-agent marker no SHA-256 can equal (not 32 bytes).
            tx.execute(
                "UPDATE agent SET revoked_at_ms = COALESCE(revoked_at_ms, ?2),
                 token_sha256 = CAST('revoked:' || id AS BLOB) WHERE id = ?1",
                params![id, now],
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
            retire("rotated")?;
            tx.execute(
                "UPDATE agent SET token_sha256 = ?2, token_expires_at_ms = ?3 WHERE id = ?1",
                params![id, token_sha256, expires_at_ms],
            )
            .op("rotate token")?;
        }
    }
    tx.commit().op("commit credential change")
}

fn credentials(conn: &Connection) -> Result<Vec<CredentialInfo>, StoreError> {
    conn.prepare(
        "SELECT id, disabled_at_ms IS NOT NULL, revoked_at_ms IS NOT NULL, token_expires_at_ms,
         last_peer, last_auth_at_ms FROM agent ORDER BY id",
    )
    .op("prepare credentials")?
    .query_map([], |r| {
        Ok(CredentialInfo {
            agent_id: r.get(0)?,
            disabled: r.get(1)?,
            revoked: r.get(2)?,
            expires_at_ms: r.get(3)?,
            last_peer: r.get(4)?,
            last_auth_at_ms: r.get(5)?,
        })
    })
    .op("query credentials")?
    .collect::<Result<_, _>>()
    .op("read credentials")
}

fn opd_name(conn: &Connection, id: &str) -> Result<Option<String>, StoreError> {
    conn.query_row("SELECT name FROM opd WHERE id = ?1", [id], |row| {
        row.get::<_, String>(0)
    })
    .optional()
    .op("read OPD name")
}

fn opd_ids(conn: &Connection) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached("SELECT id FROM opd ORDER BY id")
        .op("prepare seed opds")?
        .query_map([], |r| r.get(0))
        .op("seed opds")?
        .collect::<Result<_, _>>()
        .op("seed opds")
}

fn agent_series(conn: &Connection, lookback_ms: i64) -> Result<Vec<AgentSeries>, StoreError> {
    let agents: Vec<(String, String, Option<i64>)> = conn
        .prepare("SELECT id, opd_id, clock_offset_ms FROM agent ORDER BY id")
        .op("prepare seed agents")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .op("seed agents")?
        .collect::<Result<_, _>>()
        .op("seed agents")?;
    let mut last_seen = conn
        .prepare(
            "SELECT MAX(received_at_ms) FROM result WHERE agent_id = ?1
             AND observed_at_ms >= (SELECT MAX(observed_at_ms) FROM result WHERE agent_id = ?1) - ?2",
        )
        .op("prepare seed last seen")?;
    let mut targets = conn
        .prepare("SELECT id FROM target WHERE agent_id = ?1 ORDER BY id")
        .op("prepare seed targets")?;
    let mut out = Vec::with_capacity(agents.len());
    for (agent, opd, offset) in agents {
        let last_seen_ms: Option<i64> = last_seen
            .query_row(params![agent, lookback_ms], |r| r.get(0))
            .op("seed last seen")?;
        let ids: Vec<String> = targets
            .query_map([&agent], |r| r.get(0))
            .op("seed targets")?
            .collect::<Result<_, _>>()
            .op("seed targets")?;
        out.push(AgentSeries {
            who: AgentIdentity {
                agent_id: agent,
                opd_id: opd,
            },
            last_seen_ms,
            clock_offset_ms: offset,
            targets: ids,
        });
    }
    Ok(out)
}

fn rename_opd(conn: &Connection, id: &str, name: &str) -> Result<String, StoreError> {
    let tx = super::write_tx(conn).op("begin rename opd")?;
    let old = opd_name(&tx, id)?.ok_or_else(|| StoreError::UnknownOpd(id.to_string()))?;
    tx.execute("UPDATE opd SET name = ?2 WHERE id = ?1", params![id, name])
        .op("rename opd")?;
    tx.commit().op("commit rename opd")?;
    Ok(old)
}

fn set_opd_state(conn: &Connection, id: &str, state: OpdState) -> Result<OpdState, StoreError> {
    let tx = super::write_tx(conn).op("begin opd state")?;
    let before: String = tx
        .query_row("SELECT state FROM opd WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .op("read opd state")?
        .ok_or_else(|| StoreError::UnknownOpd(id.to_string()))?;
    tx.execute(
        "UPDATE opd SET state = ?2 WHERE id = ?1",
        params![id, state.as_str()],
    )
    .op("set opd state")?;
    tx.commit().op("commit opd state")?;
    Ok(OpdState::parse(&before))
}

fn opd_infos(conn: &Connection) -> Result<Vec<OpdInfo>, StoreError> {
    conn.prepare(
        "SELECT o.id, o.name, o.state, (SELECT COUNT(*) FROM agent a WHERE a.opd_id = o.id),
         o.contracted_mbps FROM opd o ORDER BY o.id",
    )
    .op("prepare opd infos")?
    .query_map([], |r| {
        Ok(OpdInfo {
            id: r.get(0)?,
            name: r.get(1)?,
            state: OpdState::parse(&r.get::<_, String>(2)?),
            agents: r.get(3)?,
            contracted_mbps: r.get(4)?,
        })
    })
    .op("query opd infos")?
    .collect::<Result<_, _>>()
    .op("read opd infos")
}

impl Registry for SqliteStore {
    fn add_opd(&self, id: &str, name: &str) -> Result<(), StoreError> {
        self.write(|c| add_opd(c, id, name))
    }

    fn add_agent(&self, id: &str, opd: &str, token_sha256: &[u8]) -> Result<(), StoreError> {
        self.write(|c| add_agent(c, id, opd, token_sha256))
    }

    fn agent_by_token(
        &self,
        digest: &[u8],
    ) -> Result<Option<(AgentIdentity, Vec<u8>)>, StoreError> {
        self.read(|c| agent_by_token(c, digest))
    }

    fn opd_name(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| opd_name(c, id))
    }

    fn opd_ids(&self) -> Result<Vec<String>, StoreError> {
        self.read(opd_ids)
    }

    fn agent_series(&self, lookback_ms: i64) -> Result<Vec<AgentSeries>, StoreError> {
        self.read(|c| agent_series(c, lookback_ms))
    }

    fn credential_by_token(&self, digest: &[u8]) -> Result<Option<Credential>, StoreError> {
        self.read(|c| credential_by_token(c, digest))
    }

    fn credential_of(&self, id: &str) -> Result<Option<Credential>, StoreError> {
        self.read(|c| credential_of(c, id))
    }

    fn retired_token(&self, digest: &[u8]) -> Result<Option<(String, Refusal)>, StoreError> {
        self.read(|c| retired_token(c, digest))
    }

    fn change_credential(&self, id: &str, change: &CredentialChange) -> Result<(), StoreError> {
        self.write(|c| change_credential(c, id, change))
    }

    fn record_auth(&self, id: &str, peer: &str, at_ms: i64) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "UPDATE agent SET last_peer = ?2, last_auth_at_ms = ?3 WHERE id = ?1",
                params![id, peer, at_ms],
            )
            .op("record authentication")
            .map(drop)
        })
    }

    fn credentials(&self) -> Result<Vec<CredentialInfo>, StoreError> {
        self.read(credentials)
    }

    fn rename_opd(&self, id: &str, name: &str) -> Result<String, StoreError> {
        self.write(|c| rename_opd(c, id, name))
    }

    fn set_opd_state(&self, id: &str, state: OpdState) -> Result<OpdState, StoreError> {
        self.write(|c| set_opd_state(c, id, state))
    }

    fn opd_infos(&self) -> Result<Vec<OpdInfo>, StoreError> {
        self.read(opd_infos)
    }
}
