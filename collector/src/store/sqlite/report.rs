//! [`ReportRead`], [`ReportStore`] and [`ReportAdmin`] for SQLite.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use super::super::report::{
    BwRow, ClockRow, Counts, Export, ExportValue, GroupDayRow, IncidentNote, LinkRow,
    MaintenanceRecord, MinuteRow, NewMaintenance, OpdName, PathFilter, PathObs, ReportAdmin,
    ReportRead, ReportStore, RuleHistoryRow, Tally,
};
use super::super::{Op, StoreError};
use super::{SqliteStore, write_tx};

/// Reads on one connection (inside a snapshot, or the rollup's transaction).
pub struct SqliteRead<'a>(pub &'a Connection);

const LINK_COLS: &str = "agent_id, target_id, if_name, polls, no_rate, covered_ms, in_bits, out_bits, in_peak, out_peak, in_hist, out_hist, capacity_bps, contracted, capacity_at_ms";

fn tables(hourly: bool) -> (&'static str, &'static str, &'static str) {
    if hourly {
        ("rollup_bw_hour", "rollup_link_hour", "hour_ms")
    } else {
        ("rollup_bw_day", "rollup_link_day", "day_ms")
    }
}

pub(super) fn bytes_to_f64s(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect()
}

pub(super) fn f64s_to_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The group hours of one OPD in `[from, to)` with their counters.
pub(super) fn group_hours(
    conn: &Connection,
    opd: &str,
    from: i64,
    to: i64,
) -> Result<Vec<super::super::report::GroupHourRow>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT grp, hour_ms, up, degraded, down, unknown, maint, n_ok, n_fail, sent, received, jit_sum, jit_n, hist
             FROM rollup_group_hour WHERE opd_id = ?1 AND hour_ms >= ?2 AND hour_ms < ?3",
        )
        .op("prepare day")?;
    st.query_map(params![opd, from, to], |r| {
        Ok(super::super::report::GroupHourRow {
            grp: r.get(0)?,
            hour_ms: r.get(1)?,
            minutes: String::new(),
            counts: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
            tally: Tally {
                n_ok: r.get(7)?,
                n_fail: r.get(8)?,
                sent: r.get(9)?,
                received: r.get(10)?,
                jit_sum: r.get(11)?,
                jit_n: r.get(12)?,
                hist: r.get(13)?,
            },
        })
    })
    .and_then(|rows| rows.collect())
    .op("day hours")
}

impl ReportRead for SqliteRead<'_> {
    fn opds(&self, opd: Option<&str>) -> Result<Vec<OpdName>, StoreError> {
        let mut st = self
            .0
            .prepare_cached("SELECT id, name FROM opd WHERE (?1 IS NULL AND state <> 'removed') OR id = ?1 ORDER BY id")
            .op("report opds")?;
        st.query_map([opd], |r| {
            Ok(OpdName {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })
        .and_then(|rows| rows.collect())
        .op("report opds")
    }

    fn opd_exists(&self, opd: &str) -> Result<bool, StoreError> {
        self.0
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM opd WHERE id = ?1)",
                [opd],
                |r| r.get(0),
            )
            .op("opd exists")
    }

    fn pending_hours(&self, opd: Option<&str>) -> Result<i64, StoreError> {
        self.0
            .query_row(
                "SELECT COUNT(*) FROM rollup_dirty WHERE ?1 IS NULL OR opd_id = ?1",
                [opd],
                |r| r.get(0),
            )
            .op("pending rollups")
    }

    fn min_watermark(&self, opd: Option<&str>) -> Result<Option<i64>, StoreError> {
        self.0
            .prepare_cached(
                "SELECT MIN(until_ms) FROM rollup_watermark WHERE ?1 IS NULL OR opd_id = ?1",
            )
            .and_then(|mut st| st.query_row([opd], |r| r.get(0)))
            .op("read watermarks")
    }

    fn watermark(&self, opd: &str) -> Result<Option<i64>, StoreError> {
        self.0
            .prepare_cached("SELECT until_ms FROM rollup_watermark WHERE opd_id = ?1")
            .and_then(|mut st| st.query_row([opd], |r| r.get(0)).optional())
            .op("read watermark")
    }

    fn each_group_day(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        business: bool,
        each: &mut dyn FnMut(&GroupDayRow),
    ) -> Result<(), StoreError> {
        let cols = if business {
            "bh_up, bh_degraded, bh_down, bh_unknown, 0"
        } else {
            "up, degraded, down, unknown, maint"
        };
        let q = format!(
            "SELECT opd_id, grp, day_ms, {cols}, n_ok, n_fail, sent, received, jit_sum, jit_n, hist
             FROM rollup_group_day WHERE day_ms >= ?1 AND day_ms < ?2 AND (?3 IS NULL OR opd_id = ?3)"
        );
        let mut st = self.0.prepare_cached(&q).op("prepare report days")?;
        let mut rows = st.query(params![from_ms, to_ms, opd]).op("report days")?;
        // One row refilled in place: no allocation per row.
        let mut row = GroupDayRow {
            opd: String::new(),
            grp: String::new(),
            day_ms: 0,
            counts: [0; 5],
            business: [0; 4],
            tally: Tally::default(),
        };
        while let Some(r) = rows.next().op("report days")? {
            (|| {
                fill_text(r, 0, &mut row.opd)?;
                fill_text(r, 1, &mut row.grp)?;
                row.day_ms = r.get(2)?;
                row.counts = [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?];
                let t = &mut row.tally;
                (t.n_ok, t.n_fail, t.sent, t.received) =
                    (r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?);
                (t.jit_sum, t.jit_n) = (r.get(12)?, r.get(13)?);
                t.hist.clear();
                if let ValueRef::Blob(b) = r.get_ref(14)? {
                    t.hist.extend_from_slice(b);
                }
                Ok::<_, rusqlite::Error>(())
            })()
            .op("report day row")?;
            each(&row);
        }
        Ok(())
    }

    fn group_minutes(
        &self,
        opd: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<MinuteRow>, StoreError> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT grp, hour_ms, minutes FROM rollup_group_hour WHERE opd_id = ?1 AND hour_ms >= ?2 AND hour_ms < ?3",
            )
            .op("prepare incident hours")?;
        st.query_map(params![opd, from_ms, to_ms], minute_row)
            .and_then(|rows| rows.collect())
            .op("incident hours")
    }

    fn down_target_minutes(
        &self,
        opd: &str,
        grp: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<MinuteRow>, StoreError> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT target_id, hour_ms, minutes FROM rollup_target_hour
                 WHERE opd_id = ?1 AND grp = ?2 AND hour_ms >= ?3 AND hour_ms < ?4 AND down > 0",
            )
            .op("prepare affected")?;
        st.query_map(params![opd, grp, from_ms, to_ms], minute_row)
            .and_then(|rows| rows.collect())
            .op("affected")
    }

    fn incident_note(
        &self,
        opd: &str,
        grp: &str,
        start_ms: i64,
    ) -> Result<Option<(String, String)>, StoreError> {
        self.0
            .prepare_cached(
                "SELECT note, ticket FROM incident_note WHERE opd_id = ?1 AND grp = ?2 AND start_ms = ?3",
            )
            .and_then(|mut st| {
                st.query_row(params![opd, grp, start_ms], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .op("notes")
    }

    fn group_hour_sums(
        &self,
        opd: &str,
        grp: &str,
        from_hour_ms: i64,
        to_hour_ms: i64,
    ) -> Result<Option<Counts>, StoreError> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT COUNT(*), SUM(up), SUM(degraded), SUM(down), SUM(unknown), SUM(maint)
                 FROM rollup_group_hour WHERE opd_id = ?1 AND grp = ?2 AND hour_ms >= ?3 AND hour_ms <= ?4",
            )
            .op("prepare availability minutes")?;
        let (n, c) = st
            .query_row(params![opd, grp, from_hour_ms, to_hour_ms], |r| {
                let n = |i: usize| r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0));
                Ok((r.get::<_, i64>(0)?, [n(1)?, n(2)?, n(3)?, n(4)?, n(5)?]))
            })
            .op("availability minutes")?;
        Ok((n > 0).then_some(c))
    }

    fn bw_rows(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        hourly: bool,
    ) -> Result<Vec<BwRow>, StoreError> {
        let (table, _, time_col) = tables(hourly);
        let mut st = self
            .0
            .prepare_cached(&format!(
                "SELECT opd_id, agent_id, target_id, n_ok, n_skipped, n_fail, dl, ul, {time_col} FROM {table}
                 WHERE {time_col} >= ?1 AND {time_col} < ?2 AND (?3 IS NULL OR opd_id = ?3)"
            ))
            .op("prepare bandwidth rollup")?;
        st.query_map(params![from_ms, to_ms, opd], |r| {
            Ok(BwRow {
                opd: r.get(0)?,
                agent: r.get(1)?,
                target: r.get(2)?,
                n_ok: r.get(3)?,
                n_skipped: r.get(4)?,
                n_fail: r.get(5)?,
                dl: bytes_to_f64s(&r.get::<_, Vec<u8>>(6)?),
                ul: bytes_to_f64s(&r.get::<_, Vec<u8>>(7)?),
                at_ms: r.get(8)?,
            })
        })
        .and_then(|rows| rows.collect())
        .op("bandwidth rollup")
    }

    fn each_link_row(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        hourly: bool,
        each: &mut dyn FnMut(&LinkRow),
    ) -> Result<(), StoreError> {
        let (_, table, time_col) = tables(hourly);
        // By OPD and time: the primary key's order, so SQLite streams the
        // rows instead of sorting a year of histograms.
        let mut st = self
            .0
            .prepare_cached(&format!(
                "SELECT {LINK_COLS}, opd_id, {time_col} FROM {table}
                 WHERE {time_col} >= ?1 AND {time_col} < ?2 AND (?3 IS NULL OR opd_id = ?3)
                 ORDER BY opd_id, {time_col}"
            ))
            .op("prepare link rollup")?;
        let mut rows = st.query(params![from_ms, to_ms, opd]).op("link rollup")?;
        // One row refilled in place: no allocation per row.
        let mut row = LinkRow::default();
        while let Some(r) = rows.next().op("link rollup")? {
            (|| {
                fill_text(r, 0, &mut row.agent)?;
                fill_text(r, 1, &mut row.target)?;
                fill_text(r, 2, &mut row.if_name)?;
                (row.polls, row.no_rate, row.covered_ms) = (r.get(3)?, r.get(4)?, r.get(5)?);
                (row.in_bits, row.out_bits) = (r.get(6)?, r.get(7)?);
                (row.in_peak, row.out_peak) = (r.get(8)?, r.get(9)?);
                fill_blob(r, 10, &mut row.in_hist)?;
                fill_blob(r, 11, &mut row.out_hist)?;
                row.capacity_bps = r.get(12)?;
                row.contracted = r.get::<_, i64>(13)? != 0;
                row.capacity_at_ms = r.get(14)?;
                fill_text(r, 15, &mut row.opd)?;
                row.at_ms = r.get(16)?;
                Ok::<_, rusqlite::Error>(())
            })()
            .op("link rollup")?;
            each(&row);
        }
        Ok(())
    }

    fn target_label(&self, agent: &str, target: &str) -> Result<(String, String), StoreError> {
        self.0
            .prepare_cached("SELECT grp, label FROM target WHERE agent_id = ?1 AND id = ?2")
            .and_then(|mut st| st.query_row(params![agent, target], |r| Ok((r.get(0)?, r.get(1)?))))
            .op("target label")
    }

    fn opd_contract(&self, opd: &str) -> Result<Option<f64>, StoreError> {
        self.0
            .prepare_cached("SELECT contracted_mbps FROM opd WHERE id = ?1")
            .and_then(|mut st| st.query_row([opd], |r| r.get(0)))
            .op("opd contract")
    }

    fn rule_history(&self) -> Result<Vec<RuleHistoryRow>, StoreError> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT version, fingerprint, rebuilt_from_ms FROM rule_history ORDER BY rowid",
            )
            .op("read rule history")?;
        st.query_map([], |r| {
            Ok(RuleHistoryRow {
                version: r.get(0)?,
                fingerprint: r.get(1)?,
                rebuilt_from_ms: r.get(2)?,
            })
        })
        .and_then(|rows| rows.collect())
        .op("read rule history")
    }

    fn counted_hours(&self, from_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        self.0
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM rollup_group_hour WHERE hour_ms >= ?1 AND hour_ms < ?2
                   AND up + degraded + down + unknown + maint > 0)",
            )
            .and_then(|mut st| st.query_row(params![from_ms, until_ms], |r| r.get(0)))
            .op("read old rollups")
    }

    fn maintenance(
        &self,
        opd: Option<&str>,
        period: Option<(i64, i64)>,
    ) -> Result<Vec<MaintenanceRecord>, StoreError> {
        let (from, to) = period.map_or((None, None), |(f, t)| (Some(f), Some(t)));
        let mut st = self
            .0
            .prepare_cached(
                "SELECT id, opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms FROM maintenance
                 WHERE (?1 IS NULL OR to_ms > ?1) AND (?2 IS NULL OR from_ms < ?2)
                   AND (?3 IS NULL OR opd_id IS NULL OR opd_id = ?3)
                 ORDER BY from_ms, id",
            )
            .op("report maintenance")?;
        st.query_map(params![from, to, opd], |r| {
            Ok(MaintenanceRecord {
                id: r.get(0)?,
                opd: r.get(1)?,
                group: r.get(2)?,
                from_ms: r.get(3)?,
                to_ms: r.get(4)?,
                reason: r.get(5)?,
                recorded_by: r.get(6)?,
                recorded_at_ms: r.get(7)?,
            })
        })
        .and_then(|rows| rows.collect())
        .op("report maintenance")
    }

    fn clock_rows(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ClockRow>, StoreError> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT opd_id, agent_id,
                        SUM(clock_correction_ms IS NOT NULL),
                        COUNT(DISTINCT CASE WHEN clock_correction_ms IS NOT NULL THEN observed_at_ms / 60000 END),
                        MIN(clock_correction_ms), MAX(clock_correction_ms),
                        SUM(clock_flag IS NOT NULL)
                 FROM result
                 WHERE observed_at_ms >= ?1 AND observed_at_ms < ?2 AND (?3 IS NULL OR opd_id = ?3)
                   AND (clock_correction_ms IS NOT NULL OR clock_flag IS NOT NULL)
                 GROUP BY opd_id, agent_id ORDER BY opd_id, agent_id",
            )
            .op("prepare clock notes")?;
        st.query_map(params![from_ms, until_ms, opd], |r| {
            Ok(ClockRow {
                opd: r.get(0)?,
                agent: r.get(1)?,
                corrected_results: r.get(2)?,
                corrected_minutes: r.get(3)?,
                min_correction_ms: r.get(4)?,
                max_correction_ms: r.get(5)?,
                excluded_results: r.get(6)?,
            })
        })
        .and_then(|rows| rows.collect())
        .op("clock notes")
    }

    fn paths(&self, f: &PathFilter) -> Result<Vec<PathObs>, StoreError> {
        let mut st = self
            .0
            .prepare_cached(
                "SELECT p.id, p.agent_id, a.opd_id, p.target_id, COALESCE(t.grp, ''),
                        COALESCE(t.address, ''), COALESCE(t.label, ''), p.hops, p.rtt_us, p.reached,
                        p.first_seen_ms, p.last_seen_ms, p.times_seen, p.previous_id,
                        prev.hops, prev.last_seen_ms
                 FROM path p JOIN agent a ON a.id = p.agent_id
                 LEFT JOIN target t ON t.agent_id = p.agent_id AND t.id = p.target_id
                 LEFT JOIN path prev ON prev.id = p.previous_id
                 WHERE (?1 IS NULL OR a.opd_id = ?1) AND (?2 IS NULL OR p.agent_id = ?2)
                   AND (?3 IS NULL OR p.target_id = ?3) AND (?4 IS NULL OR p.last_seen_ms >= ?4)
                   AND (?5 IS NULL OR p.first_seen_ms < ?5)
                 ORDER BY a.opd_id, p.agent_id, p.target_id, p.first_seen_ms, p.id",
            )
            .op("read paths")?;
        st.query_map(params![f.opd, f.agent, f.target, f.from_ms, f.to_ms], |r| {
            let hops: String = r.get(7)?;
            let rtt: String = r.get(8)?;
            let prev: Option<String> = r.get(14)?;
            Ok(PathObs {
                id: r.get(0)?,
                agent: r.get(1)?,
                opd: r.get(2)?,
                target: r.get(3)?,
                group: r.get(4)?,
                address: r.get(5)?,
                label: r.get(6)?,
                hops: serde_json::from_str(&hops).unwrap_or_default(),
                rtt_us: serde_json::from_str(&rtt).unwrap_or_default(),
                reached: r.get(9)?,
                first_seen_ms: r.get(10)?,
                last_seen_ms: r.get(11)?,
                times_seen: r.get(12)?,
                previous_id: r.get(13)?,
                previous_hops: prev.map(|p| serde_json::from_str(&p).unwrap_or_default()),
                previous_last_seen_ms: r.get(15)?,
            })
        })
        .and_then(|rows| rows.collect())
        .op("read paths")
    }

    fn max_interval(&self, opd: Option<&str>) -> Result<i64, StoreError> {
        self.0
            .query_row(
                "SELECT COALESCE(MAX(t.interval_ms), 0) FROM target t JOIN agent a ON a.id = t.agent_id
                 WHERE ?1 IS NULL OR a.opd_id = ?1",
                params![opd],
                |r| r.get(0),
            )
            .op("max interval")
    }

    fn export(
        &self,
        what: Export<'_>,
        row: &mut dyn FnMut(&[ExportValue]),
    ) -> Result<(), StoreError> {
        let (op, query, args): (&'static str, &str, Vec<rusqlite::types::Value>) = match what {
            Export::RawResults {
                opd,
                from_ms,
                until_ms,
            } => (
                "raw export",
                "SELECT r.agent_id, r.epoch, r.seq, r.opd_id, t.grp, r.target_id, r.kind, r.observed_at_ms,
                        r.agent_time_ms, r.clock_correction_ms, r.received_at_ms, r.outcome, r.value_ms,
                        r.sent, r.received, r.late, r.clock_flag,
                        CASE WHEN r.kind IN ('bandwidth', 'link') THEN r.data ELSE '' END
                 FROM result r LEFT JOIN target t ON t.agent_id = r.agent_id AND t.id = r.target_id
                 WHERE r.observed_at_ms >= ?1 AND r.observed_at_ms < ?2 AND (?3 IS NULL OR r.opd_id = ?3)
                 ORDER BY r.opd_id, r.agent_id, r.epoch, r.seq",
                vec![from_ms.into(), until_ms.into(), opt(opd)],
            ),
            Export::Targets { opd } => (
                "target catalogue export",
                "SELECT t.agent_id, a.opd_id, t.id, t.grp, t.kind, t.address, t.label, t.interval_ms, t.timeout_ms,
                        t.first_seen_ms, t.last_declared_ms,
                        (SELECT MIN(r.observed_at_ms) FROM result r WHERE r.agent_id = t.agent_id AND r.clock_flag IS NULL)
                 FROM target t JOIN agent a ON a.id = t.agent_id
                 WHERE ?1 IS NULL OR a.opd_id = ?1 ORDER BY a.opd_id, t.agent_id, t.id",
                vec![opt(opd)],
            ),
            Export::Agents { opd } => (
                "agent export",
                "SELECT id, opd_id, clock_offset_ms, last_hello_ms, version FROM agent
                 WHERE ?1 IS NULL OR opd_id = ?1 ORDER BY opd_id, id",
                vec![opt(opd)],
            ),
            Export::Sessions {
                opd,
                from_ms,
                until_ms,
            } => (
                "session export",
                "SELECT s.id, s.agent_id, s.epoch, s.connected_at_ms, s.disconnected_at_ms, s.end_reason
                 FROM agent_session s JOIN agent a ON a.id = s.agent_id
                 WHERE (?1 IS NULL OR a.opd_id = ?1) AND s.connected_at_ms < ?3
                   AND (s.disconnected_at_ms IS NULL OR s.disconnected_at_ms > ?2)
                 ORDER BY s.agent_id, s.connected_at_ms",
                vec![opt(opd), from_ms.into(), until_ms.into()],
            ),
            Export::Maintenance {
                opd,
                from_ms,
                to_ms,
            } => (
                "maintenance export",
                "SELECT id, opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms FROM maintenance
                 WHERE (?1 IS NULL OR opd_id IS NULL OR opd_id = ?1) AND from_ms < ?3 AND to_ms > ?2
                 ORDER BY from_ms, id",
                vec![opt(opd), from_ms.into(), to_ms.into()],
            ),
        };
        let mut st = self.0.prepare(query).op(op)?;
        let n = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(args)).op(op)?;
        let mut cells = Vec::with_capacity(n);
        while let Some(r) = rows.next().op(op)? {
            cells.clear();
            for i in 0..n {
                cells.push(match r.get_ref(i).op(op)? {
                    ValueRef::Null => ExportValue::Null,
                    ValueRef::Integer(i) => ExportValue::Int(i),
                    ValueRef::Real(f) => ExportValue::Real(f),
                    ValueRef::Text(t) => ExportValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => ExportValue::Blob(b.to_vec()),
                });
            }
            row(&cells);
        }
        Ok(())
    }
}

fn opt(s: Option<&str>) -> rusqlite::types::Value {
    s.map_or(rusqlite::types::Value::Null, |s| s.to_string().into())
}

/// Read a text column into `dst`, reusing its allocation.
fn fill_text(r: &rusqlite::Row<'_>, i: usize, dst: &mut String) -> rusqlite::Result<()> {
    let v = r.get_ref(i)?;
    let text = v.as_str().map_err(|e| match e {
        rusqlite::types::FromSqlError::InvalidType => {
            rusqlite::Error::InvalidColumnType(i, String::new(), v.data_type())
        }
        other => rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(other)),
    })?;
    dst.clear();
    dst.push_str(text);
    Ok(())
}

/// Read a blob column into `dst`, reusing its allocation.
fn fill_blob(r: &rusqlite::Row<'_>, i: usize, dst: &mut Vec<u8>) -> rusqlite::Result<()> {
    match r.get_ref(i)? {
        ValueRef::Blob(b) => {
            dst.clear();
            dst.extend_from_slice(b);
            Ok(())
        }
        v => Err(rusqlite::Error::InvalidColumnType(
            i,
            String::new(),
            v.data_type(),
        )),
    }
}

fn minute_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MinuteRow> {
    Ok(MinuteRow {
        key: r.get(0)?,
        hour_ms: r.get(1)?,
        minutes: r.get(2)?,
    })
}

impl ReportStore for SqliteStore {
    fn read_snapshot(
        &self,
        f: &mut dyn FnMut(&dyn ReportRead) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.read(|c| {
            // A deferred transaction that only reads: one WAL snapshot.
            let tx = c.unchecked_transaction().op("begin report snapshot")?;
            f(&SqliteRead(&tx))
        })
    }
}

/// Mark every hour of `[from, to)` of one OPD (or all) dirty.
/// Maintenance window `id`, or [`StoreError::UnknownMaintenance`].
fn maintenance_row(conn: &Connection, id: i64) -> Result<MaintenanceRecord, StoreError> {
    conn.query_row(
        "SELECT id, opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms
         FROM maintenance WHERE id = ?1",
        [id],
        |r| {
            Ok(MaintenanceRecord {
                id: r.get(0)?,
                opd: r.get(1)?,
                group: r.get(2)?,
                from_ms: r.get(3)?,
                to_ms: r.get(4)?,
                reason: r.get(5)?,
                recorded_by: r.get(6)?,
                recorded_at_ms: r.get(7)?,
            })
        },
    )
    .optional()
    .op("read maintenance")?
    .ok_or(StoreError::UnknownMaintenance(id))
}

pub(super) fn mark_range_dirty(
    conn: &Connection,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<(), StoreError> {
    const HOUR_MS: i64 = 3_600_000;
    let opds: Vec<String> = match opd {
        Some(o) => vec![o.to_string()],
        None => {
            let mut st = conn.prepare("SELECT id FROM opd").op("list opds")?;
            st.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
                .op("list opds")?
        }
    };
    let mut h = from_ms.div_euclid(HOUR_MS) * HOUR_MS;
    while h < to_ms {
        for o in &opds {
            conn.execute(
                "INSERT INTO rollup_dirty (opd_id, hour_ms) VALUES (?1, ?2)
                 ON CONFLICT (opd_id, hour_ms) DO UPDATE SET gen = rollup_dirty.gen + 1",
                params![o, h],
            )
            .op("mark dirty")?;
        }
        h += HOUR_MS;
    }
    Ok(())
}

impl ReportAdmin for SqliteStore {
    fn add_maintenance(&self, w: &NewMaintenance) -> Result<(), StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin maintenance")?;
            tx.execute(
                "INSERT INTO maintenance (opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![w.opd, w.group, w.from_ms, w.to_ms, w.reason, w.by, w.at_ms],
            )
            .op("insert maintenance")?;
            mark_range_dirty(&tx, w.opd.as_deref(), w.from_ms, w.to_ms)?;
            tx.commit().op("commit maintenance")
        })
    }

    fn set_incident_note(&self, n: &IncidentNote) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO incident_note (opd_id, grp, start_ms, note, ticket, author, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(opd_id, grp, start_ms) DO UPDATE SET note = excluded.note, ticket = excluded.ticket,
                   author = excluded.author, at_ms = excluded.at_ms",
                params![n.opd, n.group, n.start_ms, n.note, n.ticket, n.by, n.at_ms],
            )
            .op("incident note")?;
            Ok(())
        })
    }

    fn end_maintenance(&self, id: i64, at_ms: i64) -> Result<MaintenanceRecord, StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin end maintenance")?;
            let w = maintenance_row(&tx, id)?;
            if w.to_ms <= at_ms {
                return Err(StoreError::MaintenanceOver(id));
            }
            let end = at_ms.max(w.from_ms);
            tx.execute(
                "UPDATE maintenance SET to_ms = ?2 WHERE id = ?1",
                params![id, end],
            )
            .op("end maintenance")?;
            mark_range_dirty(&tx, w.opd.as_deref(), end, w.to_ms)?;
            tx.commit().op("commit end maintenance")?;
            Ok(w)
        })
    }

    fn delete_maintenance(&self, id: i64) -> Result<MaintenanceRecord, StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin delete maintenance")?;
            let w = maintenance_row(&tx, id)?;
            tx.execute("DELETE FROM maintenance WHERE id = ?1", [id])
                .op("delete maintenance")?;
            mark_range_dirty(&tx, w.opd.as_deref(), w.from_ms, w.to_ms)?;
            tx.commit().op("commit delete maintenance")?;
            Ok(w)
        })
    }

    fn set_contract(&self, opd: &str, mbps: Option<f64>) -> Result<bool, StoreError> {
        self.write(|c| {
            let n = c
                .execute(
                    "UPDATE opd SET contracted_mbps = ?2 WHERE id = ?1",
                    params![opd, mbps],
                )
                .op("set contract")?;
            Ok(n > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    //! The report-side reads checked through SQLite: maintenance windows in
    //! scope and the availability metrics computed from stored hours.
    use prometheus::Registry;
    use rusqlite::{Connection, params};

    use super::SqliteRead;
    use crate::metrics::availability::{AGENT_GROUP, Availability, ratios};
    use crate::report::Settings;
    use crate::report::maintenance::load;
    use crate::report::rules::GROUPS;
    use crate::report::time::{HOUR_MS, hour_of};

    #[test]
    fn windows_in_scope_and_retroactive_flag() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        let add = |opd: Option<&str>, grp: Option<&str>, from: i64, to: i64, at: i64| {
            conn.execute(
                "INSERT INTO maintenance (opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms)
                 VALUES (?1, ?2, ?3, ?4, 'r', 'budi', ?5)",
                params![opd, grp, from, to, at],
            )
            .unwrap();
        };
        add(Some("dinkes"), Some("internet"), 100, 200, 50); // planned
        add(None, None, 150, 300, 400); // every OPD, recorded afterwards
        add(Some("disdik"), None, 100, 200, 50); // another OPD
        add(Some("dinkes"), None, 1000, 2000, 50); // outside the period
        let w = load(&SqliteRead(&conn), Some("dinkes"), 0, 1000).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0].group.as_deref(), Some("internet"));
        assert!(!w[0].retroactive);
        assert_eq!((w[1].opd.as_deref(), w[1].retroactive), (None, true));
        assert_eq!(load(&SqliteRead(&conn), None, 0, 1000).unwrap().len(), 3);
        // [from, to) overlap: a window ending at the period start is out.
        assert_eq!(
            load(&SqliteRead(&conn), Some("dinkes"), 300, 1000)
                .unwrap()
                .len(),
            0
        );
    }

    fn hour(conn: &Connection, opd: &str, grp: &str, hour_ms: i64, m: [i64; 5]) {
        conn.execute(
            "INSERT INTO rollup_group_hour (opd_id, grp, hour_ms, minutes, up, degraded, down, unknown, maint,
               n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
             VALUES (?1, ?2, ?3, '', ?4, ?5, ?6, ?7, ?8, 0, 0, 0, 0, 0, 0, x'')",
            params![opd, grp, hour_ms, m[0], m[1], m[2], m[3], m[4]],
        )
        .unwrap();
    }

    #[test]
    fn windows_count_composite_minutes_like_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        conn.execute(
            "INSERT INTO opd (id, name, created_at_ms) VALUES ('dinkes', 'Dinas Kesehatan', 0)",
            [],
        )
        .unwrap();
        let now = 1_000 * HOUR_MS + 30 * 60_000;
        let h = hour_of(now);
        // Current hour: 30 up, 10 degraded, 10 down, 10 unknown.
        hour(&conn, "dinkes", "intranet", h, [30, 10, 10, 10, 0]);
        // 23 hours ago (still in 1d): 50 up, 10 down; maintenance is excluded.
        hour(
            &conn,
            "dinkes",
            "intranet",
            h - 23 * HOUR_MS,
            [40, 0, 10, 0, 10],
        );
        // 24 hours ago: only in 30d.
        hour(
            &conn,
            "dinkes",
            "intranet",
            h - 24 * HOUR_MS,
            [0, 0, 60, 0, 0],
        );
        // 720 hours ago: in neither window.
        hour(
            &conn,
            "dinkes",
            "intranet",
            h - 720 * HOUR_MS,
            [0, 0, 60, 0, 0],
        );
        // Only unknown minutes: no availability at all.
        hour(&conn, "dinkes", "jip", h, [0, 0, 0, 60, 0]);
        let r = ratios(&SqliteRead(&conn), now).unwrap();
        let get = |g: &str, w: &'static str| r.get(&("dinkes".to_string(), g.to_string(), w));
        // (30 + 10 + 40) / (30 + 10 + 40 + 10 + 10) = 0.8
        assert_eq!(get("intranet", "1d"), Some(&(0.8, 100)));
        // 80 / (100 + 60) = 0.5
        assert_eq!(get("intranet", "30d"), Some(&(0.5, 160)));
        assert_eq!(get("jip", "1d"), None);
        assert_eq!(get("jip", "30d"), None);
        assert_eq!(r.len(), 2, "{r:?}");

        let reg = Registry::new();
        let a = Availability::register(&reg);
        let s = Settings::new(&crate::config::Display::default());
        a.publish(&SqliteRead(&conn), &s);
        let text = {
            let mut buf = Vec::new();
            prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &reg.gather(), &mut buf)
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        let sla = s.sla_pct[0] / 100.0;
        assert!(
            text.contains(&format!(
                "pantau_availability_target_ratio{{group=\"{}\"}} {sla}\n",
                GROUPS[0]
            )),
            "{text}"
        );
        // Every OPD and group has an open-incident count, 0 without one.
        for g in GROUPS.iter().chain([&AGENT_GROUP]) {
            assert!(
                text.contains(&format!(
                    "pantau_incidents_open{{group=\"{g}\",opd=\"dinkes\"}} 0\n"
                )),
                "{text}"
            );
        }
    }
}
