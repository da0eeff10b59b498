//! Maintenance disclosure: the recorded maintenance windows that shaped a
//! report's figures (their minutes are excluded from availability), listed
//! in every format so an evaluator sees what was excluded, by whom, and
//! whether it was recorded only after it had started (*retroaktif*).

use serde::Serialize;

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
