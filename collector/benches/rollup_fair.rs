//! Rollup cost under the fairness attacks of issue 12, printed as figures
//! (not assertions): one OPD-hour with 8,000 target declarations (16 Hellos
//! of 500 new ids, one result each), and a declaration stored with an
//! interval of 2^52 ms (from before intervals were bounded) holding one
//! result. Each dirty OPD-hour is one write transaction, so the time per
//! hour is the write-lock hold.
//!
//! `cargo bench -p pantau-collector --bench rollup_fair`

use std::time::Instant;

use pantau_collector::report::rollup;
use pantau_collector::report::rules::RuleSet;
use pantau_collector::store;
use rusqlite::params;

const H0: i64 = 1_794_844_800_000;
const HOUR: i64 = 3_600_000;

fn main() {
    // 8,000 declarations, 500 of them current.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn = store::open(dir.path()).expect("store");
    store::add_opd(&conn, "b", "B").expect("opd");
    store::add_agent(&conn, "b-1", "b", &[1; 32]).expect("agent");
    let tx = conn.transaction().expect("tx");
    for round in 0..16i64 {
        for i in 0..500 {
            tx.execute(
                "INSERT INTO target (agent_id, id, grp, kind, address, label, interval_ms, timeout_ms,
                                     first_seen_ms, last_declared_ms)
                 VALUES ('b-1', ?1, 'app', 'tcp', 'x:1', '', 1000, 500, ?2, ?2)",
                params![format!("t{round}-{i}"), H0 + round * 1000],
            )
            .expect("target");
        }
        tx.execute(
            "INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms,
                                 received_at_ms, outcome, detail, value_ms, data)
             VALUES ('b-1', 9, ?1, 'b', ?2, 'tcp', ?3, 0, 'ok', '', 1.0, '{}')",
            params![round + 1, format!("t{round}-0"), H0 + round * 1000],
        )
        .expect("result");
    }
    tx.execute(
        "INSERT INTO rollup_dirty (opd_id, hour_ms) VALUES ('b', ?1)",
        [H0],
    )
    .expect("dirty");
    tx.commit().expect("commit");
    drop(conn);
    let st = store::SqliteStore::open(dir.path()).expect("store");
    let t = Instant::now();
    let n = rollup::refresh_at(&st, &RuleSet::default(), 480, H0 + 30 * 60_000).expect("refresh");
    println!(
        "rollup_fair: 8,000 declarations: {n} OPD-hour rebuilt in {:.3} s (one write transaction)",
        t.elapsed().as_secs_f64()
    );

    // The interval bomb, stored directly: the Hello refuses it now.
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = store::open(dir.path()).expect("store");
    store::add_opd(&conn, "b", "B").expect("opd");
    store::add_agent(&conn, "b-1", "b", &[1; 32]).expect("agent");
    conn.execute_batch(&format!(
        "INSERT INTO target (agent_id, id, grp, kind, address, label, interval_ms, timeout_ms,
                             first_seen_ms, last_declared_ms)
           VALUES ('b-1', 'bomb', 'app', 'tcp', 'x:1', '', {}, 500, {H0}, {H0});
         INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms,
                             received_at_ms, outcome, detail, value_ms, data)
           VALUES ('b-1', 9, 1, 'b', 'bomb', 'tcp', {}, 0, 'ok', '', 1.0, '{{}}');
         INSERT INTO rollup_dirty (opd_id, hour_ms) VALUES ('b', {H0});",
        1_i64 << 52,
        H0 + 60_000
    ))
    .expect("bomb");
    drop(conn);
    let st = store::SqliteStore::open(dir.path()).expect("store");
    let t = Instant::now();
    let n = rollup::refresh_at(&st, &RuleSet::default(), 480, H0 + 26 * HOUR).expect("refresh");
    let el = t.elapsed().as_secs_f64();
    println!(
        "rollup_fair: interval 2^52 ms: {n} OPD-hours rebuilt in {el:.3} s ({:.1} ms per write \
         transaction; before: {} loop steps per result per hour)",
        el * 1000.0 / n as f64,
        (1_u64 << 52) / 60_000
    );
}
