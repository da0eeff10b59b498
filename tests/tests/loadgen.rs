//! pantau-loadgen against a real collector: 5 simulated agents over TLS
//! with client certificates for about 5 s, with a backlog and reconnects.
//! Every result the collector acknowledged is stored exactly once, nothing
//! unacknowledged is stored, and the summary carries the figures.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::Collector;

/// `key=value` fields of the loadgen's `summary` line.
fn summary(stdout: &str) -> HashMap<String, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("summary "))
        .unwrap_or_else(|| panic!("no summary line in {stdout}"));
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "pantau-loadgen failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&stdout);
    let num = |k: &str| -> f64 {
        s.get(k)
            .unwrap_or_else(|| panic!("{k} missing in {stdout}"))
            .parse()
            .unwrap_or_else(|_| panic!("{k} is not a number in {stdout}"))
    };
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
