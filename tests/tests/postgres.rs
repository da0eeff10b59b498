//! End to end on PostgreSQL: the collector binary with `[store] url`
//! pointing at a PostgreSQL server this test starts (Debian's `postgresql`
//! package; without it the test fails naming the package), a real agent,
//! results stored in PostgreSQL (not in a SQLite file), served by
//! `/api/v1/results`, and a report of today built from them.

mod common;

use std::time::Duration;

use common::*;
use pantau_collector::store::postgres::{PgStore, testserver};
use pantau_collector::store::{ApiRead, Registry};

#[test]
fn agent_results_reach_postgres_api_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = testserver::server().fresh_database();
    let token = "pg-e2e-token-0123456789abcdef0123456789";
    {
        let s = PgStore::open(&url).expect("open the test database");
        s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
        s.add_agent("dinkes-1", "dinkes", &pantau_collector::auth::digest(token))
            .unwrap();
    }
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, format!("[store]\nurl = \"{url}\"\n")).unwrap();
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
}
