//! Ingest throughput of `IngestStore::store_batches` on PostgreSQL, with
//! SQLite on the same workload for reference, printed as figures (not
//! assertions). 20 agents of 50 ICMP targets each send 10 000 results
//! apiece (200 000 in all) in batches of 500, as agents flush them; the
//! writer commits one batch per transaction or, when batches queue up,
//! several in one (here 4, 16 and 64, the writer's most).
//!
//! `PANTAU_BENCH_PG_URL=postgres://user@host:port/db` runs it on that
//! server (for production settings: `fsync = on`), in a new database per
//! run made from that connection and dropped after; without it, on the
//! test server (`store::postgres::testserver`, Debian's `postgresql`, on
//! loopback, `fsync=off`), so the figure is the collector's and the
//! server's work without disk flushes.
//!
//! `cargo bench -p pantau-collector --features conformance --bench pg_ingest`

use std::time::Instant;

use pantau_collector::model::{AgentIdentity, Group, HelloInfo, ProbeKind, ResultRow, TargetDecl};
use pantau_collector::store::conformance::core::row;
use pantau_collector::store::postgres::{PgStore, testserver};
use pantau_collector::store::{IncomingBatch, SqliteStore, Store};

const AGENTS: usize = 20;
const TARGETS: u64 = 50;
const PER_AGENT: u64 = 10_000;
const BATCH: usize = 500;
const INTERVAL_MS: i64 = 30_000;

fn who(a: usize) -> AgentIdentity {
    AgentIdentity {
        agent_id: format!("bench-{a}"),
        opd_id: format!("opd-{}", a % 10),
    }
}

/// Register the OPDs and agents and declare their targets.
fn prepare(s: &dyn Store) {
    for o in 0..10 {
        s.add_opd(&format!("opd-{o}"), &format!("OPD {o}"))
            .expect("opd");
    }
    let targets: Vec<TargetDecl> = (0..TARGETS)
        .map(|t| TargetDecl {
            id: format!("t{t}"),
            group: Group::Intranet,
            kind: ProbeKind::Icmp,
            address: format!("10.0.{}.{}", t / 200, t % 200 + 1),
            label: String::new(),
            interval_ms: INTERVAL_MS as u64,
            timeout_ms: 5_000,
        })
        .collect();
    for a in 0..AGENTS {
        let w = who(a);
        s.add_agent(&w.agent_id, &w.opd_id, &[a as u8 + 1; 32])
            .expect("agent");
        let hello = HelloInfo {
            version: "bench".into(),
            config_hash: "x".into(),
            hostname: "h".into(),
            epoch: 1,
            agent_time_ms: None,
            targets: targets.clone(),
        };
        s.hello(&w, &hello, None, None, pantau_collector::store::now_ms())
            .expect("hello");
    }
}

/// Every agent's results, in order: target `seq % 50` every 30 s, ending
/// an hour ago.
fn rows(start_ms: i64) -> Vec<Vec<ResultRow>> {
    (0..AGENTS)
        .map(|_| {
            (1..=PER_AGENT)
                .map(|seq| {
                    let mut r = row(1, seq);
                    r.target_id = format!("t{}", seq % TARGETS);
                    r.observed_at_ms = start_ms + (seq / TARGETS) as i64 * INTERVAL_MS;
                    r.agent_time_ms = r.observed_at_ms;
                    r.value_ms = Some(1.0 + (seq % 17) as f64 * 0.25);
                    r
                })
                .collect()
        })
        .collect()
}

/// Store everything, `per_tx` batches of [`BATCH`] per transaction;
/// results per second.
fn run(s: &dyn Store, all: &[Vec<ResultRow>], per_tx: usize) -> f64 {
    let ids: Vec<AgentIdentity> = (0..AGENTS).map(who).collect();
    // Batch k of every agent, agents interleaved as their flushes arrive.
    let mut queue: Vec<IncomingBatch<'_>> = Vec::new();
    for k in 0..(PER_AGENT as usize).div_ceil(BATCH) {
        for (a, rows) in all.iter().enumerate() {
            let end = ((k + 1) * BATCH).min(rows.len());
            queue.push(IncomingBatch {
                who: &ids[a],
                rows: &rows[k * BATCH..end],
                peer: Some("192.0.2.10:40000"),
            });
        }
    }
    let started = Instant::now();
    let mut stored = 0;
    for group in queue.chunks(per_tx) {
        let out = s
            .store_batches(group, pantau_collector::store::now_ms())
            .expect("store");
        stored += out.iter().map(|o| o.new).sum::<usize>();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        stored as u64,
        AGENTS as u64 * PER_AGENT,
        "every result stored once"
    );
    stored as f64 / secs
}

/// A new database on the server of `base` (its URL), and a guard that
/// drops it.
struct BenchDb {
    base: String,
    name: String,
    url: String,
}

impl BenchDb {
    fn new(base: &str, k: usize) -> BenchDb {
        let name = format!("pantau_bench_{}_{k}", std::process::id());
        let mut c =
            postgres::Client::connect(base, postgres::NoTls).expect("connect to the server");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the bench database");
        let (server, _) = base.rsplit_once('/').expect("postgres://.../db");
        BenchDb {
            base: base.to_string(),
            url: format!("{server}/{name}"),
            name,
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {}", self.name));
        }
    }
}

fn main() {
    let total = AGENTS as u64 * PER_AGENT;
    let span = (PER_AGENT / TARGETS) as i64 * INTERVAL_MS;
    let start = pantau_collector::store::now_ms() - span - 3_600_000;
    let all = rows(start);
    let given = std::env::var("PANTAU_BENCH_PG_URL").ok();
    let server = if given.is_some() {
        "the given server"
    } else {
        "the test server (fsync=off)"
    };
    for (k, per_tx) in [1, 4, 16, 64].into_iter().enumerate() {
        let db = given.as_deref().map(|base| BenchDb::new(base, k));
        let url = match &db {
            Some(d) => d.url.clone(),
            None => testserver::server().fresh_database(),
        };
        let pg = PgStore::open(&url).expect("PostgreSQL store");
        prepare(&pg);
        let pg_rate = run(&pg, &all, per_tx);
        drop(pg);
        drop(db);
        let dir = tempfile::tempdir().expect("temp dir");
        let lite = SqliteStore::open(dir.path()).expect("SQLite store");
        prepare(&lite);
        let lite_rate = run(&lite, &all, per_tx);
        println!(
            "pg_ingest: {total} results, batches of {BATCH}, {per_tx} batch(es) per transaction: \
             PostgreSQL ({server}) {pg_rate:.0} results/s; SQLite {lite_rate:.0} results/s"
        );
    }
}
