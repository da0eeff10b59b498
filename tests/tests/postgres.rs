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
use pantau_collector::model::ResultRow;
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
    // Its client certificate issued by the real CLI, recorded in PostgreSQL
    // (the handshake refuses a serial the store does not know).
    issue_pg_cert(&cfg, &data, &agent_dir, "dinkes-1");
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

/// 2026-11-02 00:00 WITA (UTC+8) = 2026-11-01T16:00:00Z.
const DAY0: i64 = 1_793_548_800_000;
const MIN: i64 = 60_000;

/// One ping result of `target` at `at`, as the ingest stores it.
fn ping(seq: &mut u64, target: &str, group: &str, at: i64, ok: bool) -> ResultRow {
    *seq += 1;
    let mut r = pantau_collector::store::conformance::core::row(1, *seq);
    r.target_id = target.into();
    r.group = group.into();
    r.observed_at_ms = at;
    r.agent_time_ms = at;
    if !ok {
        r.outcome = pantau_collector::model::Outcome::Timeout;
        r.value_ms = None;
        r.received = Some(0);
        r.data = serde_json::json!({"samples_us": []});
    }
    r
}

/// A key and CSR for agent `id` in `dir`, signed into `<dir>/<id>.crt` by
/// `agent issue-cert` against the store `cfg` names.
fn issue_pg_cert(cfg: &std::path::Path, data: &std::path::Path, dir: &std::path::Path, id: &str) {
    let (key_pem, csr_pem) = pantau_agent::identity::new_key_and_csr(id).expect("key and CSR");
    let (key, csr, crt) = (
        dir.join(format!("{id}.key")),
        dir.join(format!("{id}.csr")),
        dir.join(format!("{id}.crt")),
    );
    pantau_agent::identity::write_atomic(&key, &key_pem, 0o600).expect("write key");
    std::fs::write(&csr, csr_pem).expect("write CSR");
    let printed = pg_ok(
        cfg,
        data,
        &[
            "agent",
            "issue-cert",
            id,
            "--csr",
            csr.to_str().unwrap(),
            "--out",
            crt.to_str().unwrap(),
        ],
    );
    assert!(crt.is_file() && printed.contains("serial"), "{printed}");
}

/// Rows per table, in SQLite and in PostgreSQL.
fn counts(data: &std::path::Path, url: &str) -> Vec<(String, i64, i64)> {
    let lite = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    let mut pg = postgres::Client::connect(url, postgres::NoTls).unwrap();
    pantau_collector::store::postgres::migrate::TABLES
        .iter()
        .map(|t| {
            let q = format!("SELECT COUNT(*) FROM {t}");
            let l: i64 = lite.query_row(&q, [], |r| r.get(0)).unwrap();
            let p: i64 = pg.query_one(q.as_str(), &[]).unwrap().get(0);
            (t.to_string(), l, p)
        })
        .collect()
}

/// A province moves from SQLite to PostgreSQL: `store migrate --to` copies
/// every table (same rows per table, audit chain intact), refuses to run
/// into a store that holds data, and the same day's JSON report is
/// identical from both stores.
#[test]
fn store_migrate_copies_sqlite_into_postgres_with_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The SQLite province: two OPDs, a day of results, admin history.
    enrol(&data, "dinkes", "dinkes-1");
    enrol(&data, "disdik", "disdik-1");
    declare(
        &data,
        "dinkes",
        "dinkes-1",
        vec![
            decl("pusdat", "datacenter", "icmp", 60_000),
            decl("jip-a", "jip", "icmp", 60_000),
        ],
    );
    let mut seq = 0;
    let mut rows = Vec::new();
    for m in 0..1440 {
        let at = DAY0 + m * MIN + 1_000;
        rows.push(ping(
            &mut seq,
            "pusdat",
            "datacenter",
            at,
            !(300..330).contains(&m),
        ));
        rows.push(ping(&mut seq, "jip-a", "jip", at, m >= 120));
    }
    // Stored in batches as the writer does, two days later.
    for chunk in rows.chunks(500) {
        store_rows(&data, "dinkes", "dinkes-1", chunk, DAY0 + 2 * 86_400_000);
    }
    for args in [
        &["opd", "contract", "dinkes", "--mbps", "20"][..],
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--group",
            "jip",
            "--from",
            "2026-11-02T01:00:00+08:00",
            "--to",
            "2026-11-02T01:30:00+08:00",
            "--reason",
            "ganti router",
            "--by",
            "noc",
        ],
        &["agent", "disable", "disdik-1"],
    ] {
        let (ok, _, err) = collector_run(&data, args);
        assert!(ok, "{args:?}: {err}");
    }

    // Web accounts and machine credentials of the SQLite province: a user,
    // an API token and an agent's client certificate.
    let (ok, _, err) = collector_run(&data, &["user", "add", "ani", "--role", "viewer"]);
    assert!(ok, "user add: {err}");
    let (ok, token, err) = collector_run(&data, &["token", "add", "prom", "--role", "scrape"]);
    assert!(ok, "token add: {err}");
    let token = token.trim().to_string();
    issue_client_cert(&data, dir.path(), "dinkes-1");

    let url = testserver::server().empty_database();
    let (ok, printed, err) = collector_run(&data, &["store", "migrate", "--to", &url]);
    assert!(ok, "migrate failed: {err}");
    assert!(printed.contains("result\t2880\t2880"), "{printed}");
    let after = counts(&data, &url);
    for (t, lite, pg) in &after {
        assert_eq!(lite, pg, "table {t}: SQLite {lite}, PostgreSQL {pg}");
    }
    let by = |name: &str| after.iter().find(|c| c.0 == name).unwrap().1;
    assert_eq!(by("result"), 2880);
    assert_eq!(by("agent"), 2);
    assert_eq!(by("maintenance"), 1);
    assert!(by("audit_log") >= 7, "{after:?}");
    assert_eq!(by("account"), 1);
    assert_eq!(by("api_token"), 1);
    assert_eq!(by("client_cert"), 1);
    // They work in PostgreSQL: the token authenticates, the user is there,
    // the certificate is in force.
    {
        use pantau_collector::store::{Accounts, ClientCerts};
        let s = PgStore::open(&url).unwrap();
        let t = s
            .api_token(&pantau_collector::auth::digest(&token))
            .unwrap()
            .expect("the copied token authenticates");
        assert_eq!((t.name.as_str(), t.role.as_str()), ("prom", "scrape"));
        let a = s.account("ani").unwrap().expect("the copied user");
        assert_eq!(a.role.as_str(), "viewer");
        assert!(!a.disabled && a.password_hash.starts_with("$argon2id$"));
        let certs = s.cert_refusals().unwrap();
        assert_eq!(certs.active.len(), 1, "{certs:?}");
        assert_eq!(certs.active[0].1, "dinkes-1");
    }
    // Identities came along: a resent row is a replay in PostgreSQL too.
    {
        use pantau_collector::store::IngestStore;
        let s = PgStore::open(&url).unwrap();
        let who = pantau_collector::model::AgentIdentity {
            agent_id: "dinkes-1".into(),
            opd_id: "dinkes".into(),
        };
        let stored = s
            .store_batches(
                &[pantau_collector::store::IncomingBatch {
                    who: &who,
                    rows: &rows[..10],
                    peer: None,
                }],
                now_ms(),
            )
            .unwrap();
        assert_eq!(stored[0].new, 0, "replayed rows stored again");
        assert_eq!(s.committed_seq("dinkes-1", 1).unwrap(), 2880);
    }

    // Twice is refused, and the target keeps its rows.
    let (ok, _, err) = collector_run(&data, &["store", "migrate", "--to", &url]);
    assert!(!ok && err.contains("tidak kosong / is not empty"), "{err}");
    assert_eq!(counts(&data, &url), after);
    // Not a PostgreSQL URL: named, nothing done.
    let (ok, _, err) = collector_run(&data, &["store", "migrate", "--to", "mysql://x/y"]);
    assert!(!ok && err.contains("not a PostgreSQL URL"), "{err}");

    // The same report from both stores.
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, format!("[store]\nurl = \"{url}\"\n")).unwrap();
    let fixed = ["--number", "LAP/2026/11/02", "--issued", "2026-11-05"];
    let from_sqlite = day_report(
        &data,
        "2026-11-02",
        &dir.path().join("lite"),
        "json",
        &fixed,
    );
    let out = dir.path().join("pg");
    let printed = pg_ok(
        &cfg,
        &data,
        &[
            "report",
            "--opd",
            "all",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-02",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
            fixed[0],
            fixed[1],
            fixed[2],
            fixed[3],
        ],
    );
    let from_pg = std::path::PathBuf::from(printed.lines().next().unwrap_or_default());
    let (lite, pg) = (
        std::fs::read_to_string(&from_sqlite).unwrap(),
        std::fs::read_to_string(&from_pg).unwrap(),
    );
    assert!(
        lite.contains("Dinas Kesehatan") || lite.contains("dinkes"),
        "{lite}"
    );
    assert_eq!(lite, pg, "the JSON reports differ");
    // The account, token and certificate commands run on PostgreSQL.
    let users = pg_ok(&cfg, &data, &["user", "list"]);
    assert!(users.contains("ani\tviewer"), "{users}");
    pg_ok(&cfg, &data, &["user", "disable", "ani"]);
    pg_ok(&cfg, &data, &["token", "revoke", "prom"]);
    let tokens = pg_ok(&cfg, &data, &["token", "list"]);
    assert!(tokens.contains("prom\tscrape\t\trevoked"), "{tokens}");
    pg_ok(&cfg, &data, &["register"]);
    let pg_certs = dir.path().join("pg-certs");
    std::fs::create_dir_all(&pg_certs).unwrap();
    issue_pg_cert(&cfg, &data, &pg_certs, "dinkes-1");
    {
        use pantau_collector::store::{Accounts, ClientCerts};
        let s = PgStore::open(&url).unwrap();
        assert_eq!(s.cert_refusals().unwrap().active.len(), 2);
        assert!(s.account("ani").unwrap().unwrap().disabled);
        assert!(
            s.api_token(&pantau_collector::auth::digest(&token))
                .unwrap()
                .is_none()
        );
    }
    let verified = pg_ok(&cfg, &data, &["verify-audit"]);
    assert!(verified.starts_with("OK:"), "{verified}");
    // Ids continue after the copied ones: a new window gets a fresh id.
    pg_ok(
        &cfg,
        &data,
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--from",
            "2026-11-03T01:00:00+08:00",
            "--to",
            "2026-11-03T02:00:00+08:00",
            "--reason",
            "uji",
            "--by",
            "noc",
        ],
    );
    let listed = pg_ok(&cfg, &data, &["maintenance-list", "--opd", "dinkes"]);
    assert!(
        listed.contains("ganti router") && listed.contains("uji"),
        "{listed}"
    );
}

/// A wrong store URL stops an admin command with the configuration exit
/// code, naming the key (and the variable or file it came from) and never
/// the password.
#[test]
fn a_bad_store_url_is_named_for_admin_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new(bin("pantau-collector"))
        .args(["--data-dir", data.to_str().unwrap(), "opd", "list"])
        .env("PANTAU_STORE_URL", "mysql://pantau:s3cret@db/pantau")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("store.url (PANTAU_STORE_URL)"), "{err}");
    assert!(
        !err.contains("s3cret") && !err.contains("panicked"),
        "{err}"
    );
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, "[store]\nurl = \"sqlite:///var/lib/pantau\"\n").unwrap();
    let (ok, _, err) = pg_cli(&cfg, &data, &["opd", "list"]);
    assert!(
        !ok && err.contains("store.url") && err.contains("collector.toml"),
        "{err}"
    );
    // Nothing was made in the data directory.
    assert!(!data.join("pantau.db").exists());
}
