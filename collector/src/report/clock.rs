//! Agents whose clocks could not be trusted during a report's period: results
//! placed by the collector's offset estimate, and results left out because
//! their time was impossible. Listed in every report so an evaluator sees
//! which minutes rest on a corrected clock.

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::store::StoreError;

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
    conn: &Connection,
    opd: Option<&str>,
    from_ms: i64,
    until_ms: i64,
) -> Result<Vec<ClockNote>, StoreError> {
    let mut st = conn
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
        .map_err(|source| StoreError::Sqlite {
            op: "prepare clock notes",
            source,
        })?;
    st.query_map(params![from_ms, until_ms, opd], |r| {
        let lo: Option<i64> = r.get(4)?;
        let hi: Option<i64> = r.get(5)?;
        Ok(ClockNote {
            opd: r.get(0)?,
            agent: r.get(1)?,
            corrected_results: r.get(2)?,
            corrected_minutes: r.get(3)?,
            correction_ms: lo.zip(hi),
            excluded_results: r.get(6)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(|source| StoreError::Sqlite {
        op: "clock notes",
        source,
    })
}
