//! The conformance suite run against SQLite.

use rusqlite::params;

use super::report::{self, Fixture};
use crate::model::{AgentIdentity, HelloInfo, ResultRow, TargetDecl};
use crate::store::{self, Op, SqliteStore};

struct Sqlite {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

fn fresh() -> Sqlite {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    Sqlite { _dir: dir, store }
}

fn who(opd: &str, agent: &str) -> AgentIdentity {
    AgentIdentity {
        agent_id: agent.into(),
        opd_id: opd.into(),
    }
}

impl Fixture for Sqlite {
    fn declare(&self, opd: &str, agent: &str, targets: &[TargetDecl], declared_ms: i64) {
        self.store
            .write(|c| {
                store::add_opd(c, opd, opd)?;
                store::add_agent(c, agent, opd, &crate::auth::digest(agent))?;
                let hello = HelloInfo {
                    version: "t".into(),
                    config_hash: "x".into(),
                    hostname: "h".into(),
                    epoch: 1,
                    agent_time_ms: None,
                    targets: targets.to_vec(),
                };
                store::record_hello(c, &who(opd, agent), &hello, None)?;
                c.execute(
                    "UPDATE target SET first_seen_ms = ?1, last_declared_ms = ?1 WHERE agent_id = ?2",
                    params![declared_ms, agent],
                )
                .op("declare")?;
                Ok(())
            })
            .expect("declare");
    }

    fn store(&self, opd: &str, agent: &str, rows: &[ResultRow]) {
        self.store
            .write(|c| {
                let tx = c.transaction().op("begin")?;
                store::store_results(&tx, &who(opd, agent), rows, 0, None)?;
                store::sqlite::rollup::mark_dirty(&tx, opd, rows)?;
                tx.commit().op("commit")
            })
            .expect("store results");
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let s = fresh();
                report::$name(&s.store, &s);
            }
        )*
    };
}

conformance!(
    late_data_rebuilds_the_hour,
    results_during_a_rebuild_keep_the_hour_dirty,
    incidents_span_hours,
    capacity_hours_and_days,
    paths_follow_route_changes,
    rule_history_queues_rebuilds,
    admin_writes,
);

/// A long catch-up asks before every chunk of dirty hours after the first
/// (the rollup task renews its lease there) and stops when told to, the
/// rest left dirty for the next holder.
#[test]
fn refresh_while_stops_between_chunks() {
    use crate::report::rollup;
    use crate::report::rules::RuleSet;
    use crate::store::report::snapshot;
    let s = fresh();
    let core = report::target(
        "core",
        pantau_core::Group::Intranet,
        crate::model::ProbeKind::Icmp,
    );
    s.declare("o", "o-1", &[core], report::H0);
    let rows: Vec<ResultRow> = (1..=250u64)
        .map(|seq| {
            let mut r = super::core::row(1, seq);
            r.observed_at_ms = report::H0 + seq as i64 * 3_600_000;
            r.agent_time_ms = r.observed_at_ms;
            r
        })
        .collect();
    s.store("o", "o-1", &rows);
    let pending = || snapshot(&s.store, |r| r.pending_hours(None)).expect("pending");
    assert_eq!(pending(), 250);
    let now = report::H0 + 300 * 3_600_000;
    let mut asked = 0;
    let out = rollup::refresh_while(&s.store, &RuleSet::default(), 480, now, || {
        asked += 1;
        false
    })
    .expect("refresh");
    assert_eq!((out, asked), (None, 1));
    // The rest (the hours with results, and those the watermark moved
    // over) waits for the next run.
    let left = pending();
    assert!(left > 0, "stopped after the first chunk");
    assert_eq!(
        rollup::refresh_at(&s.store, &RuleSet::default(), 480, now).unwrap() as i64,
        left
    );
    assert_eq!(pending(), 0);
}
