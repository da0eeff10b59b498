//! Maintenance disclosure: the recorded maintenance windows that shaped a
//! report's figures (their minutes are excluded from availability), listed
//! in every format so an evaluator sees what was excluded, by whom, and
//! whether it was recorded only after it had started (*retroaktif*).

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::store::StoreError;

/// One recorded maintenance window overlapping the report period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceWindow {
    /// OPD, or `None` for every OPD.
    pub opd: Option<String>,
    /// Group, or `None` for every group.
    pub group: Option<String>,
    /// Start, UTC ms.
    pub from_ms: i64,
    /// End (exclusive), UTC ms.
    pub to_ms: i64,
    /// Why.
    pub reason: String,
    /// Who recorded it.
    pub recorded_by: String,
    /// When it was recorded, UTC ms.
    pub recorded_at_ms: i64,
    /// Recorded after the window had started: it changed figures that
    /// already existed.
    pub retroactive: bool,
}

/// Windows overlapping `[from_ms, to_ms)` that apply to `opd` (or to any
/// OPD when `opd` is `None`), by start.
pub fn load(
    conn: &Connection,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<MaintenanceWindow>, StoreError> {
    let sql = |source| StoreError::Sqlite {
        op: "report maintenance",
        source,
    };
    let mut st = conn
        .prepare_cached(
            "SELECT opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms FROM maintenance
             WHERE from_ms < ?2 AND to_ms > ?1 AND (?3 IS NULL OR opd_id IS NULL OR opd_id = ?3)
             ORDER BY from_ms, id",
        )
        .map_err(sql)?;
    st.query_map(params![from_ms, to_ms, opd], |r| {
        let from_ms: i64 = r.get(2)?;
        let recorded_at_ms: i64 = r.get(6)?;
        Ok(MaintenanceWindow {
            opd: r.get(0)?,
            group: r.get(1)?,
            from_ms,
            to_ms: r.get(3)?,
            reason: r.get(4)?,
            recorded_by: r.get(5)?,
            recorded_at_ms,
            retroactive: recorded_at_ms > from_ms,
        })
    })
    .map_err(sql)?
    .collect::<Result<_, _>>()
    .map_err(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let w = load(&conn, Some("dinkes"), 0, 1000).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0].group.as_deref(), Some("internet"));
        assert!(!w[0].retroactive);
        assert_eq!((w[1].opd.as_deref(), w[1].retroactive), (None, true));
        assert_eq!(load(&conn, None, 0, 1000).unwrap().len(), 3);
        // [from, to) overlap: a window ending at the period start is out.
        assert_eq!(load(&conn, Some("dinkes"), 300, 1000).unwrap().len(), 0);
    }
}
