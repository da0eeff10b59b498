//! Maintenance disclosure: the recorded maintenance windows that shaped a
//! report's figures (their minutes are excluded from availability), listed
//! in every format so an evaluator sees what was excluded, by whom, and
//! whether it was recorded only after it had started (*retroaktif*).

use serde::Serialize;

use super::render::{date_time, group_label};
use super::{Lang, Report};
use crate::store::StoreError;
use crate::store::report::ReportRead;

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
    r: &dyn ReportRead,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<MaintenanceWindow>, StoreError> {
    Ok(r.maintenance(opd, Some((from_ms, to_ms)))?
        .into_iter()
        .map(|w| MaintenanceWindow {
            retroactive: w.recorded_at_ms > w.from_ms,
            opd: w.opd,
            group: w.group,
            from_ms: w.from_ms,
            to_ms: w.to_ms,
            reason: w.reason,
            recorded_by: w.recorded_by,
            recorded_at_ms: w.recorded_at_ms,
        })
        .collect())
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
