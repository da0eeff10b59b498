//! The rule set the rollups were built with: recorded on every change, so
//! that a change of thresholds or composites rebuilds what raw results still
//! back, and a report over older rollups names the rules they carry.

use rusqlite::{Connection, OptionalExtension, params};

use super::rules::RuleSet;
use super::sql;
use crate::store::StoreError;

/// Record `rules` as current. When the rollup-shaping parameters differ from
/// the last recorded ones, mark every hour with raw results dirty so the next
/// refresh rebuilds it under `rules`. Returns whether a rebuild was queued.
pub fn ensure(conn: &Connection, rules: &RuleSet) -> Result<bool, StoreError> {
    // The common case, a read only: the rules are already recorded.
    let current: Option<String> = conn
        .query_row(
            "SELECT version FROM rule_history ORDER BY rowid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read rule history"))?;
    if current.as_deref() == Some(rules.version.as_str()) {
        return Ok(false);
    }
    // Otherwise decide and record under the write lock, so two collectors'
    // tasks (or a report command beside the server) record a change once.
    let tx = crate::store::write_tx(conn).map_err(sql("begin rule change"))?;
    let conn: &Connection = &tx;
    let last: Option<(String, String)> = conn
        .query_row(
            "SELECT version, fingerprint FROM rule_history ORDER BY rowid DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql("read rule history"))?;
    let fingerprint = rules.rollup_fingerprint();
    let prev_fingerprint = match &last {
        Some((v, _)) if *v == rules.version => return Ok(false),
        Some((_, f)) => f.clone(),
        None => {
            let any: bool = conn
                .query_row("SELECT EXISTS(SELECT 1 FROM rollup_group_hour)", [], |r| {
                    r.get(0)
                })
                .map_err(sql("read rollups"))?;
            if any {
                // Rollups built before the history existed: the last rule
                // set without one (bandwidth and link results still counted).
                let before = RuleSet {
                    version: PRE_HISTORY_VERSION.into(),
                    ..RuleSet::default()
                };
                record(conn, &before, PRE_HISTORY_VERSION, None)?;
                PRE_HISTORY_VERSION.to_string()
            } else {
                fingerprint.clone()
            }
        }
    };
    let rebuild = prev_fingerprint != fingerprint;
    let mut rebuilt_from: Option<i64> = None;
    if rebuild {
        tx.execute(
            "INSERT OR IGNORE INTO rollup_dirty (opd_id, hour_ms)
             SELECT DISTINCT opd_id, (observed_at_ms / 3600000) * 3600000 FROM result
             WHERE observed_at_ms >= 0",
            [],
        )
        .map_err(sql("queue rollup rebuild"))?;
        // Without any raw result left, every rollup keeps the earlier rules.
        rebuilt_from = Some(
            tx.query_row("SELECT MIN(observed_at_ms) FROM result", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map_err(sql("read oldest result"))?
            .unwrap_or_else(crate::store::now_ms),
        );
        tracing::info!(
            version = %rules.version,
            "rule parameters changed: rebuilding rollups backed by raw results"
        );
    }
    record(conn, rules, &fingerprint, rebuilt_from)?;
    tx.commit().map_err(sql("commit rule change"))?;
    Ok(rebuild)
}

/// The rule version of rollups built before the history was kept.
const PRE_HISTORY_VERSION: &str = "pantau-rules/1";

fn record(
    conn: &Connection,
    rules: &RuleSet,
    fingerprint: &str,
    rebuilt_from: Option<i64>,
) -> Result<(), StoreError> {
    let text: String = rules
        .parameters()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    conn.execute(
        "INSERT INTO rule_history (version, fingerprint, parameters, applied_at_ms, rebuilt_from_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            rules.version,
            fingerprint,
            text,
            crate::store::now_ms(),
            rebuilt_from
        ],
    )
    .map_err(sql("record rule change"))?;
    Ok(())
}

/// Rule sets other than the current one that still shape rollups of
/// `[from_ms, to_ms)`: `(version, until_ms)` — rollups before `until_ms`
/// carry that version because their raw results were pruned before the change.
pub fn older_in(
    conn: &Connection,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT version, fingerprint, rebuilt_from_ms FROM rule_history ORDER BY rowid",
        )
        .map_err(sql("read rule history"))?;
    let rows: Vec<(String, String, Option<i64>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sql("read rule history"))?
        .collect::<Result<_, _>>()
        .map_err(sql("read rule history"))?;
    // Only hours that hold counted minutes matter; the hour containing the
    // oldest raw result was itself rebuilt.
    let mut old_hours = conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM rollup_group_hour WHERE hour_ms >= ?1 AND hour_ms < ?2
               AND up + degraded + down + unknown + maint > 0)",
        )
        .map_err(sql("read old rollups"))?;
    let mut out = Vec::new();
    let mut prev: Option<(String, String)> = None;
    for (version, fingerprint, rebuilt_from) in rows {
        if let (Some((pv, pf)), Some(until)) = (&prev, rebuilt_from) {
            let until = super::rollup::hour_of(until).min(to_ms);
            let any: bool = old_hours
                .query_row(params![from_ms, until], |r| r.get(0))
                .map_err(sql("read old rollups"))?;
            if *pf != fingerprint && any {
                out.push((pv.clone(), until));
            }
        }
        prev = Some((version, fingerprint));
    }
    Ok(out)
}
