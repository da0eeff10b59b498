//! Maintenance disclosure: the recorded maintenance windows that shaped a
//! report's figures (their minutes are excluded from availability), listed
//! in every format so an evaluator sees what was excluded, by whom, and
//! whether it was recorded only after it had started (*retroaktif*).

use rusqlite::{Connection, params};
use serde::Serialize;

use super::render::{date_time, group_label};
use super::{Lang, Report};
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

/// Section title.
pub fn title(l: Lang) -> &'static str {
    if l == Lang::En {
        "Maintenance windows (excluded from availability)"
    } else {
        "Jendela pemeliharaan (dikecualikan dari ketersediaan)"
    }
}

/// What the section says before its table.
pub fn note(l: Lang) -> &'static str {
    if l == Lang::En {
        "Minutes inside a recorded window count as maintenance, not as up or down; the maintenance minutes per OPD and group are in the tables above. \"retroactive\" = recorded after the window had started, so it changed figures that already existed."
    } else {
        "Menit di dalam jendela yang dicatat dihitung sebagai pemeliharaan, bukan aktif atau henti; menit pemeliharaan per OPD dan kelompok ada pada tabel di atas. \"retroaktif\" = dicatat setelah jendela dimulai, sehingga mengubah angka yang sudah ada."
    }
}

/// Text when the period has no window.
pub fn none(l: Lang) -> &'static str {
    if l == Lang::En {
        "No maintenance window in the period."
    } else {
        "Tidak ada jendela pemeliharaan dalam periode ini."
    }
}

/// Table headers matching [`rows`].
pub fn headers(l: Lang) -> Vec<&'static str> {
    if l == Lang::En {
        vec![
            "OPD",
            "Group",
            "Start – end",
            "Reason",
            "Recorded by",
            "Recorded at",
            "Retroactive",
        ]
    } else {
        vec![
            "OPD",
            "Kelompok",
            "Mulai – selesai",
            "Alasan",
            "Dicatat oleh",
            "Dicatat pada",
            "Retroaktif",
        ]
    }
}

/// Table rows, times in the report's zone.
pub fn rows(r: &Report) -> Vec<Vec<String>> {
    let (l, off, z) = (r.meta.lang, r.meta.utc_offset_minutes, r.meta.zone.as_str());
    let en = l == Lang::En;
    r.maintenance
        .iter()
        .map(|w| {
            vec![
                w.opd
                    .clone()
                    .unwrap_or_else(|| if en { "all OPD" } else { "semua OPD" }.to_string()),
                w.group.as_deref().map_or_else(
                    || if en { "all groups" } else { "semua kelompok" }.to_string(),
                    |g| group_label(g, l),
                ),
                format!(
                    "{} – {}",
                    date_time(w.from_ms, off, z, l),
                    date_time(w.to_ms, off, z, l)
                ),
                w.reason.clone(),
                w.recorded_by.clone(),
                date_time(w.recorded_at_ms, off, z, l),
                retroactive_mark(w.retroactive, l).to_string(),
            ]
        })
        .collect()
}

/// "retroaktif" / "retroactive", or empty.
pub fn retroactive_mark(retroactive: bool, l: Lang) -> &'static str {
    match (retroactive, l) {
        (false, _) => "",
        (true, Lang::En) => "retroactive",
        (true, Lang::Id) => "retroaktif",
    }
}

/// CSV block (after the main table): a blank line, a header row whose first
/// column is `section`, then one row per window; times RFC 3339 in the
/// report's zone.
pub fn csv(r: &Report, s: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "\nsection,opd,group,from,to,reason,recorded_by,recorded_at,retroactive"
    );
    let t = |ms| super::render::rfc3339(ms, r.meta.utc_offset_minutes);
    for w in &r.maintenance {
        let _ = writeln!(
            s,
            "maintenance,{},{},{},{},{},{},{},{}",
            super::render::csv_field(w.opd.as_deref().unwrap_or("*")),
            super::render::csv_field(w.group.as_deref().unwrap_or("*")),
            t(w.from_ms),
            t(w.to_ms),
            super::render::csv_field(&w.reason),
            super::render::csv_field(&w.recorded_by),
            t(w.recorded_at_ms),
            w.retroactive
        );
    }
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
