//! Report and rollup cost on PostgreSQL at (scaled) national size, printed
//! as figures (not assertions): OPDS offices, one agent each, 20 targets
//! (4 per group) probed every 30 s for DAYS local days, stored through the
//! ingest path (`store_batches`, 8 batches of 500 per transaction, as the
//! writer groups queued batches); then the rollup of every OPD-hour from raw
//! results, and the report for one OPD and for every OPD over those days.
//!
//! `PANTAU_BENCH_PG_URL=postgres://...` runs it on that database (for
//! production settings: `fsync = on`); without it, on a fresh database of the
//! test server (`fsync = off`). `PANTAU_BENCH_OPDS` (default 100) and
//! `PANTAU_BENCH_DAYS` (default 1) scale it.
//!
//! `cargo bench -p pantau-collector --features conformance --bench pg_national`

use std::time::Instant;

use pantau_collector::config::Display;
use pantau_collector::model::{
    AgentIdentity, Group, HelloInfo, Outcome, ProbeKind, ResultRow, TargetDecl,
};
use pantau_collector::report::rollup::{self, DAY_MS};
use pantau_collector::report::{Lang, Request, Settings, assemble};
use pantau_collector::store::postgres::{PgStore, testserver};
use pantau_collector::store::{self, IncomingBatch, Store};

const TARGETS: usize = 20;
const INTERVAL_MS: i64 = 30_000;
const BATCH: usize = 500;
const PER_TX: usize = 8;
const GROUPS: [Group; 5] = [
    Group::Intranet,
    Group::Internet,
    Group::Datacenter,
    Group::Jip,
    Group::App,
];

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn who(o: usize) -> AgentIdentity {
    AgentIdentity {
        agent_id: format!("agent-{o:04}"),
        opd_id: format!("opd-{o:04}"),
    }
}

fn targets() -> Vec<TargetDecl> {
    (0..TARGETS)
        .map(|t| TargetDecl {
            id: format!("t{t:02}"),
            group: GROUPS[t % 5],
            kind: if t % 2 == 0 {
                ProbeKind::Icmp
            } else {
                ProbeKind::Tcp
            },
            address: format!("10.0.0.{}", t + 1),
            label: String::new(),
            interval_ms: INTERVAL_MS as u64,
            timeout_ms: 5_000,
        })
        .collect()
}

/// One OPD's results of one day from `day_ms`, seqs from `first_seq`: one
/// target in 40 down for an hour at 10:00.
fn day_rows(decl: &[TargetDecl], day_ms: i64, first_seq: u64) -> Vec<ResultRow> {
    let rounds = DAY_MS / INTERVAL_MS;
    let mut rows = Vec::with_capacity(rounds as usize * decl.len());
    for k in 0..rounds {
        let at = day_ms + k * INTERVAL_MS;
        for (i, t) in decl.iter().enumerate() {
            let seq = first_seq + rows.len() as u64;
            let down = i == 3 && (10 * 120..11 * 120).contains(&k);
            let icmp = t.kind == ProbeKind::Icmp;
            let ms = 2.0 + ((k as usize * 7 + i * 13) % 40) as f64;
            rows.push(ResultRow {
                epoch: 1,
                seq,
                target_id: t.id.clone(),
                group: t.group.to_string(),
                kind: t.kind.into(),
                observed_at_ms: at,
                outcome: if down { Outcome::Timeout } else { Outcome::Ok },
                detail: String::new(),
                value_ms: (!down).then_some(ms),
                sent: icmp.then_some(5),
                received: icmp.then_some(if down { 0 } else { 5 }),
                data: if icmp && !down {
                    let us = (1000.0 * ms) as u64;
                    serde_json::json!({"samples_us": [us, us, us, us, us]})
                } else {
                    serde_json::json!({})
                },
                late: false,
                clock_flag: None,
                agent_time_ms: at,
                clock_correction_ms: None,
            });
        }
    }
    rows
}

fn prepare(s: &dyn Store, opds: usize, decl: &[TargetDecl]) {
    for o in 0..opds {
        let w = who(o);
        s.add_opd(&w.opd_id, &format!("Perangkat Daerah {o}"))
            .expect("opd");
        s.add_agent(&w.agent_id, &w.opd_id, &[(o % 250) as u8 + 1; 32])
            .expect("agent");
        let hello = HelloInfo {
            version: "bench".into(),
            config_hash: "x".into(),
            hostname: "h".into(),
            epoch: 1,
            agent_time_ms: None,
            targets: decl.to_vec(),
        };
        s.hello(&w, &hello, None, None, store::now_ms())
            .expect("hello");
    }
}

/// Store `days` days of every OPD through `store_batches`; results/s.
fn load(s: &dyn Store, opds: usize, days: i64, day0: i64, decl: &[TargetDecl]) -> (u64, f64) {
    let ids: Vec<AgentIdentity> = (0..opds).map(who).collect();
    let mut total = 0u64;
    let started = Instant::now();
    for d in 0..days {
        let per_day = (DAY_MS / INTERVAL_MS) as u64 * TARGETS as u64;
        let rows: Vec<Vec<ResultRow>> = (0..opds)
            .map(|_| day_rows(decl, day0 + d * DAY_MS, 1 + d as u64 * per_day))
            .collect();
        let mut queue: Vec<IncomingBatch<'_>> = Vec::new();
        for k in 0..(per_day as usize).div_ceil(BATCH) {
            for (o, r) in rows.iter().enumerate() {
                let end = ((k + 1) * BATCH).min(r.len());
                queue.push(IncomingBatch {
                    who: &ids[o],
                    rows: &r[k * BATCH..end],
                    peer: None,
                });
            }
        }
        for group in queue.chunks(PER_TX) {
            let out = s.store_batches(group, store::now_ms()).expect("store");
            total += out.iter().map(|o| o.new as u64).sum::<u64>();
        }
        println!(
            "  day {} loaded: {total} results so far, {:.0} s",
            d + 1,
            started.elapsed().as_secs_f64()
        );
    }
    (total, total as f64 / started.elapsed().as_secs_f64())
}

fn main() {
    let opds = env_or("PANTAU_BENCH_OPDS", 100);
    let days = env_or("PANTAU_BENCH_DAYS", 1) as i64;
    let (url, server) = match std::env::var("PANTAU_BENCH_PG_URL") {
        Ok(u) => (u, "the given server"),
        Err(_) => (
            testserver::server().fresh_database(),
            "the test server (fsync=off)",
        ),
    };
    let pg = PgStore::open(&url).expect("PostgreSQL store");
    let s = Settings::new(&Display::default());
    let decl = targets();
    prepare(&pg, opds, &decl);
    // Whole local days that ended before now.
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Days::new(days as u64 + 1);
    let day0 = s.day_start(from);
    println!(
        "pg_national on {server}: {opds} OPD x {TARGETS} targets at 30 s, {days} day(s) = {} results",
        opds as i64 * TARGETS as i64 * (DAY_MS / INTERVAL_MS) * days
    );
    let (n, rate) = load(&pg, opds, days, day0, &decl);
    println!("load: {n} results through store_batches at {rate:.0} results/s");

    let t = Instant::now();
    let hours = rollup::refresh(&pg, &s.rules, s.utc_offset_minutes).expect("rollup");
    let el = t.elapsed().as_secs_f64();
    println!(
        "rollup: {hours} OPD-hours from {n} raw results in {el:.1} s = {:.1} s per day of data ({:.0} results/s)",
        el / days as f64,
        n as f64 / el
    );

    for (what, opd) in [
        ("one OPD", Some(who(0).opd_id)),
        ("every OPD", None::<String>),
    ] {
        for round in 0..2 {
            let req = Request {
                opd: opd.clone(),
                from,
                to: from + chrono::Days::new(days as u64 - 1),
                number: "BENCH/NASIONAL".into(),
                issued_ms: store::now_ms(),
                lang: Lang::Id,
                business_hours: false,
                compare: None,
            };
            let t = Instant::now();
            let r = store::report::snapshot(&pg, |c| assemble(c, &s, &req)).expect("report");
            println!(
                "report ({what}), round {round}: {} OPD, {} incidents, {days} day(s): assemble {:.3} s",
                r.opds.len(),
                r.incidents.len(),
                t.elapsed().as_secs_f64()
            );
        }
    }
    sizes(&url, n);
}

/// Bytes on disk: results (raw rows, identities, indexes), rollups, all.
fn sizes(url: &str, n: u64) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect for sizes");
    let sum = |c: &mut postgres::Client, like: &str| -> i64 {
        c.query_one(
            "SELECT COALESCE(SUM(pg_total_relation_size(oid)), 0)::bigint FROM pg_class
             WHERE relkind = 'r' AND relname LIKE $1",
            &[&like],
        )
        .expect("relation sizes")
        .get(0)
    };
    let raw = sum(&mut c, "result%");
    let rolled = sum(&mut c, "rollup%");
    let all: i64 = c
        .query_one("SELECT pg_database_size(current_database())", &[])
        .expect("database size")
        .get(0);
    println!(
        "sizes: results {} MB = {:.0} bytes per result (rows, identities, indexes); rollups {} MB = {:.0} bytes per OPD-day; database {} MB",
        raw / 1_000_000,
        raw as f64 / n as f64,
        rolled / 1_000_000,
        rolled as f64 / (n as f64 / (TARGETS as f64 * (DAY_MS / INTERVAL_MS) as f64)),
        all / 1_000_000
    );
}
