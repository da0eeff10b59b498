//! The storage conformance suite run against PostgreSQL: the same checks
//! as SQLite, on a real server this test process starts (`testserver`).

use std::sync::Arc;

use super::testserver::server;
use super::{PgStore, migrate_to};
use crate::model::{AgentIdentity, HelloInfo, ResultRow, TargetDecl};
use crate::store::conformance::Fixture;
use crate::store::conformance::report;
use crate::store::{IncomingBatch, IngestStore, Op, Registry, Store};

/// A store on a new database with the current schema.
fn fresh() -> Fixture {
    let store = PgStore::open(&server().fresh_database()).expect("open store");
    Fixture {
        store: Arc::new(store),
        keep: Box::new(()),
    }
}

/// A database at the previous schema version holding the data
/// `previous_schema_data_survives` expects, then opened (migrated).
fn previous() -> Fixture {
    let url = server().empty_database();
    {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        migrate_to(&mut c, super::SCHEMA_VERSION - 1).expect("previous schema");
        c.batch_execute(
            "INSERT INTO opd (id, name, created_at_ms) VALUES ('old', 'Old OPD', 1000);
             INSERT INTO agent (id, opd_id, token_sha256, created_at_ms, version, last_hello_ms)
               VALUES ('old-1', 'old', '\\x0707070707070707070707070707070707070707070707070707070707070707',
                       1000, '0.0.9', 2000);
             INSERT INTO target (agent_id, id, grp, kind, address, label, interval_ms, timeout_ms,
                                 first_seen_ms, last_declared_ms)
               VALUES ('old-1', 'core', 'intranet', 'icmp', '10.0.0.1', 'Core', 30000, 5000, 2000, 2000);
             INSERT INTO result_identity (agent_id, epoch, seq, observed_at_ms)
               VALUES ('old-1', 1, 1, 60000);
             INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms,
                                 received_at_ms, outcome, detail, value_ms, sent, received, data,
                                 late, clock_flag)
               VALUES ('old-1', 1, 1, 'old', 'core', 'icmp', 60000, 61000, 'ok', '', 1.5, 5, 5,
                       '{\"samples_us\":[1500]}', FALSE, NULL);",
        )
        .expect("previous-schema data");
        let v: i32 = c
            .query_one("SELECT version FROM pantau_schema", &[])
            .expect("version")
            .get(0);
        assert_eq!(v as usize, super::SCHEMA_VERSION - 1);
    }
    let store = PgStore::open(&url).expect("migrate and open");
    Fixture {
        store: Arc::new(store),
        keep: Box::new(()),
    }
}

crate::store_conformance!(fresh: fresh(), previous_schema: previous());

/// The report checks' writes through the store traits, plus the one
/// declaration time only SQL can set.
struct Pg(PgStore);

fn who(opd: &str, agent: &str) -> AgentIdentity {
    AgentIdentity {
        agent_id: agent.into(),
        opd_id: opd.into(),
    }
}

impl report::Fixture for Pg {
    fn declare(&self, opd: &str, agent: &str, targets: &[TargetDecl], declared_ms: i64) {
        self.0.add_opd(opd, opd).expect("opd");
        self.0
            .add_agent(agent, opd, &crate::auth::digest(agent))
            .expect("agent");
        let hello = HelloInfo {
            version: "t".into(),
            config_hash: "x".into(),
            hostname: "h".into(),
            epoch: 1,
            agent_time_ms: None,
            targets: targets.to_vec(),
        };
        self.0
            .hello(&who(opd, agent), &hello, None, None, declared_ms)
            .expect("hello");
        self.0
            .write(|c| {
                c.db()
                    .execute(
                        "UPDATE target SET first_seen_ms = $1, last_declared_ms = $1 WHERE agent_id = $2",
                        &[&declared_ms, &agent],
                    )
                    .op("declare")
            })
            .expect("declare");
    }

    fn store(&self, opd: &str, agent: &str, rows: &[ResultRow]) {
        let w = who(opd, agent);
        let b = IncomingBatch {
            who: &w,
            rows,
            peer: None,
        };
        self.0.store_batches(&[b], 0).expect("store results");
    }
}

macro_rules! report_conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let s = Pg(PgStore::open(&server().fresh_database()).expect("open store"));
                report::$name(&s.0, &s);
            }
        )*
    };
}

report_conformance!(
    late_data_rebuilds_the_hour,
    results_during_a_rebuild_keep_the_hour_dirty,
    incidents_span_hours,
    capacity_hours_and_days,
    paths_follow_route_changes,
    rule_history_queues_rebuilds,
    admin_writes,
);

/// Every backend is a whole store.
#[allow(dead_code)]
fn is_store(s: PgStore) -> Arc<dyn Store> {
    Arc::new(s)
}

/// Retention drops whole day partitions (and their identities); rows
/// outside the day partitions (a clock far off, in the default partition)
/// go row by row; newer days stay.
#[test]
fn retention_drops_whole_day_partitions() {
    use crate::store::ApiRead;
    use crate::store::report::RollupStore;
    let s = Pg(PgStore::open(&server().fresh_database()).expect("open store"));
    let t = crate::model::TargetDecl {
        id: "core".into(),
        group: pantau_core::Group::Intranet,
        kind: crate::model::ProbeKind::Icmp,
        address: "10.0.0.1".into(),
        label: "Core".into(),
        interval_ms: 30_000,
        timeout_ms: 5_000,
    };
    report::Fixture::declare(&s, "dinkes", "a1", &[t], 0);
    let today = super::day_of(crate::store::now_ms());
    let old_day = today - 10 * super::DAY_MS;
    let at = |seq: u64, ms: i64| {
        let mut r = crate::store::conformance::core::row(1, seq);
        r.observed_at_ms = ms;
        r.agent_time_ms = ms;
        r
    };
    let rows = [
        at(1, 60_000),
        at(2, old_day + 1_000),
        at(3, old_day + 2_000),
        at(4, today + 1_000),
    ];
    report::Fixture::store(&s, "dinkes", "a1", &rows);
    let part = format!("result_d{}", old_day / super::DAY_MS);
    let exists = |name: &str| -> bool {
        let name = name.to_string();
        s.0.read(|c| {
            Ok(c.db()
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .op("partition exists")?
                .get(0))
        })
        .unwrap()
    };
    assert!(exists(&part), "a day partition was made for {part}");
    // A dirty hour keeps its day: nothing is pruned before it is rolled up.
    assert_eq!(s.0.prune_raw(today).unwrap(), 0);
    s.0.write(|c| {
        c.db()
            .execute("DELETE FROM rollup_dirty", &[])
            .op("rolled up")
    })
    .unwrap();
    assert_eq!(s.0.prune_raw(today).unwrap(), 3);
    assert!(!exists(&part), "the old day went as a whole partition");
    let left = s.0.results("a1", 0, i64::MAX, 100).unwrap();
    assert_eq!(left.iter().map(|r| r.seq).collect::<Vec<_>>(), [4]);
    // The pruned identities are gone with their rows, as in SQLite: a late
    // resend is stored again, in a partition made again.
    let w = who("dinkes", "a1");
    let again =
        s.0.store_batches(
            &[IncomingBatch {
                who: &w,
                rows: &rows[1..2],
                peer: None,
            }],
            0,
        )
        .unwrap();
    assert_eq!(again[0].new, 1);
    assert!(exists(&part));
}

fn audit_entry(action: &str) -> crate::store::audit::NewAuditEntry {
    crate::store::audit::NewAuditEntry {
        time_ms: 1_000,
        actor_kind: "cli-user".into(),
        actor_name: "root".into(),
        source: "cli:root@box".into(),
        action: action.into(),
        object: "dinkes".into(),
        before: serde_json::Value::Null,
        after: serde_json::json!({"name": "Dinas Kesehatan"}),
    }
}

/// The table refuses UPDATE, DELETE and TRUNCATE, as in SQLite.
#[test]
fn audit_log_refuses_update_delete_and_truncate() {
    use crate::store::AuditLog;
    let s = PgStore::open(&server().fresh_database()).expect("open store");
    s.append_audit(&audit_entry("opd.add")).unwrap();
    s.append_audit(&audit_entry("opd.contract")).unwrap();
    for sql in [
        "UPDATE audit_log SET after = 'null' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
        "TRUNCATE audit_log",
    ] {
        let e = s.write(|c| c.db().batch(sql).op("tamper")).unwrap_err();
        let text = match &e {
            crate::store::StoreError::Postgres { source, .. } => source
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_default(),
            other => other.to_string(),
        };
        assert!(text.contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(s.audit_head().unwrap(), 2);
}

/// Two collectors on one database appending at once still make one chain:
/// no seq twice, every prev_hash the hash before it.
#[test]
fn concurrent_appends_from_two_stores_form_one_chain() {
    use crate::store::AuditLog;
    use crate::store::audit::{AuditQuery, GENESIS};
    let url = server().fresh_database();
    let stores = [
        Arc::new(PgStore::open(&url).expect("open store")),
        Arc::new(PgStore::open(&url).expect("open store")),
    ];
    let threads: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = Arc::clone(s);
            std::thread::spawn(move || {
                for n in 0..20 {
                    s.append_audit(&audit_entry(&format!("t{i}.{n}"))).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let all = stores[0].audit_list(&AuditQuery::default()).unwrap();
    assert_eq!(all.len(), 40);
    let mut prev = GENESIS.to_string();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
        assert_eq!(e.prev_hash, prev);
        assert_eq!(e.hash, e.computed_hash());
        prev = e.hash.clone();
    }
}

/// Two collectors on one database: a batch still uncommitted on A while B
/// rebuilds its hour is not in B's read snapshot, and B's clearing of the
/// mark waits on A's bump of it and then leaves the hour dirty, so the
/// batch is never left out of the rollup with the hour marked clean: the
/// next run reads it.
#[test]
fn a_batch_uncommitted_on_another_collector_keeps_its_hour_dirty() {
    use crate::report::rollup;
    use crate::report::rules::RuleSet;
    use crate::store::conformance::report::{H0, group_minutes, minutes, target};
    use crate::store::report::snapshot;
    const HOUR: i64 = 3_600_000;
    let url = server().fresh_database();
    let a = Pg(PgStore::open(&url).expect("open A"));
    let b = Arc::new(PgStore::open(&url).expect("open B"));
    let web = target(
        "web",
        pantau_core::Group::Internet,
        crate::model::ProbeKind::Tcp,
    );
    report::Fixture::declare(&a, "o", "o-1", std::slice::from_ref(&web), H0);
    report::Fixture::store(&a, "o", "o-1", &minutes(&web, 1, 0..30, &[]));
    rollup::refresh_at(&*b, &RuleSet::default(), 480, H0 + HOUR + 60_000).expect("refresh");
    // The hour is dirty (committed) when A's next batch bumps its mark.
    report::Fixture::store(&a, "o", "o-1", &minutes(&web, 50, 30..40, &[]));
    let late = minutes(&web, 100, 40..60, &[]);
    let w = who("o", "o-1");
    let rebuild =
        a.0.write(|c| {
            c.tx(|db| {
                let batch = crate::store::ingest::IncomingBatch {
                    who: &w,
                    rows: &late,
                    peer: None,
                };
                super::ingest::store_all(db, &[batch], H0 + HOUR)?;
                let b = Arc::clone(&b);
                let h = std::thread::spawn(move || {
                    rollup::refresh_at(&*b, &RuleSet::default(), 480, H0 + HOUR + 60_000)
                });
                // B's clearing of the mark waits on this open batch's
                // bump of it (a row lock: B waits for A's transaction).
                let mut watch = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                loop {
                    let waiting: i64 = watch
                        .query_one(
                            "SELECT count(*) FROM pg_locks
                             WHERE locktype = 'transactionid' AND NOT granted",
                            &[],
                        )
                        .unwrap()
                        .get(0);
                    if waiting > 0 {
                        break;
                    }
                    assert!(
                        !h.is_finished() && std::time::Instant::now() < deadline,
                        "B rebuilt the hour without waiting for A's open batch"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Ok(h)
            })
        })
        .expect("A's batch commits");
    rebuild.join().unwrap().expect("B's rebuild");
    assert_eq!(
        group_minutes(&*b, H0),
        vec![("internet".into(), "U".repeat(40) + &"-".repeat(20))],
        "B's rollup is the one of its snapshot, before A's batch"
    );
    assert_eq!(
        snapshot(&*b, |r| r.pending_hours(None)).expect("pending"),
        1,
        "A's batch keeps its hour dirty"
    );
    rollup::refresh_at(&*b, &RuleSet::default(), 480, H0 + HOUR + 60_000).expect("refresh");
    assert_eq!(
        group_minutes(&*b, H0),
        vec![("internet".into(), "U".repeat(60))],
        "the next run read A's batch"
    );
    assert_eq!(
        snapshot(&*b, |r| r.pending_hours(None)).expect("pending"),
        0
    );
}

/// Two collectors starting at once just after midnight UTC both create the
/// new day's partition: both succeed (the second used to fail with
/// "relation result_d... already exists" and the collector refused to
/// start), and the day ends up with one attached partition.
#[test]
fn two_stores_creating_the_same_day_partition_at_once_both_succeed() {
    let url = server().fresh_database();
    let a = Arc::new(PgStore::open(&url).expect("open a"));
    let b = Arc::new(PgStore::open(&url).expect("open b"));
    let today = crate::store::now_ms().div_euclid(super::DAY_MS) * super::DAY_MS;
    let days: Vec<i64> = (2..22).map(|n| today - n * super::DAY_MS).collect();
    let gate = Arc::new(std::sync::Barrier::new(2));
    let run = |s: Arc<PgStore>| {
        let (gate, days) = (Arc::clone(&gate), days.clone());
        std::thread::spawn(move || {
            for d in days {
                gate.wait();
                s.ensure_days([d])?;
            }
            Ok::<(), crate::store::StoreError>(())
        })
    };
    let (ta, tb) = (run(Arc::clone(&a)), run(Arc::clone(&b)));
    ta.join()
        .unwrap()
        .expect("collector a makes the partitions");
    tb.join()
        .unwrap()
        .expect("collector b makes the partitions");
    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let attached: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = 'result'",
            &[],
        )
        .unwrap()
        .get(0);
    // 20 days, today and tomorrow (made at open), and the default.
    assert_eq!(attached, 20 + 2 + 1);
}
