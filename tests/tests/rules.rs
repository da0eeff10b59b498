//! Configurable, versioned rules end to end through the real
//! `pantau-collector` binary: SLA targets, degraded thresholds and composite
//! rules from `[report.*]` change the figures and the printed rule version;
//! a rule change rebuilds the rollups still backed by raw results, while
//! rollups whose raw results are gone keep (and name) their earlier rules;
//! an agent installed mid-day has no "agent offline" incident for the hours
//! before it existed; incidents and maintenance windows can be listed.

mod common;

use std::path::Path;

use common::*;
use pantau_collector::model::ResultRow;
use pantau_collector::model::{Outcome, ProbeKind};
use pantau_collector::store;

/// 2026-11-02 00:00 WITA (UTC+8).
const DAY0: i64 = 1_793_548_800_000;
/// The agent was installed at 10:30 local time.
const INSTALLED_MIN: i64 = 630;
/// inet-a is down 11:40-12:40 local.
const DOWN: std::ops::Range<i64> = 700..760;

fn seed(data: &Path) {
    enrol(data, "dinas", "dinas-1");
    let targets = vec![
        decl("pusdat", "intranet", "icmp", 30_000),
        decl("inet-a", "internet", "tcp", 30_000),
        decl("inet-b", "internet", "tcp", 30_000),
    ];
    declare(data, "dinas", "dinas-1", targets.clone());
    let mut rows = Vec::new();
    let mut seq = 0;
    for m in INSTALLED_MIN..1440 {
        for t in &targets {
            let down = t.id == "inet-a" && DOWN.contains(&m);
            for half in [5_000, 35_000] {
                seq += 1;
                let icmp = t.kind == ProbeKind::Icmp;
                rows.push(ResultRow {
                    epoch: 1,
                    seq,
                    target_id: t.id.clone(),
                    group: t.group.to_string(),
                    kind: t.kind.into(),
                    observed_at_ms: DAY0 + m * 60_000 + half,
                    outcome: if down { Outcome::Timeout } else { Outcome::Ok },
                    detail: String::new(),
                    value_ms: (!down).then_some(if icmp { 12.0 } else { 40.0 }),
                    sent: icmp.then_some(5),
                    received: icmp.then_some(5),
                    data: serde_json::json!({}),
                    late: false,
                    clock_flag: None,
                    agent_time_ms: DAY0 + m * 60_000 + half,
                    clock_correction_ms: None,
                });
            }
        }
    }
    store_rows(data, "dinas", "dinas-1", &rows, DAY0 + 86_400_000);
}

fn json_report(data: &Path, config: Option<&Path>, out: &Path) -> serde_json::Value {
    let (code, stdout, stderr) = collector_cli(
        data,
        config,
        &[
            "report",
            "--opd",
            "dinas",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-02",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "report failed: {stderr}");
    let path = stdout.lines().next().unwrap();
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn group<'a>(r: &'a serde_json::Value, g: &str) -> &'a serde_json::Value {
    r["opds"][0]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["group"] == g)
        .unwrap_or_else(|| panic!("group {g} in {r:#}"))
}

fn parameter(r: &serde_json::Value, key_prefix: &str) -> Option<String> {
    r["meta"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0].as_str().unwrap().starts_with(key_prefix))
        .map(|p| p[1].as_str().unwrap().to_string())
}

fn write(path: &Path, text: &str) -> std::path::PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

#[test]
fn configured_rules_version_rebuild_and_mid_day_install() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    let monitored = 1440 - INSTALLED_MIN;

    // Default rules: any internet target answering keeps internet up.
    let r = json_report(&data, None, &dir.path().join("a"));
    assert_eq!(r["meta"]["rule_version"], "pantau-rules/2");
    let inet = group(&r, "internet");
    assert_eq!(inet["minutes"]["up"], monitored, "{inet:#}");
    assert_eq!(inet["minutes"]["down"], 0);
    // Installed at 10:30: the morning is neither unknown nor an incident.
    assert_eq!(inet["minutes"]["unknown"], 0, "{inet:#}");
    assert_eq!(group(&r, "intranet")["minutes"]["unknown"], 0);
    assert_eq!(inet["completeness_pct"], 100.0);
    assert_eq!(
        r["incidents"],
        serde_json::json!([]),
        "no agent-offline incident"
    );
    assert_eq!(parameter(&r, "sla.internet").as_deref(), Some("99"));

    // Stricter configured rules: every internet target must answer, 40 ms
    // TCP answers are degraded, internet SLA 95 %.
    let strict = write(
        &dir.path().join("strict.toml"),
        "[report.sla]\ninternet = 95\n\n[report.rules]\ndegraded_rtt = \"30ms\"\n\n[report.rules.composite]\ninternet = \"all\"\n",
    );
    let r = json_report(&data, Some(&strict), &dir.path().join("b"));
    let strict_version = r["meta"]["rule_version"].as_str().unwrap().to_string();
    assert!(
        strict_version.starts_with("pantau-rules/2+"),
        "{strict_version}"
    );
    assert_eq!(parameter(&r, "composite.internet").as_deref(), Some("all"));
    assert_eq!(parameter(&r, "degraded_rtt_ms").as_deref(), Some("30"));
    let inet = group(&r, "internet");
    let down = (DOWN.end - DOWN.start) as u64;
    assert_eq!(inet["minutes"]["down"], down, "{inet:#}");
    assert_eq!(inet["minutes"]["degraded"], monitored as u64 - down);
    assert_eq!(inet["minutes"]["up"], 0);
    assert_eq!(inet["sla_pct"], 95.0);
    let avail = inet["availability_pct"].as_f64().unwrap();
    let want = (monitored as f64 - down as f64) / monitored as f64 * 100.0;
    assert!((avail - want).abs() < 1e-9, "{avail} vs {want}");
    assert_eq!(inet["sla_met"], false);
    // ICMP at 12 ms stays up under the 30 ms threshold.
    assert_eq!(group(&r, "intranet")["minutes"]["up"], monitored);
    let inc = r["incidents"].as_array().unwrap();
    assert_eq!(inc.len(), 1, "{inc:#?}");
    assert_eq!(inc[0]["group"], "internet");
    assert_eq!(inc[0]["cause"], "internet_provider");
    assert_eq!(inc[0]["start_ms"], DAY0 + DOWN.start * 60_000);
    assert!(parameter(&r, "rules_before").is_none());

    // The incident list shows it with a start to copy into incident-note.
    let (code, out, err) = collector_cli(
        &data,
        Some(&strict),
        &[
            "incidents",
            "--opd",
            "dinas",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-02",
            "--lang",
            "en",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("dinas\t")).expect(&out);
    let f: Vec<&str> = line.split('\t').collect();
    assert_eq!(f[1], "internet");
    assert_eq!(f[2], "2026-11-02T11:40:00+08:00");
    assert_eq!(f[3], "2026-11-02T12:40:00+08:00");
    assert_eq!(f[4], "60");
    assert_eq!(f[6], "inet-a");
    assert!(
        out.trim_end()
            .ends_with(&format!("1 incident(s); rules {strict_version}")),
        "{out}"
    );

    // Raw results pruned (as retention would), then another rule change:
    // rollups cannot be rebuilt, keep the strict states and say so.
    let conn = store::open(&data).unwrap();
    conn.execute("DELETE FROM result", []).unwrap();
    drop(conn);
    let quorum = write(
        &dir.path().join("quorum.toml"),
        "[report.rules.composite]\ninternet = \"quorum:1\"\n",
    );
    let r = json_report(&data, Some(&quorum), &dir.path().join("c"));
    assert_ne!(r["meta"]["rule_version"], strict_version.as_str());
    assert_eq!(group(&r, "internet")["minutes"]["down"], down);
    assert_eq!(
        parameter(&r, "rules_before").as_deref(),
        Some(strict_version.as_str()),
        "{:#}",
        r["meta"]["parameters"]
    );

    // Maintenance windows can be listed.
    let (code, _, err) = collector_cli(
        &data,
        None,
        &[
            "maintenance",
            "--opd",
            "dinas",
            "--from",
            "2026-11-02T01:00:00Z",
            "--to",
            "2026-11-02T02:00:00Z",
            "--reason",
            "ganti router",
            "--by",
            "budi",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = collector_cli(&data, None, &["maintenance-list", "--opd", "dinas"]);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().nth(1).expect(&out);
    assert!(
        line.contains(
            "\tdinas\t*\t2026-11-02T09:00:00+08:00\t2026-11-02T10:00:00+08:00\tganti router\tbudi\t"
        ),
        "{out}"
    );
}

#[test]
fn evaluation_periods_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    for (period, from, to) in [
        ("2026-11", "2026-11-01", "2026-11-30"),
        ("2026-Q4", "2026-10-01", "2026-12-31"),
        ("2026-S2", "2026-07-01", "2026-12-31"),
        ("2026", "2026-01-01", "2026-12-31"),
    ] {
        let out = dir.path().join(period);
        let (code, stdout, stderr) = collector_cli(
            &data,
            None,
            &[
                "report",
                "--opd",
                "dinas",
                "--period",
                period,
                "--format",
                "json",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{period}: {stderr}");
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(stdout.lines().next().unwrap()).unwrap())
                .unwrap();
        assert_eq!(r["meta"]["from"], from, "{period}");
        assert_eq!(r["meta"]["to"], to, "{period}");
        // The one day of data is inside every one of these periods.
        assert_eq!(
            group(&r, "intranet")["minutes"]["up"],
            1440 - INSTALLED_MIN,
            "{period}"
        );
    }
    // The date of issue in the header is configurable too.
    let out = dir.path().join("issued");
    let (code, stdout, stderr) = collector_cli(
        &data,
        None,
        &[
            "report",
            "--opd",
            "dinas",
            "--period",
            "2026-11",
            "--issued",
            "2026-12-05",
            "--format",
            "html",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let html = std::fs::read_to_string(stdout.lines().next().unwrap()).unwrap();
    assert!(html.contains("5 Desember 2026"), "date of issue in {html}");
    let (code, _, stderr) = collector_cli(
        &data,
        None,
        &[
            "report", "--opd", "dinas", "--period", "2026-13", "--out", "x",
        ],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("`2026-13` is not a period"), "{stderr}");
    let (code, _, stderr) = collector_cli(
        &data,
        None,
        &[
            "report",
            "--opd",
            "dinas",
            "--period",
            "2026",
            "--from",
            "2026-01-01",
            "--out",
            "x",
        ],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn bad_rule_keys_are_named_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        &dir.path().join("bad.toml"),
        "[report.sla]\napp = 120\n\n[report.rules]\ndegraded_loss_percent = -1\nbusiness_hours = \"16-08\"\n\n[report.rules.composite]\ninternet = \"most\"\n",
    );
    let (code, _, err) = collector_cli(&dir.path().join("data"), Some(&cfg), &["opd", "list"]);
    assert_eq!(code, 64, "{err}");
    for key in [
        "report.sla.app",
        "report.rules.degraded_loss_percent",
        "report.rules.business_hours",
        "report.rules.composite.internet",
    ] {
        assert!(err.contains(key), "{key} missing from: {err}");
    }
    assert!(err.contains("bad.toml"), "{err}");
}

/// The server's rollup task, page requests and the writer all touch the
/// rollups at once: refreshing from several connections while results keep
/// arriving must never fail with "database is locked".
#[test]
fn concurrent_refreshes_and_writes_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    let rules = pantau_collector::report::rules::RuleSet::default();
    let threads: Vec<_> = (0..4u64)
        .map(|k| {
            let (data, rules) = (data.clone(), rules.clone());
            std::thread::spawn(move || {
                let conn = store::SqliteStore::open(&data).unwrap();
                for i in 0..40u64 {
                    // Each thread adds late results to a different hour.
                    let m = (k * 60 + i) as i64;
                    let row = ResultRow {
                        epoch: 7,
                        seq: 1_000_000 + k * 1000 + i,
                        target_id: "pusdat".into(),
                        group: "intranet".into(),
                        kind: ProbeKind::Icmp.into(),
                        observed_at_ms: DAY0 + m * 60_000 + 10_000,
                        outcome: Outcome::Ok,
                        detail: String::new(),
                        value_ms: Some(12.0),
                        sent: Some(5),
                        received: Some(5),
                        data: serde_json::json!({}),
                        late: true,
                        clock_flag: None,
                        agent_time_ms: DAY0 + m * 60_000 + 10_000,
                        clock_correction_ms: None,
                    };
                    store_rows(&data, "dinas", "dinas-1", &[row], DAY0 + 86_400_000);
                    pantau_collector::report::rollup::refresh(&conn, &rules, 480)
                        .unwrap_or_else(|e| panic!("thread {k}, round {i}: {e}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no refresh failed");
    }
    // Every late minute was rolled up: 4 x 40 minutes of the morning are now
    // measured for the intranet group.
    let r = json_report(&data, None, &dir.path().join("after"));
    assert_eq!(
        group(&r, "intranet")["minutes"]["up"],
        1440 - INSTALLED_MIN + 160
    );
}
