//! Ingest in SQLite: Hello and sessions, results stored with dedupe and
//! conflicting duplicates kept aside, traceroute paths, committed seq.
//!
//! The free functions take a connection or an open transaction: the
//! [`IngestStore`] implementation below uses them, and so do tests and
//! benches that prepare a database directly.

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, conflict, open_connection, write_tx};
use crate::model::{AgentIdentity, HelloInfo, ProbeKind, ResultRow, RowKind};
use crate::store::conflict::ResultContent;
use crate::store::ingest::{IncomingBatch, IncomingHello, IngestStore, Opened, Stored, merge_hops};
use crate::store::{Op, StoreError, now_ms};

/// Page cache of the writer connection, KiB (SQLite's default is 2 MiB).
pub const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// WAL pages after which a commit checkpoints (SQLite's default is 1 000).
pub const WRITER_AUTOCHECKPOINT_PAGES: i64 = 16_000;

/// Settings of the writer connection for ingest at saturation; readers keep
/// SQLite's defaults. Neither changes what is stored or when a commit is
/// durable (`synchronous = FULL` with WAL stays: an acknowledged result has
/// reached the disk):
/// - `cache_size`: the results of hundreds of agents go into three B-trees
///   at a few hundred insertion points each (the primary key and the
///   agent-time index per agent); 2 MiB held fewer leaf pages than that, so
///   every transaction read them again and spilled them early.
/// - `wal_autocheckpoint`: at 1 000 pages (4 MiB) a large commit was
///   followed by a checkpoint (pages copied into the database, which is then
///   fsynced) nearly every time; at 16 000 pages a page written by many
///   commits is copied once, and the WAL stays below about 64 MiB.
pub fn tune_writer(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES};"
    ))
    .op("set writer pragmas")
}

/// Highest contiguous committed seq of an agent's epoch: every seq from the
/// epoch's first stored one up to it is stored (0 if none). A forged result
/// far ahead does not move it; a gap (results the agent lost before
/// delivering them) stops it there, which only makes the agent resend from
/// its own acknowledgement, as it does anyway.
pub fn committed_seq(conn: &Connection, agent: &str, epoch: u64) -> Result<u64, StoreError> {
    let saved: Option<i64> = conn
        .query_row(
            "SELECT contiguous FROM seq_progress WHERE agent_id = ?1 AND epoch = ?2",
            params![agent, epoch as i64],
            |r| r.get(0),
        )
        .optional()
        .op("read seq progress")?;
    // Results below the first one held were pruned (or never delivered):
    // the walk starts at the later of the two.
    let first: Option<i64> = conn
        .query_row(
            "SELECT MIN(seq) FROM result WHERE agent_id = ?1 AND epoch = ?2",
            params![agent, epoch as i64],
            |r| r.get(0),
        )
        .op("read first seq")?;
    let start = match (saved, first) {
        (saved, Some(f)) => saved.unwrap_or(0).max(f - 1),
        (Some(c), None) => c,
        (None, None) => return Ok(0),
    };
    // Walk the primary key on from `start` to the first gap.
    let mut st = conn
        .prepare_cached(
            "SELECT seq FROM result WHERE agent_id = ?1 AND epoch = ?2 AND seq > ?3 ORDER BY seq",
        )
        .op("prepare committed seq")?;
    let mut rows = st
        .query(params![agent, epoch as i64, start])
        .op("read committed seq")?;
    let mut contiguous = start;
    while let Some(r) = rows.next().op("read committed seq")? {
        let seq: i64 = r.get(0).op("read committed seq")?;
        if seq != contiguous + 1 {
            break;
        }
        contiguous = seq;
    }
    Ok(contiguous.max(0) as u64)
}

/// Remember the contiguous committed seq, so the next walk starts there.
fn save_progress(conn: &Connection, agent: &str, epoch: u64, seq: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO seq_progress (agent_id, epoch, contiguous) VALUES (?1, ?2, ?3)
         ON CONFLICT (agent_id, epoch) DO UPDATE SET contiguous = MAX(contiguous, excluded.contiguous)",
        params![agent, epoch as i64, seq as i64],
    )
    .op("save seq progress")?;
    Ok(())
}

/// Record a Hello: agent facts and its target catalogue.
pub fn record_hello(
    conn: &mut Connection,
    who: &AgentIdentity,
    h: &HelloInfo,
    clock_offset_ms: Option<i64>,
) -> Result<(), StoreError> {
    record_hello_at(conn, who, h, clock_offset_ms, now_ms())
}

fn record_hello_at(
    conn: &mut Connection,
    who: &AgentIdentity,
    h: &HelloInfo,
    clock_offset_ms: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    let tx = write_tx(conn).op("begin hello")?;
    upsert_hello(&tx, who, h, clock_offset_ms, now)?;
    tx.commit().op("commit hello")
}

/// The agent's facts and its target catalogue, inside an open transaction.
fn upsert_hello(
    conn: &Connection,
    who: &AgentIdentity,
    h: &HelloInfo,
    clock_offset_ms: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE agent SET version = ?2, config_hash = ?3, hostname = ?4, last_hello_ms = ?5, clock_offset_ms = ?6 WHERE id = ?1",
        params![who.agent_id, h.version, h.config_hash, h.hostname, now, clock_offset_ms],
    )
    .op("update agent")?;
    let mut st = conn
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
    Ok(())
}

/// A whole Hello inside an open transaction: facts and targets, the
/// committed seq (remembered), a new session.
fn open_session(
    conn: &Connection,
    h: &IncomingHello<'_>,
    at_ms: i64,
) -> Result<Opened, StoreError> {
    let who = h.who;
    upsert_hello(conn, who, h.info, h.clock_offset_ms, at_ms)?;
    let committed_seq = committed_seq(conn, &who.agent_id, h.info.epoch)?;
    if committed_seq > 0 {
        save_progress(conn, &who.agent_id, h.info.epoch, committed_seq)?;
    }
    let session = start_session(conn, &who.agent_id, h.info.epoch, h.peer, at_ms)?;
    Ok(Opened {
        committed_seq,
        session,
    })
}

/// Open a session row for a connected agent; returns its id.
pub fn start_session(
    conn: &Connection,
    agent: &str,
    epoch: u64,
    peer: Option<&str>,
    at_ms: i64,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO agent_session (agent_id, epoch, connected_at_ms, peer) VALUES (?1, ?2, ?3, ?4)",
        params![agent, epoch as i64, at_ms, peer],
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
    // The batch's own values are bound once: SQLite keeps bindings from one
    // execution to the next; each row binds only its own.
    let bind = |st: &mut rusqlite::Statement<'_>, i: usize, v: &dyn rusqlite::ToSql| {
        st.raw_bind_parameter(i, v).op("bind result")
    };
    bind(&mut st, 1, &who.agent_id)?;
    bind(&mut st, 4, &who.opd_id)?;
    bind(&mut st, 8, &received_at_ms)?;
    // One buffer for every row's JSON instead of a String per row; the same
    // text as `to_string()` (serde_json writes UTF-8), bound without a copy.
    let mut data = Vec::with_capacity(256);
    for (i, r) in rows.iter().enumerate() {
        data.clear();
        serde_json::to_writer(&mut data, &r.data)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            .op("encode result data")?;
        bind(&mut st, 2, &(r.epoch as i64))?;
        bind(&mut st, 3, &(r.seq as i64))?;
        bind(&mut st, 5, &r.target_id)?;
        bind(&mut st, 6, &r.kind.as_str())?;
        bind(&mut st, 7, &r.observed_at_ms)?;
        bind(&mut st, 9, &r.outcome.as_str())?;
        bind(&mut st, 10, &r.detail)?;
        bind(&mut st, 11, &r.value_ms)?;
        bind(&mut st, 12, &r.sent)?;
        bind(&mut st, 13, &r.received)?;
        bind(
            &mut st,
            14,
            &rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(&data)),
        )?;
        bind(&mut st, 15, &r.late)?;
        bind(&mut st, 16, &r.clock_flag)?;
        bind(&mut st, 17, &r.agent_time_ms)?;
        bind(&mut st, 18, &r.clock_correction_ms)?;
        let inserted = st.raw_execute().op("insert result")?;
        if inserted == 1 {
            if r.kind == RowKind::Probe(ProbeKind::Traceroute) {
                record_path(tx, &who.agent_id, r)?;
            }
            out.new += 1;
            continue;
        }
        let content = ResultContent::of(r);
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

impl IngestStore for SqliteStore {
    fn hello(
        &self,
        who: &AgentIdentity,
        info: &HelloInfo,
        clock_offset_ms: Option<i64>,
        peer: Option<&str>,
        at_ms: i64,
    ) -> Result<Opened, StoreError> {
        let h = IncomingHello {
            who,
            info,
            clock_offset_ms,
            peer,
        };
        self.write(|c| {
            let tx = write_tx(c).op("begin hello")?;
            let opened = open_session(&tx, &h, at_ms)?;
            tx.commit().op("commit hello")?;
            Ok(opened)
        })
    }

    fn hellos(
        &self,
        hellos: &[IncomingHello<'_>],
        at_ms: i64,
    ) -> Result<Vec<Result<Opened, StoreError>>, StoreError> {
        self.write(|c| {
            let mut tx = write_tx(c).op("begin hellos")?;
            let mut answers = Vec::with_capacity(hellos.len());
            for h in hellos {
                // A failing Hello is rolled back to its savepoint (dropped),
                // the others stay.
                let sp = tx.savepoint().op("savepoint hello")?;
                match open_session(&sp, h, at_ms) {
                    Ok(opened) => {
                        sp.commit().op("release hello")?;
                        answers.push(Ok(opened));
                    }
                    Err(e) => answers.push(Err(e)),
                }
            }
            tx.commit().op("commit hellos")?;
            Ok(answers)
        })
    }

    fn end_session(&self, id: i64, at_ms: i64, reason: &str) -> Result<(), StoreError> {
        self.write(|c| end_session(c, id, at_ms, reason))
    }

    fn end_sessions(&self, ends: &[(i64, &str)], at_ms: i64) -> Result<(), StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin session ends")?;
            for &(id, reason) in ends {
                end_session(&tx, id, at_ms, reason)?;
            }
            tx.commit().op("commit session ends")
        })
    }

    fn close_dangling_sessions(&self) -> Result<usize, StoreError> {
        self.write(|c| close_dangling_sessions(c))
    }

    fn committed_seq(&self, agent: &str, epoch: u64) -> Result<u64, StoreError> {
        self.read(|c| committed_seq(c, agent, epoch))
    }

    fn store_batches(
        &self,
        batches: &[IncomingBatch<'_>],
        received_at_ms: i64,
    ) -> Result<Vec<Stored>, StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin batch")?;
            let mut counts = Vec::with_capacity(batches.len());
            for b in batches {
                counts.push(store_results(&tx, b.who, b.rows, received_at_ms, b.peer)?);
                // Same transaction: a stored result always re-rolls its hour.
                crate::store::sqlite::rollup::mark_dirty(&tx, &b.who.opd_id, b.rows)?;
            }
            tx.commit().op("commit batch")?;
            Ok(counts)
        })
    }

    fn recover(&self) -> Result<(), StoreError> {
        // SQLite may keep a broken handle after an I/O error: start afresh.
        let fresh = open_connection(self.dir())?;
        tune_writer(&fresh)?;
        self.write(|c| {
            *c = fresh;
            Ok(())
        })
    }
}
