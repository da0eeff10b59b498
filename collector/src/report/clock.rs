//! Agents whose clocks could not be trusted during a report's period: results
//! placed by the collector's offset estimate, and results left out because
//! their time was impossible. Listed in every report so an evaluator sees
//! which minutes rest on a corrected clock.

use serde::Serialize;

use crate::store::StoreError;
use crate::store::report::ReportRead;

/// One agent's clock disclosure for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockNote {
    /// OPD.
    pub opd: String,
    /// Agent.
    pub agent: String,
    /// Results placed by the collector's offset estimate.
    pub corrected_results: i64,
    /// Distinct minutes holding such results.
    pub corrected_minutes: i64,
    /// Smallest and largest offset applied (collector minus agent clock), ms.
    pub correction_ms: Option<(i64, i64)>,
    /// Results not counted at all: agent time far in the future or past.
    pub excluded_results: i64,
}

/// Clock notes of the agents of `opd` (or all) for results placed in
/// `[from_ms, until_ms)`.
pub fn notes(
    r: &dyn ReportRead,
    opd: Option<&str>,
    from_ms: i64,
    until_ms: i64,
) -> Result<Vec<ClockNote>, StoreError> {
    Ok(r.clock_rows(opd, from_ms, until_ms)?
        .into_iter()
        .map(|c| ClockNote {
            opd: c.opd,
            agent: c.agent,
            corrected_results: c.corrected_results,
            corrected_minutes: c.corrected_minutes,
            correction_ms: c.min_correction_ms.zip(c.max_correction_ms),
            excluded_results: c.excluded_results,
        })
        .collect())
}
