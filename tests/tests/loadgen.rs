//! pantau-loadgen against a real collector: 5 simulated agents over TLS
//! with client certificates for about 5 s, with a backlog and reconnects.
//! Every result the collector acknowledged is stored exactly once, nothing
//! unacknowledged is stored, and the summary carries the figures. Then two
//! collector binaries on one PostgreSQL (this test starts the server) with
//! the agents split between them: the same, per collector.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Collector;
use pantau_collector::store::postgres::testserver;

/// `key=value` fields of the loadgen's `summary` line.
/// The `key=value` pairs of a finished run's `summary` line, each read
/// as a number (a missing or non-numeric one fails the test, naming it).
struct Summary {
    pairs: HashMap<String, String>,
    stdout: String,
}

impl Summary {
    fn number(&self, k: &str) -> f64 {
        let stdout = &self.stdout;
        self.pairs
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing in {stdout}"))
            .parse()
            .unwrap_or_else(|_| panic!("{k} is not a number in {stdout}"))
    }
}

/// A pantau-loadgen run that must have succeeded: its output and summary.
fn finished(out: &std::process::Output) -> (String, Summary) {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "pantau-loadgen failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("summary "))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    let pairs = line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let s = Summary {
        pairs,
        stdout: stdout.clone(),
    };
    (stdout, s)
}

#[test]
fn acked_results_are_stored_exactly_once_and_the_summary_has_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut c = Collector::start(&data);
    let out = Command::new(env!("CARGO_BIN_EXE_pantau-loadgen"))
        .args(["--collector", &c.grpc.to_string(), "--data-dir"])
        .arg(&data)
        .arg("--collector-bin")
        .arg(common::bin("pantau-collector"))
        .args(["--agents", "5", "--targets", "20", "--interval", "1"])
        .args([
            "--duration",
            "5",
            "--backlog",
            "300",
            "--reconnect-every",
            "2",
            "--ramp",
            "1",
        ])
        .args(["--collector-pid", &c.proc.child.id().to_string()])
        .output()
        .expect("run pantau-loadgen");
    let (stdout, s) = finished(&out);
    let num = |k: &str| s.number(k);
    let acked = num("acked") as u64;
    // At least the backlog of every agent goes through.
    assert!(acked >= 5 * 300, "acked {acked}: {stdout}");
    assert!(num("acked_per_s") > 0.0, "{stdout}");
    assert!(num("batches") > 0.0, "{stdout}");
    let (p50, p99) = (num("p50_ms"), num("p99_ms"));
    assert!(p50 > 0.0 && p99 >= p50, "p50 {p50} p99 {p99}: {stdout}");
    assert!(
        num("reconnects") >= 5.0,
        "every agent reconnected: {stdout}"
    );
    assert!(num("rss_mb") > 1.0 && num("rss_peak_mb") >= 1.0, "{stdout}");
    assert!(num("cpu_pct") >= 0.0, "{stdout}");
    // The machine's load goes with every figure (the generator shares it).
    assert!(
        num("load_start") >= 0.0 && num("load_end") >= 0.0,
        "{stdout}"
    );
    for label in ["di-ack (acked)", "latensi ack (ack latency)", "RSS", "CPU"] {
        assert!(stdout.contains(label), "{label} missing: {stdout}");
    }

    // Acked results are committed before the ack: count them now, then
    // once more after the collector stopped.
    let count = || {
        let db = pantau_collector::store::open(&data).expect("store");
        let mut st = db
            .prepare(
                "SELECT agent_id, COUNT(*), MAX(seq), MIN(seq) FROM result \
                 WHERE agent_id LIKE 'lg-%' GROUP BY agent_id",
            )
            .unwrap();
        st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
    };
    let rows = count();
    assert_eq!(rows.len(), 5, "five agents stored results: {rows:?}");
    // One row per (agent, epoch, seq) by the primary key; seqs 1..=max all
    // present: no gap, no duplicate, and nothing beyond what was acked.
    for (agent, n, max, min) in &rows {
        assert_eq!((*min, *max), (1, *n), "{agent}: seqs 1..={n} each once");
    }
    let stored: i64 = rows.iter().map(|r| r.1).sum();
    assert_eq!(stored as u64, acked, "stored = acked: {stdout}");
    c.proc.terminate();
    assert_eq!(count(), rows, "nothing more stored after the stop");
}

fn pg_collector_config(dir: &Path, name: &str, url: &str) -> PathBuf {
    let cfg = dir.join(format!("collector-{name}.toml"));
    std::fs::write(
        &cfg,
        format!("[store]\nurl = \"{url}\"\n\n[cluster]\nnode = \"{name}\"\n"),
    )
    .unwrap();
    cfg
}

/// Four agents over two collectors sharing one PostgreSQL, one CA and
/// signing key (the documented copy, docs/SCALE.md): each collector acks
/// its half, the summary has each one's rate, RSS and CPU, and every acked
/// result is stored exactly once in the shared database.
#[test]
fn two_collectors_on_one_postgresql_split_the_agents_and_store_each_result_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = testserver::server().fresh_database();
    let (data_a, data_b) = (dir.path().join("data-a"), dir.path().join("data-b"));
    let cfg_a = pg_collector_config(dir.path(), "a", &url);
    let cfg_b = pg_collector_config(dir.path(), "b", &url);
    let (code, _, err) = common::collector_cli(&data_a, Some(&cfg_a), &["ca", "init"]);
    assert_eq!(code, 0, "ca init: {err}");
    let mut a = Collector::start_logged_with(&data_a, &dir.path().join("a.log"), &cfg_a);
    // A makes the signing key as it starts; B gets copies before its first.
    let key = pantau_collector::report::sign::KEY_FILE;
    common::wait_for(
        "A's report signing key",
        std::time::Duration::from_secs(20),
        || data_a.join(key).exists().then_some(()),
    );
    std::fs::create_dir_all(data_b.join("tls")).unwrap();
    for f in [
        "tls/ca.crt",
        "tls/ca.key",
        pantau_collector::report::sign::KEY_FILE,
    ] {
        std::fs::copy(data_a.join(f), data_b.join(f)).unwrap();
    }
    let mut b = Collector::start_logged_with(&data_b, &dir.path().join("b.log"), &cfg_b);
    let both = format!("{},{}", a.grpc, b.grpc);
    let out = Command::new(env!("CARGO_BIN_EXE_pantau-loadgen"))
        .args(["--collector", &both, "--data-dir"])
        .arg(&data_a)
        .arg("--collector-config")
        .arg(&cfg_a)
        .arg("--collector-bin")
        .arg(common::bin("pantau-collector"))
        .args(["--agents", "4", "--targets", "20", "--interval", "1"])
        .args(["--duration", "5", "--backlog", "200"])
        .args(["--collector-pid", &a.proc.child.id().to_string()])
        .args(["--collector-pid", &b.proc.child.id().to_string()])
        .output()
        .expect("run pantau-loadgen");
    let (stdout, s) = finished(&out);
    let num = |k: &str| s.number(k);
    assert_eq!(num("collectors"), 2.0, "{stdout}");
    let acked = num("acked") as u64;
    assert!(acked >= 4 * 200, "every backlog went through: {stdout}");
    for c in ["c0", "c1"] {
        assert!(
            num(&format!("{c}_acked_per_s")) > 0.0,
            "{c} acked: {stdout}"
        );
        assert!(num(&format!("{c}_rss_mb")) > 1.0, "{c} RSS: {stdout}");
        assert!(num(&format!("{c}_cpu_pct")) >= 0.0, "{c} CPU: {stdout}");
    }
    let per_collector = num("c0_acked_per_s") + num("c1_acked_per_s");
    assert!(
        (per_collector - num("acked_per_s")).abs() < 1.0,
        "the total is the sum of the collectors: {stdout}"
    );
    for label in ["kolektor (collector) 0", "kolektor (collector) 1"] {
        assert!(stdout.contains(label), "{label} missing: {stdout}");
    }

    // Committed before the ack, so all there now; one row per seq, 1..=max.
    let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let count = |pg: &mut postgres::Client| -> Vec<(String, i64, i64, i64, i64)> {
        pg.query(
            "SELECT agent_id, COUNT(*), COUNT(DISTINCT (epoch, seq)), MIN(seq), MAX(seq)
             FROM result WHERE agent_id LIKE 'lg-%' GROUP BY agent_id ORDER BY agent_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
    };
    let rows = count(&mut pg);
    assert_eq!(rows.len(), 4, "four agents stored results: {rows:?}");
    for (agent, n, distinct, min, max) in &rows {
        assert_eq!(
            (*distinct, *min, *max),
            (*n, 1, *n),
            "{agent}: seqs 1..={n} each once"
        );
    }
    let stored: i64 = rows.iter().map(|r| r.1).sum();
    assert_eq!(stored as u64, acked, "stored = acked: {stdout}");
    a.proc.terminate();
    b.proc.terminate();
    assert_eq!(count(&mut pg), rows, "nothing more stored after the stop");
}
