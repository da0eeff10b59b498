//! Rollups: raw results -> target hour -> group hour -> group day.
//!
//! The writer marks (OPD, hour) dirty in the same transaction that stores the
//! results ([`mark_dirty`]); [`refresh`] rebuilds dirty hours from raw rows
//! and the local days containing them. A late result after an outage marks
//! its old hour dirty again, so rollups are corrected, never appended to.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{Connection, params};

use super::histogram::Histogram;
use super::rules::{self, MinuteState, Observation, RuleSet, StateMinutes};
use crate::model::ResultRow;
use crate::store::StoreError;

/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, ms.
pub const DAY_MS: i64 = 86_400_000;
/// Dirty hours rebuilt per transaction.
const REFRESH_CHUNK: usize = 200;

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}

/// Start of the UTC hour containing `ms`.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Start (UTC ms) of the local day containing `ms`.
pub fn day_of(ms: i64, offset_min: i64) -> i64 {
    let off = offset_min * 60_000;
    (ms + off).div_euclid(DAY_MS) * DAY_MS - off
}

/// Mark the hours of freshly stored results dirty (inside the writer's
/// transaction).
pub fn mark_dirty(conn: &Connection, opd: &str, rows: &[ResultRow]) -> Result<(), StoreError> {
    let hours: BTreeSet<i64> = rows.iter().map(|r| hour_of(r.observed_at_ms)).collect();
    let mut st = conn
        .prepare_cached("INSERT OR IGNORE INTO rollup_dirty (opd_id, hour_ms) VALUES (?1, ?2)")
        .map_err(sql("prepare mark dirty"))?;
    for h in hours {
        st.execute(params![opd, h]).map_err(sql("mark dirty"))?;
    }
    Ok(())
}

/// Mark every hour of `[from, to)` of one OPD (or all) dirty, e.g. after a
/// maintenance window is recorded.
pub fn mark_range_dirty(
    conn: &Connection,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<(), StoreError> {
    let opds: Vec<String> = match opd {
        Some(o) => vec![o.to_string()],
        None => {
            let mut st = conn
                .prepare("SELECT id FROM opd")
                .map_err(sql("list opds"))?;
            st.query_map([], |r| r.get(0))
                .map_err(sql("list opds"))?
                .collect::<Result<_, _>>()
                .map_err(sql("list opds"))?
        }
    };
    let mut h = hour_of(from_ms);
    while h < to_ms {
        for o in &opds {
            conn.execute(
                "INSERT OR IGNORE INTO rollup_dirty (opd_id, hour_ms) VALUES (?1, ?2)",
                params![o, h],
            )
            .map_err(sql("mark dirty"))?;
        }
        h += HOUR_MS;
    }
    Ok(())
}

/// Rebuild every dirty hour and the days containing them, as of now;
/// returns the hours rebuilt.
pub fn refresh(conn: &Connection, rules: &RuleSet, offset_min: i64) -> Result<usize, StoreError> {
    refresh_at(conn, rules, offset_min, crate::store::now_ms())
}

/// [`refresh`] with the data cut-off at `now_ms`: minutes from the start of
/// the minute containing `now_ms` on are "not yet" ([`MinuteState::NotYet`]).
pub fn refresh_at(
    conn: &Connection,
    rules: &RuleSet,
    offset_min: i64,
    now_ms: i64,
) -> Result<usize, StoreError> {
    super::history::ensure(conn, rules)?;
    advance_watermark(conn, now_ms.div_euclid(60_000) * 60_000)?;
    let mut total = 0;
    loop {
        let tx = crate::store::write_tx(conn).map_err(sql("begin rollup"))?;
        let dirty: Vec<(String, i64)> = {
            let mut st = tx
                .prepare_cached("SELECT opd_id, hour_ms FROM rollup_dirty LIMIT ?1")
                .map_err(sql("read dirty"))?;
            st.query_map([REFRESH_CHUNK as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql("read dirty"))?
                .collect::<Result<_, _>>()
                .map_err(sql("read dirty"))?
        };
        if dirty.is_empty() {
            return Ok(total);
        }
        let mut days = BTreeSet::new();
        for (opd, hour) in &dirty {
            let until = watermark(&tx, opd)?.unwrap_or(i64::MAX);
            rebuild_hour_until(&tx, rules, opd, *hour, until)?;
            days.insert((opd.clone(), day_of(*hour, offset_min)));
            tx.execute(
                "DELETE FROM rollup_dirty WHERE opd_id = ?1 AND hour_ms = ?2",
                params![opd, hour],
            )
            .map_err(sql("clear dirty"))?;
        }
        for (opd, day) in days {
            rebuild_day(&tx, rules, &opd, day, offset_min)?;
        }
        tx.commit().map_err(sql("commit rollup"))?;
        total += dirty.len();
    }
}

/// Refresh, then run `f` on one read snapshot in which no hour of `opd` (or
/// of any OPD) is waiting to be rolled up, so the rollups `f` reads and the
/// raw results it exports agree: a result stored between the refresh and the
/// snapshot marks its hour dirty, and the refresh is repeated.
pub fn consistent<T, E: From<StoreError>>(
    conn: &Connection,
    rules: &RuleSet,
    offset_min: i64,
    opd: Option<&str>,
    mut f: impl FnMut(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    const TRIES: usize = 5;
    for attempt in 1..=TRIES {
        refresh(conn, rules, offset_min)?;
        // A deferred transaction that only reads: one WAL snapshot.
        let tx = conn
            .unchecked_transaction()
            .map_err(sql("begin report snapshot"))?;
        let pending: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM rollup_dirty WHERE ?1 IS NULL OR opd_id = ?1",
                [opd],
                |r| r.get(0),
            )
            .map_err(sql("pending rollups"))?;
        if pending == 0 || attempt == TRIES {
            if pending > 0 {
                tracing::warn!(
                    pending,
                    "results keep arriving: report made with rollups a few seconds behind"
                );
            }
            return f(&tx);
        }
    }
    unreachable!("the last attempt returns")
}

/// The data cut-off of a report of `opd` (or of every OPD): the oldest
/// watermark in scope, or the start of the current minute when nothing is
/// rolled up yet.
pub fn cut_off(conn: &Connection, opd: Option<&str>) -> Result<i64, StoreError> {
    let wm: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(until_ms) FROM rollup_watermark WHERE ?1 IS NULL OR opd_id = ?1",
        )
        .and_then(|mut st| st.query_row([opd], |r| r.get(0)))
        .map_err(sql("read watermarks"))?;
    Ok(wm.unwrap_or_else(|| crate::store::now_ms().div_euclid(60_000) * 60_000))
}

/// The instant up to which an OPD's rollups are complete (minutes from it on
/// are "not yet"), if it is monitored at all.
pub fn watermark(conn: &Connection, opd: &str) -> Result<Option<i64>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT until_ms FROM rollup_watermark WHERE opd_id = ?1")
        .and_then(|mut st| st.query_row([opd], |r| r.get(0)).optional())
        .map_err(sql("read watermark"))
}

/// Move every OPD's watermark to `until` (a minute start) and mark dirty
/// each hour whose rollup was made with another cut-off: the hours between
/// the old and the new watermark, so hours in which nothing arrived (an agent
/// that is off) are rolled up too and their minutes count as unknown. An OPD
/// seen for the first time starts at its start of monitoring.
fn advance_watermark(conn: &Connection, until: i64) -> Result<(), StoreError> {
    let tx = crate::store::write_tx(conn).map_err(sql("begin watermark"))?;
    let opds: Vec<(String, Option<i64>, Option<i64>)> = {
        let mut st = tx
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
            .map_err(sql("prepare watermarks"))?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql("watermarks"))?
            .collect::<Result<_, _>>()
            .map_err(sql("watermarks"))?
    };
    let mut changed = false;
    for (opd, old, start) in opds {
        let (lo, hi) = match (old, start) {
            (Some(old), _) if old == until => continue,
            (Some(old), _) => (old.min(until), old.max(until)),
            // First rollup of this OPD: from its start of monitoring. A store
            // made before watermarks existed starts at its oldest raw result
            // still held: hours whose raw results were pruned keep their
            // rollups. An OPD without targets or results is not monitored yet.
            (None, Some(start)) if start < i64::MAX => (start.min(until), until),
            (None, _) => continue,
        };
        let mut h = hour_of(lo);
        // The hour holding the cut-off minute is partial: include it (and
        // the hour of `hi` itself, even when `hi` is an hour start).
        while h <= hour_of(hi) {
            tx.execute(
                "INSERT OR IGNORE INTO rollup_dirty (opd_id, hour_ms) VALUES (?1, ?2)",
                params![opd, h],
            )
            .map_err(sql("mark dirty"))?;
            h += HOUR_MS;
        }
        tx.execute(
            "INSERT INTO rollup_watermark (opd_id, until_ms) VALUES (?1, ?2)
             ON CONFLICT (opd_id) DO UPDATE SET until_ms = excluded.until_ms",
            params![opd, until],
        )
        .map_err(sql("set watermark"))?;
        changed = true;
    }
    if changed {
        tx.commit().map_err(sql("commit watermark"))?;
    }
    Ok(())
}

struct TargetInfo {
    agent: String,
    id: String,
    grp: String,
    interval_ms: i64,
    /// When the collector first saw the target declared.
    first_seen_ms: i64,
}

#[derive(Default)]
struct Acc {
    n_ok: i64,
    n_fail: i64,
    sent: i64,
    received: i64,
    jit_sum: f64,
    jit_n: i64,
    hist: Histogram,
}

impl Acc {
    fn merge(&mut self, o: &Acc) {
        self.n_ok += o.n_ok;
        self.n_fail += o.n_fail;
        self.sent += o.sent;
        self.received += o.received;
        self.jit_sum += o.jit_sum;
        self.jit_n += o.jit_n;
        self.hist.merge(&o.hist);
    }
}

/// Rebuild the target and group rows of one OPD hour from raw results, with
/// the OPD's current watermark as the cut-off.
pub fn rebuild_hour(
    conn: &Connection,
    rules: &RuleSet,
    opd: &str,
    hour: i64,
) -> Result<(), StoreError> {
    let until = watermark(conn, opd)?.unwrap_or(i64::MAX);
    rebuild_hour_until(conn, rules, opd, hour, until)
}

/// Rebuild one OPD hour; minutes starting at or after `until` have not
/// happened yet and are stored as [`MinuteState::NotYet`].
fn rebuild_hour_until(
    conn: &Connection,
    rules: &RuleSet,
    opd: &str,
    hour: i64,
    until: i64,
) -> Result<(), StoreError> {
    let end = hour + HOUR_MS;
    // Targets expected this hour: with results in it, or monitored before its
    // end (declared, or the agent's first result, whichever came first) and
    // in their agent's latest declaration (a removed target does not turn
    // later minutes unknown).
    let targets: Vec<TargetInfo> = {
        let mut st = conn
            .prepare_cached(
                "SELECT t.agent_id, t.id, t.grp, t.interval_ms, t.first_seen_ms FROM target t JOIN agent a ON a.id = t.agent_id
                 WHERE a.opd_id = ?1 AND t.kind NOT IN ('bandwidth', 'link') AND (
                   (MIN(t.first_seen_ms, COALESCE((SELECT MIN(r0.observed_at_ms) FROM result r0
                          WHERE r0.agent_id = t.agent_id AND r0.clock_flag IS NULL), t.first_seen_ms)) < ?3
                    AND t.last_declared_ms =
                     (SELECT MAX(last_declared_ms) FROM target t2 WHERE t2.agent_id = t.agent_id))
                   OR EXISTS (SELECT 1 FROM result r WHERE r.agent_id = t.agent_id AND r.target_id = t.id
                              AND r.observed_at_ms >= ?2 AND r.observed_at_ms < MIN(?3, ?4)
                              AND r.clock_flag IS NULL))
                 ORDER BY t.agent_id, t.id",
            )
            .map_err(sql("prepare rollup targets"))?;
        st.query_map(params![opd, hour, end, until], |r| {
            Ok(TargetInfo {
                agent: r.get(0)?,
                id: r.get(1)?,
                grp: r.get(2)?,
                interval_ms: r.get(3)?,
                first_seen_ms: r.get(4)?,
            })
        })
        .map_err(sql("rollup targets"))?
        .collect::<Result<_, _>>()
        .map_err(sql("rollup targets"))?
    };
    // Results from one interval (and a minute more, for jitter) before the
    // hour: they hold into it, and the last answer pairs with the first.
    let max_interval = targets.iter().map(|t| t.interval_ms).max().unwrap_or(0) + 60_000;
    type Row = (
        String,
        String,
        i64,
        String,
        Option<f64>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = {
        let mut st = conn
            .prepare_cached(
                "SELECT agent_id, target_id, observed_at_ms, outcome, value_ms, sent, received FROM result
                 WHERE opd_id = ?1 AND observed_at_ms >= ?2 AND observed_at_ms < ?3
                   AND kind NOT IN ('heartbeat', 'bandwidth', 'link') AND clock_flag IS NULL
                 ORDER BY observed_at_ms",
            )
            .map_err(sql("prepare rollup results"))?;
        st.query_map(params![opd, hour - max_interval, end], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .map_err(sql("rollup results"))?
        .collect::<Result<_, _>>()
        .map_err(sql("rollup results"))?
    };
    let windows = maintenance_windows(conn, opd, hour, end)?;

    conn.execute(
        "DELETE FROM rollup_target_hour WHERE opd_id = ?1 AND hour_ms = ?2",
        params![opd, hour],
    )
    .map_err(sql("clear target hour"))?;
    conn.execute(
        "DELETE FROM rollup_group_hour WHERE opd_id = ?1 AND hour_ms = ?2",
        params![opd, hour],
    )
    .map_err(sql("clear group hour"))?;

    let mut by_target: HashMap<(&str, &str), Vec<&Row>> = HashMap::new();
    for r in &rows {
        by_target.entry((&r.0, &r.1)).or_default().push(r);
    }
    let mut groups: BTreeMap<&str, (Vec<[MinuteState; 60]>, Acc)> = BTreeMap::new();
    let mut first_result: HashMap<&str, Option<i64>> = HashMap::new();
    for t in &targets {
        let mut obs: Vec<Vec<Observation>> = vec![Vec::new(); 60];
        // The latest earlier result still within its interval, per minute.
        let mut held: Vec<Option<Observation>> = vec![None; 60];
        let mut acc = Acc::default();
        let mut last_ok: Option<f64> = None;
        let hold = (t.interval_ms.max(60_000) + 59_999) / 60_000;
        for r in by_target
            .get(&(t.agent.as_str(), t.id.as_str()))
            .into_iter()
            .flatten()
        {
            // Results after the cut-off have not happened as far as this
            // rollup knows (a report made "as of" an earlier time).
            if r.2 >= until {
                continue;
            }
            let ok = r.3 == "ok";
            let loss = match (r.5, r.6) {
                (Some(s), Some(rc)) if s > 0 => Some(1.0 - rc as f64 / s as f64),
                _ => None,
            };
            let o = Observation {
                ok,
                rtt_ms: if ok { r.4 } else { None },
                loss,
            };
            let m = (r.2 - hour).div_euclid(60_000);
            if (0..60).contains(&m) {
                obs[m as usize].push(o);
                if ok {
                    acc.n_ok += 1;
                    if let Some(v) = r.4 {
                        acc.hist.record(v);
                        if let Some(p) = last_ok {
                            acc.jit_sum += (v - p).abs();
                            acc.jit_n += 1;
                        }
                        last_ok = Some(v);
                    }
                } else {
                    acc.n_fail += 1;
                }
                acc.sent += r.5.unwrap_or(0);
                acc.received += r.6.unwrap_or(0);
            } else if ok && r.4.is_some() {
                // The last answer before the hour: its pair with the hour's
                // first answer belongs to this hour's jitter.
                last_ok = r.4;
            }
            // A result holds for its interval into following minutes.
            for k in 1..hold {
                let mm = m + k;
                if (0..60).contains(&mm) {
                    held[mm as usize] = Some(o);
                }
            }
        }
        // Monitoring began when the target was first declared, or earlier
        // when results spooled before the agent's first connection arrived.
        let since = match first_result.get(t.agent.as_str()) {
            Some(v) => *v,
            None => {
                let v: Option<i64> = conn
                    .prepare_cached(
                        "SELECT MIN(observed_at_ms) FROM result WHERE agent_id = ?1 AND clock_flag IS NULL",
                    )
                    .and_then(|mut st| st.query_row([&t.agent], |r| r.get(0)))
                    .map_err(sql("agent first result"))?;
                first_result.insert(t.agent.as_str(), v);
                v
            }
        }
        .map_or(t.first_seen_ms, |v| v.min(t.first_seen_ms));
        let mut states = [MinuteState::Unknown; 60];
        let mut counts = StateMinutes::default();
        let mut text = String::with_capacity(60);
        for (i, (o, h)) in obs.iter().zip(&held).enumerate() {
            let at = hour + i as i64 * 60_000;
            let s = if at >= until {
                MinuteState::NotYet
            } else if in_maintenance(&windows, &t.grp, at) {
                MinuteState::Maintenance
            } else if !o.is_empty() {
                rules::target_minute(rules, o)
            } else if let Some(h) = h {
                rules::target_minute(rules, &[*h])
            } else if at + 60_000 <= since {
                MinuteState::Unmonitored
            } else {
                MinuteState::Unknown
            };
            states[i] = s;
            counts.add(s);
            text.push(s.code());
        }
        conn.execute(
            "INSERT INTO rollup_target_hour (opd_id, agent_id, target_id, grp, hour_ms, minutes, up, degraded, down, unknown, maint,
                n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
             ON CONFLICT DO NOTHING",
            params![
                opd, t.agent, t.id, t.grp, hour, text, counts.up as i64, counts.degraded as i64,
                counts.down as i64, counts.unknown as i64, counts.maintenance as i64, acc.n_ok, acc.n_fail,
                acc.sent, acc.received, acc.jit_sum, acc.jit_n, acc.hist.to_bytes()
            ],
        )
        .map_err(sql("insert target hour"))?;
        let g = groups.entry(t.grp.as_str()).or_default();
        g.0.push(states);
        g.1.merge(&acc);
    }
    for (grp, (per_target, acc)) in groups {
        let composite = rules.composite_of(grp);
        let mut counts = StateMinutes::default();
        let mut text = String::with_capacity(60);
        for i in 0..60 {
            let states: Vec<MinuteState> = per_target.iter().map(|s| s[i]).collect();
            let s = rules::group_minute(composite, &states);
            counts.add(s);
            text.push(s.code());
        }
        conn.execute(
            "INSERT INTO rollup_group_hour (opd_id, grp, hour_ms, minutes, up, degraded, down, unknown, maint,
                n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                opd, grp, hour, text, counts.up as i64, counts.degraded as i64, counts.down as i64,
                counts.unknown as i64, counts.maintenance as i64, acc.n_ok, acc.n_fail, acc.sent,
                acc.received, acc.jit_sum, acc.jit_n, acc.hist.to_bytes()
            ],
        )
        .map_err(sql("insert group hour"))?;
    }
    // Throughput and utilisation (never part of availability).
    super::capacity::rebuild_hour(conn, opd, hour)?;
    Ok(())
}

type Window = (Option<String>, i64, i64);

fn maintenance_windows(
    conn: &Connection,
    opd: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Window>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT grp, from_ms, to_ms FROM maintenance
             WHERE (opd_id IS NULL OR opd_id = ?1) AND from_ms < ?3 AND to_ms > ?2",
        )
        .map_err(sql("prepare maintenance"))?;
    st.query_map(params![opd, from, to], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .map_err(sql("maintenance"))?
    .collect::<Result<_, _>>()
    .map_err(sql("maintenance"))
}

/// A minute is under maintenance when a window covers its start.
fn in_maintenance(w: &[Window], grp: &str, minute_ms: i64) -> bool {
    w.iter()
        .any(|(g, f, t)| g.as_deref().is_none_or(|g| g == grp) && *f <= minute_ms && minute_ms < *t)
}

/// Rebuild one OPD's local day from its group hours.
pub fn rebuild_day(
    conn: &Connection,
    rules: &RuleSet,
    opd: &str,
    day: i64,
    offset_min: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM rollup_group_day WHERE opd_id = ?1 AND day_ms = ?2",
        params![opd, day],
    )
    .map_err(sql("clear day"))?;
    let mut st = conn
        .prepare_cached(
            "SELECT grp, hour_ms, up, degraded, down, unknown, maint, n_ok, n_fail, sent, received, jit_sum, jit_n, hist
             FROM rollup_group_hour WHERE opd_id = ?1 AND hour_ms >= ?2 AND hour_ms < ?3",
        )
        .map_err(sql("prepare day"))?;
    #[derive(Default)]
    struct D {
        m: [i64; 5],
        bh: [i64; 4],
        acc: Acc,
    }
    let mut per: BTreeMap<String, D> = BTreeMap::new();
    let mut rows = st
        .query(params![opd, day, day + DAY_MS])
        .map_err(sql("day hours"))?;
    while let Some(r) = rows.next().map_err(sql("day hours"))? {
        let grp: String = r.get(0).map_err(sql("day row"))?;
        let hour: i64 = r.get(1).map_err(sql("day row"))?;
        let d = per.entry(grp).or_default();
        let mut m = [0i64; 5];
        for (i, x) in m.iter_mut().enumerate() {
            *x = r.get(2 + i).map_err(sql("day row"))?;
            d.m[i] += *x;
        }
        if rules::business_hour_at(rules, hour, offset_min) {
            for (b, x) in d.bh.iter_mut().zip(m) {
                *b += x;
            }
        }
        d.acc.n_ok += r.get::<_, i64>(7).map_err(sql("day row"))?;
        d.acc.n_fail += r.get::<_, i64>(8).map_err(sql("day row"))?;
        d.acc.sent += r.get::<_, i64>(9).map_err(sql("day row"))?;
        d.acc.received += r.get::<_, i64>(10).map_err(sql("day row"))?;
        d.acc.jit_sum += r.get::<_, f64>(11).map_err(sql("day row"))?;
        d.acc.jit_n += r.get::<_, i64>(12).map_err(sql("day row"))?;
        let h: Vec<u8> = r.get(13).map_err(sql("day row"))?;
        d.acc.hist.merge_bytes(&h);
    }
    drop(rows);
    for (grp, d) in per {
        conn.execute(
            "INSERT INTO rollup_group_day (opd_id, grp, day_ms, up, degraded, down, unknown, maint,
                bh_up, bh_degraded, bh_down, bh_unknown, n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            params![
                opd, grp, day, d.m[0], d.m[1], d.m[2], d.m[3], d.m[4], d.bh[0], d.bh[1], d.bh[2], d.bh[3],
                d.acc.n_ok, d.acc.n_fail, d.acc.sent, d.acc.received, d.acc.jit_sum, d.acc.jit_n,
                d.acc.hist.to_bytes()
            ],
        )
        .map_err(sql("insert day"))?;
    }
    super::capacity::rebuild_day(conn, opd, day)?;
    Ok(())
}

/// Delete raw results older than `keep_ms` whose hours are rolled up.
pub fn prune_raw(conn: &Connection, now_ms: i64, keep_ms: i64) -> Result<usize, StoreError> {
    conn.execute(
        "DELETE FROM result WHERE observed_at_ms < ?1
           AND NOT EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.opd_id = result.opd_id
                           AND d.hour_ms = (result.observed_at_ms / 3600000) * 3600000)",
        params![now_ms - keep_ms],
    )
    .map_err(sql("prune raw results"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentIdentity, HelloInfo, Outcome, ProbeKind, ResultRow, TargetDecl};

    /// One OPD with one 30 s TCP target declared at `declared_ms`; `rows`
    /// (observed ms, ok, latency ms) stored.
    fn store(declared_ms: i64, rows: &[(i64, bool, f64)]) -> (tempfile::TempDir, Connection) {
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
        (dir, conn)
    }

    fn group_hours(conn: &Connection) -> Vec<(i64, String, i64)> {
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
            watermark(&conn, "dinkes").unwrap(),
            Some(H0 + 2 * HOUR_MS + 30 * 60_000)
        );
        // Later the rest of the hour has happened: rebuilt without new results.
        refresh_at(&conn, &RuleSet::default(), 480, H0 + 3 * HOUR_MS).unwrap();
        assert_eq!(group_hours(&conn)[2].1, "-".repeat(60));
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
            .query_row(
                "SELECT jit_sum, jit_n FROM rollup_group_hour WHERE hour_ms = ?1",
                [H0 + HOUR_MS],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(sum / n as f64, 10.0);
    }
}
