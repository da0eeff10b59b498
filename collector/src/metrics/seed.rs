//! Series from the database at collector start.
//!
//! Without this, an agent that died while the collector was down would have
//! no series after the restart, and `PantauAgentSilent` (which reads
//! `pantau_agent_last_seen_timestamp_seconds`) would never fire for it.

use super::Metrics;
use crate::store::{Registry, StoreError};

/// How far back from an agent's newest observation its last stored result
/// is looked for: bounds the scan, and a replay stores the newest results last.
const LAST_SEEN_LOOKBACK_MS: i64 = 86_400_000;

/// Seed every OPD's and agent's series from the store; returns the number
/// of agents seeded.
pub fn from_store(m: &Metrics, store: &dyn Registry) -> Result<usize, StoreError> {
    for o in &store.opd_ids()? {
        m.seed_opd(o);
    }
    let agents = store.agent_series(LAST_SEEN_LOOKBACK_MS)?;
    for a in &agents {
        m.seed_agent(&a.who, a.last_seen_ms, a.clock_offset_ms);
        m.declare_targets(&a.who, a.targets.iter().map(String::as_str));
    }
    Ok(agents.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentIdentity, HelloInfo, ResultRow};
    use crate::model::{Outcome, ProbeKind};

    #[test]
    fn agents_and_opds_from_the_store_have_series_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::open(dir.path()).unwrap();
        crate::store::add_opd(&conn, "dinkes", "Dinas Kesehatan").unwrap();
        crate::store::add_opd(&conn, "dishub", "Dinas Perhubungan").unwrap();
        crate::store::add_agent(&conn, "dinkes-1", "dinkes", &crate::auth::digest("t1")).unwrap();
        crate::store::add_agent(&conn, "never", "dishub", &crate::auth::digest("t2")).unwrap();
        let who = AgentIdentity {
            agent_id: "dinkes-1".into(),
            opd_id: "dinkes".into(),
        };
        let hello = HelloInfo {
            version: "t".into(),
            config_hash: "x".into(),
            hostname: "h".into(),
            epoch: 1,
            agent_time_ms: None,
            targets: vec![],
        };
        crate::store::record_hello(&mut conn, &who, &hello, Some(-3_500)).unwrap();
        let row = ResultRow {
            epoch: 1,
            seq: 1,
            target_id: "core".into(),
            group: "intranet".into(),
            kind: ProbeKind::Icmp.into(),
            observed_at_ms: 1_000_000,
            outcome: Outcome::Ok,
            detail: String::new(),
            value_ms: Some(1.0),
            sent: Some(1),
            received: Some(1),
            data: serde_json::json!({}),
            late: false,
            clock_flag: None,
            agent_time_ms: 1_000_000,
            clock_correction_ms: None,
        };
        let tx = conn.transaction().unwrap();
        crate::store::insert_results(&tx, &who, &[row], 1_234_567).unwrap();
        tx.commit().unwrap();

        let m = Metrics::new();
        drop(conn);
        let store = crate::store::SqliteStore::open(dir.path()).unwrap();
        assert_eq!(from_store(&m, &store).unwrap(), 2);
        let text = m.render();
        for line in [
            r#"pantau_agent_connected{agent="dinkes-1",opd="dinkes"} 0"#,
            r#"pantau_agent_connected{agent="never",opd="dishub"} 0"#,
            r#"pantau_agent_last_seen_timestamp_seconds{agent="dinkes-1",opd="dinkes"} 1234.567"#,
            r#"pantau_agent_clock_offset_seconds{agent="dinkes-1",opd="dinkes"} -3.5"#,
            r#"pantau_ingest_results_total{opd="dishub"} 0"#,
            r#"pantau_ingest_clock_flagged_results_total{flag="future",opd="dinkes"} 0"#,
            r#"pantau_store_errors_total{op="batch"} 0"#,
            r#"pantau_ingest_rejected_total{reason="unauthenticated"} 0"#,
            r#"pantau_metrics_series_refused_total{agent="never",opd="dishub"} 0"#,
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "{line} missing:\n{text}"
            );
        }
        // An agent that never stored a result has no last-seen time to report.
        assert!(
            !text.contains(r#"pantau_agent_last_seen_timestamp_seconds{agent="never""#),
            "{text}"
        );
    }
}
