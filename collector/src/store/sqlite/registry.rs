//! The registry in SQLite: OPDs, agents, tokens, and the rows the metrics
//! seeding starts from.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::model::AgentIdentity;
use crate::store::registry::{AgentSeries, Registry};
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
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM opd WHERE id = ?1)",
            [opd],
            |r| r.get(0),
        )
        .op("look up opd")?;
    if !exists {
        return Err(StoreError::UnknownOpd(opd.to_string()));
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
        "SELECT id, opd_id, token_sha256 FROM agent WHERE token_sha256 = ?1",
        [digest],
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
}
