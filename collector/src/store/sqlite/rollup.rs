//! [`RollupStore`] for SQLite: dirty hours, watermarks, the rule history,
//! and writing what the [`RollupBuilder`] computes.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, params};

use super::super::report::{
    BwRow, CapacityResult, DayInput, GroupDayRow, GroupHourRow, HourInput, HourRollup, LinkRow,
    RawResult, ReportRead, RollupBuilder, RollupStore, RollupTarget, RuleRecord, TargetHourRow,
    WindowRow,
};
use super::super::{Op, StoreError, now_ms, text_enum};
use super::report::{SqliteRead, f64s_to_bytes, group_hours};
use super::{SqliteStore, write_tx};
use crate::model::{Outcome, ResultRow, RowKind};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// The longest probe interval an agent may declare, ms.
const MAX_INTERVAL_MS: i64 = pantau_core::probe::MAX_INTERVAL.as_millis() as i64;

fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Mark an OPD-hour dirty, bumping its generation when it already is: a
/// rollup read before this mark will not clear it (see
/// [`RollupStore::rebuild_dirty`]).
const MARK_DIRTY: &str = "INSERT INTO rollup_dirty (opd_id, hour_ms) VALUES (?1, ?2)
     ON CONFLICT (opd_id, hour_ms) DO UPDATE SET gen = rollup_dirty.gen + 1";

/// Mark the hours of freshly stored results dirty (inside the writer's
/// transaction).
pub fn mark_dirty(conn: &Connection, opd: &str, rows: &[ResultRow]) -> Result<(), StoreError> {
    let hours: BTreeSet<i64> = rows.iter().map(|r| hour_of(r.observed_at_ms)).collect();
    let mut st = conn.prepare_cached(MARK_DIRTY).op("prepare mark dirty")?;
    for h in hours {
        st.execute(params![opd, h]).op("mark dirty")?;
    }
    Ok(())
}

fn record_rules(
    conn: &Connection,
    r: &RuleRecord,
    rebuilt_from: Option<i64>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO rule_history (version, fingerprint, parameters, applied_at_ms, rebuilt_from_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![r.version, r.fingerprint, r.parameters, now_ms(), rebuilt_from],
    )
    .op("record rule change")?;
    Ok(())
}

fn last_rules(conn: &Connection) -> Result<Option<(String, String)>, StoreError> {
    conn.query_row(
        "SELECT version, fingerprint FROM rule_history ORDER BY rowid DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .op("read rule history")
}

/// Targets expected in `[hour, end)`: with results in it, or monitored
/// before its end (declared, or the agent's first result, whichever came
/// first) and in their agent's latest declaration (a removed target does not
/// turn later minutes unknown).
fn rollup_targets(
    conn: &Connection,
    opd: &str,
    hour: i64,
    until: i64,
) -> Result<Vec<RollupTarget>, StoreError> {
    // Per agent once (its latest declaration, its first result), not per
    // target: the cost is O(targets) index probes, not targets x targets.
    // MATERIALIZED keeps SQLite from folding `ag` back into a per-row
    // subquery (8,000 declarations: 13.9 s before, 0.1 s, debug build).
    // Targets not in the agent's latest Hello are retired: they count only
    // for hours in which they still have results.
    let mut st = conn
        .prepare_cached(
            "WITH ag AS MATERIALIZED (
               SELECT a.id AS agent_id,
                 (SELECT MAX(t2.last_declared_ms) FROM target t2 WHERE t2.agent_id = a.id) AS latest,
                 (SELECT MIN(r0.observed_at_ms) FROM result r0
                   WHERE r0.agent_id = a.id AND r0.clock_flag IS NULL) AS first_result
               FROM agent a WHERE a.opd_id = ?1)
             SELECT t.agent_id, t.id, t.grp, t.interval_ms, t.first_seen_ms
             FROM ag JOIN target t ON t.agent_id = ag.agent_id
             WHERE t.kind NOT IN ('bandwidth', 'link') AND (
               (MIN(t.first_seen_ms, COALESCE(ag.first_result, t.first_seen_ms)) < ?3
                AND t.last_declared_ms = ag.latest)
               OR EXISTS (SELECT 1 FROM result r WHERE r.agent_id = t.agent_id AND r.target_id = t.id
                          AND r.observed_at_ms >= ?2 AND r.observed_at_ms < MIN(?3, ?4)
                          AND r.clock_flag IS NULL))
             ORDER BY t.agent_id, t.id",
        )
        .op("prepare rollup targets")?;
    st.query_map(params![opd, hour, hour + HOUR_MS, until], |r| {
        Ok(RollupTarget {
            agent: r.get(0)?,
            id: r.get(1)?,
            grp: r.get(2)?,
            // A declaration stored before intervals were bounded holds
            // for the longest allowed interval at most.
            interval_ms: r.get::<_, i64>(3)?.clamp(0, MAX_INTERVAL_MS),
            first_seen_ms: r.get(4)?,
        })
    })
    .and_then(|rows| rows.collect())
    .op("rollup targets")
}

fn hour_input(conn: &Connection, opd: &str, hour: i64) -> Result<HourInput, StoreError> {
    let end = hour + HOUR_MS;
    let until = SqliteRead(conn).watermark(opd)?.unwrap_or(i64::MAX);
    let targets = rollup_targets(conn, opd, hour, until)?;
    // Results from one interval (and a minute more, for jitter) before the
    // hour: they hold into it, and the last answer pairs with the first.
    let max_interval = targets.iter().map(|t| t.interval_ms).max().unwrap_or(0) + 60_000;
    let results: Vec<RawResult> = conn
        .prepare_cached(
            "SELECT agent_id, target_id, observed_at_ms, outcome, value_ms, sent, received FROM result
             WHERE opd_id = ?1 AND observed_at_ms >= ?2 AND observed_at_ms < ?3
               AND kind NOT IN ('heartbeat', 'bandwidth', 'link') AND clock_flag IS NULL
             ORDER BY observed_at_ms",
        )
        .and_then(|mut st| {
            st.query_map(params![opd, hour - max_interval, end], |r| {
                Ok(RawResult {
                    agent: r.get(0)?,
                    target: r.get(1)?,
                    at_ms: r.get(2)?,
                    outcome: r.get(3)?,
                    value_ms: r.get(4)?,
                    sent: r.get(5)?,
                    received: r.get(6)?,
                })
            })?
            .collect()
        })
        .op("rollup results")?;
    let windows: Vec<WindowRow> = conn
        .prepare_cached(
            "SELECT grp, from_ms, to_ms FROM maintenance
             WHERE (opd_id IS NULL OR opd_id = ?1) AND from_ms < ?3 AND to_ms > ?2",
        )
        .and_then(|mut st| {
            st.query_map(params![opd, hour, end], |r| {
                Ok(WindowRow {
                    grp: r.get(0)?,
                    from_ms: r.get(1)?,
                    to_ms: r.get(2)?,
                })
            })?
            .collect()
        })
        .op("maintenance")?;
    let mut first_result = BTreeMap::new();
    for t in &targets {
        if first_result.contains_key(&t.agent) {
            continue;
        }
        let v: Option<i64> = conn
            .prepare_cached(
                "SELECT MIN(observed_at_ms) FROM result WHERE agent_id = ?1 AND clock_flag IS NULL",
            )
            .and_then(|mut st| st.query_row([&t.agent], |r| r.get(0)))
            .op("agent first result")?;
        first_result.insert(t.agent.clone(), v);
    }
    Ok(HourInput {
        opd: opd.to_string(),
        hour_ms: hour,
        until_ms: until,
        targets,
        results,
        windows,
        first_result,
        capacity: capacity_results(conn, opd, hour)?,
    })
}

fn capacity_results(
    conn: &Connection,
    opd: &str,
    hour: i64,
) -> Result<Vec<CapacityResult>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT agent_id, target_id, kind, observed_at_ms, outcome, data FROM result
             WHERE opd_id = ?1 AND observed_at_ms >= ?2 AND observed_at_ms < ?3
               AND kind IN ('bandwidth', 'link') AND clock_flag IS NULL
             ORDER BY observed_at_ms",
        )
        .op("prepare capacity results")?;
    st.query_map(params![opd, hour, hour + HOUR_MS], |r| {
        Ok(CapacityResult {
            agent: r.get(0)?,
            target: r.get(1)?,
            kind: text_enum(r, 2, RowKind::parse)?,
            at_ms: r.get(3)?,
            outcome: text_enum(r, 4, Outcome::parse)?,
            data: r.get(5)?,
        })
    })
    .and_then(|rows| rows.collect())
    .op("capacity results")
}

fn insert_bw(conn: &Connection, table: &str, time_col: &str, a: &BwRow) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (opd_id, {time_col}, agent_id, target_id, n_ok, n_skipped, n_fail, dl, ul)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            a.opd,
            a.at_ms,
            a.agent,
            a.target,
            a.n_ok,
            a.n_skipped,
            a.n_fail,
            f64s_to_bytes(&a.dl),
            f64s_to_bytes(&a.ul)
        ])
    })
    .op("insert bandwidth rollup")?;
    Ok(())
}

fn insert_link(
    conn: &Connection,
    table: &str,
    time_col: &str,
    a: &LinkRow,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (opd_id, {time_col}, agent_id, target_id, if_name, polls, no_rate, covered_ms,
           in_bits, out_bits, in_peak, out_peak, in_hist, out_hist, capacity_bps, contracted, capacity_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            a.opd,
            a.at_ms,
            a.agent,
            a.target,
            a.if_name,
            a.polls,
            a.no_rate,
            a.covered_ms,
            a.in_bits,
            a.out_bits,
            a.in_peak,
            a.out_peak,
            a.in_hist,
            a.out_hist,
            a.capacity_bps,
            a.contracted as i64,
            a.capacity_at_ms
        ])
    })
    .op("insert link rollup")?;
    Ok(())
}

fn write_hour(conn: &Connection, opd: &str, hour: i64, r: &HourRollup) -> Result<(), StoreError> {
    for table in ["rollup_target_hour", "rollup_group_hour"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE opd_id = ?1 AND hour_ms = ?2"),
            params![opd, hour],
        )
        .op("clear hour")?;
    }
    for t in &r.targets {
        write_target_hour(conn, opd, hour, t)?;
    }
    for g in &r.groups {
        write_group_hour(conn, opd, g)?;
    }
    // Throughput and utilisation (never part of availability).
    for table in ["rollup_bw_hour", "rollup_link_hour"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE opd_id = ?1 AND hour_ms = ?2"),
            params![opd, hour],
        )
        .op("clear capacity hour")?;
    }
    for b in &r.bw {
        insert_bw(conn, "rollup_bw_hour", "hour_ms", b)?;
    }
    for l in &r.links {
        insert_link(conn, "rollup_link_hour", "hour_ms", l)?;
    }
    Ok(())
}

fn write_target_hour(
    conn: &Connection,
    opd: &str,
    hour: i64,
    t: &TargetHourRow,
) -> Result<(), StoreError> {
    let (c, a) = (&t.counts, &t.tally);
    conn.execute(
        "INSERT INTO rollup_target_hour (opd_id, agent_id, target_id, grp, hour_ms, minutes, up, degraded, down, unknown, maint,
            n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
         ON CONFLICT DO NOTHING",
        params![
            opd, t.agent, t.target, t.grp, hour, t.minutes, c[0], c[1], c[2], c[3], c[4], a.n_ok,
            a.n_fail, a.sent, a.received, a.jit_sum, a.jit_n, a.hist
        ],
    )
    .op("insert target hour")?;
    Ok(())
}

fn write_group_hour(conn: &Connection, opd: &str, g: &GroupHourRow) -> Result<(), StoreError> {
    let (c, a) = (&g.counts, &g.tally);
    conn.execute(
        "INSERT INTO rollup_group_hour (opd_id, grp, hour_ms, minutes, up, degraded, down, unknown, maint,
            n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            opd, g.grp, g.hour_ms, g.minutes, c[0], c[1], c[2], c[3], c[4], a.n_ok, a.n_fail,
            a.sent, a.received, a.jit_sum, a.jit_n, a.hist
        ],
    )
    .op("insert group hour")?;
    Ok(())
}

fn write_group_day(conn: &Connection, d: &GroupDayRow) -> Result<(), StoreError> {
    let (m, bh, a) = (&d.counts, &d.business, &d.tally);
    conn.execute(
        "INSERT INTO rollup_group_day (opd_id, grp, day_ms, up, degraded, down, unknown, maint,
            bh_up, bh_degraded, bh_down, bh_unknown, n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        params![
            d.opd, d.grp, d.day_ms, m[0], m[1], m[2], m[3], m[4], bh[0], bh[1], bh[2], bh[3], a.n_ok,
            a.n_fail, a.sent, a.received, a.jit_sum, a.jit_n, a.hist
        ],
    )
    .op("insert day")?;
    Ok(())
}

fn rebuild_day(
    conn: &Connection,
    b: &dyn RollupBuilder,
    opd: &str,
    day: i64,
) -> Result<(), StoreError> {
    let read = SqliteRead(conn);
    let input = DayInput {
        groups: group_hours(conn, opd, day, day + DAY_MS)?,
        bw: read.bw_rows(Some(opd), day, day + DAY_MS, true)?,
        links: read.link_rows(Some(opd), day, day + DAY_MS, true)?,
    };
    let out = b.day(opd, day, &input);
    for table in ["rollup_group_day", "rollup_bw_day", "rollup_link_day"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE opd_id = ?1 AND day_ms = ?2"),
            params![opd, day],
        )
        .op("clear day")?;
    }
    for d in &out.groups {
        write_group_day(conn, d)?;
    }
    for r in &out.bw {
        insert_bw(conn, "rollup_bw_day", "day_ms", r)?;
    }
    for r in &out.links {
        insert_link(conn, "rollup_link_day", "day_ms", r)?;
    }
    Ok(())
}

/// One rebuild of a store's dirty hours at a time (see
/// [`RollupStore::rebuild_dirty_between`]).
static REBUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The dirty mark's generation and the hour's rollup, read in one read
/// snapshot; `None` when the hour is no longer dirty.
fn read_hour(
    conn: &Connection,
    b: &dyn RollupBuilder,
    opd: &str,
    hour: i64,
) -> Result<Option<(i64, HourRollup)>, StoreError> {
    let tx = conn.unchecked_transaction().op("begin rollup read")?;
    let gen_read: Option<i64> = tx
        .query_row(
            "SELECT gen FROM rollup_dirty WHERE opd_id = ?1 AND hour_ms = ?2",
            params![opd, hour],
            |r| r.get(0),
        )
        .optional()
        .op("read dirty generation")?;
    let Some(gen_read) = gen_read else {
        return Ok(None);
    };
    let input = hour_input(&tx, opd, hour)?;
    tx.commit().op("end rollup read")?;
    Ok(Some((gen_read, b.hour(&input))))
}

/// An OPD, its watermark and its start of monitoring.
type Watermark = (String, Option<i64>, Option<i64>);

/// The OPDs with their watermark and start of monitoring (see
/// [`RollupStore::advance_watermarks`]).
fn watermarks(conn: &Connection) -> Result<Vec<Watermark>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT o.id, w.until_ms, CASE
               WHEN EXISTS (SELECT 1 FROM rollup_group_hour g WHERE g.opd_id = o.id)
                 THEN (SELECT MIN(r.observed_at_ms) FROM result r WHERE r.opd_id = o.id AND r.clock_flag IS NULL)
               ELSE MIN(COALESCE((SELECT MIN(t.first_seen_ms) FROM target t JOIN agent a ON a.id = t.agent_id
                                  WHERE a.opd_id = o.id), 9223372036854775807),
                        COALESCE((SELECT MIN(r.observed_at_ms) FROM result r WHERE r.opd_id = o.id
                                  AND r.clock_flag IS NULL), 9223372036854775807))
               END
             FROM opd o LEFT JOIN rollup_watermark w ON w.opd_id = o.id",
        )
        .op("prepare watermarks")?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .op("watermarks")
}

impl RollupStore for SqliteStore {
    fn current_rules(&self) -> Result<Option<String>, StoreError> {
        self.write(|c| {
            c.query_row(
                "SELECT version FROM rule_history ORDER BY rowid DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .op("read rule history")
        })
    }

    fn ensure_rules(
        &self,
        current: &RuleRecord,
        pre_history: &RuleRecord,
    ) -> Result<bool, StoreError> {
        self.write(|c| {
            // Decided under the write lock, so two collectors' tasks (or a
            // report command beside the server) record a change once.
            let tx = write_tx(c).op("begin rule change")?;
            let prev_fingerprint = match last_rules(&tx)? {
                Some((v, _)) if v == current.version => return Ok(false),
                Some((_, f)) => f,
                None => {
                    let any: bool = tx
                        .query_row("SELECT EXISTS(SELECT 1 FROM rollup_group_hour)", [], |r| {
                            r.get(0)
                        })
                        .op("read rollups")?;
                    if any {
                        record_rules(&tx, pre_history, None)?;
                        pre_history.fingerprint.clone()
                    } else {
                        current.fingerprint.clone()
                    }
                }
            };
            let rebuild = prev_fingerprint != current.fingerprint;
            let mut rebuilt_from: Option<i64> = None;
            if rebuild {
                tx.execute(
                    "INSERT INTO rollup_dirty (opd_id, hour_ms)
                     SELECT DISTINCT opd_id, (observed_at_ms / 3600000) * 3600000 FROM result
                     WHERE observed_at_ms >= 0
                     ON CONFLICT (opd_id, hour_ms) DO UPDATE SET gen = rollup_dirty.gen + 1",
                    [],
                )
                .op("queue rollup rebuild")?;
                // Without any raw result left, every rollup keeps the earlier rules.
                rebuilt_from = Some(
                    tx.query_row("SELECT MIN(observed_at_ms) FROM result", [], |r| {
                        r.get::<_, Option<i64>>(0)
                    })
                    .op("read oldest result")?
                    .unwrap_or_else(now_ms),
                );
            }
            record_rules(&tx, current, rebuilt_from)?;
            tx.commit().op("commit rule change")?;
            Ok(rebuild)
        })
    }

    fn advance_watermarks(&self, until: i64) -> Result<(), StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin watermark")?;
            let mut changed = false;
            for (opd, old, start) in watermarks(&tx)? {
                let (lo, hi) = match (old, start) {
                    (Some(old), _) if old == until => continue,
                    (Some(old), _) => (old.min(until), old.max(until)),
                    // First rollup of this OPD: from its start of monitoring.
                    // A store made before watermarks existed starts at its
                    // oldest raw result still held: hours whose raw results
                    // were pruned keep their rollups. An OPD without targets
                    // or results is not monitored yet.
                    (None, Some(start)) if start < i64::MAX => (start.min(until), until),
                    (None, _) => continue,
                };
                let mut h = hour_of(lo);
                // The hour holding the cut-off minute is partial: include it
                // (and the hour of `hi` itself, even when it is an hour start).
                while h <= hour_of(hi) {
                    tx.execute(MARK_DIRTY, params![opd, h]).op("mark dirty")?;
                    h += HOUR_MS;
                }
                tx.execute(
                    "INSERT INTO rollup_watermark (opd_id, until_ms) VALUES (?1, ?2)
                     ON CONFLICT (opd_id) DO UPDATE SET until_ms = excluded.until_ms",
                    params![opd, until],
                )
                .op("set watermark")?;
                changed = true;
            }
            if changed {
                tx.commit().op("commit watermark")?;
            }
            Ok(())
        })
    }

    /// Each dirty OPD-hour is read in a read transaction of its own on a
    /// reader (a WAL snapshot: the writer and ingest go on meanwhile), then
    /// written in a short write transaction; the day is rebuilt there with
    /// the last dirty hour of it in this chunk (an interrupted chunk leaves
    /// that hour dirty, so the day is rebuilt later).
    fn rebuild_dirty_between(
        &self,
        limit: usize,
        b: &dyn RollupBuilder,
        between: &mut dyn FnMut(&str, i64),
    ) -> Result<usize, StoreError> {
        // Two rebuilds at once (the rollup task and a report's refresh)
        // could clear a mark made after the other's delete with the same
        // generation (a new mark starts at 0 again); one at a time they
        // cannot.
        let _one = REBUILD.lock().unwrap_or_else(|e| e.into_inner());
        let dirty: Vec<(String, i64)> = self.read(|c| {
            c.prepare_cached(
                "SELECT opd_id, hour_ms FROM rollup_dirty ORDER BY opd_id, hour_ms LIMIT ?1",
            )
            .and_then(|mut st| {
                st.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .op("read dirty")
        })?;
        for (i, (opd, hour)) in dirty.iter().enumerate() {
            let day = b.day_of(*hour);
            let last_of_day = dirty
                .get(i + 1)
                .is_none_or(|(o, h)| o != opd || b.day_of(*h) != day);
            let Some((gen_read, rollup)) = self.read(|c| read_hour(c, b, opd, *hour))? else {
                continue;
            };
            between(opd, *hour);
            self.write(|c| {
                let tx = write_tx(c).op("begin rollup")?;
                write_hour(&tx, opd, *hour, &rollup)?;
                if last_of_day {
                    rebuild_day(&tx, b, opd, day)?;
                }
                // Kept when a result marked the hour after the snapshot:
                // its rows are not in this rollup, the next run adds them.
                tx.execute(
                    "DELETE FROM rollup_dirty WHERE opd_id = ?1 AND hour_ms = ?2 AND gen = ?3",
                    params![opd, hour, gen_read],
                )
                .op("clear dirty")?;
                tx.commit().op("commit rollup")
            })?;
        }
        Ok(dirty.len())
    }

    fn prune_raw(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.write(|c| {
            c.execute(
                "DELETE FROM result WHERE observed_at_ms < ?1
                   AND NOT EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.opd_id = result.opd_id
                                   AND d.hour_ms = (result.observed_at_ms / 3600000) * 3600000)",
                params![before_ms],
            )
            .op("prune raw results")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentIdentity, HelloInfo, ProbeKind, TargetDecl};
    use crate::report::rollup::refresh_at;
    use crate::report::rules::RuleSet;

    // The rollup arithmetic run through the SQLite store, from raw results
    // to stored group hours.

    /// One OPD with one 30 s TCP target declared at `declared_ms`; `rows`
    /// (observed ms, ok, latency ms) stored.
    fn store(declared_ms: i64, rows: &[(i64, bool, f64)]) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::open(dir.path()).unwrap();
        crate::store::add_opd(&conn, "dinkes", "Dinas Kesehatan").unwrap();
        crate::store::add_agent(&conn, "dinkes-1", "dinkes", &crate::auth::digest("t")).unwrap();
        let who = AgentIdentity {
            agent_id: "dinkes-1".into(),
            opd_id: "dinkes".into(),
        };
        let hello = HelloInfo {
            version: "t".into(),
            config_hash: "x".into(),
            hostname: "h".into(),
            epoch: 1,
            agent_time_ms: None,
            targets: vec![TargetDecl {
                id: "web".into(),
                group: pantau_core::Group::Internet,
                kind: ProbeKind::Tcp,
                address: "web.example.invalid:443".into(),
                label: "web".into(),
                interval_ms: 30_000,
                timeout_ms: 5_000,
            }],
        };
        crate::store::record_hello(&mut conn, &who, &hello, None).unwrap();
        conn.execute(
            "UPDATE target SET first_seen_ms = ?1, last_declared_ms = ?1",
            [declared_ms],
        )
        .unwrap();
        let rows: Vec<ResultRow> = rows
            .iter()
            .enumerate()
            .map(|(i, (at, ok, v))| ResultRow {
                epoch: 1,
                seq: i as u64 + 1,
                target_id: "web".into(),
                group: "internet".into(),
                kind: ProbeKind::Tcp.into(),
                observed_at_ms: *at,
                outcome: if *ok { Outcome::Ok } else { Outcome::Timeout },
                detail: String::new(),
                value_ms: ok.then_some(*v),
                sent: None,
                received: None,
                data: serde_json::json!({}),
                late: false,
                clock_flag: None,
                agent_time_ms: *at,
                clock_correction_ms: None,
            })
            .collect();
        let tx = conn.transaction().unwrap();
        crate::store::insert_results(&tx, &who, &rows, 0).unwrap();
        mark_dirty(&tx, "dinkes", &rows).unwrap();
        tx.commit().unwrap();
        drop(conn);
        let s = SqliteStore::open(dir.path()).unwrap();
        (dir, s)
    }

    fn group_hours(s: &SqliteStore) -> Vec<(i64, String, i64)> {
        s.read(|conn| Ok(group_hours_of(conn))).unwrap()
    }

    fn group_hours_of(conn: &Connection) -> Vec<(i64, String, i64)> {
        let mut st = conn
            .prepare("SELECT hour_ms, minutes, jit_n FROM rollup_group_hour ORDER BY hour_ms")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    const H0: i64 = 1_794_844_800_000;

    #[test]
    fn silent_hours_are_rolled_up_and_the_future_is_not_yet() {
        // Results every 30 s during the first hour only; refreshed 2 h 30 min
        // and 30 s later.
        let rows: Vec<_> = (0..120).map(|i| (H0 + i * 30_000, true, 10.0)).collect();
        let (_d, conn) = store(H0, &rows);
        refresh_at(
            &conn,
            &RuleSet::default(),
            480,
            H0 + 2 * HOUR_MS + 30 * 60_000 + 30_000,
        )
        .unwrap();
        let h = group_hours(&conn);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h[0].1, "U".repeat(60));
        // The silent hour is there, every minute unknown.
        assert_eq!(h[1].1, "-".repeat(60));
        // The hour in progress: 30 minutes have happened, not the rest.
        assert_eq!(h[2].1, "-".repeat(30) + &">".repeat(30));
        assert_eq!(
            conn.read(|c| SqliteRead(c).watermark("dinkes")).unwrap(),
            Some(H0 + 2 * HOUR_MS + 30 * 60_000)
        );
        // Later the rest of the hour has happened: rebuilt without new results.
        refresh_at(&conn, &RuleSet::default(), 480, H0 + 3 * HOUR_MS).unwrap();
        assert_eq!(group_hours(&conn)[2].1, "-".repeat(60));
    }

    #[test]
    fn an_interval_bomb_holds_for_a_day_at_most() {
        // A declaration stored before intervals were bounded: 2^52 ms. The
        // rollup used to loop interval/60 000 times per result under the
        // write lock; now a result holds for the longest allowed interval.
        let (_d, conn) = store(H0, &[(H0 + 5 * 60_000, true, 10.0)]);
        conn.write(|c| {
            c.execute("UPDATE target SET interval_ms = ?1", [1_i64 << 52])
                .op("bomb")
        })
        .unwrap();
        refresh_at(&conn, &RuleSet::default(), 480, H0 + 26 * HOUR_MS).unwrap();
        let h = group_hours(&conn);
        assert_eq!(h.len(), 27, "{h:?}");
        assert_eq!(h[0].1, "-".repeat(5) + &"U".repeat(55));
        assert!(h[1..24].iter().all(|x| x.1 == "U".repeat(60)), "{h:?}");
        // 24 h after minute 5: held up to minute 4 of hour 24, then unknown.
        assert_eq!(h[24].1, "U".repeat(5) + &"-".repeat(55));
        assert_eq!(h[25].1, "-".repeat(60));
        // The hour at the cut-off has not happened yet.
        assert_eq!(h[26].1, ">".repeat(60));
    }

    #[test]
    fn a_stored_interval_bomb_is_bounded_by_the_migration() {
        use super::super::{MIGRATIONS, connect, migrate_to};
        // The schema just before the migration that bounds intervals.
        let fair = MIGRATIONS
            .iter()
            .position(|m| *m == include_str!("schema_fair.sql"))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        {
            let c = connect(dir.path()).unwrap();
            migrate_to(&c, fair).unwrap();
            c.execute_batch(&format!(
                "INSERT INTO opd (id, name, created_at_ms) VALUES ('b', 'B', 0);
                 INSERT INTO agent (id, opd_id, token_sha256, created_at_ms) VALUES ('b-1', 'b', x'01', 0);
                 INSERT INTO target (agent_id, id, grp, kind, address, label, interval_ms, timeout_ms,
                                     first_seen_ms, last_declared_ms)
                   VALUES ('b-1', 'bomb', 'app', 'tcp', 'x:1', '', {}, 500, 0, 0),
                          ('b-1', 'ok', 'app', 'tcp', 'x:1', '', 30000, 500, 0, 0);",
                1_i64 << 52
            ))
            .unwrap();
        }
        let s = SqliteStore::open(dir.path()).unwrap();
        let intervals: Vec<i64> = s
            .read(|c| {
                c.prepare("SELECT interval_ms FROM target ORDER BY id")
                    .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
                    .op("intervals")
            })
            .unwrap();
        assert_eq!(intervals, [86_400_000, 30_000]);
    }

    #[test]
    fn retired_targets_count_only_where_they_have_results() {
        let (_d, conn) = store(H0, &[(H0 + 60_000, true, 10.0)]);
        conn.write(|c| {
            // `old` was declared with `web` at H0 and dropped from the Hello
            // at H0 + 1 h; it has one result in the first hour.
            c.execute_batch(&format!(
                "INSERT INTO target (agent_id, id, grp, kind, address, label, interval_ms, timeout_ms,
                                     first_seen_ms, last_declared_ms)
                   VALUES ('dinkes-1', 'old', 'internet', 'tcp', 'x:1', 'old', 30000, 5000, {H0}, {H0});
                 UPDATE target SET last_declared_ms = {} WHERE id = 'web';
                 INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms,
                                     received_at_ms, outcome, detail, value_ms, data)
                   VALUES ('dinkes-1', 1, 99, 'dinkes', 'old', 'tcp', {}, 0, 'ok', '', 1.0, '{{}}');",
                H0 + HOUR_MS,
                H0 + 120_000
            ))
            .op("retire")
        })
        .unwrap();
        let ids = |hour: i64| -> Vec<String> {
            conn.read(|c| rollup_targets(c, "dinkes", hour, i64::MAX))
                .unwrap()
                .into_iter()
                .map(|t| t.id)
                .collect()
        };
        assert_eq!(ids(H0), ["old", "web"], "history kept where it has results");
        assert_eq!(ids(H0 + 2 * HOUR_MS), ["web"], "retired later");
    }

    #[test]
    fn jitter_keeps_the_pair_straddling_the_hour() {
        // One answer a minute alternating 10/20 ms across two hours.
        let rows: Vec<_> = (0..120)
            .map(|i| {
                (
                    H0 + i * 60_000 + 5_000,
                    true,
                    if i % 2 == 0 { 10.0 } else { 20.0 },
                )
            })
            .collect();
        let (_d, conn) = store(H0, &rows);
        refresh_at(&conn, &RuleSet::default(), 480, H0 + 2 * HOUR_MS).unwrap();
        let h = group_hours(&conn);
        // 59 pairs inside the first hour; the second hour has its 59 and the
        // pair (59th minute, 60th minute) across the boundary.
        assert_eq!((h[0].2, h[1].2), (59, 60));
        let (sum, n): (f64, i64) = conn
            .read(|c| {
                c.query_row(
                    "SELECT jit_sum, jit_n FROM rollup_group_hour WHERE hour_ms = ?1",
                    [H0 + HOUR_MS],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .op("jitter")
            })
            .unwrap();
        assert_eq!(sum / n as f64, 10.0);
    }
}
