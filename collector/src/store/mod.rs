//! SQLite storage: schema migrations, OPD and agent registry, result writes
//! (one writer) and the read queries behind the API.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::{AgentIdentity, HelloInfo, ProbeKind, ResultRow, RowKind};

pub mod conflict;
pub mod conformance;
pub mod report;
pub mod sqlite;

pub use sqlite::{DB_FILE, SqliteStore};

/// A storage failure, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("{op}: {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: rusqlite::Error,
    },
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A referenced OPD does not exist.
    #[error(
        "OPD `{0}` does not exist; add it first with `pantau-collector opd add {0} --name NAME`"
    )]
    UnknownOpd(String),
    /// A write failed; the operation was not stored.
    #[error("not stored: {0}")]
    NotStored(String),
    /// An id is already in use.
    #[error("{0} already exists")]
    Exists(String),
}

pub(crate) trait Op<T> {
    fn op(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Op<T> for Result<T, rusqlite::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { op, source })
    }
}

/// Read a stored kind or outcome name back into its enum. Other text means
/// the row was not written by this collector's ingest, and is an error.
pub fn text_enum<T>(
    row: &rusqlite::Row<'_>,
    i: usize,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let s: String = row.get(i)?;
    parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown name `{s}`").into(),
        )
    })
}

pub use sqlite::write_tx;

/// Open (creating and migrating) the database in `data_dir` as one plain
/// connection.
pub fn open(data_dir: &Path) -> Result<Connection, StoreError> {
    sqlite::open_connection(data_dir)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

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

/// Highest committed seq of an agent's epoch (0 if none).
pub fn committed_seq(conn: &Connection, agent: &str, epoch: u64) -> Result<u64, StoreError> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT MAX(seq) FROM result WHERE agent_id = ?1 AND epoch = ?2",
            params![agent, epoch as i64],
            |r| r.get(0),
        )
        .op("read committed seq")?;
    Ok(v.unwrap_or(0) as u64)
}

/// Record a Hello: agent facts and its target catalogue.
pub fn record_hello(
    conn: &mut Connection,
    who: &AgentIdentity,
    h: &HelloInfo,
    clock_offset_ms: Option<i64>,
) -> Result<(), StoreError> {
    let now = now_ms();
    let tx = write_tx(conn).op("begin hello")?;
    tx.execute(
        "UPDATE agent SET version = ?2, config_hash = ?3, hostname = ?4, last_hello_ms = ?5, clock_offset_ms = ?6 WHERE id = ?1",
        params![who.agent_id, h.version, h.config_hash, h.hostname, now, clock_offset_ms],
    )
    .op("update agent")?;
    {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO target (agent_id, id, grp, kind, address, label, interval_ms, timeout_ms, first_seen_ms, last_declared_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                 ON CONFLICT(agent_id, id) DO UPDATE SET grp = excluded.grp, kind = excluded.kind,
                   address = excluded.address, label = excluded.label, interval_ms = excluded.interval_ms,
                   timeout_ms = excluded.timeout_ms, last_declared_ms = excluded.last_declared_ms",
            )
            .op("prepare target upsert")?;
        for t in &h.targets {
            st.execute(params![
                who.agent_id,
                t.id,
                t.group.as_str(),
                t.kind.as_str(),
                t.address,
                t.label,
                t.interval_ms as i64,
                t.timeout_ms as i64,
                now
            ])
            .op("upsert target")?;
        }
    }
    tx.commit().op("commit hello")
}

/// Open a session row for a connected agent; returns its id.
pub fn start_session(
    conn: &Connection,
    agent: &str,
    epoch: u64,
    at_ms: i64,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO agent_session (agent_id, epoch, connected_at_ms) VALUES (?1, ?2, ?3)",
        params![agent, epoch as i64, at_ms],
    )
    .op("start session")?;
    Ok(conn.last_insert_rowid())
}

/// Close a session.
pub fn end_session(conn: &Connection, id: i64, at_ms: i64, reason: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE agent_session SET disconnected_at_ms = ?2, end_reason = ?3 WHERE id = ?1 AND disconnected_at_ms IS NULL",
        params![id, at_ms, reason],
    )
    .op("end session")?;
    Ok(())
}

/// Close sessions left open by a collector that stopped without closing
/// them (crash, kill -9): they end at the last result received in them.
pub fn close_dangling_sessions(conn: &Connection) -> Result<usize, StoreError> {
    conn.execute(
        "UPDATE agent_session SET end_reason = 'collector stopped',
           disconnected_at_ms = MAX(connected_at_ms, COALESCE((SELECT MAX(r.received_at_ms) FROM result r
             WHERE r.agent_id = agent_session.agent_id AND r.received_at_ms >= agent_session.connected_at_ms),
             connected_at_ms))
         WHERE disconnected_at_ms IS NULL",
        [],
    )
    .op("close dangling sessions")
}

/// Insert rows inside an open transaction; returns how many were new.
/// Conflicting duplicates are kept aside (see [`store_results`]).
pub fn insert_results(
    tx: &rusqlite::Transaction<'_>,
    who: &AgentIdentity,
    rows: &[ResultRow],
    received_at_ms: i64,
) -> Result<usize, StoreError> {
    Ok(store_results(tx, who, rows, received_at_ms, None)?.new)
}

/// What [`store_results`] did with a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Rows newly stored.
    pub new: usize,
    /// Indices (into the batch) of rows whose identity was already stored
    /// with different content, newly kept in `result_conflict`.
    pub conflicts: Vec<usize>,
    /// Indices of rows that are conflicts kept before (resent after a lost
    /// ack): not kept or counted again.
    pub conflicts_resent: Vec<usize>,
}

/// Insert rows inside an open transaction. A row whose (agent, epoch, seq)
/// is already stored is compared with the stored one, only then (the
/// common path costs nothing more): identical is an ordinary replay and is
/// ignored; different is a conflicting duplicate, kept in `result_conflict`
/// with the `peer` address, while the stored result stays.
pub fn store_results(
    tx: &rusqlite::Transaction<'_>,
    who: &AgentIdentity,
    rows: &[ResultRow],
    received_at_ms: i64,
    peer: Option<&str>,
) -> Result<Stored, StoreError> {
    let mut st = tx
        .prepare_cached(
            "INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms, received_at_ms,
                                 outcome, detail, value_ms, sent, received, data, late, clock_flag,
                                 agent_time_ms, clock_correction_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
             ON CONFLICT DO NOTHING",
        )
        .op("prepare result insert")?;
    let mut out = Stored::default();
    for (i, r) in rows.iter().enumerate() {
        let data = r.data.to_string();
        let inserted = st
            .execute(params![
                who.agent_id,
                r.epoch as i64,
                r.seq as i64,
                who.opd_id,
                r.target_id,
                r.kind.as_str(),
                r.observed_at_ms,
                received_at_ms,
                r.outcome.as_str(),
                r.detail,
                r.value_ms,
                r.sent,
                r.received,
                data,
                r.late,
                r.clock_flag,
                r.agent_time_ms,
                r.clock_correction_ms,
            ])
            .op("insert result")?;
        if inserted == 1 {
            if r.kind == RowKind::Probe(ProbeKind::Traceroute) {
                record_path(tx, &who.agent_id, r)?;
            }
            out.new += 1;
            continue;
        }
        let content = conflict::ResultContent::of(r);
        let same =
            conflict::stored(tx, &who.agent_id, r.epoch, r.seq)?.is_none_or(|s| s == content);
        if same {
            continue;
        }
        if conflict::keep(
            tx,
            &who.agent_id,
            &who.opd_id,
            r,
            &content,
            received_at_ms,
            peer,
        )? {
            out.conflicts.push(i);
        } else {
            out.conflicts_resent.push(i);
        }
    }
    Ok(out)
}

impl Stored {
    /// Whether row `i` of the batch is a conflicting duplicate (new or resent).
    pub fn is_conflict(&self, i: usize) -> bool {
        self.conflicts.contains(&i) || self.conflicts_resent.contains(&i)
    }
}

/// Fold a traceroute result into the agent's paths to its target: extend the
/// latest path if the hops are the same, else start a new one (a path change).
/// Results arrive in sequence order, so "latest" is by observation time.
fn record_path(
    tx: &rusqlite::Transaction<'_>,
    agent_id: &str,
    r: &ResultRow,
) -> Result<(), StoreError> {
    let Some(hops) = r.data.get("hops").and_then(serde_json::Value::as_array) else {
        return Ok(());
    };
    if hops.is_empty() {
        return Ok(());
    }
    let field = |k: &str| -> Vec<serde_json::Value> { hops.iter().map(|h| h[k].clone()).collect() };
    let new_addrs = field("address");
    let addrs = serde_json::Value::Array(new_addrs.clone()).to_string();
    let rtts = serde_json::Value::Array(field("rtt_us")).to_string();
    let reached = r.data["reached"].as_bool().unwrap_or(false);
    let latest: Option<(i64, String, i64)> = tx
        .query_row(
            "SELECT id, hops, last_seen_ms FROM path WHERE agent_id = ?1 AND target_id = ?2
             ORDER BY last_seen_ms DESC, id DESC LIMIT 1",
            params![agent_id, r.target_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
        .op("read latest path")?;
    let merged = latest.as_ref().and_then(|(_, old, _)| {
        let old: Vec<serde_json::Value> = serde_json::from_str(old).ok()?;
        merge_hops(&old, &new_addrs)
    });
    match latest {
        Some((id, _, last)) if merged.is_some() => {
            let hops = serde_json::Value::Array(merged.unwrap_or_default()).to_string();
            tx.execute(
                "UPDATE path SET last_seen_ms = MAX(last_seen_ms, ?2), times_seen = times_seen + 1,
                        rtt_us = CASE WHEN ?2 >= ?3 THEN ?4 ELSE rtt_us END, reached = ?5, hops = ?6
                 WHERE id = ?1",
                params![id, r.observed_at_ms, last, rtts, reached, hops],
            )
            .op("extend path")?;
        }
        previous => {
            tx.execute(
                "INSERT INTO path (agent_id, target_id, hops, reached, rtt_us, first_seen_ms,
                                   last_seen_ms, times_seen, previous_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1, ?7)",
                params![
                    agent_id,
                    r.target_id,
                    addrs,
                    reached,
                    rtts,
                    r.observed_at_ms,
                    previous.map(|(id, _, _)| id)
                ],
            )
            .op("insert path")?;
        }
    }
    Ok(())
}

/// The hops of one path seen again, if `new` is the same path as `old`: the
/// same length and every hop equal, or unanswered (null) in one of them —
/// routers that rate-limit or drop ICMP must not look like a route change.
/// The result fills the unanswered hops of either from the other.
fn merge_hops(
    old: &[serde_json::Value],
    new: &[serde_json::Value],
) -> Option<Vec<serde_json::Value>> {
    if old.len() != new.len() {
        return None;
    }
    old.iter()
        .zip(new)
        .map(|(o, n)| match (o.is_null(), n.is_null()) {
            (true, _) => Some(n.clone()),
            (_, true) => Some(o.clone()),
            _ => (o == n).then(|| o.clone()),
        })
        .collect()
}

#[cfg(test)]
mod path_tests {
    use super::merge_hops;
    use serde_json::{Value, json};

    fn v(x: Value) -> Vec<Value> {
        x.as_array().unwrap().clone()
    }

    #[test]
    fn unanswered_hops_are_not_a_path_change() {
        let old = v(json!(["10.0.0.1", "10.0.1.1", "10.0.2.1"]));
        assert_eq!(merge_hops(&old, &old), Some(old.clone()));
        // A rate-limited router: same path, the stored hops keep the address.
        assert_eq!(
            merge_hops(&old, &v(json!([null, "10.0.1.1", "10.0.2.1"]))),
            Some(old.clone())
        );
        // An earlier gap is filled in.
        assert_eq!(
            merge_hops(&v(json!(["10.0.0.1", null, "10.0.2.1"])), &old),
            Some(old.clone())
        );
        // A different router, or another length, is a change.
        assert_eq!(
            merge_hops(&old, &v(json!(["10.0.0.1", "10.0.9.1", "10.0.2.1"]))),
            None
        );
        assert_eq!(merge_hops(&old, &v(json!(["10.0.0.1", "10.0.2.1"]))), None);
    }
}

/// Everything the read API and pages need.
pub mod read {
    use super::*;
    use serde::Serialize;

    /// An OPD with its agent count.
    #[derive(Debug, Serialize)]
    pub struct Opd {
        /// Id.
        pub id: String,
        /// Name.
        pub name: String,
        /// Agents registered.
        pub agents: u32,
        /// Latest result time of any of its agents, ms.
        pub last_seen_ms: Option<i64>,
    }

    /// An agent.
    #[derive(Debug, Serialize)]
    pub struct Agent {
        /// Id.
        pub id: String,
        /// OPD id.
        pub opd: String,
        /// Software version from its last Hello.
        pub version: Option<String>,
        /// Host name.
        pub hostname: Option<String>,
        /// Last Hello, ms.
        pub last_hello_ms: Option<i64>,
        /// Latest result received, ms (collector clock).
        pub last_seen_ms: Option<i64>,
        /// Estimated agent clock offset, ms.
        pub clock_offset_ms: Option<i64>,
        /// Conflicting duplicates kept aside: results numbered like stored
        /// ones but different (a cloned agent, two writers on one spool).
        pub conflicts: i64,
    }

    /// A target with its latest result.
    #[derive(Debug, Serialize)]
    pub struct Target {
        /// Agent id.
        pub agent: String,
        /// OPD id.
        pub opd: String,
        /// Target id.
        pub id: String,
        /// Group.
        pub group: String,
        /// Kind.
        pub kind: String,
        /// Address.
        pub address: String,
        /// Label.
        pub label: String,
        /// Latest observation time (agent clock), ms.
        pub observed_at_ms: Option<i64>,
        /// Latest outcome.
        pub outcome: Option<String>,
        /// Latest headline duration, ms.
        pub value_ms: Option<f64>,
        /// Latest loss ratio (ICMP).
        pub loss: Option<f64>,
    }

    /// A stored result.
    #[derive(Debug, Serialize)]
    pub struct StoredResult {
        /// Agent.
        pub agent: String,
        /// OPD.
        pub opd: String,
        /// Target ("" for heartbeats).
        pub target: String,
        /// Kind.
        pub kind: String,
        /// Epoch.
        pub epoch: u64,
        /// Sequence.
        pub seq: u64,
        /// Agent clock, ms.
        pub observed_at_ms: i64,
        /// Collector clock, ms.
        pub received_at_ms: i64,
        /// Outcome.
        pub outcome: String,
        /// Detail.
        pub detail: String,
        /// Headline duration, ms.
        pub value_ms: Option<f64>,
        /// ICMP sent.
        pub sent: Option<u32>,
        /// ICMP received.
        pub received: Option<u32>,
        /// Measurements.
        pub data: serde_json::Value,
        /// Arrived late (after an outage).
        pub late: bool,
        /// `future` / `past` when the agent's time is not trusted.
        pub clock_flag: Option<String>,
    }

    /// A connected interval of an agent.
    #[derive(Debug, Serialize)]
    pub struct Session {
        /// Agent.
        pub agent: String,
        /// Spool epoch of the stream.
        pub epoch: u64,
        /// Connected, ms.
        pub connected_at_ms: i64,
        /// Disconnected, ms (`None` while connected).
        pub disconnected_at_ms: Option<i64>,
        /// Why it ended.
        pub end_reason: Option<String>,
    }

    /// Sessions of an agent overlapping `[from, to)`, oldest first.
    pub fn sessions(
        conn: &Connection,
        agent: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Session>, StoreError> {
        let mut st = conn
            .prepare_cached(
                "SELECT agent_id, epoch, connected_at_ms, disconnected_at_ms, end_reason FROM agent_session
                 WHERE agent_id = ?1 AND connected_at_ms < ?3 AND COALESCE(disconnected_at_ms, ?3) >= ?2
                 ORDER BY connected_at_ms",
            )
            .op("prepare sessions")?;
        st.query_map(params![agent, from_ms, to_ms], |r| {
            Ok(Session {
                agent: r.get(0)?,
                epoch: r.get::<_, i64>(1)? as u64,
                connected_at_ms: r.get(2)?,
                disconnected_at_ms: r.get(3)?,
                end_reason: r.get(4)?,
            })
        })
        .op("query sessions")?
        .collect::<Result<_, _>>()
        .op("read sessions")
    }

    /// All OPDs.
    pub fn opds(conn: &Connection) -> Result<Vec<Opd>, StoreError> {
        let mut st = conn
            .prepare_cached(
                "SELECT o.id, o.name, (SELECT COUNT(*) FROM agent a WHERE a.opd_id = o.id),
                        (SELECT MAX(r.received_at_ms) FROM result r WHERE r.opd_id = o.id)
                 FROM opd o ORDER BY o.id",
            )
            .op("prepare opds")?;
        st.query_map([], |r| {
            Ok(Opd {
                id: r.get(0)?,
                name: r.get(1)?,
                agents: r.get(2)?,
                last_seen_ms: r.get(3)?,
            })
        })
        .op("query opds")?
        .collect::<Result<_, _>>()
        .op("read opds")
    }

    /// All agents.
    pub fn agents(conn: &Connection) -> Result<Vec<Agent>, StoreError> {
        let mut st = conn
            .prepare_cached(
                "SELECT a.id, a.opd_id, a.version, a.hostname, a.last_hello_ms,
                        (SELECT MAX(r.received_at_ms) FROM result r WHERE r.agent_id = a.id), a.clock_offset_ms,
                        (SELECT COUNT(*) FROM result_conflict c WHERE c.agent_id = a.id)
                 FROM agent a ORDER BY a.id",
            )
            .op("prepare agents")?;
        st.query_map([], |r| {
            Ok(Agent {
                id: r.get(0)?,
                opd: r.get(1)?,
                version: r.get(2)?,
                hostname: r.get(3)?,
                last_hello_ms: r.get(4)?,
                last_seen_ms: r.get(5)?,
                clock_offset_ms: r.get(6)?,
                conflicts: r.get(7)?,
            })
        })
        .op("query agents")?
        .collect::<Result<_, _>>()
        .op("read agents")
    }

    /// All targets with their latest result.
    pub fn targets(conn: &Connection, agent: Option<&str>) -> Result<Vec<Target>, StoreError> {
        let mut st = conn
            .prepare_cached(
                "SELECT t.agent_id, a.opd_id, t.id, t.grp, t.kind, t.address, t.label,
                        r.observed_at_ms, r.outcome, r.value_ms, r.sent, r.received
                 FROM target t JOIN agent a ON a.id = t.agent_id
                 LEFT JOIN result r ON r.agent_id = t.agent_id AND r.target_id = t.id
                   AND r.observed_at_ms = (SELECT MAX(observed_at_ms) FROM result r2
                                           WHERE r2.agent_id = t.agent_id AND r2.target_id = t.id)
                 WHERE ?1 IS NULL OR t.agent_id = ?1
                 GROUP BY t.agent_id, t.id
                 ORDER BY a.opd_id, t.agent_id, t.grp, t.id",
            )
            .op("prepare targets")?;
        st.query_map([agent], |r| {
            let sent: Option<u32> = r.get(10)?;
            let received: Option<u32> = r.get(11)?;
            Ok(Target {
                agent: r.get(0)?,
                opd: r.get(1)?,
                id: r.get(2)?,
                group: r.get(3)?,
                kind: r.get(4)?,
                address: r.get(5)?,
                label: r.get(6)?,
                observed_at_ms: r.get(7)?,
                outcome: r.get(8)?,
                value_ms: r.get(9)?,
                loss: match (sent, received) {
                    (Some(s), Some(rc)) if s > 0 => {
                        Some(f64::from(s.saturating_sub(rc)) / f64::from(s))
                    }
                    _ => None,
                },
            })
        })
        .op("query targets")?
        .collect::<Result<_, _>>()
        .op("read targets")
    }

    /// Raw results of an agent observed in `[from, to)`, oldest first, at most `limit`.
    pub fn results(
        conn: &Connection,
        agent: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredResult>, StoreError> {
        let mut st = conn
            .prepare_cached(
                "SELECT agent_id, opd_id, target_id, kind, epoch, seq, observed_at_ms, received_at_ms,
                        outcome, detail, value_ms, sent, received, data, late, clock_flag
                 FROM result WHERE agent_id = ?1 AND observed_at_ms >= ?2 AND observed_at_ms < ?3
                 ORDER BY observed_at_ms, epoch, seq LIMIT ?4",
            )
            .op("prepare results")?;
        st.query_map(params![agent, from_ms, to_ms, limit as i64], |r| {
            let data: String = r.get(13)?;
            Ok(StoredResult {
                agent: r.get(0)?,
                opd: r.get(1)?,
                target: r.get(2)?,
                kind: r.get(3)?,
                epoch: r.get::<_, i64>(4)? as u64,
                seq: r.get::<_, i64>(5)? as u64,
                observed_at_ms: r.get(6)?,
                received_at_ms: r.get(7)?,
                outcome: r.get(8)?,
                detail: r.get(9)?,
                value_ms: r.get(10)?,
                sent: r.get(11)?,
                received: r.get(12)?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                late: r.get(14)?,
                clock_flag: r.get(15)?,
            })
        })
        .op("query results")?
        .collect::<Result<_, _>>()
        .op("read results")
    }

    /// Whether an agent exists.
    pub fn agent_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
        conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM agent WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )
        .op("look up agent")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TargetDecl;
    use crate::model::{Group, Outcome};

    fn row(seq: u64) -> ResultRow {
        ResultRow {
            epoch: 5,
            seq,
            target_id: "core".into(),
            group: "intranet".into(),
            kind: ProbeKind::Icmp.into(),
            observed_at_ms: 1_000 * seq as i64,
            outcome: Outcome::Ok,
            detail: String::new(),
            value_ms: Some(1.5),
            sent: Some(5),
            received: Some(5),
            data: serde_json::json!({"samples_us": [1500]}),
            late: false,
            clock_flag: None,
            agent_time_ms: 1_000 * seq as i64,
            clock_correction_ms: None,
        }
    }

    #[test]
    fn registry_results_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path()).unwrap();
        add_opd(&c, "dinkes", "Dinas Kesehatan").unwrap();
        assert!(matches!(
            add_opd(&c, "dinkes", "x"),
            Err(StoreError::Exists(_))
        ));
        assert!(matches!(
            add_agent(&c, "a1", "nope", b"h"),
            Err(StoreError::UnknownOpd(_))
        ));
        add_agent(&c, "a1", "dinkes", b"digest").unwrap();
        let (who, stored) = agent_by_token(&c, b"digest").unwrap().unwrap();
        assert_eq!(
            who,
            AgentIdentity {
                agent_id: "a1".into(),
                opd_id: "dinkes".into()
            }
        );
        assert_eq!(stored, b"digest");
        assert!(agent_by_token(&c, b"other").unwrap().is_none());

        let hello = HelloInfo {
            version: "0.1.0".into(),
            config_hash: "h".into(),
            hostname: "box".into(),
            epoch: 5,
            agent_time_ms: None,
            targets: vec![TargetDecl {
                id: "core".into(),
                group: Group::Intranet,
                kind: ProbeKind::Icmp,
                address: "10.0.0.1".into(),
                label: String::new(),
                interval_ms: 30_000,
                timeout_ms: 5_000,
            }],
        };
        record_hello(&mut c, &who, &hello, Some(3)).unwrap();
        let tx = c.transaction().unwrap();
        assert_eq!(
            insert_results(&tx, &who, &[row(1), row(2), row(3)], 99).unwrap(),
            3
        );
        // A replay of 2 and 3 plus one new row: only the new one counts.
        assert_eq!(
            insert_results(&tx, &who, &[row(2), row(3), row(4)], 99).unwrap(),
            1
        );
        tx.commit().unwrap();
        assert_eq!(committed_seq(&c, "a1", 5).unwrap(), 4);
        assert_eq!(committed_seq(&c, "a1", 6).unwrap(), 0);
        let rs = read::results(&c, "a1", 0, 3_500, 100).unwrap();
        assert_eq!(rs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(rs[0].opd, "dinkes");
        let ts = read::targets(&c, None).unwrap();
        assert_eq!(ts.len(), 1);
        assert_eq!(ts[0].observed_at_ms, Some(4000));
        assert_eq!(ts[0].loss, Some(0.0));
        // Reopening migrates nothing twice.
        drop(c);
        let c = open(dir.path()).unwrap();
        assert_eq!(read::opds(&c).unwrap()[0].agents, 1);
    }
}
