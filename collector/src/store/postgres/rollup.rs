//! [`RollupStore`] for PostgreSQL: dirty hours, watermarks, the rule
//! history, writing what the [`RollupBuilder`] computes, and retention by
//! whole day partitions.

use std::collections::BTreeMap;

use postgres::GenericClient;

use super::report::{bw_rows, f64s_to_bytes, group_hours, link_rows_decoded, watermark};
use super::{Db, PgStore};
use crate::model::{Outcome, RowKind};
use crate::store::report::{
    BwRow, CapacityResult, DayInput, GroupDayRow, GroupHourRow, HourInput, HourRollup, LinkRow,
    RawResult, RollupBuilder, RollupStore, RollupTarget, RuleRecord, TargetHourRow, WindowRow,
};
use crate::store::{Op, StoreError, now_ms};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
const MAX_INTERVAL_MS: i64 = pantau_core::probe::MAX_INTERVAL.as_millis() as i64;
/// Advisory lock keys: rule changes and watermarks are decided once even
/// with several collectors on one database.
const RULES_LOCK: i64 = 7_061_746_101;
const WATERMARK_LOCK: i64 = 7_061_746_102;

fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

fn parse<T>(s: &str, f: fn(&str) -> Option<T>) -> Result<T, StoreError> {
    f(s).ok_or_else(|| StoreError::NotStored(format!("unknown stored name `{s}`")))
}

/// Targets expected in `[hour, hour + 1 h)` (see the SQLite backend).
fn rollup_targets<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: &str,
    hour: i64,
    until: i64,
) -> Result<Vec<RollupTarget>, StoreError> {
    Ok(db
        .query(
            "WITH ag AS MATERIALIZED (
               SELECT a.id AS agent_id,
                 (SELECT MAX(t2.last_declared_ms) FROM target t2 WHERE t2.agent_id = a.id) AS latest,
                 (SELECT MIN(r0.observed_at_ms) FROM result r0
                   WHERE r0.agent_id = a.id AND r0.clock_flag IS NULL) AS first_result
               FROM agent a WHERE a.opd_id = $1)
             SELECT t.agent_id, t.id, t.grp, t.interval_ms, t.first_seen_ms
             FROM ag JOIN target t ON t.agent_id = ag.agent_id
             WHERE t.kind NOT IN ('bandwidth', 'link') AND (
               (LEAST(t.first_seen_ms, COALESCE(ag.first_result, t.first_seen_ms)) < $3
                AND t.last_declared_ms = ag.latest)
               OR EXISTS (SELECT 1 FROM result r WHERE r.agent_id = t.agent_id AND r.target_id = t.id
                          AND r.observed_at_ms >= $2 AND r.observed_at_ms < LEAST($3, $4)
                          AND r.clock_flag IS NULL))
             ORDER BY t.agent_id, t.id",
            &[&opd, &hour, &(hour + HOUR_MS), &until],
        )
        .op("rollup targets")?
        .iter()
        .map(|r| RollupTarget {
            agent: r.get(0),
            id: r.get(1),
            grp: r.get(2),
            interval_ms: r.get::<_, i64>(3).clamp(0, MAX_INTERVAL_MS),
            first_seen_ms: r.get(4),
        })
        .collect())
}

fn hour_input<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: &str,
    hour: i64,
) -> Result<HourInput, StoreError> {
    let end = hour + HOUR_MS;
    let until = watermark(db, opd)?.unwrap_or(i64::MAX);
    let targets = rollup_targets(db, opd, hour, until)?;
    let max_interval = targets.iter().map(|t| t.interval_ms).max().unwrap_or(0) + 60_000;
    let results = db
        .query(
            "SELECT agent_id, target_id, observed_at_ms, outcome, value_ms, sent, received
             FROM result
             WHERE opd_id = $1 AND observed_at_ms >= $2 AND observed_at_ms < $3
               AND kind NOT IN ('heartbeat', 'bandwidth', 'link') AND clock_flag IS NULL
             ORDER BY observed_at_ms",
            &[&opd, &(hour - max_interval), &end],
        )
        .op("rollup results")?
        .iter()
        .map(|r| RawResult {
            agent: r.get(0),
            target: r.get(1),
            at_ms: r.get(2),
            outcome: r.get(3),
            value_ms: r.get(4),
            sent: r.get(5),
            received: r.get(6),
        })
        .collect();
    let windows = db
        .query(
            "SELECT grp, from_ms, to_ms FROM maintenance
             WHERE (opd_id IS NULL OR opd_id = $1) AND from_ms < $3 AND to_ms > $2",
            &[&opd, &hour, &end],
        )
        .op("maintenance")?
        .iter()
        .map(|r| WindowRow {
            grp: r.get(0),
            from_ms: r.get(1),
            to_ms: r.get(2),
        })
        .collect();
    let mut first_result = BTreeMap::new();
    for t in &targets {
        if first_result.contains_key(&t.agent) {
            continue;
        }
        let v: Option<i64> = db
            .query_one(
                "SELECT MIN(observed_at_ms) FROM result WHERE agent_id = $1 AND clock_flag IS NULL",
                &[&t.agent],
            )
            .op("agent first result")?
            .get(0);
        first_result.insert(t.agent.clone(), v);
    }
    let mut capacity = Vec::new();
    for r in db
        .query(
            "SELECT agent_id, target_id, kind, observed_at_ms, outcome, data FROM result
             WHERE opd_id = $1 AND observed_at_ms >= $2 AND observed_at_ms < $3
               AND kind IN ('bandwidth', 'link') AND clock_flag IS NULL
             ORDER BY observed_at_ms",
            &[&opd, &hour, &end],
        )
        .op("capacity results")?
    {
        capacity.push(CapacityResult {
            agent: r.get(0),
            target: r.get(1),
            kind: parse(r.get(2), RowKind::parse)?,
            at_ms: r.get(3),
            outcome: parse(r.get(4), Outcome::parse)?,
            data: r.get(5),
        });
    }
    Ok(HourInput {
        opd: opd.to_string(),
        hour_ms: hour,
        until_ms: until,
        targets,
        results,
        windows,
        first_result,
        capacity,
    })
}

fn insert_bw<C: GenericClient>(
    db: &mut Db<'_, C>,
    hourly: bool,
    a: &BwRow,
) -> Result<(), StoreError> {
    let sql = if hourly {
        "INSERT INTO rollup_bw_hour (opd_id, hour_ms, agent_id, target_id, n_ok, n_skipped, n_fail, dl, ul)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    } else {
        "INSERT INTO rollup_bw_day (opd_id, day_ms, agent_id, target_id, n_ok, n_skipped, n_fail, dl, ul)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    };
    db.execute(
        sql,
        &[
            &a.opd,
            &a.at_ms,
            &a.agent,
            &a.target,
            &a.n_ok,
            &a.n_skipped,
            &a.n_fail,
            &f64s_to_bytes(&a.dl),
            &f64s_to_bytes(&a.ul),
        ],
    )
    .op("insert bandwidth rollup")?;
    Ok(())
}

fn insert_link<C: GenericClient>(
    db: &mut Db<'_, C>,
    hourly: bool,
    a: &LinkRow,
) -> Result<(), StoreError> {
    let sql = if hourly {
        "INSERT INTO rollup_link_hour (opd_id, hour_ms, agent_id, target_id, if_name, polls, no_rate,
           covered_ms, in_bits, out_bits, in_peak, out_peak, in_hist, out_hist, capacity_bps,
           contracted, capacity_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    } else {
        "INSERT INTO rollup_link_day (opd_id, day_ms, agent_id, target_id, if_name, polls, no_rate,
           covered_ms, in_bits, out_bits, in_peak, out_peak, in_hist, out_hist, capacity_bps,
           contracted, capacity_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    };
    db.execute(
        sql,
        &[
            &a.opd,
            &a.at_ms,
            &a.agent,
            &a.target,
            &a.if_name,
            &a.polls,
            &a.no_rate,
            &a.covered_ms,
            &a.in_bits,
            &a.out_bits,
            &a.in_peak,
            &a.out_peak,
            &a.in_hist,
            &a.out_hist,
            &a.capacity_bps,
            &a.contracted,
            &a.capacity_at_ms,
        ],
    )
    .op("insert link rollup")?;
    Ok(())
}

fn write_target_hour<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: &str,
    hour: i64,
    t: &TargetHourRow,
) -> Result<(), StoreError> {
    let (c, a) = (&t.counts, &t.tally);
    db.execute(
        "INSERT INTO rollup_target_hour (opd_id, agent_id, target_id, grp, hour_ms, minutes, up,
            degraded, down, unknown, maint, n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT DO NOTHING",
        &[
            &opd,
            &t.agent,
            &t.target,
            &t.grp,
            &hour,
            &t.minutes,
            &c[0],
            &c[1],
            &c[2],
            &c[3],
            &c[4],
            &a.n_ok,
            &a.n_fail,
            &a.sent,
            &a.received,
            &a.jit_sum,
            &a.jit_n,
            &a.hist,
        ],
    )
    .op("insert target hour")?;
    Ok(())
}

fn write_group_hour<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: &str,
    g: &GroupHourRow,
) -> Result<(), StoreError> {
    let (c, a) = (&g.counts, &g.tally);
    db.execute(
        "INSERT INTO rollup_group_hour (opd_id, grp, hour_ms, minutes, up, degraded, down, unknown,
            maint, n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        &[
            &opd,
            &g.grp,
            &g.hour_ms,
            &g.minutes,
            &c[0],
            &c[1],
            &c[2],
            &c[3],
            &c[4],
            &a.n_ok,
            &a.n_fail,
            &a.sent,
            &a.received,
            &a.jit_sum,
            &a.jit_n,
            &a.hist,
        ],
    )
    .op("insert group hour")?;
    Ok(())
}

fn write_group_day<C: GenericClient>(
    db: &mut Db<'_, C>,
    d: &GroupDayRow,
) -> Result<(), StoreError> {
    let (m, bh, a) = (&d.counts, &d.business, &d.tally);
    db.execute(
        "INSERT INTO rollup_group_day (opd_id, grp, day_ms, up, degraded, down, unknown, maint,
            bh_up, bh_degraded, bh_down, bh_unknown, n_ok, n_fail, sent, received, jit_sum, jit_n,
            hist)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 $19)",
        &[
            &d.opd,
            &d.grp,
            &d.day_ms,
            &m[0],
            &m[1],
            &m[2],
            &m[3],
            &m[4],
            &bh[0],
            &bh[1],
            &bh[2],
            &bh[3],
            &a.n_ok,
            &a.n_fail,
            &a.sent,
            &a.received,
            &a.jit_sum,
            &a.jit_n,
            &a.hist,
        ],
    )
    .op("insert day")?;
    Ok(())
}

fn write_hour<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: &str,
    hour: i64,
    r: &HourRollup,
) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM rollup_target_hour WHERE opd_id = $1 AND hour_ms = $2",
        "DELETE FROM rollup_group_hour WHERE opd_id = $1 AND hour_ms = $2",
        "DELETE FROM rollup_bw_hour WHERE opd_id = $1 AND hour_ms = $2",
        "DELETE FROM rollup_link_hour WHERE opd_id = $1 AND hour_ms = $2",
    ] {
        db.execute(sql, &[&opd, &hour]).op("clear hour")?;
    }
    for t in &r.targets {
        write_target_hour(db, opd, hour, t)?;
    }
    for g in &r.groups {
        write_group_hour(db, opd, g)?;
    }
    for b in &r.bw {
        insert_bw(db, true, b)?;
    }
    for l in &r.links {
        insert_link(db, true, l)?;
    }
    Ok(())
}

fn rebuild_day<C: GenericClient>(
    db: &mut Db<'_, C>,
    b: &dyn RollupBuilder,
    opd: &str,
    day: i64,
) -> Result<(), StoreError> {
    let input = DayInput {
        groups: group_hours(db, opd, day, day + DAY_MS)?,
        bw: bw_rows(db, Some(opd), day, day + DAY_MS, true)?,
        links: link_rows_decoded(db, Some(opd), day, day + DAY_MS, true)?,
    };
    let out = b.day(opd, day, &input);
    for sql in [
        "DELETE FROM rollup_group_day WHERE opd_id = $1 AND day_ms = $2",
        "DELETE FROM rollup_bw_day WHERE opd_id = $1 AND day_ms = $2",
        "DELETE FROM rollup_link_day WHERE opd_id = $1 AND day_ms = $2",
    ] {
        db.execute(sql, &[&opd, &day]).op("clear day")?;
    }
    for d in &out.groups {
        write_group_day(db, d)?;
    }
    for r in &out.bw {
        insert_bw(db, false, r)?;
    }
    for r in &out.links {
        insert_link(db, false, r)?;
    }
    Ok(())
}

fn record_rules<C: GenericClient>(
    db: &mut Db<'_, C>,
    r: &RuleRecord,
    rebuilt_from: Option<i64>,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO rule_history (version, fingerprint, parameters, applied_at_ms, rebuilt_from_ms)
         VALUES ($1, $2, $3, $4, $5)",
        &[&r.version, &r.fingerprint, &r.parameters, &now_ms(), &rebuilt_from],
    )
    .op("record rule change")?;
    Ok(())
}

fn ensure_rules<C: GenericClient>(
    db: &mut Db<'_, C>,
    current: &RuleRecord,
    pre_history: &RuleRecord,
) -> Result<bool, StoreError> {
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&RULES_LOCK])
        .op("lock rule history")?;
    let last = db
        .query_opt(
            "SELECT version, fingerprint FROM rule_history ORDER BY id DESC LIMIT 1",
            &[],
        )
        .op("read rule history")?
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)));
    let prev_fingerprint = match last {
        Some((v, _)) if v == current.version => return Ok(false),
        Some((_, f)) => f,
        None => {
            let any: bool = db
                .query_one("SELECT EXISTS(SELECT 1 FROM rollup_group_hour)", &[])
                .op("read rollups")?
                .get(0);
            if any {
                record_rules(db, pre_history, None)?;
                pre_history.fingerprint.clone()
            } else {
                current.fingerprint.clone()
            }
        }
    };
    let rebuild = prev_fingerprint != current.fingerprint;
    let mut rebuilt_from = None;
    if rebuild {
        db.execute(
            "INSERT INTO rollup_dirty (opd_id, hour_ms)
             SELECT DISTINCT opd_id, (observed_at_ms / 3600000) * 3600000 FROM result
             WHERE observed_at_ms >= 0
             ON CONFLICT (opd_id, hour_ms) DO UPDATE SET gen = nextval('rollup_dirty_gen')",
            &[],
        )
        .op("queue rollup rebuild")?;
        let oldest: Option<i64> = db
            .query_one("SELECT MIN(observed_at_ms) FROM result", &[])
            .op("read oldest result")?
            .get(0);
        rebuilt_from = Some(oldest.unwrap_or_else(now_ms));
    }
    record_rules(db, current, rebuilt_from)?;
    Ok(rebuild)
}

fn advance_watermarks<C: GenericClient>(db: &mut Db<'_, C>, until: i64) -> Result<(), StoreError> {
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&WATERMARK_LOCK])
        .op("lock watermarks")?;
    let marks = db
        .query(
            "SELECT o.id, w.until_ms, CASE
               WHEN EXISTS (SELECT 1 FROM rollup_group_hour g WHERE g.opd_id = o.id)
                 THEN (SELECT MIN(r.observed_at_ms) FROM result r
                       WHERE r.opd_id = o.id AND r.clock_flag IS NULL)
               ELSE LEAST(COALESCE((SELECT MIN(t.first_seen_ms) FROM target t
                                    JOIN agent a ON a.id = t.agent_id WHERE a.opd_id = o.id),
                                   9223372036854775807),
                          COALESCE((SELECT MIN(r.observed_at_ms) FROM result r
                                    WHERE r.opd_id = o.id AND r.clock_flag IS NULL),
                                   9223372036854775807))
               END
             FROM opd o LEFT JOIN rollup_watermark w ON w.opd_id = o.id",
            &[],
        )
        .op("watermarks")?;
    for m in marks {
        let opd: String = m.get(0);
        let old: Option<i64> = m.get(1);
        let start: Option<i64> = m.get(2);
        let (lo, hi) = match (old, start) {
            (Some(old), _) if old == until => continue,
            (Some(old), _) => (old.min(until), old.max(until)),
            (None, Some(start)) if start < i64::MAX => (start.min(until), until),
            (None, _) => continue,
        };
        db.execute(
            "INSERT INTO rollup_dirty (opd_id, hour_ms)
             SELECT $1, generate_series($2::bigint, $3::bigint, 3600000)
             ON CONFLICT (opd_id, hour_ms) DO UPDATE SET gen = nextval('rollup_dirty_gen')",
            &[&opd, &hour_of(lo), &hour_of(hi)],
        )
        .op("mark dirty")?;
        db.execute(
            "INSERT INTO rollup_watermark (opd_id, until_ms) VALUES ($1, $2)
             ON CONFLICT (opd_id) DO UPDATE SET until_ms = excluded.until_ms",
            &[&opd, &until],
        )
        .op("set watermark")?;
    }
    Ok(())
}

/// The dirty mark's generation and the hour's input, read in the caller's
/// snapshot; `None` when the hour is no longer dirty.
fn read_hour<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: &str,
    hour: i64,
) -> Result<Option<(i64, HourInput)>, StoreError> {
    let Some(gen_read) = db
        .query_opt(
            "SELECT gen FROM rollup_dirty WHERE opd_id = $1 AND hour_ms = $2",
            &[&opd, &hour],
        )
        .op("read dirty generation")?
        .map(|r| r.get::<_, i64>(0))
    else {
        return Ok(None);
    };
    Ok(Some((gen_read, hour_input(db, opd, hour)?)))
}

/// Drop the day partitions wholly before `before_ms` that hold no dirty
/// hour (their identities go too); returns the rows dropped.
fn drop_days<C: GenericClient>(db: &mut Db<'_, C>, before_ms: i64) -> Result<usize, StoreError> {
    let parts = db
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'result'::regclass AND c.relname LIKE 'result\\_d%'",
            &[],
        )
        .op("list partitions")?;
    let mut dropped = 0;
    for p in parts {
        let name: String = p.get(0);
        let Some(day) = name
            .strip_prefix("result_d")
            .and_then(|d| d.parse::<i64>().ok())
        else {
            continue;
        };
        let (from, to) = (day * DAY_MS, (day + 1) * DAY_MS);
        if to > before_ms {
            continue;
        }
        let dirty: bool = db
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM rollup_dirty WHERE hour_ms >= $1 AND hour_ms < $2)",
                &[&from, &to],
            )
            .op("dirty hours of a day")?
            .get(0);
        if dirty {
            continue;
        }
        // `name` came from the catalogue and matched result_d<number>.
        let n: i64 = db
            .query_dynamic(&format!("SELECT COUNT(*) FROM \"{name}\""), &[])
            .op("count day partition")?
            .first()
            .map_or(0, |r| r.get(0));
        db.execute_dynamic(&format!("DROP TABLE \"{name}\""), &[])
            .op("drop day partition")?;
        db.execute(
            "DELETE FROM result_identity WHERE observed_at_ms >= $1 AND observed_at_ms < $2",
            &[&from, &to],
        )
        .op("forget identities of a day")?;
        dropped += n as usize;
    }
    Ok(dropped)
}

impl RollupStore for PgStore {
    fn current_rules(&self) -> Result<Option<String>, StoreError> {
        self.write(|c| {
            Ok(c.db()
                .query_opt(
                    "SELECT version FROM rule_history ORDER BY id DESC LIMIT 1",
                    &[],
                )
                .op("read rule history")?
                .map(|r| r.get(0)))
        })
    }

    fn ensure_rules(
        &self,
        current: &RuleRecord,
        pre_history: &RuleRecord,
    ) -> Result<bool, StoreError> {
        self.write(|c| c.tx(|db| ensure_rules(db, current, pre_history)))
    }

    fn advance_watermarks(&self, until_ms: i64) -> Result<(), StoreError> {
        self.write(|c| c.tx(|db| advance_watermarks(db, until_ms)))
    }

    /// Each dirty OPD-hour is read in a REPEATABLE READ READ ONLY snapshot
    /// on a reader, then written in a short transaction on the writer that
    /// clears the mark only if its generation is still the one the
    /// snapshot saw. Under READ COMMITTED, for an ingest transaction I
    /// marking the hour (`ingest::mark_dirty`, `gen = nextval(..)`):
    /// - I committed before the snapshot: its rows are read, its generation
    ///   too; the mark is cleared.
    /// - I committed after the snapshot, before the DELETE: the DELETE sees
    ///   the new generation and keeps the mark.
    /// - I bumped the mark but has not committed: the DELETE waits on its
    ///   row lock, then re-checks the updated row (a new generation: kept;
    ///   I rolled back: its rows never existed, cleared).
    /// - I marks after the DELETE: its insert waits for this transaction
    ///   and then inserts a new mark (the hour is dirty again).
    ///
    /// A mark deleted by another collector's rebuild and made again gets a
    /// fresh sequence value, never the one read here. The advisory lock (per
    /// OPD, exclusive among rebuild writes only; ingest does not take it)
    /// keeps two collectors' writes of one hour or day from interleaving
    /// their delete-then-insert; it is held for the short write only.
    fn rebuild_dirty_between(
        &self,
        limit: usize,
        b: &dyn RollupBuilder,
        between: &mut dyn FnMut(&str, i64),
    ) -> Result<usize, StoreError> {
        let dirty: Vec<(String, i64)> = self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT opd_id, hour_ms FROM rollup_dirty ORDER BY opd_id, hour_ms LIMIT $1",
                    &[&(limit as i64)],
                )
                .op("read dirty")?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })?;
        for (i, (opd, hour)) in dirty.iter().enumerate() {
            let day = b.day_of(*hour);
            let last_of_day = dirty
                .get(i + 1)
                .is_none_or(|(o, h)| o != opd || b.day_of(*h) != day);
            let Some((gen_read, input)) =
                self.read(|c| c.snapshot(|db| read_hour(db, opd, *hour)))?
            else {
                continue;
            };
            let rollup = b.hour(&input);
            between(opd, *hour);
            self.write(|c| {
                c.tx(|db| {
                    db.execute(
                        "SELECT pg_advisory_xact_lock(7061747, hashtext($1))",
                        &[opd],
                    )
                    .op("lock rollup writes")?;
                    write_hour(db, opd, *hour, &rollup)?;
                    if last_of_day {
                        rebuild_day(db, b, opd, day)?;
                    }
                    db.execute(
                        "DELETE FROM rollup_dirty WHERE opd_id = $1 AND hour_ms = $2 AND gen = $3",
                        &[opd, hour, &gen_read],
                    )
                    .op("clear dirty")
                    .map(drop)
                })
            })?;
        }
        Ok(dirty.len())
    }

    /// Whole days go as partitions; what is left before the cut (a partial
    /// day, days with dirty hours, the default partition) row by row, as
    /// in SQLite.
    fn prune_raw(&self, before_ms: i64) -> Result<usize, StoreError> {
        let n = self.write(|c| {
            c.tx(|db| {
                let dropped = drop_days(db, before_ms)?;
                let deleted = db
                    .execute(
                        "WITH d AS (
                           DELETE FROM result r WHERE r.observed_at_ms < $1
                             AND NOT EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.opd_id = r.opd_id
                                 AND d.hour_ms = (r.observed_at_ms / 3600000) * 3600000)
                           RETURNING r.agent_id, r.epoch, r.seq)
                         DELETE FROM result_identity i USING d
                         WHERE i.agent_id = d.agent_id AND i.epoch = d.epoch AND i.seq = d.seq",
                        &[&before_ms],
                    )
                    .op("prune raw results")?;
                Ok(dropped + deleted as usize)
            })
        })?;
        self.forget_days();
        Ok(n)
    }
}
