//! The rule set the rollups were built with: recorded on every change, so
//! that a change of thresholds or composites rebuilds what raw results still
//! back, and a report over older rollups names the rules they carry.

use super::rules::RuleSet;
use super::time::hour_of;
use crate::store::StoreError;
use crate::store::report::{ReportRead, RollupStore, RuleRecord};

/// Record `rules` as current. When the rollup-shaping parameters differ from
/// the last recorded ones, mark every hour with raw results dirty so the next
/// refresh rebuilds it under `rules`. Returns whether a rebuild was queued.
pub fn ensure(store: &(impl RollupStore + ?Sized), rules: &RuleSet) -> Result<bool, StoreError> {
    // The common case, a read only: the rules are already recorded.
    if store.current_rules()?.as_deref() == Some(rules.version.as_str()) {
        return Ok(false);
    }
    // Rollups built before the history existed: the last rule set without
    // one (bandwidth and link results still counted).
    let before = RuleSet {
        version: PRE_HISTORY_VERSION.into(),
        ..RuleSet::default()
    };
    let pre_history = RuleRecord {
        version: PRE_HISTORY_VERSION.into(),
        fingerprint: PRE_HISTORY_VERSION.into(),
        parameters: parameters_text(&before),
    };
    let current = RuleRecord {
        version: rules.version.clone(),
        fingerprint: rules.rollup_fingerprint(),
        parameters: parameters_text(rules),
    };
    let rebuild = store.ensure_rules(&current, &pre_history)?;
    if rebuild {
        tracing::info!(
            version = %rules.version,
            "rule parameters changed: rebuilding rollups backed by raw results"
        );
    }
    Ok(rebuild)
}

/// The rule version of rollups built before the history was kept.
const PRE_HISTORY_VERSION: &str = "pantau-rules/1";

fn parameters_text(rules: &RuleSet) -> String {
    rules
        .parameters()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

/// Rule sets other than the current one that still shape rollups of
/// `[from_ms, to_ms)`: `(version, until_ms)` — rollups before `until_ms`
/// carry that version because their raw results were pruned before the change.
pub fn older_in(
    r: &dyn ReportRead,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut out = Vec::new();
    let mut prev: Option<(String, String)> = None;
    for row in r.rule_history()? {
        if let (Some((pv, pf)), Some(until)) = (&prev, row.rebuilt_from_ms) {
            // Only hours that hold counted minutes matter; the hour
            // containing the oldest raw result was itself rebuilt.
            let until = hour_of(until).min(to_ms);
            if *pf != row.fingerprint && r.counted_hours(from_ms, until)? {
                out.push((pv.clone(), until));
            }
        }
        prev = Some((row.version, row.fingerprint));
    }
    Ok(out)
}
