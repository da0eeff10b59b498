//! Ingest in PostgreSQL: Hello and sessions, results stored with dedupe on
//! `result_identity` and conflicting duplicates kept aside, traceroute
//! paths, the committed seq, the remote-write queue.
//!
//! The batches the writer folds into one transaction go in together with a
//! few array statements whatever their number and size (`unnest` of one
//! array per column, the agent's id one of them: one prepared statement,
//! one round trip per table), inside the transaction the writer commits
//! before it acks.

use std::collections::{BTreeSet, HashMap, HashSet};

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

/// One row of a transaction: its batch and its index in that batch.
#[derive(Clone, Copy)]
struct At {
    batch: usize,
    row: usize,
}

/// Store every batch of one transaction with a few array statements for
/// all of them together (one round trip per table, not per batch):
/// identities first (dedupe within the transaction and across
/// collectors), then the new rows, their remote-write entries and paths;
/// rows whose identity was stored already are compared with the stored
/// content (one query for all of them) and conflicting ones kept aside;
/// last the dirty hours. Rows are handled in batch order, then row order,
/// so the first delivery of an identity is the one stored and the
/// remote-write queue keeps that order.
pub fn store_all<C: GenericClient>(
    db: &mut Db<'_, C>,
    batches: &[IncomingBatch<'_>],
    received_at_ms: i64,
) -> Result<Vec<Stored>, StoreError> {
    let mut out = vec![Stored::default(); batches.len()];
    let all: Vec<At> = batches
        .iter()
        .enumerate()
        .flat_map(|(batch, b)| (0..b.rows.len()).map(move |row| At { batch, row }))
        .collect();
    if all.is_empty() {
        return Ok(out);
    }
    let row = |a: &At| &batches[a.batch].rows[a.row];
    let agent = |a: &At| batches[a.batch].who.agent_id.as_str();
    let mut fresh = insert_identities(db, batches, &all)?;
    // The first row of each new identity is stored; any other row is a
    // replay or a conflict.
    let mut new = Vec::with_capacity(fresh.len());
    let mut seen = Vec::new();
    for a in &all {
        let r = row(a);
        if fresh.remove(&(agent(a), r.epoch as i64, r.seq as i64)) {
            new.push(*a);
            out[a.batch].new += 1;
        } else {
            seen.push(*a);
        }
    }
    insert_new(db, batches, &new, received_at_ms)?;
    for a in &new {
        if row(a).kind == RowKind::Probe(ProbeKind::Traceroute) {
            record_path(db, agent(a), row(a))?;
        }
    }
    let before = stored_all(db, batches, &seen)?;
    for (a, stored) in seen.iter().zip(before) {
        let (b, r) = (&batches[a.batch], row(a));
        let content = ResultContent::of(r);
        if stored.is_none_or(|s| s == content) {
            continue;
        }
        if keep(db, b.who, r, &content, received_at_ms, b.peer)? {
            out[a.batch].conflicts.push(a.row);
        } else {
            out[a.batch].conflicts_resent.push(a.row);
        }
    }
    mark_dirty(db, batches)?;
    Ok(out)
}

/// Insert the identities of rows `all`, in order, skipping those stored
/// already; the identities that are new.
fn insert_identities<'b, C: GenericClient>(
    db: &mut Db<'_, C>,
    batches: &[IncomingBatch<'b>],
    all: &[At],
) -> Result<HashSet<(&'b str, i64, i64)>, StoreError> {
    let row = |a: &At| &batches[a.batch].rows[a.row];
    let agents: Vec<&str> = all
        .iter()
        .map(|a| batches[a.batch].who.agent_id.as_str())
        .collect();
    let epochs: Vec<i64> = all.iter().map(|a| row(a).epoch as i64).collect();
    let seqs: Vec<i64> = all.iter().map(|a| row(a).seq as i64).collect();
    let times: Vec<i64> = all.iter().map(|a| row(a).observed_at_ms).collect();
    // Agent ids come back as owned strings: map them to the batches' own.
    let ids: HashMap<&str, &'b str> = batches
        .iter()
        .map(|b| (b.who.agent_id.as_str(), b.who.agent_id.as_str()))
        .collect();
    let rows = db
        .query(
            "INSERT INTO result_identity (agent_id, epoch, seq, observed_at_ms)
             SELECT a, e, s, o FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
               WITH ORDINALITY AS u(a, e, s, o, n) ORDER BY n
             ON CONFLICT DO NOTHING RETURNING agent_id, epoch, seq",
            &[&agents, &epochs, &seqs, &times],
        )
        .op("insert result identities")?;
    let mut fresh = HashSet::with_capacity(rows.len());
    for r in rows {
        let agent: &str = r.get(0);
        if let Some(&id) = ids.get(agent) {
            fresh.insert((id, r.get(1), r.get(2)));
        }
    }
    Ok(fresh)
}

/// Insert rows `new` (new identities, any agents) and queue them for
/// remote write while it is enabled, in that order.
fn insert_new<C: GenericClient>(
    db: &mut Db<'_, C>,
    batches: &[IncomingBatch<'_>],
    new: &[At],
    received_at_ms: i64,
) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let rows: Vec<&ResultRow> = new.iter().map(|a| &batches[a.batch].rows[a.row]).collect();
    let agents: Vec<&str> = new
        .iter()
        .map(|a| batches[a.batch].who.agent_id.as_str())
        .collect();
    let opds: Vec<&str> = new
        .iter()
        .map(|a| batches[a.batch].who.opd_id.as_str())
        .collect();
    let pick = |f: &dyn Fn(&ResultRow) -> i64| -> Vec<i64> { rows.iter().map(|r| f(r)).collect() };
    let epochs = pick(&|r| r.epoch as i64);
    let seqs = pick(&|r| r.seq as i64);
    let observed = pick(&|r| r.observed_at_ms);
    let agent_time = pick(&|r| r.agent_time_ms);
    let targets: Vec<&str> = rows.iter().map(|r| r.target_id.as_str()).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
    let details: Vec<&str> = rows.iter().map(|r| r.detail.as_str()).collect();
    let values: Vec<Option<f64>> = rows.iter().map(|r| r.value_ms).collect();
    let sent: Vec<Option<i64>> = rows.iter().map(|r| r.sent.map(i64::from)).collect();
    let received: Vec<Option<i64>> = rows.iter().map(|r| r.received.map(i64::from)).collect();
    let data: Vec<String> = rows.iter().map(|r| r.data.to_string()).collect();
    let late: Vec<bool> = rows.iter().map(|r| r.late).collect();
    let flags: Vec<Option<&str>> = rows.iter().map(|r| r.clock_flag).collect();
    let corrections: Vec<Option<i64>> = rows.iter().map(|r| r.clock_correction_ms).collect();
    db.execute(
        "INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms,
                             received_at_ms, outcome, detail, value_ms, sent, received, data, late,
                             clock_flag, agent_time_ms, clock_correction_ms)
         SELECT a, e, s, op, t, k, o, $1, oc, d, v, se, re, da, l, f, at, cc
         FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                     $8::bigint[], $9::text[], $10::text[], $11::float8[], $12::bigint[],
                     $13::bigint[], $14::text[], $15::bool[], $16::text[], $17::bigint[],
                     $18::bigint[])
           AS u(a, op, e, s, t, k, o, oc, d, v, se, re, da, l, f, at, cc)",
        &[
            &received_at_ms,
            &agents,
            &opds,
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
         SELECT a, e, s FROM unnest($1::text[], $2::bigint[], $3::bigint[])
           WITH ORDINALITY AS u(a, e, s, n)
         WHERE EXISTS (SELECT 1 FROM remote_write_state) ORDER BY n",
        &[&agents, &epochs, &seqs],
    )
    .op("queue for remote write")?;
    Ok(())
}

/// Content of the stored result of each row of `seen` (identities stored
/// before), in one query; `None` where no result row is left (the agent's
/// own time is compared, as in SQLite).
fn stored_all<C: GenericClient>(
    db: &mut Db<'_, C>,
    batches: &[IncomingBatch<'_>],
    seen: &[At],
) -> Result<Vec<Option<ResultContent>>, StoreError> {
    let mut out = vec![None; seen.len()];
    if seen.is_empty() {
        return Ok(out);
    }
    let row = |a: &At| &batches[a.batch].rows[a.row];
    let agents: Vec<&str> = seen
        .iter()
        .map(|a| batches[a.batch].who.agent_id.as_str())
        .collect();
    let epochs: Vec<i64> = seen.iter().map(|a| row(a).epoch as i64).collect();
    let seqs: Vec<i64> = seen.iter().map(|a| row(a).seq as i64).collect();
    let rows = db
        .query(
            "SELECT u.n, r.target_id, r.kind, COALESCE(r.agent_time_ms, r.observed_at_ms),
                    r.outcome, r.detail, r.value_ms, r.sent, r.received, r.data
             FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS u(a, e, s, n)
             JOIN result_identity i ON i.agent_id = u.a AND i.epoch = u.e AND i.seq = u.s
             JOIN result r ON r.agent_id = i.agent_id AND r.epoch = i.epoch AND r.seq = i.seq
               AND r.observed_at_ms = i.observed_at_ms",
            &[&agents, &epochs, &seqs],
        )
        .op("read stored results")?;
    for r in rows {
        let n: i64 = r.get(0);
        let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        *slot = Some(ResultContent {
            target: r.get(1),
            kind: r.get(2),
            observed_at_ms: r.get(3),
            outcome: r.get(4),
            detail: r.get(5),
            value_ms: r.get(6),
            sent: r.get(7),
            received: r.get(8),
            data: r.get(9),
        });
    }
    Ok(out)
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

/// Mark the hours of every batch's rows dirty for the rollup (same
/// transaction, one statement), giving an existing mark a new generation:
/// a rebuild that read the hour before this transaction commits clears the
/// mark only if the generation is still the one it read, so these rows are
/// never left out (the reasoning under READ COMMITTED is at
/// [`super::rollup`]'s `rebuild_dirty_between`). Each (OPD, hour) is listed
/// once and in order: `DO UPDATE` refuses a row twice, and one order keeps
/// two collectors' row locks from deadlocking.
pub fn mark_dirty<C: GenericClient>(
    db: &mut Db<'_, C>,
    batches: &[IncomingBatch<'_>],
) -> Result<(), StoreError> {
    let marks: BTreeSet<(&str, i64)> = batches
        .iter()
        .flat_map(|b| {
            b.rows.iter().map(|r| {
                (
                    b.who.opd_id.as_str(),
                    r.observed_at_ms.div_euclid(HOUR_MS) * HOUR_MS,
                )
            })
        })
        .collect();
    if marks.is_empty() {
        return Ok(());
    }
    // Sorted and distinct (a BTreeSet), inserted in that order.
    let (opds, hours): (Vec<&str>, Vec<i64>) = marks.into_iter().unzip();
    db.execute(
        "INSERT INTO rollup_dirty (opd_id, hour_ms)
         SELECT o, h FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS m(o, h, n) ORDER BY n
         ON CONFLICT (opd_id, hour_ms) DO UPDATE SET gen = nextval('rollup_dirty_gen')",
        &[&opds, &hours],
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
        self.write(|c| c.tx(|db| store_all(db, batches, received_at_ms)))
    }

    fn recover(&self) -> Result<(), StoreError> {
        let fresh = Self::connect_with(&self.config, &self.url)?;
        self.write(|c| {
            *c = fresh;
            Ok(())
        })
    }
}
