//! Ingest in PostgreSQL: Hello and sessions, results stored with dedupe on
//! `result_identity` and conflicting duplicates kept aside, traceroute
//! paths, the committed seq, the remote-write queue.
//!
//! A batch goes in with a few array statements whatever its size (`unnest`
//! of one array per column: one prepared statement, one round trip per
//! table), inside the transaction the writer commits before it acks.

use std::collections::{BTreeSet, HashSet};

use postgres::GenericClient;

use super::{Db, PgStore, day_of};
use crate::model::{AgentIdentity, HelloInfo, ProbeKind, ResultRow, RowKind};
use crate::store::conflict::ResultContent;
use crate::store::ingest::{IncomingBatch, IncomingHello, IngestStore, Opened, Stored, merge_hops};
use crate::store::{Op, StoreError};

const HOUR_MS: i64 = 3_600_000;
/// Rows the committed-seq walk reads per query.
const WALK_CHUNK: i64 = 10_000;

/// Highest contiguous committed seq of an agent's epoch (see the SQLite
/// backend: the same walk, over the identity table).
pub fn committed_seq<C: GenericClient>(
    db: &mut Db<'_, C>,
    agent: &str,
    epoch: u64,
) -> Result<u64, StoreError> {
    let epoch = epoch as i64;
    let saved: Option<i64> = db
        .query_opt(
            "SELECT contiguous FROM seq_progress WHERE agent_id = $1 AND epoch = $2",
            &[&agent, &epoch],
        )
        .op("read seq progress")?
        .map(|r| r.get(0));
    let first: Option<i64> = db
        .query_one(
            "SELECT MIN(seq) FROM result_identity WHERE agent_id = $1 AND epoch = $2",
            &[&agent, &epoch],
        )
        .op("read first seq")?
        .get(0);
    let start = match (saved, first) {
        (saved, Some(f)) => saved.unwrap_or(0).max(f - 1),
        (Some(c), None) => c,
        (None, None) => return Ok(0),
    };
    let mut contiguous = start;
    loop {
        let rows = db
            .query(
                "SELECT seq FROM result_identity WHERE agent_id = $1 AND epoch = $2 AND seq > $3
                 ORDER BY seq LIMIT $4",
                &[&agent, &epoch, &contiguous, &WALK_CHUNK],
            )
            .op("read committed seq")?;
        let n = rows.len();
        for r in rows {
            let seq: i64 = r.get(0);
            if seq != contiguous + 1 {
                return Ok(contiguous.max(0) as u64);
            }
            contiguous = seq;
        }
        if (n as i64) < WALK_CHUNK {
            return Ok(contiguous.max(0) as u64);
        }
    }
}

fn hello<C: GenericClient>(
    db: &mut Db<'_, C>,
    who: &AgentIdentity,
    h: &HelloInfo,
    clock_offset_ms: Option<i64>,
    peer: Option<&str>,
    now: i64,
) -> Result<Opened, StoreError> {
    db.execute(
        "UPDATE agent SET version = $2, config_hash = $3, hostname = $4, last_hello_ms = $5,
         clock_offset_ms = $6 WHERE id = $1",
        &[
            &who.agent_id,
            &h.version,
            &h.config_hash,
            &h.hostname,
            &now,
            &clock_offset_ms,
        ],
    )
    .op("update agent")?;
    for t in &h.targets {
        db.execute(
            "INSERT INTO target (agent_id, id, grp, kind, address, label, interval_ms, timeout_ms,
                                 first_seen_ms, last_declared_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (agent_id, id) DO UPDATE SET grp = excluded.grp, kind = excluded.kind,
               address = excluded.address, label = excluded.label,
               interval_ms = excluded.interval_ms, timeout_ms = excluded.timeout_ms,
               last_declared_ms = excluded.last_declared_ms",
            &[
                &who.agent_id,
                &t.id,
                &t.group.as_str(),
                &t.kind.as_str(),
                &t.address,
                &t.label,
                &(t.interval_ms as i64),
                &(t.timeout_ms as i64),
                &now,
            ],
        )
        .op("upsert target")?;
    }
    let committed_seq = committed_seq(db, &who.agent_id, h.epoch)?;
    if committed_seq > 0 {
        db.execute(
            "INSERT INTO seq_progress (agent_id, epoch, contiguous) VALUES ($1, $2, $3)
             ON CONFLICT (agent_id, epoch)
             DO UPDATE SET contiguous = GREATEST(seq_progress.contiguous, excluded.contiguous)",
            &[&who.agent_id, &(h.epoch as i64), &(committed_seq as i64)],
        )
        .op("save seq progress")?;
    }
    let session: i64 = db
        .query_one(
            "INSERT INTO agent_session (agent_id, epoch, connected_at_ms, peer)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[&who.agent_id, &(h.epoch as i64), &now, &peer],
        )
        .op("start session")?
        .get(0);
    Ok(Opened {
        committed_seq,
        session,
    })
}

/// Store one agent's rows: identities first (dedupe, across collectors),
/// then the new rows, their remote-write entries and paths; rows whose
/// identity was stored already are compared with the stored content.
pub fn store_results<C: GenericClient>(
    db: &mut Db<'_, C>,
    who: &AgentIdentity,
    rows: &[ResultRow],
    received_at_ms: i64,
    peer: Option<&str>,
) -> Result<Stored, StoreError> {
    let mut out = Stored::default();
    if rows.is_empty() {
        return Ok(out);
    }
    let epochs: Vec<i64> = rows.iter().map(|r| r.epoch as i64).collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq as i64).collect();
    let times: Vec<i64> = rows.iter().map(|r| r.observed_at_ms).collect();
    let mut fresh: HashSet<(i64, i64)> = db
        .query(
            "INSERT INTO result_identity (agent_id, epoch, seq, observed_at_ms)
             SELECT $1, e, s, o FROM unnest($2::bigint[], $3::bigint[], $4::bigint[])
               WITH ORDINALITY AS u(e, s, o, n) ORDER BY n
             ON CONFLICT DO NOTHING RETURNING epoch, seq",
            &[&who.agent_id, &epochs, &seqs, &times],
        )
        .op("insert result identities")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // The first row of each new identity is stored; any other row is a
    // replay or a conflict.
    let mut new = Vec::with_capacity(fresh.len());
    let mut seen = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if fresh.remove(&(r.epoch as i64, r.seq as i64)) {
            new.push(i);
        } else {
            seen.push(i);
        }
    }
    insert_new(db, who, rows, &new, received_at_ms)?;
    for &i in &new {
        if rows[i].kind == RowKind::Probe(ProbeKind::Traceroute) {
            record_path(db, &who.agent_id, &rows[i])?;
        }
    }
    out.new = new.len();
    for i in seen {
        let r = &rows[i];
        let content = ResultContent::of(r);
        let same = stored(db, &who.agent_id, r.epoch, r.seq)?.is_none_or(|s| s == content);
        if same {
            continue;
        }
        if keep(db, who, r, &content, received_at_ms, peer)? {
            out.conflicts.push(i);
        } else {
            out.conflicts_resent.push(i);
        }
    }
    Ok(out)
}

/// Insert rows `idx` of `rows` (new identities) and queue them for remote
/// write while it is enabled, in sequence order.
fn insert_new<C: GenericClient>(
    db: &mut Db<'_, C>,
    who: &AgentIdentity,
    rows: &[ResultRow],
    idx: &[usize],
    received_at_ms: i64,
) -> Result<(), StoreError> {
    if idx.is_empty() {
        return Ok(());
    }
    let pick =
        |f: &dyn Fn(&ResultRow) -> i64| -> Vec<i64> { idx.iter().map(|&i| f(&rows[i])).collect() };
    let epochs = pick(&|r| r.epoch as i64);
    let seqs = pick(&|r| r.seq as i64);
    let observed = pick(&|r| r.observed_at_ms);
    let agent_time = pick(&|r| r.agent_time_ms);
    let targets: Vec<&str> = idx.iter().map(|&i| rows[i].target_id.as_str()).collect();
    let kinds: Vec<&str> = idx.iter().map(|&i| rows[i].kind.as_str()).collect();
    let outcomes: Vec<&str> = idx.iter().map(|&i| rows[i].outcome.as_str()).collect();
    let details: Vec<&str> = idx.iter().map(|&i| rows[i].detail.as_str()).collect();
    let values: Vec<Option<f64>> = idx.iter().map(|&i| rows[i].value_ms).collect();
    let sent: Vec<Option<i64>> = idx.iter().map(|&i| rows[i].sent.map(i64::from)).collect();
    let received: Vec<Option<i64>> = idx
        .iter()
        .map(|&i| rows[i].received.map(i64::from))
        .collect();
    let data: Vec<String> = idx.iter().map(|&i| rows[i].data.to_string()).collect();
    let late: Vec<bool> = idx.iter().map(|&i| rows[i].late).collect();
    let flags: Vec<Option<&str>> = idx.iter().map(|&i| rows[i].clock_flag).collect();
    let corrections: Vec<Option<i64>> = idx.iter().map(|&i| rows[i].clock_correction_ms).collect();
    db.execute(
        "INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms,
                             received_at_ms, outcome, detail, value_ms, sent, received, data, late,
                             clock_flag, agent_time_ms, clock_correction_ms)
         SELECT $1, e, s, $2, t, k, o, $3, oc, d, v, se, re, da, l, f, at, cc
         FROM unnest($4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::bigint[],
                     $9::text[], $10::text[], $11::float8[], $12::bigint[], $13::bigint[],
                     $14::text[], $15::bool[], $16::text[], $17::bigint[], $18::bigint[])
           AS u(e, s, t, k, o, oc, d, v, se, re, da, l, f, at, cc)",
        &[
            &who.agent_id,
            &who.opd_id,
            &received_at_ms,
            &epochs,
            &seqs,
            &targets,
            &kinds,
            &observed,
            &outcomes,
            &details,
            &values,
            &sent,
            &received,
            &data,
            &late,
            &flags,
            &agent_time,
            &corrections,
        ],
    )
    .op("insert results")?;
    db.execute(
        "INSERT INTO remote_write_queue (agent_id, epoch, seq)
         SELECT $1, e, s FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS u(e, s, n)
         WHERE EXISTS (SELECT 1 FROM remote_write_state) ORDER BY n",
        &[&who.agent_id, &epochs, &seqs],
    )
    .op("queue for remote write")?;
    Ok(())
}

/// Content of the stored result with this identity, if any (the agent's
/// own time is compared, as in SQLite).
fn stored<C: GenericClient>(
    db: &mut Db<'_, C>,
    agent: &str,
    epoch: u64,
    seq: u64,
) -> Result<Option<ResultContent>, StoreError> {
    let row = db
        .query_opt(
            "SELECT r.target_id, r.kind, COALESCE(r.agent_time_ms, r.observed_at_ms), r.outcome,
                    r.detail, r.value_ms, r.sent, r.received, r.data
             FROM result_identity i JOIN result r ON r.agent_id = i.agent_id
               AND r.epoch = i.epoch AND r.seq = i.seq AND r.observed_at_ms = i.observed_at_ms
             WHERE i.agent_id = $1 AND i.epoch = $2 AND i.seq = $3",
            &[&agent, &(epoch as i64), &(seq as i64)],
        )
        .op("read stored result")?;
    Ok(row.map(|r| ResultContent {
        target: r.get(0),
        kind: r.get(1),
        observed_at_ms: r.get(2),
        outcome: r.get(3),
        detail: r.get(4),
        value_ms: r.get(5),
        sent: r.get(6),
        received: r.get(7),
        data: r.get(8),
    }))
}

/// Keep a conflicting result aside; `false` when this content was kept
/// for this identity before.
fn keep<C: GenericClient>(
    db: &mut Db<'_, C>,
    who: &AgentIdentity,
    r: &ResultRow,
    content: &ResultContent,
    received_at_ms: i64,
    peer: Option<&str>,
) -> Result<bool, StoreError> {
    let json = content.to_json();
    let (epoch, seq) = (r.epoch as i64, r.seq as i64);
    let seen: bool = db
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM result_conflict
                           WHERE agent_id = $1 AND epoch = $2 AND seq = $3 AND content = $4)",
            &[&who.agent_id, &epoch, &seq, &json],
        )
        .op("look up conflict")?
        .get(0);
    if seen {
        return Ok(false);
    }
    db.execute(
        "INSERT INTO result_conflict (agent_id, opd_id, epoch, seq, received_at_ms, peer, content)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &who.agent_id,
            &who.opd_id,
            &epoch,
            &seq,
            &received_at_ms,
            &peer,
            &json,
        ],
    )
    .op("insert conflict")?;
    Ok(true)
}

/// Fold a traceroute result into the agent's paths (as in SQLite).
fn record_path<C: GenericClient>(
    db: &mut Db<'_, C>,
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
    let latest: Option<(i64, String, i64)> = db
        .query_opt(
            "SELECT id, hops, last_seen_ms FROM path WHERE agent_id = $1 AND target_id = $2
             ORDER BY last_seen_ms DESC, id DESC LIMIT 1",
            &[&agent_id, &r.target_id],
        )
        .op("read latest path")?
        .map(|row| (row.get(0), row.get(1), row.get(2)));
    let merged = latest.as_ref().and_then(|(_, old, _)| {
        let old: Vec<serde_json::Value> = serde_json::from_str(old).ok()?;
        merge_hops(&old, &new_addrs)
    });
    match latest {
        Some((id, _, last)) if merged.is_some() => {
            let hops = serde_json::Value::Array(merged.unwrap_or_default()).to_string();
            db.execute(
                "UPDATE path SET last_seen_ms = GREATEST(last_seen_ms, $2), times_seen = times_seen + 1,
                        rtt_us = CASE WHEN $2 >= $3 THEN $4 ELSE rtt_us END, reached = $5, hops = $6
                 WHERE id = $1",
                &[&id, &r.observed_at_ms, &last, &rtts, &reached, &hops],
            )
            .op("extend path")?;
        }
        previous => {
            db.execute(
                "INSERT INTO path (agent_id, target_id, hops, reached, rtt_us, first_seen_ms,
                                   last_seen_ms, times_seen, previous_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $6, 1, $7)",
                &[
                    &agent_id,
                    &r.target_id,
                    &addrs,
                    &reached,
                    &rtts,
                    &r.observed_at_ms,
                    &previous.map(|(id, _, _)| id),
                ],
            )
            .op("insert path")?;
        }
    }
    Ok(())
}

/// Mark the hours of stored rows dirty for the rollup (same transaction),
/// giving an existing mark a new generation: a rebuild that read the hour
/// before this batch commits clears the mark only if the generation is
/// still the one it read, so these rows are never left out (the reasoning
/// under READ COMMITTED is at [`super::rollup`]'s `rebuild_dirty_between`).
/// The shared advisory lock is no longer needed (rebuilds stopped taking
/// it exclusively); it is kept only until this statement is rewritten.
/// One statement marking several OPDs must list each (OPD, hour) once and
/// in order: `DO UPDATE` refuses a row twice, and a fixed order keeps two
/// collectors' row locks from deadlocking.
pub fn mark_dirty<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: &str,
    rows: &[ResultRow],
) -> Result<(), StoreError> {
    let hours: Vec<i64> = rows
        .iter()
        .map(|r| r.observed_at_ms.div_euclid(HOUR_MS) * HOUR_MS)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if hours.is_empty() {
        return Ok(());
    }
    db.execute(
        "WITH l AS (SELECT pg_advisory_xact_lock_shared(7061746, hashtext($1)))
         INSERT INTO rollup_dirty (opd_id, hour_ms) SELECT $1, h FROM l, unnest($2::bigint[]) h
         ON CONFLICT (opd_id, hour_ms) DO UPDATE SET gen = nextval('rollup_dirty_gen')",
        &[&opd, &hours],
    )
    .op("mark dirty")?;
    Ok(())
}

impl IngestStore for PgStore {
    fn hello(
        &self,
        who: &AgentIdentity,
        info: &HelloInfo,
        clock_offset_ms: Option<i64>,
        peer: Option<&str>,
        at_ms: i64,
    ) -> Result<Opened, StoreError> {
        self.write(|c| c.tx(|db| hello(db, who, info, clock_offset_ms, peer, at_ms)))
    }

    fn hellos(
        &self,
        hellos: &[IncomingHello<'_>],
        at_ms: i64,
    ) -> Result<Vec<Result<Opened, StoreError>>, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let mut answers = Vec::with_capacity(hellos.len());
                for h in hellos {
                    // A nested transaction is a savepoint: a failing Hello
                    // is rolled back alone (dropped), the others stay.
                    let mut sp = db.c.transaction().op("savepoint hello")?;
                    let mut inner = Db {
                        c: &mut sp,
                        prepared: &mut *db.prepared,
                    };
                    match hello(&mut inner, h.who, h.info, h.clock_offset_ms, h.peer, at_ms) {
                        Ok(opened) => {
                            sp.commit().op("release hello")?;
                            answers.push(Ok(opened));
                        }
                        Err(e) => answers.push(Err(e)),
                    }
                }
                Ok(answers)
            })
        })
    }

    fn end_session(&self, id: i64, at_ms: i64, reason: &str) -> Result<(), StoreError> {
        self.end_sessions(&[(id, reason)], at_ms)
    }

    fn end_sessions(&self, ends: &[(i64, &str)], at_ms: i64) -> Result<(), StoreError> {
        self.write(|c| {
            c.tx(|db| {
                for &(id, reason) in ends {
                    db.execute(
                        "UPDATE agent_session SET disconnected_at_ms = $2, end_reason = $3
                         WHERE id = $1 AND disconnected_at_ms IS NULL",
                        &[&id, &at_ms, &reason],
                    )
                    .op("end session")?;
                }
                Ok(())
            })
        })
    }

    fn close_dangling_sessions(&self) -> Result<usize, StoreError> {
        self.write(|c| {
            c.db()
                .execute(
                    "UPDATE agent_session s SET end_reason = 'collector stopped',
                       disconnected_at_ms = GREATEST(s.connected_at_ms, COALESCE(
                         (SELECT MAX(r.received_at_ms) FROM result r
                          WHERE r.agent_id = s.agent_id AND r.received_at_ms >= s.connected_at_ms),
                         s.connected_at_ms))
                     WHERE s.disconnected_at_ms IS NULL",
                    &[],
                )
                .op("close dangling sessions")
                .map(|n| n as usize)
        })
    }

    fn committed_seq(&self, agent: &str, epoch: u64) -> Result<u64, StoreError> {
        self.read(|c| committed_seq(&mut c.db(), agent, epoch))
    }

    fn store_batches(
        &self,
        batches: &[IncomingBatch<'_>],
        received_at_ms: i64,
    ) -> Result<Vec<Stored>, StoreError> {
        self.ensure_days(
            batches
                .iter()
                .flat_map(|b| b.rows.iter().map(|r| day_of(r.observed_at_ms))),
        )?;
        self.write(|c| {
            c.tx(|db| {
                let mut counts = Vec::with_capacity(batches.len());
                for b in batches {
                    counts.push(store_results(db, b.who, b.rows, received_at_ms, b.peer)?);
                    mark_dirty(db, &b.who.opd_id, b.rows)?;
                }
                Ok(counts)
            })
        })
    }

    fn recover(&self) -> Result<(), StoreError> {
        let fresh = Self::connect_with(&self.config, &self.url)?;
        self.write(|c| {
            *c = fresh;
            Ok(())
        })
    }
}
