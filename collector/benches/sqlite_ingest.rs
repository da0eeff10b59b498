//! The writer's per-result cost on SQLite, without gRPC: `store_batches` as
//! the collector's writer calls it at saturation, then the per-batch metrics
//! update (`Metrics::committed`) the writer does after each commit. Printed
//! as figures (not assertions).
//!
//! Workload: 500 agents of 100 targets (of every 20: 8 ICMP with 5 samples,
//! 4 TCP, 4 HTTP, 2 DNS, 2 link, as the data of `pantau-loadgen`), one
//! round of every target per second per agent, each round one batch of 100
//! rows; [`PER_TX`] batches (64, the writer's `GROUP_MAX`) of different
//! agents per transaction, as the writer folds them when they queue up.
//! The store is the production one: WAL, `synchronous = FULL`, the writer's
//! page cache and checkpoint interval (`tune_writer`), on the temp dir's disk.
//!
//! `cargo bench -p pantau-collector --bench sqlite_ingest`
//! (`PANTAU_BENCH_ROUNDS=N` rounds per agent, 10 by default;
//! `PANTAU_BENCH_PER_TX=N` batches per transaction, 64 by default;
//! `PANTAU_BENCH_OPDS=N` OPDs the agents are spread over, 1 by default as
//! with `pantau-loadgen`; `PANTAU_BENCH_DIR` where the store goes, `.`.)

use std::time::Instant;

use pantau_collector::metrics::Metrics;
use pantau_collector::model::{
    AgentIdentity, Group, HelloInfo, Outcome, ProbeKind, ResultRow, TargetDecl,
};
use pantau_collector::store::{IncomingBatch, IngestStore, SqliteStore, Store, now_ms};
use serde_json::json;

const AGENTS: usize = 500;
const TARGETS: usize = 100;
const PER_TX: usize = 64;

/// Agent `a` of `opds` OPDs (ids as `pantau-loadgen` makes them).
fn who(a: usize, opds: usize) -> AgentIdentity {
    AgentIdentity {
        agent_id: format!("lg-{a:05}"),
        opd_id: format!("loadgen-{:03}", a % opds),
    }
}

fn kind_of(t: usize) -> ProbeKind {
    match t % 20 {
        0..=7 => ProbeKind::Icmp,
        8..=11 => ProbeKind::Tcp,
        12..=15 => ProbeKind::Http,
        16 | 17 => ProbeKind::Dns,
        _ => ProbeKind::Link,
    }
}

/// Register the OPDs and agents, declare their targets, and tell the
/// metrics about them as a Hello does.
fn prepare(s: &dyn Store, m: &Metrics, opds: usize) {
    for o in 0..opds {
        s.add_opd(&format!("loadgen-{o:03}"), &format!("OPD {o}"))
            .expect("opd");
    }
    let targets: Vec<TargetDecl> = (0..TARGETS)
        .map(|t| TargetDecl {
            id: format!("t{t:03}"),
            group: Group::Intranet,
            kind: kind_of(t),
            address: format!("10.0.{}.{}", t / 200, t % 200 + 1),
            label: String::new(),
            interval_ms: 1_000,
            timeout_ms: 500,
        })
        .collect();
    for a in 0..AGENTS {
        let w = who(a, opds);
        let mut token = [0u8; 32];
        token[..8].copy_from_slice(&(a as u64 + 1).to_le_bytes());
        s.add_agent(&w.agent_id, &w.opd_id, &token).expect("agent");
        let hello = HelloInfo {
            version: "bench".into(),
            config_hash: "x".into(),
            hostname: "h".into(),
            epoch: 1,
            agent_time_ms: None,
            targets: targets.clone(),
        };
        s.hello(&w, &hello, None, None, now_ms()).expect("hello");
        m.declare_targets(&w, targets.iter().map(|t| t.id.as_str()));
    }
}

/// One agent's round `k`: a result per target, seqs `k * 100 + 1 ..`.
fn round(k: usize, at_ms: i64) -> Vec<ResultRow> {
    (0..TARGETS)
        .map(|t| {
            let seq = (k * TARGETS + t + 1) as u64;
            let us = 1_000 + (seq * 7919 % 40_000);
            let kind = kind_of(t);
            let (value_ms, sent, received, data) = match kind {
                ProbeKind::Icmp => {
                    let s: Vec<u64> = (0..5).map(|i| us + i * 37).collect();
                    (
                        Some(us as f64 / 1000.0),
                        Some(5),
                        Some(5),
                        json!({"rtt_min_us": s[0], "rtt_avg_us": s[2], "rtt_max_us": s[4],
                               "rtt_stddev_us": 50, "samples_us": s}),
                    )
                }
                ProbeKind::Tcp => (Some(us as f64 / 1000.0), None, None, json!({"connect_us": us})),
                ProbeKind::Http => (
                    Some(us as f64 / 500.0),
                    None,
                    None,
                    json!({"status": 200, "ttfb_us": us, "total_us": us * 2, "body_bytes": 5_000 + us}),
                ),
                ProbeKind::Dns => (
                    Some(us as f64 / 4000.0),
                    None,
                    None,
                    json!({"resolve_us": us / 4, "answers": 1, "rcode": 0}),
                ),
                _ => (
                    None,
                    None,
                    None,
                    json!({"source": "snmp", "if_index": 2, "if_name": "ge-0/0/1",
                           "in_octets": seq * 10_000_000, "out_octets": seq * 2_500_000,
                           "capacity_bps": 100_000_000, "interval_seconds": 1.0,
                           "in_bps": 80_000_000.0, "out_bps": 20_000_000.0}),
                ),
            };
            ResultRow {
                epoch: 1,
                seq,
                target_id: format!("t{t:03}"),
                group: "intranet".into(),
                kind: kind.into(),
                observed_at_ms: at_ms,
                outcome: Outcome::Ok,
                detail: String::new(),
                value_ms,
                sent,
                received,
                data,
                late: false,
                clock_flag: None,
                agent_time_ms: at_ms,
                clock_correction_ms: None,
            }
        })
        .collect()
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rounds = env_usize("PANTAU_BENCH_ROUNDS", 10);
    let per_tx = env_usize("PANTAU_BENCH_PER_TX", PER_TX);
    let opds = env_usize("PANTAU_BENCH_OPDS", 1);
    let dir = tempfile::tempdir_in(std::env::var("PANTAU_BENCH_DIR").unwrap_or(".".into()))
        .expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("SQLite store");
    let metrics = Metrics::new();
    prepare(&store, &metrics, opds);
    let ids: Vec<AgentIdentity> = (0..AGENTS).map(|a| who(a, opds)).collect();
    // Rounds 1 s apart, ending now.
    let start = now_ms() - rounds as i64 * 1_000;
    let (mut store_s, mut metrics_s, mut stored, mut txs) = (0.0, 0.0, 0usize, 0usize);
    for k in 0..rounds {
        let rows: Vec<Vec<ResultRow>> = (0..AGENTS)
            .map(|_| round(k, start + k as i64 * 1_000))
            .collect();
        let batches: Vec<IncomingBatch<'_>> = (0..AGENTS)
            .map(|a| IncomingBatch {
                who: &ids[a],
                rows: &rows[a],
                peer: Some("127.0.0.1:40000"),
            })
            .collect();
        for group in batches.chunks(per_tx) {
            let received = now_ms();
            let t = Instant::now();
            let out = store.store_batches(group, received).expect("store");
            store_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            for (b, o) in group.iter().zip(&out) {
                metrics.committed(b.who, b.rows, o.new, received);
                stored += o.new;
            }
            metrics_s += t.elapsed().as_secs_f64();
            txs += 1;
        }
    }
    assert_eq!(
        stored,
        rounds * AGENTS * TARGETS,
        "every result stored once"
    );
    let us = |s: f64| s * 1e6 / stored as f64;
    println!(
        "sqlite_ingest: {stored} results from {AGENTS} agents in {opds} OPD(s), batches of {TARGETS}, \
         {per_tx} per transaction ({txs} transactions): store_batches {:.0} results/s \
         ({:.2} us/result); metrics.committed {:.2} us/result; writer total {:.2} us/result \
         = {:.0} results/s",
        stored as f64 / store_s,
        us(store_s),
        us(metrics_s),
        us(store_s + metrics_s),
        stored as f64 / (store_s + metrics_s),
    );
    let size = std::fs::read_dir(dir.path())
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .unwrap_or(0);
    println!(
        "sqlite_ingest: data directory {:.1} MB after the run",
        size as f64 / 1e6
    );
}
