//! [`ReportRead`], [`ReportStore`] and [`ReportAdmin`] for PostgreSQL. The
//! reads are free functions over a client or transaction, so the rollup
//! (inside its write transaction) and the report snapshot share them.

use std::cell::RefCell;

use postgres::types::Type;
use postgres::{GenericClient, Row};

use super::{Db, PgStore};
use crate::store::report::{
    BwRow, ClockRow, Counts, Export, ExportValue, GroupDayRow, GroupHourRow, IncidentNote, LinkRow,
    MaintenanceRecord, MinuteRow, NewMaintenance, OpdName, PathFilter, PathObs, ReportAdmin,
    ReportRead, ReportStore, RuleHistoryRow, Tally,
};
use crate::store::{Op, StoreError};

const HOUR_MS: i64 = 3_600_000;

/// Reads on one client or transaction (a snapshot, or the rollup's write
/// transaction).
pub struct PgRead<'r, 'a, C: GenericClient>(pub RefCell<&'r mut Db<'a, C>>);

impl<'r, 'a, C: GenericClient> PgRead<'r, 'a, C> {
    /// Reads on `db`.
    pub fn new(db: &'r mut Db<'a, C>) -> Self {
        PgRead(RefCell::new(db))
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
pub(super) fn group_hours<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: &str,
    from: i64,
    to: i64,
) -> Result<Vec<GroupHourRow>, StoreError> {
    Ok(db
        .query(
            "SELECT grp, hour_ms, up, degraded, down, unknown, maint, n_ok, n_fail, sent, received,
                    jit_sum, jit_n, hist
             FROM rollup_group_hour WHERE opd_id = $1 AND hour_ms >= $2 AND hour_ms < $3",
            &[&opd, &from, &to],
        )
        .op("day hours")?
        .iter()
        .map(|r| GroupHourRow {
            grp: r.get(0),
            hour_ms: r.get(1),
            minutes: String::new(),
            counts: [r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)],
            tally: Tally {
                n_ok: r.get(7),
                n_fail: r.get(8),
                sent: r.get(9),
                received: r.get(10),
                jit_sum: r.get(11),
                jit_n: r.get(12),
                hist: r.get(13),
            },
        })
        .collect())
}

pub(super) fn watermark<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(db
        .query_opt(
            "SELECT until_ms FROM rollup_watermark WHERE opd_id = $1",
            &[&opd],
        )
        .op("read watermark")?
        .map(|r| r.get(0)))
}

fn bw_row(r: &Row) -> BwRow {
    BwRow {
        opd: r.get(0),
        agent: r.get(1),
        target: r.get(2),
        n_ok: r.get(3),
        n_skipped: r.get(4),
        n_fail: r.get(5),
        dl: bytes_to_f64s(r.get(6)),
        ul: bytes_to_f64s(r.get(7)),
        at_ms: r.get(8),
    }
}

pub(super) fn bw_rows<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    hourly: bool,
) -> Result<Vec<BwRow>, StoreError> {
    let sql = if hourly {
        "SELECT opd_id, agent_id, target_id, n_ok, n_skipped, n_fail, dl, ul, hour_ms
         FROM rollup_bw_hour WHERE hour_ms >= $1 AND hour_ms < $2 AND ($3::text IS NULL OR opd_id = $3)"
    } else {
        "SELECT opd_id, agent_id, target_id, n_ok, n_skipped, n_fail, dl, ul, day_ms
         FROM rollup_bw_day WHERE day_ms >= $1 AND day_ms < $2 AND ($3::text IS NULL OR opd_id = $3)"
    };
    Ok(db
        .query(sql, &[&from_ms, &to_ms, &opd])
        .op("bandwidth rollup")?
        .iter()
        .map(bw_row)
        .collect())
}

fn link_row(r: &Row) -> LinkRow {
    LinkRow {
        agent: r.get(0),
        target: r.get(1),
        if_name: r.get(2),
        polls: r.get(3),
        no_rate: r.get(4),
        covered_ms: r.get(5),
        in_bits: r.get(6),
        out_bits: r.get(7),
        in_peak: r.get(8),
        out_peak: r.get(9),
        in_hist: r.get(10),
        out_hist: r.get(11),
        capacity_bps: r.get(12),
        contracted: r.get(13),
        capacity_at_ms: r.get(14),
        opd: r.get(15),
        at_ms: r.get(16),
    }
}

pub(super) fn link_rows<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    hourly: bool,
) -> Result<Vec<Row>, StoreError> {
    let sql = if hourly {
        "SELECT agent_id, target_id, if_name, polls, no_rate, covered_ms, in_bits, out_bits,
                in_peak, out_peak, in_hist, out_hist, capacity_bps, contracted, capacity_at_ms,
                opd_id, hour_ms
         FROM rollup_link_hour WHERE hour_ms >= $1 AND hour_ms < $2 AND ($3::text IS NULL OR opd_id = $3)
         ORDER BY opd_id, hour_ms"
    } else {
        "SELECT agent_id, target_id, if_name, polls, no_rate, covered_ms, in_bits, out_bits,
                in_peak, out_peak, in_hist, out_hist, capacity_bps, contracted, capacity_at_ms,
                opd_id, day_ms
         FROM rollup_link_day WHERE day_ms >= $1 AND day_ms < $2 AND ($3::text IS NULL OR opd_id = $3)
         ORDER BY opd_id, day_ms"
    };
    db.query(sql, &[&from_ms, &to_ms, &opd]).op("link rollup")
}

/// Decoded link rows (the rollup's day input).
pub(super) fn link_rows_decoded<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    hourly: bool,
) -> Result<Vec<LinkRow>, StoreError> {
    Ok(link_rows(db, opd, from_ms, to_ms, hourly)?
        .iter()
        .map(link_row)
        .collect())
}

fn minute_rows(rows: Vec<Row>) -> Vec<MinuteRow> {
    rows.iter()
        .map(|r| MinuteRow {
            key: r.get(0),
            hour_ms: r.get(1),
            minutes: r.get(2),
        })
        .collect()
}

fn export_sql(what: Export<'_>) -> (&'static str, &'static str) {
    match what {
        Export::RawResults { .. } => (
            "raw export",
            "SELECT r.agent_id, r.epoch, r.seq, r.opd_id, t.grp, r.target_id, r.kind, r.observed_at_ms,
                    r.agent_time_ms, r.clock_correction_ms, r.received_at_ms, r.outcome, r.value_ms,
                    r.sent, r.received, r.late, r.clock_flag,
                    CASE WHEN r.kind IN ('bandwidth', 'link') THEN r.data ELSE '' END
             FROM result r LEFT JOIN target t ON t.agent_id = r.agent_id AND t.id = r.target_id
             WHERE r.observed_at_ms >= $1 AND r.observed_at_ms < $2 AND ($3::text IS NULL OR r.opd_id = $3)
             ORDER BY r.opd_id, r.agent_id, r.epoch, r.seq",
        ),
        Export::Targets { .. } => (
            "target catalogue export",
            "SELECT t.agent_id, a.opd_id, t.id, t.grp, t.kind, t.address, t.label, t.interval_ms,
                    t.timeout_ms, t.first_seen_ms, t.last_declared_ms,
                    (SELECT MIN(r.observed_at_ms) FROM result r
                     WHERE r.agent_id = t.agent_id AND r.clock_flag IS NULL)
             FROM target t JOIN agent a ON a.id = t.agent_id
             WHERE $1::text IS NULL OR a.opd_id = $1 ORDER BY a.opd_id, t.agent_id, t.id",
        ),
        Export::Agents { .. } => (
            "agent export",
            "SELECT id, opd_id, clock_offset_ms, last_hello_ms, version FROM agent
             WHERE $1::text IS NULL OR opd_id = $1 ORDER BY opd_id, id",
        ),
        Export::Sessions { .. } => (
            "session export",
            "SELECT s.id, s.agent_id, s.epoch, s.connected_at_ms, s.disconnected_at_ms, s.end_reason
             FROM agent_session s JOIN agent a ON a.id = s.agent_id
             WHERE ($1::text IS NULL OR a.opd_id = $1) AND s.connected_at_ms < $3
               AND (s.disconnected_at_ms IS NULL OR s.disconnected_at_ms > $2)
             ORDER BY s.agent_id, s.connected_at_ms",
        ),
        Export::Maintenance { .. } => (
            "maintenance export",
            "SELECT id, opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms
             FROM maintenance
             WHERE ($1::text IS NULL OR opd_id IS NULL OR opd_id = $1) AND from_ms < $3 AND to_ms > $2
             ORDER BY from_ms, id",
        ),
    }
}

/// One cell as the SQLite backend would give it (booleans as integers).
fn cell(r: &Row, i: usize) -> ExportValue {
    let ty = r.columns()[i].type_();
    let v = if *ty == Type::INT8 {
        r.get::<_, Option<i64>>(i).map(ExportValue::Int)
    } else if *ty == Type::INT4 {
        r.get::<_, Option<i32>>(i)
            .map(|v| ExportValue::Int(v.into()))
    } else if *ty == Type::FLOAT8 {
        r.get::<_, Option<f64>>(i).map(ExportValue::Real)
    } else if *ty == Type::BOOL {
        r.get::<_, Option<bool>>(i)
            .map(|b| ExportValue::Int(b.into()))
    } else if *ty == Type::BYTEA {
        r.get::<_, Option<Vec<u8>>>(i).map(ExportValue::Blob)
    } else {
        r.get::<_, Option<String>>(i).map(ExportValue::Text)
    };
    v.unwrap_or(ExportValue::Null)
}

impl<C: GenericClient> ReportRead for PgRead<'_, '_, C> {
    fn opds(&self, opd: Option<&str>) -> Result<Vec<OpdName>, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query(
                "SELECT id, name FROM opd WHERE ($1::text IS NULL AND state <> 'removed') OR id = $1
                 ORDER BY id",
                &[&opd],
            )
            .op("report opds")?
            .iter()
            .map(|r| OpdName {
                id: r.get(0),
                name: r.get(1),
            })
            .collect())
    }

    fn opd_exists(&self, opd: &str) -> Result<bool, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query_one("SELECT EXISTS(SELECT 1 FROM opd WHERE id = $1)", &[&opd])
            .op("opd exists")?
            .get(0))
    }

    fn pending_hours(&self, opd: Option<&str>) -> Result<i64, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query_one(
                "SELECT COUNT(*) FROM rollup_dirty WHERE $1::text IS NULL OR opd_id = $1",
                &[&opd],
            )
            .op("pending rollups")?
            .get(0))
    }

    fn min_watermark(&self, opd: Option<&str>) -> Result<Option<i64>, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query_one(
                "SELECT MIN(until_ms) FROM rollup_watermark WHERE $1::text IS NULL OR opd_id = $1",
                &[&opd],
            )
            .op("read watermarks")?
            .get(0))
    }

    fn watermark(&self, opd: &str) -> Result<Option<i64>, StoreError> {
        watermark(&mut self.0.borrow_mut(), opd)
    }

    fn each_group_day(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        business: bool,
        each: &mut dyn FnMut(&GroupDayRow),
    ) -> Result<(), StoreError> {
        let sql = if business {
            "SELECT opd_id, grp, day_ms, bh_up, bh_degraded, bh_down, bh_unknown, 0::bigint,
                    n_ok, n_fail, sent, received, jit_sum, jit_n, hist
             FROM rollup_group_day
             WHERE day_ms >= $1 AND day_ms < $2 AND ($3::text IS NULL OR opd_id = $3)"
        } else {
            "SELECT opd_id, grp, day_ms, up, degraded, down, unknown, maint,
                    n_ok, n_fail, sent, received, jit_sum, jit_n, hist
             FROM rollup_group_day
             WHERE day_ms >= $1 AND day_ms < $2 AND ($3::text IS NULL OR opd_id = $3)"
        };
        let rows = self
            .0
            .borrow_mut()
            .query(sql, &[&from_ms, &to_ms, &opd])
            .op("report days")?;
        for r in rows {
            each(&GroupDayRow {
                opd: r.get(0),
                grp: r.get(1),
                day_ms: r.get(2),
                counts: [r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)],
                business: [0; 4],
                tally: Tally {
                    n_ok: r.get(8),
                    n_fail: r.get(9),
                    sent: r.get(10),
                    received: r.get(11),
                    jit_sum: r.get(12),
                    jit_n: r.get(13),
                    hist: r.get(14),
                },
            });
        }
        Ok(())
    }

    fn group_minutes(
        &self,
        opd: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<MinuteRow>, StoreError> {
        Ok(minute_rows(
            self.0
                .borrow_mut()
                .query(
                    "SELECT grp, hour_ms, minutes FROM rollup_group_hour
                     WHERE opd_id = $1 AND hour_ms >= $2 AND hour_ms < $3",
                    &[&opd, &from_ms, &to_ms],
                )
                .op("incident hours")?,
        ))
    }

    fn down_target_minutes(
        &self,
        opd: &str,
        grp: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<MinuteRow>, StoreError> {
        Ok(minute_rows(
            self.0
                .borrow_mut()
                .query(
                    "SELECT target_id, hour_ms, minutes FROM rollup_target_hour
                     WHERE opd_id = $1 AND grp = $2 AND hour_ms >= $3 AND hour_ms < $4 AND down > 0",
                    &[&opd, &grp, &from_ms, &to_ms],
                )
                .op("affected")?,
        ))
    }

    fn incident_note(
        &self,
        opd: &str,
        grp: &str,
        start_ms: i64,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query_opt(
                "SELECT note, ticket FROM incident_note
                 WHERE opd_id = $1 AND grp = $2 AND start_ms = $3",
                &[&opd, &grp, &start_ms],
            )
            .op("notes")?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn group_hour_sums(
        &self,
        opd: &str,
        grp: &str,
        from_hour_ms: i64,
        to_hour_ms: i64,
    ) -> Result<Option<Counts>, StoreError> {
        let r = self
            .0
            .borrow_mut()
            .query_one(
                "SELECT COUNT(*), COALESCE(SUM(up), 0)::bigint, COALESCE(SUM(degraded), 0)::bigint,
                        COALESCE(SUM(down), 0)::bigint, COALESCE(SUM(unknown), 0)::bigint,
                        COALESCE(SUM(maint), 0)::bigint
                 FROM rollup_group_hour
                 WHERE opd_id = $1 AND grp = $2 AND hour_ms >= $3 AND hour_ms <= $4",
                &[&opd, &grp, &from_hour_ms, &to_hour_ms],
            )
            .op("availability minutes")?;
        let n: i64 = r.get(0);
        Ok((n > 0).then(|| [r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)]))
    }

    fn bw_rows(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        hourly: bool,
    ) -> Result<Vec<BwRow>, StoreError> {
        bw_rows(&mut self.0.borrow_mut(), opd, from_ms, to_ms, hourly)
    }

    fn each_link_row(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        hourly: bool,
        each: &mut dyn FnMut(&LinkRow),
    ) -> Result<(), StoreError> {
        let rows = link_rows(&mut self.0.borrow_mut(), opd, from_ms, to_ms, hourly)?;
        for r in &rows {
            each(&link_row(r));
        }
        Ok(())
    }

    fn target_label(&self, agent: &str, target: &str) -> Result<(String, String), StoreError> {
        let r = self
            .0
            .borrow_mut()
            .query_one(
                "SELECT grp, label FROM target WHERE agent_id = $1 AND id = $2",
                &[&agent, &target],
            )
            .op("target label")?;
        Ok((r.get(0), r.get(1)))
    }

    fn opd_contract(&self, opd: &str) -> Result<Option<f64>, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query_one("SELECT contracted_mbps FROM opd WHERE id = $1", &[&opd])
            .op("opd contract")?
            .get(0))
    }

    fn rule_history(&self) -> Result<Vec<RuleHistoryRow>, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query(
                "SELECT version, fingerprint, rebuilt_from_ms FROM rule_history ORDER BY id",
                &[],
            )
            .op("read rule history")?
            .iter()
            .map(|r| RuleHistoryRow {
                version: r.get(0),
                fingerprint: r.get(1),
                rebuilt_from_ms: r.get(2),
            })
            .collect())
    }

    fn counted_hours(&self, from_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM rollup_group_hour WHERE hour_ms >= $1 AND hour_ms < $2
                   AND up + degraded + down + unknown + maint > 0)",
                &[&from_ms, &until_ms],
            )
            .op("read old rollups")?
            .get(0))
    }

    fn maintenance(
        &self,
        opd: Option<&str>,
        period: Option<(i64, i64)>,
    ) -> Result<Vec<MaintenanceRecord>, StoreError> {
        let (from, to) = period.map_or((None, None), |(f, t)| (Some(f), Some(t)));
        Ok(self
            .0
            .borrow_mut()
            .query(
                "SELECT id, opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms
                 FROM maintenance
                 WHERE ($1::bigint IS NULL OR to_ms > $1) AND ($2::bigint IS NULL OR from_ms < $2)
                   AND ($3::text IS NULL OR opd_id IS NULL OR opd_id = $3)
                 ORDER BY from_ms, id",
                &[&from, &to, &opd],
            )
            .op("report maintenance")?
            .iter()
            .map(|r| MaintenanceRecord {
                id: r.get(0),
                opd: r.get(1),
                group: r.get(2),
                from_ms: r.get(3),
                to_ms: r.get(4),
                reason: r.get(5),
                recorded_by: r.get(6),
                recorded_at_ms: r.get(7),
            })
            .collect())
    }

    fn clock_rows(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ClockRow>, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query(
                "SELECT opd_id, agent_id,
                        COUNT(*) FILTER (WHERE clock_correction_ms IS NOT NULL),
                        COUNT(DISTINCT CASE WHEN clock_correction_ms IS NOT NULL
                                            THEN observed_at_ms / 60000 END),
                        MIN(clock_correction_ms), MAX(clock_correction_ms),
                        COUNT(*) FILTER (WHERE clock_flag IS NOT NULL)
                 FROM result
                 WHERE observed_at_ms >= $1 AND observed_at_ms < $2
                   AND ($3::text IS NULL OR opd_id = $3)
                   AND (clock_correction_ms IS NOT NULL OR clock_flag IS NOT NULL)
                 GROUP BY opd_id, agent_id ORDER BY opd_id, agent_id",
                &[&from_ms, &until_ms, &opd],
            )
            .op("clock notes")?
            .iter()
            .map(|r| ClockRow {
                opd: r.get(0),
                agent: r.get(1),
                corrected_results: r.get(2),
                corrected_minutes: r.get(3),
                min_correction_ms: r.get(4),
                max_correction_ms: r.get(5),
                excluded_results: r.get(6),
            })
            .collect())
    }

    fn paths(&self, f: &PathFilter) -> Result<Vec<PathObs>, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query(
                "SELECT p.id, p.agent_id, a.opd_id, p.target_id, COALESCE(t.grp, ''),
                        COALESCE(t.address, ''), COALESCE(t.label, ''), p.hops, p.rtt_us, p.reached,
                        p.first_seen_ms, p.last_seen_ms, p.times_seen, p.previous_id,
                        prev.hops, prev.last_seen_ms
                 FROM path p JOIN agent a ON a.id = p.agent_id
                 LEFT JOIN target t ON t.agent_id = p.agent_id AND t.id = p.target_id
                 LEFT JOIN path prev ON prev.id = p.previous_id
                 WHERE ($1::text IS NULL OR a.opd_id = $1) AND ($2::text IS NULL OR p.agent_id = $2)
                   AND ($3::text IS NULL OR p.target_id = $3)
                   AND ($4::bigint IS NULL OR p.last_seen_ms >= $4)
                   AND ($5::bigint IS NULL OR p.first_seen_ms < $5)
                 ORDER BY a.opd_id, p.agent_id, p.target_id, p.first_seen_ms, p.id",
                &[&f.opd, &f.agent, &f.target, &f.from_ms, &f.to_ms],
            )
            .op("read paths")?
            .iter()
            .map(|r| {
                let hops: String = r.get(7);
                let rtt: String = r.get(8);
                let prev: Option<String> = r.get(14);
                PathObs {
                    id: r.get(0),
                    agent: r.get(1),
                    opd: r.get(2),
                    target: r.get(3),
                    group: r.get(4),
                    address: r.get(5),
                    label: r.get(6),
                    hops: serde_json::from_str(&hops).unwrap_or_default(),
                    rtt_us: serde_json::from_str(&rtt).unwrap_or_default(),
                    reached: r.get(9),
                    first_seen_ms: r.get(10),
                    last_seen_ms: r.get(11),
                    times_seen: r.get(12),
                    previous_id: r.get(13),
                    previous_hops: prev.map(|p| serde_json::from_str(&p).unwrap_or_default()),
                    previous_last_seen_ms: r.get(15),
                }
            })
            .collect())
    }

    fn max_interval(&self, opd: Option<&str>) -> Result<i64, StoreError> {
        Ok(self
            .0
            .borrow_mut()
            .query_one(
                "SELECT COALESCE(MAX(t.interval_ms), 0) FROM target t JOIN agent a ON a.id = t.agent_id
                 WHERE $1::text IS NULL OR a.opd_id = $1",
                &[&opd],
            )
            .op("max interval")?
            .get(0))
    }

    fn export(
        &self,
        what: Export<'_>,
        row: &mut dyn FnMut(&[ExportValue]),
    ) -> Result<(), StoreError> {
        let (op, sql) = export_sql(what);
        let mut db = self.0.borrow_mut();
        let rows = match what {
            Export::RawResults {
                opd,
                from_ms,
                until_ms,
            } => db.query(sql, &[&from_ms, &until_ms, &opd]),
            Export::Targets { opd } | Export::Agents { opd } => db.query(sql, &[&opd]),
            Export::Sessions {
                opd,
                from_ms,
                until_ms,
            } => db.query(sql, &[&opd, &from_ms, &until_ms]),
            Export::Maintenance {
                opd,
                from_ms,
                to_ms,
            } => db.query(sql, &[&opd, &from_ms, &to_ms]),
        }
        .op(op)?;
        let mut cells = Vec::new();
        for r in &rows {
            cells.clear();
            cells.extend((0..r.len()).map(|i| cell(r, i)));
            row(&cells);
        }
        Ok(())
    }
}

impl ReportStore for PgStore {
    fn read_snapshot(
        &self,
        f: &mut dyn FnMut(&dyn ReportRead) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.read(|c| c.snapshot(|db| f(&PgRead::new(db))))
    }
}

/// Mark every hour of `[from, to)` of one OPD (or all) dirty.
/// Maintenance window `id` (locked), or [`StoreError::UnknownMaintenance`].
fn maintenance_row<C: GenericClient>(
    db: &mut Db<'_, C>,
    id: i64,
) -> Result<MaintenanceRecord, StoreError> {
    let r = db
        .query_opt(
            "SELECT id, opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms
             FROM maintenance WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .op("read maintenance")?
        .ok_or(StoreError::UnknownMaintenance(id))?;
    Ok(MaintenanceRecord {
        id: r.get(0),
        opd: r.get(1),
        group: r.get(2),
        from_ms: r.get(3),
        to_ms: r.get(4),
        reason: r.get(5),
        recorded_by: r.get(6),
        recorded_at_ms: r.get(7),
    })
}

pub(super) fn mark_range_dirty<C: GenericClient>(
    db: &mut Db<'_, C>,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<(), StoreError> {
    let first = from_ms.div_euclid(HOUR_MS) * HOUR_MS;
    db.execute(
        "INSERT INTO rollup_dirty (opd_id, hour_ms)
         SELECT o.id, h FROM (SELECT $1::text AS id WHERE $1::text IS NOT NULL
                              UNION ALL SELECT id FROM opd WHERE $1::text IS NULL) o,
                             generate_series($2::bigint, $3::bigint - 1, 3600000) h
         ON CONFLICT (opd_id, hour_ms) DO UPDATE SET gen = nextval('rollup_dirty_gen')",
        &[&opd, &first, &to_ms],
    )
    .op("mark dirty")?;
    Ok(())
}

impl ReportAdmin for PgStore {
    fn add_maintenance(&self, w: &NewMaintenance) -> Result<(), StoreError> {
        self.write(|c| {
            c.tx(|db| {
                db.execute(
                    "INSERT INTO maintenance (opd_id, grp, from_ms, to_ms, reason, recorded_by,
                                              recorded_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &w.opd, &w.group, &w.from_ms, &w.to_ms, &w.reason, &w.by, &w.at_ms,
                    ],
                )
                .op("insert maintenance")?;
                mark_range_dirty(db, w.opd.as_deref(), w.from_ms, w.to_ms)
            })
        })
    }

    fn set_incident_note(&self, n: &IncidentNote) -> Result<(), StoreError> {
        self.write(|c| {
            c.db()
                .execute(
                    "INSERT INTO incident_note (opd_id, grp, start_ms, note, ticket, author, at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (opd_id, grp, start_ms) DO UPDATE SET note = excluded.note,
                       ticket = excluded.ticket, author = excluded.author, at_ms = excluded.at_ms",
                    &[
                        &n.opd,
                        &n.group,
                        &n.start_ms,
                        &n.note,
                        &n.ticket,
                        &n.by,
                        &n.at_ms,
                    ],
                )
                .op("incident note")
                .map(drop)
        })
    }

    fn end_maintenance(&self, id: i64, at_ms: i64) -> Result<MaintenanceRecord, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let w = maintenance_row(db, id)?;
                if w.to_ms <= at_ms {
                    return Err(StoreError::MaintenanceOver(id));
                }
                let end = at_ms.max(w.from_ms);
                db.execute(
                    "UPDATE maintenance SET to_ms = $2 WHERE id = $1",
                    &[&id, &end],
                )
                .op("end maintenance")?;
                mark_range_dirty(db, w.opd.as_deref(), end, w.to_ms)?;
                Ok(w)
            })
        })
    }

    fn delete_maintenance(&self, id: i64) -> Result<MaintenanceRecord, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let w = maintenance_row(db, id)?;
                db.execute("DELETE FROM maintenance WHERE id = $1", &[&id])
                    .op("delete maintenance")?;
                mark_range_dirty(db, w.opd.as_deref(), w.from_ms, w.to_ms)?;
                Ok(w)
            })
        })
    }

    fn set_contract(&self, opd: &str, mbps: Option<f64>) -> Result<bool, StoreError> {
        self.write(|c| {
            let n = c
                .db()
                .execute(
                    "UPDATE opd SET contracted_mbps = $2 WHERE id = $1",
                    &[&opd, &mbps],
                )
                .op("set contract")?;
            Ok(n > 0)
        })
    }
}
