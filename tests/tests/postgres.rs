//! End to end on PostgreSQL: the collector binary with `[store] url`
//! pointing at a PostgreSQL server this test starts (Debian's `postgresql`
//! package; without it the test fails naming the package), a real agent,
//! results stored in PostgreSQL (not in a SQLite file), served by
//! `/api/v1/results`, and a report of today built from them. The admin
//! commands (OPD, agent, audit, report) run as the real CLI against the
//! same server, through `[store] url`.

mod common;

use std::time::Duration;

use common::*;
use pantau_collector::store::postgres::{PgStore, testserver};
use pantau_collector::store::{ApiRead, AuditLog};

/// Run `pantau-collector --config cfg --data-dir data ARGS`; (success,
/// stdout, stderr).
fn pg_cli(cfg: &std::path::Path, data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(bin("pantau-collector"))
        .arg("--config")
        .arg(cfg)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("PANTAU_STORE_URL")
        .output()
        .expect("run pantau-collector");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`pg_cli`] that must succeed; its stdout.
fn pg_ok(cfg: &std::path::Path, data: &std::path::Path, args: &[&str]) -> String {
    let (ok, out, err) = pg_cli(cfg, data, args);
    assert!(ok, "pantau-collector {args:?} failed: {err}");
    out
}

#[test]
fn agent_results_reach_postgres_api_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = testserver::server().fresh_database();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, format!("[store]\nurl = \"{url}\"\n")).unwrap();
    // Registered with the real admin commands, stored in PostgreSQL.
    let added = pg_ok(
        &cfg,
        &data,
        &["opd", "add", "dinkes", "--name", "Dinas Kesehatan"],
    );
    assert!(added.contains("dinkes"), "{added}");
    let token = pg_ok(
        &cfg,
        &data,
        &[
            "agent",
            "add",
            "dinkes-1",
            "--opd",
            "dinkes",
            "--print-token",
        ],
    );
    let token = token.trim();
    assert!(!token.is_empty());
    let (ok, _, err) = pg_cli(&cfg, &data, &["agent", "add", "x-1", "--opd", "nope"]);
    assert!(!ok && err.contains("nope"), "unknown OPD refused: {err}");
    assert_eq!(
        pg_ok(&cfg, &data, &["opd", "list"]),
        "dinkes\tDinas Kesehatan\t1 agent(s)\n"
    );
    assert!(
        !data.join("pantau.db").exists(),
        "the admin commands made a SQLite file beside PostgreSQL"
    );
    let collector = Collector::start_with(&data, "127.0.0.1:0", "127.0.0.1:0", Some(&cfg));
    let open = open_port();
    let agent_dir = dir.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let agent_cfg = agent_config(
        &agent_dir,
        "dinkes-1",
        &collector.grpc.to_string(),
        token,
        "heartbeat_interval = \"1s\"",
        &format!(
            "[defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\n\
             [[targets]]\nid = \"web\"\ngroup = \"datacenter\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{open}\"\n"
        ),
    );
    let mut agent = start_agent(&agent_cfg);

    // Results arrive through the API, read from PostgreSQL.
    let rows = wait_for(
        "results in /api/v1/results",
        Duration::from_secs(60),
        || {
            let (code, body) = collector.get(
                "/api/v1/results?agent=dinkes-1&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
            );
            assert_eq!(code, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let rows = v["results"].as_array().cloned().unwrap_or_default();
            let ok = rows
                .iter()
                .filter(|r| r["target"] == "web" && r["outcome"] == "ok")
                .count();
            (ok >= 3).then_some(rows)
        },
    );
    assert!(rows.iter().all(|r| r["opd"] == "dinkes"), "{rows:?}");
    agent.terminate();

    // Stored in PostgreSQL, and no SQLite database was made.
    let s = PgStore::open(&url).unwrap();
    let stored = s
        .results("dinkes-1", 0, i64::MAX, 100_000)
        .expect("read back");
    assert!(
        stored.len() >= rows.len(),
        "{} < {}",
        stored.len(),
        rows.len()
    );
    assert!(stored.iter().any(|r| r.kind == "heartbeat"));
    assert!(
        !data.join("pantau.db").exists(),
        "a SQLite file was created beside PostgreSQL"
    );
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let in_day_partitions: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM result r JOIN pg_class p ON p.oid = r.tableoid
             WHERE p.relname LIKE 'result\\_d%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        in_day_partitions as usize,
        stored.len(),
        "today's results live in today's partition"
    );

    // A report of today, built from the rollups in PostgreSQL.
    let today = local_date(now_ms(), 8);
    let (code, body) = collector.get(&format!(
        "/api/v1/report?opd=dinkes&from={today}&to={today}&format=json"
    ));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Dinas Kesehatan"), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON report");
    assert!(v.is_object(), "{body}");
    drop(collector);

    // The report, listings and the audit log through the CLI, on PostgreSQL.
    let listed = pg_ok(&cfg, &data, &["agent", "list"]);
    assert!(listed.starts_with("dinkes-1\tdinkes\t"), "{listed}");
    pg_ok(&cfg, &data, &["agent", "disable", "dinkes-1"]);
    assert!(
        pg_ok(&cfg, &data, &["agent", "list"]).contains("status=nonaktif/disabled"),
        "disable stored in PostgreSQL"
    );
    let out = dir.path().join("bundle");
    let printed = pg_ok(
        &cfg,
        &data,
        &[
            "report",
            "--opd",
            "dinkes",
            "--from",
            &today,
            "--to",
            &today,
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let file = std::path::PathBuf::from(printed.lines().next().unwrap_or_default());
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON report file");
    assert!(text.contains("Dinas Kesehatan"), "{text}");
    assert!(report.is_object());
    pg_ok(&cfg, &data, &["verify", out.to_str().unwrap()]);
    let audit = pg_ok(&cfg, &data, &["audit", "list"]);
    for action in ["opd.add", "agent.add", "agent.disable", "report.sign"] {
        assert!(audit.contains(action), "{action} missing from:\n{audit}");
    }
    let verified = pg_ok(&cfg, &data, &["verify-audit"]);
    assert!(
        verified.starts_with("OK:") && verified.contains("postgres"),
        "{verified}"
    );
    let s = PgStore::open(&url).unwrap();
    assert!(s.audit_head().unwrap() >= 4);
    assert!(
        !data.join("pantau.db").exists(),
        "a SQLite file was created beside PostgreSQL"
    );
}
